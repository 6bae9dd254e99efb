package manager

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/go-logr/logr"

	"github.com/herald-lb/herald/announcers"
)

// fastOptions detect a hung announcer within about a second.
var fastOptions = Options{PingInterval: 100 * time.Millisecond, PingTimeout: 500 * time.Millisecond,
	HealthInterval: 200 * time.Millisecond, StatusTimeout: 500 * time.Millisecond, CallTimeout: time.Second,
	AckTimeout: 300 * time.Millisecond, InitialBackoff: 20 * time.Millisecond}

func startWith(t *testing.T, log logr.Logger, o Options, specs ...Spec) *Manager {
	t.Helper()
	m, err := New(log, specs, o)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	m.Start(context.Background())
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = m.Stop(ctx)
	})
	for _, s := range specs {
		waitFor(t, s.Name+" healthy", 10*time.Second, func() bool { return healthOf(m, s.Name).State == StateHealthy })
	}
	return m
}

// within runs f and fails the test when it has not returned after d: the calls under test
// must never hang, whatever the announcer does.
func within[T any](t *testing.T, what string, d time.Duration, f func() (T, error)) (T, error) {
	t.Helper()
	type out struct {
		v   T
		err error
	}
	c := make(chan out, 1)
	go func() {
		v, err := f()
		c <- out{v, err}
	}()
	select {
	case o := <-c:
		return o.v, o.err
	case <-time.After(d):
		t.Fatalf("%s has not returned after %s", what, d)
	}
	panic("unreachable")
}

// gone reports whether pid no longer runs (reaped, or a zombie nobody waited for yet).
func gone(pid int) bool { return !alive(pid) }

func TestManagerReplacesStoppedAnnouncer(t *testing.T) {
	var logs logBuffer
	bin := testAnnouncer(t)
	m := startWith(t, logs.logger(t), fastOptions, Spec{Name: "a", Path: bin}, Spec{Name: "b", Path: bin})
	ctx := t.Context()
	if res, err := m.SetDesired(ctx, "a", addrs(10, "192.0.2.1")); err != nil || res.Pending != "" {
		t.Fatalf("SetDesired = %+v, %v", res, err)
	}
	old := healthOf(m, "a").PID
	if err := syscall.Kill(old, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	stopped := time.Now()
	t.Cleanup(func() { _ = syscall.Kill(old, syscall.SIGKILL) })
	// The signal is delivered asynchronously: a call racing it could still be answered.
	waitFor(t, "the announcer to be stopped", 5*time.Second, func() bool {
		f, err := stat(old)
		return err == nil && f[0] == "T"
	})

	// A change for the stopped announcer returns, pending, and is kept.
	res, err := within(t, "Apply to the stopped announcer", 5*time.Second, func() (Result, error) {
		return m.Apply(ctx, "a", addrs(1, "198.51.100.1"), nil)
	})
	if err != nil || res.Pending == "" {
		t.Errorf("Apply to a stopped announcer = %+v, %v; want a pending result and no error", res, err)
	}
	// The other announcer is not held up.
	res, err = within(t, "Apply to the healthy announcer", 5*time.Second, func() (Result, error) {
		return m.Apply(ctx, "b", addrs(1, "198.51.100.2"), nil)
	})
	if err != nil || res.Pending != "" || res.Generation != 1 {
		t.Errorf("Apply to the other announcer = %+v, %v; want it acknowledged at generation 1", res, err)
	}

	waitFor(t, "a new process for a", 10*time.Second, func() bool {
		h := healthOf(m, "a")
		return h.State == StateHealthy && h.PID != 0 && h.PID != old
	})
	t.Logf("replaced in %s", time.Since(stopped))
	waitFor(t, "the stopped process to be gone", 5*time.Second, func() bool { return gone(old) })
	if h := healthOf(m, "a"); h.Restarts != 1 {
		t.Errorf("restarts = %d, want 1", h.Restarts)
	}
	if !logs.contains("Announcer down, restarting", "not answering", `"announcer"="a"`) {
		t.Error("no log line says the announcer was replaced for not answering")
	}
	// The new process got the full desired set, the change made while stopped included.
	st, err := m.Status(ctx, "a")
	if err != nil || len(st.Announced) != 11 || st.Generation != 2 {
		t.Errorf("after the replacement: %d announced at generation %d (%v); want 11 at 2", len(st.Announced), st.Generation, err)
	}
	if healthOf(m, "b").Restarts != 0 {
		t.Error("the healthy announcer was restarted too")
	}
}

// A status check that waits for a stopped process must not hold up the pings: with status
// checks far more frequent than pings and far longer to time out, the one in flight when the
// process stops would otherwise decide, StatusTimeout later.
func TestManagerPingsWhileAStatusCheckHangs(t *testing.T) {
	var logs logBuffer
	o := fastOptions
	o.HealthInterval, o.StatusTimeout = 5*time.Millisecond, time.Minute
	o.PingInterval, o.PingTimeout = 200*time.Millisecond, 300*time.Millisecond
	m := startWith(t, logs.logger(t), o, Spec{Name: "a", Path: testAnnouncer(t)})
	old := healthOf(m, "a").PID
	if err := syscall.Kill(old, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = syscall.Kill(old, syscall.SIGKILL) })
	waitFor(t, "a new process for a", 20*time.Second, func() bool {
		h := healthOf(m, "a")
		return h.State == StateHealthy && h.PID != 0 && h.PID != old
	})
	if !logs.contains("Announcer down, restarting", "not answering: health check") {
		t.Error("the stopped announcer was not replaced on its failed ping (a status check held the pings up)")
	}
}

