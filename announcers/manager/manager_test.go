package manager

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/go-logr/logr/funcr"
	"k8s.io/component-base/metrics/testutil"

	"github.com/herald-lb/herald/announcers"
	"github.com/herald-lb/herald/test/testbin"
)

// logBuffer keeps every log line so tests can assert what the manager told the operator.
type logBuffer struct {
	mu    sync.Mutex
	lines []string
}

func (b *logBuffer) logger(t testing.TB) logr.Logger {
	return funcr.New(func(prefix, args string) {
		b.mu.Lock()
		b.lines = append(b.lines, args)
		b.mu.Unlock()
		if testing.Verbose() {
			t.Log(args)
		}
	}, funcr.Options{Verbosity: 1})
}

func (b *logBuffer) contains(parts ...string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, l := range b.lines {
		all := true
		for _, p := range parts {
			all = all && strings.Contains(l, p)
		}
		if all {
			return true
		}
	}
	return false
}

func testAnnouncer(t testing.TB) string {
	return testbin.Build(t, "./announcers/manager/testdata/testannouncer")
}

func startManager(t testing.TB, log logr.Logger, specs ...Spec) *Manager {
	t.Helper()
	m, err := New(log, specs, Options{HealthInterval: 200 * time.Millisecond, InitialBackoff: 20 * time.Millisecond})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	m.Start(context.Background())
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = m.Stop(ctx)
	})
	return m
}