func TestManagerReplacesDeadlockedAnnouncer(t *testing.T) {
	for _, method := range []string{"Apply", "Status"} {
		t.Run(method, func(t *testing.T) {
			var logs logBuffer
			spec := Spec{Name: "d", Path: testAnnouncer(t), Env: []string{"TESTANNOUNCER_HANG=" + method}}
			m, err := New(logs.logger(t), []Spec{spec}, fastOptions)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := m.SetDesired(t.Context(), "d", addrs(3, "192.0.2.1")); err != nil {
				t.Fatal(err)
			}
			m.Start(context.Background())
			t.Cleanup(func() { _ = m.Stop(context.Background()) })
			waitFor(t, "a process", 10*time.Second, func() bool { return healthOf(m, "d").PID != 0 })
			first := healthOf(m, "d").PID
			if method == "Apply" {
				// Apply is only sent for a delta: the replay at start is a SetDesired.
				res, err := within(t, "Apply to the deadlocked announcer", 5*time.Second, func() (Result, error) {
					return m.Apply(t.Context(), "d", addrs(1, "198.51.100.1"), nil)
				})
				if err != nil || res.Pending == "" {
					t.Errorf("Apply = %+v, %v; want pending", res, err)
				}
			}
			waitFor(t, "a replacement", 10*time.Second, func() bool {
				h := healthOf(m, "d")
				return h.PID != 0 && h.PID != first
			})
			waitFor(t, "the deadlocked process to be gone", 5*time.Second, func() bool { return gone(first) })
			want := "status"
			if method == "Apply" {
				want = "Apply timed out"
			}
			if !logs.contains("Announcer down, restarting", "not answering", want) {
				t.Errorf("no log line says the announcer was replaced because %s", want)
			}
		})
	}
}

// An announcer that never runs (refused) answers changes with an error at once; the change
// is kept all the same.
func TestManagerRefusedAnnouncerFailsFast(t *testing.T) {
	m, err := New(logr.Discard(), []Spec{{Name: "r", Path: "/nonexistent/herald-announcer"}}, fastOptions)
	if err != nil {
		t.Fatal(err)
	}
	m.Start(context.Background())
	t.Cleanup(func() { _ = m.Stop(context.Background()) })
	waitFor(t, "refused", 5*time.Second, func() bool { return healthOf(m, "r").State == StateRefused })
	res, err := m.Apply(t.Context(), "r", addrs(1, "192.0.2.1"), nil)
	if !errors.Is(err, ErrRefused) || !errors.Is(err, ErrUnavailable) || res.Pending == "" {
		t.Errorf("Apply = %+v, %v; want ErrRefused and a pending result", res, err)
	}
	if h := healthOf(m, "r"); !strings.Contains(h.Message, "/nonexistent/herald-announcer") || h.Available() {
		t.Errorf("health %+v: want the path in the message and not available", h)
	}
}

// Changes made while a send is in flight go out together, as one delta.
func TestManagerCoalescesChanges(t *testing.T) {
	m := startWith(t, logr.Discard(), Options{}, Spec{Name: "c", Path: testAnnouncer(t)})
	before := rpcCount(t, "c", methodApply, "ok")
	done := make(chan error, 100)
	for i := range 100 {
		a := addrs(1, "192.0.2.1")[0]
		a.Prefix = netip.PrefixFrom(netip.AddrFrom4([4]byte{198, 51, 100, byte(i)}), 32)
		go func() {
			_, err := m.Apply(t.Context(), "c", []announcers.Announcement{a}, nil)
			done <- err
		}()
	}
	for range 100 {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "all 100 acknowledged", 5*time.Second, func() bool { return healthOf(m, "c").Generation == 100 })
	st, err := m.Status(t.Context(), "c")
	if err != nil || len(st.Announced) != 100 {
		t.Fatalf("Status: %d announced, %v; want 100", len(st.Announced), err)
	}
	sent := rpcCount(t, "c", methodApply, "ok") - before
	t.Logf("100 concurrent Apply calls went out as %d Apply RPCs", sent)
	if sent == 0 {
		t.Error("no delta was sent: the changes went out as full sets")
	}
}