func waitFor(t testing.TB, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func healthOf(m *Manager, name string) Health {
	for _, h := range m.Health() {
		if h.Name == name {
			return h
		}
	}
	return Health{}
}

func addrs(n int, base string) []announcers.Announcement {
	start := netip.MustParseAddr(base)
	out := make([]announcers.Announcement, n)
	a := start
	for i := range out {
		out[i] = announcers.Announcement{Prefix: netip.PrefixFrom(a, a.BitLen())}
		a = a.Next()
	}
	return out
}

func counterValue(t testing.TB, announcer string) float64 {
	t.Helper()
	v, err := testutil.GetCounterMetricValue(restartsTotal.WithLabelValues(announcer))
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func upValue(t testing.TB, announcer string) float64 {
	t.Helper()
	v, err := testutil.GetGaugeMetricValue(upGauge.WithLabelValues(announcer))
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func rpcCount(t testing.TB, announcer, method, result string) uint64 {
	t.Helper()
	n, err := testutil.GetHistogramMetricCount(rpcDuration.WithLabelValues(announcer, method, result))
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestNewRejectsBadSpecs(t *testing.T) {
	for _, tc := range []struct {
		name  string
		specs []Spec
		want  string
	}{
		{"no name", []Spec{{Path: "/bin/true"}}, "announcers[0]: name"},
		{"no path", []Spec{{Name: "arp"}}, "arp: path"},
		{"bad checksum", []Spec{{Name: "arp", Path: "/bin/true", SHA256: "abc"}}, "arp: sha256"},
		{"duplicate", []Spec{{Name: "arp", Path: "/a"}, {Name: "arp", Path: "/b"}}, `announcers[1].name: "arp" is used twice`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(logr.Discard(), tc.specs, Options{})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("New = %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

func TestManagerRestartsAndReplays(t *testing.T) {
	var logs logBuffer
	m := startManager(t, logs.logger(t), Spec{Name: "l2", Path: testAnnouncer(t)})
	ctx := t.Context()
	waitFor(t, "healthy", 10*time.Second, func() bool { return healthOf(m, "l2").State == StateHealthy })

	if err := m.Configure(ctx, "l2", announcers.Config{L2: &announcers.L2Config{RefreshInterval: 7 * time.Second}}); err != nil {
		t.Fatalf("Configure: %v", err)
	}
	if _, err := m.SetDesired(ctx, "l2", addrs(100, "192.0.2.100")); err != nil {
		t.Fatalf("SetDesired: %v", err)
	}
	res, err := m.Apply(ctx, "l2", addrs(1, "203.0.113.1"), []string{"192.0.2.100/32"})
	if err != nil || res.Generation != 2 {
		t.Fatalf("Apply = %+v, %v; want generation 2", res, err)
	}

	before := healthOf(m, "l2")
	restartsBefore := counterValue(t, "l2")
	if up := upValue(t, "l2"); up != 1 {
		t.Errorf("herald_announcer_up{announcer=l2} = %v while healthy, want 1", up)
	}
	rpcsBefore := rpcCount(t, "l2", methodSetDesired, "ok")
	if applies := rpcCount(t, "l2", methodApply, "ok"); applies < 1 {
		t.Errorf("rpc_duration_seconds{method=Apply,result=ok} count = %d after an Apply, want >= 1", applies)
	}
	if err := syscall.Kill(before.PID, syscall.SIGKILL); err != nil {
		t.Fatalf("kill %d: %v", before.PID, err)
	}
	killed := time.Now()
	waitFor(t, "a new healthy process", 10*time.Second, func() bool {
		h := healthOf(m, "l2")
		return h.State == StateHealthy && h.PID != 0 && h.PID != before.PID
	})
	t.Logf("recovered in %s", time.Since(killed))
	after := healthOf(m, "l2")
	if after.Restarts != before.Restarts+1 {
		t.Errorf("restarts = %d, want %d", after.Restarts, before.Restarts+1)
	}
	if got := counterValue(t, "l2"); got != restartsBefore+1 {
		t.Errorf("herald_announcer_restarts_total{announcer=l2} = %v after one kill, want %v", got, restartsBefore+1)
	}
	if up := upValue(t, "l2"); up != 1 {
		t.Errorf("herald_announcer_up{announcer=l2} = %v after the restart, want 1", up)
	}
	// The restart replays the full set with SetDesired.
	if got := rpcCount(t, "l2", methodSetDesired, "ok"); got != rpcsBefore+1 {
		t.Errorf("rpc_duration_seconds{method=SetDesired,result=ok} count = %d after the replay, want %d", got, rpcsBefore+1)
	}
	st, err := m.Status(ctx, "l2")
	if err != nil {
		t.Fatalf("Status: %v", err)
	}
	if len(st.Announced) != 100 || st.Generation != 2 || st.Message != "refresh=7s" {
		t.Errorf("after restart: %d announced at generation %d, message %q; want 100 at 2 with refresh=7s", len(st.Announced), st.Generation, st.Message)
	}
	for _, a := range st.Announced {
		if a.Prefix.Addr() == netip.MustParseAddr("192.0.2.100") {
			t.Errorf("removed address %s came back after restart", a.Prefix)
		}
	}
	if !logs.contains("Announcer down, restarting", `"announcer"="l2"`) {
		t.Error("no log line says the announcer went down")
	}

	// Deltas after a restart still apply on top of the replayed set.
	if _, err := m.Apply(ctx, "l2", addrs(1, "203.0.113.2"), nil); err != nil {
		t.Fatalf("Apply after restart: %v", err)
	}
	if st, _ := m.Status(ctx, "l2"); len(st.Announced) != 101 {
		t.Errorf("after a delta on the restarted announcer: %d announced, want 101", len(st.Announced))
	}
}

func TestManagerBacksOffExponentially(t *testing.T) {
	var logs logBuffer
	// /bin/false exits at once, so every start fails.
	m, err := New(logs.logger(t), []Spec{{Name: "broken", Path: "/bin/false"}}, Options{InitialBackoff: 20 * time.Millisecond, MaxBackoff: 160 * time.Millisecond, StartTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	m.Start(context.Background())
	before := counterValue(t, "broken")
	time.Sleep(1200 * time.Millisecond)
	if err := m.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	restarts := healthOf(m, "broken").Restarts
	if got := counterValue(t, "broken") - before; got != float64(restarts) {
		t.Errorf("herald_announcer_restarts_total{announcer=broken} grew by %v, health says %d restarts", got, restarts)
	}
	if up := upValue(t, "broken"); up != 0 {
		t.Errorf("herald_announcer_up{announcer=broken} = %v for an announcer that never started, want 0", up)
	}
	// Waits 20+40+80+160+160+... ms plus the failed starts: about 6-9 restarts in 1.2s;
	// without backoff it would be far more, with no restart it would be 0.
	if restarts < 3 || restarts > 12 {
		t.Errorf("restarts in 1.2s = %d, want 3..12 with 20ms→160ms backoff", restarts)
	}
	if h := healthOf(m, "broken"); h.State != StateStopped {
		t.Errorf("after Stop state = %s", h.State)
	}
	if !logs.contains("Announcer failed to start") {
		t.Error("no log line for the failed start")
	}
}

func TestManagerRefusesTamperedExecutable(t *testing.T) {
	good := testAnnouncer(t)
	tampered := filepath.Join(t.TempDir(), "tampered")
	body, err := os.ReadFile(good)
	if err != nil {
		t.Fatal(err)
	}
	goodSum := sha256.Sum256(body)
	body = append(body, 0) // one byte more: a different file that still runs
	if err := os.WriteFile(tampered, body, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, viaWrapper := range []bool{false, true} {
		t.Run(fmt.Sprintf("wrapper=%v", viaWrapper), func(t *testing.T) {
			var logs logBuffer
			bad := Spec{Name: "bad", Path: tampered, SHA256: hex.EncodeToString(goodSum[:])}
			if viaWrapper {
				bad.Command = func() *exec.Cmd { return exec.Command("env", tampered) }
			}
			m := startManager(t, logs.logger(t), bad, Spec{Name: "good", Path: good, SHA256: hex.EncodeToString(goodSum[:])})
			waitFor(t, "good healthy and bad refused", 10*time.Second, func() bool {
				return healthOf(m, "good").State == StateHealthy && healthOf(m, "bad").State == StateRefused
			})
			if h := healthOf(m, "bad"); !strings.Contains(h.Message, "checksum mismatch") || !strings.Contains(h.Message, tampered) {
				t.Errorf("refused health message = %q, want the path and the reason", h.Message)
			}
			if !logs.contains("Announcer failed to start", "checksum mismatch", `"announcer"="bad"`) {
				t.Error("the log does not say why the announcer was refused")
			}
			if _, err := m.SetDesired(t.Context(), "good", addrs(3, "192.0.2.10")); err != nil {
				t.Errorf("the good announcer stopped working: %v", err)
			}
			if _, err := m.SetDesired(t.Context(), "bad", addrs(3, "192.0.2.10")); !errors.Is(err, ErrUnavailable) {
				t.Errorf("SetDesired on the refused announcer: %v, want ErrUnavailable", err)
			}
		})
	}
}

func TestManagerForwardsEventsAndDrainsOnStop(t *testing.T) {
	var logs logBuffer
	m, err := New(logs.logger(t), []Spec{{Name: "l2", Path: testAnnouncer(t), Env: []string{"TESTANNOUNCER_KIND=arp"}}}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	m.Start(context.Background())
	waitFor(t, "healthy", 10*time.Second, func() bool { return healthOf(m, "l2").State == StateHealthy })
	if k := healthOf(m, "l2").Kind; k != "arp" {
		t.Errorf("kind = %q, want arp (from the announcer's Info)", k)
	}
	want := netip.MustParseAddr("192.0.2.77")
	deadline := time.After(5 * time.Second)
	for got := false; !got; {
		// The event stream is subscribed asynchronously; repeat until the event arrives.
		if _, err := m.SetDesired(t.Context(), "l2", []announcers.Announcement{{ID: "conflict-1", Prefix: netip.PrefixFrom(want, 32)}}); err != nil {
			t.Fatal(err)
		}
		select {
		case e := <-m.Events():
			if e.Announcer != "l2" || e.Conflict == nil || e.Conflict.Address != want || e.Conflict.ForeignMAC != "02:00:00:00:00:99" {
				t.Fatalf("event = %+v", e)
			}
			got = true
		case <-time.After(50 * time.Millisecond):
		case <-deadline:
			t.Fatal("no event within 5s")
		}
	}
	pid := healthOf(m, "l2").PID
	if err := m.Stop(context.Background()); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if up := upValue(t, "l2"); up != 0 {
		t.Errorf("herald_announcer_up{announcer=l2} = %v after Stop, want 0", up)
	}
	if !logs.contains("Drained", `"withdrawn"=1`) {
		t.Error("Stop did not drain the announcer first")
	}
	if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("process %d still exists after Stop (kill -0: %v)", pid, err)
	}
	for range m.Events() { // closed by Stop
	}
	if _, err := m.SetDesired(t.Context(), "l2", nil); !errors.Is(err, ErrStopped) {
		t.Errorf("SetDesired after Stop: %v, want ErrStopped", err)
	}
}

// BenchmarkSetDesired10k sends 10,000 addresses through the real go-plugin gRPC connection
// (AutoMTLS) to an announcer process.
func BenchmarkSetDesired10k(b *testing.B) {
	m := startManager(b, logr.Discard(), Spec{Name: "l2", Path: testAnnouncer(b)})
	waitFor(b, "healthy", 10*time.Second, func() bool { return healthOf(m, "l2").State == StateHealthy })
	set := addrs(10000, "2001:db8:1::1")
	b.ResetTimer()
	for b.Loop() {
		if _, err := m.SetDesired(b.Context(), "l2", set); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkApply10k sends a delta of 10,000 upserts (and removes them on the next call).
func BenchmarkApply10k(b *testing.B) {
	m := startManager(b, logr.Discard(), Spec{Name: "l2", Path: testAnnouncer(b)})
	waitFor(b, "healthy", 10*time.Second, func() bool { return healthOf(m, "l2").State == StateHealthy })
	set := addrs(10000, "2001:db8:1::1")
	keys := make([]string, len(set))
	for i, a := range set {
		keys[i] = a.Key()
	}
	b.ResetTimer()
	i := 0
	for b.Loop() {
		var err error
		if i%2 == 0 {
			_, err = m.Apply(b.Context(), "l2", set, nil)
		} else {
			_, err = m.Apply(b.Context(), "l2", nil, keys)
		}
		if err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// TestManagerStopKeepingDoesNotDrain: an announcer StopKeeping keeps is killed without a
// drain (its announcements stay with its peers, e.g. under BGP graceful restart); the others
// are drained as by Stop.
func TestManagerStopKeepingDoesNotDrain(t *testing.T) {
	var logs logBuffer
	m, err := New(logs.logger(t), []Spec{
		{Name: "kept", Path: testAnnouncer(t), Env: []string{"TESTANNOUNCER_KIND=arp"}},
		{Name: "drained", Path: testAnnouncer(t), Env: []string{"TESTANNOUNCER_KIND=arp"}},
	}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	m.Start(context.Background())
	for _, name := range []string{"kept", "drained"} {
		waitFor(t, name+" healthy", 10*time.Second, func() bool { return healthOf(m, name).State == StateHealthy })
		if _, err := m.SetDesired(t.Context(), name, addrs(2, "192.0.2.10")); err != nil {
			t.Fatal(err)
		}
	}
	pid := healthOf(m, "kept").PID
	if err := m.StopKeeping(context.Background(), func(name string) bool { return name == "kept" }); err != nil {
		t.Fatalf("StopKeeping: %v", err)
	}
	if !logs.contains("Drained", `"announcer"="drained"`, `"withdrawn"=2`) {
		t.Error("the announcer not kept was not drained")
	}
	if logs.contains("Drained", `"announcer"="kept"`) {
		t.Error("the kept announcer was drained")
	}
	if !logs.contains("Stopped without draining", `"announcer"="kept"`) {
		t.Error("the kept announcer's stop is not logged")
	}
	if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("process %d still exists after StopKeeping (kill -0: %v)", pid, err)
	}
}
