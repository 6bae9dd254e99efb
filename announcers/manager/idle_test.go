package manager

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/go-logr/logr"

	"github.com/herald-lb/herald/announcers"
)

func startIdle(t *testing.T, specs ...Spec) *Manager {
	t.Helper()
	m, err := New(logr.Discard(), specs, fastOptions)
	if err != nil {
		t.Fatal(err)
	}
	m.Start(context.Background())
	t.Cleanup(func() { _ = m.Stop(context.Background()) })
	return m
}

// An on-demand announcer is idle (and available) until its first address, runs while it has
// one, and is stopped once it has had nothing, and no change, for its IdleTimeout.
func TestManagerStartsOnDemandAndStopsWhenIdle(t *testing.T) {
	idle := 600 * time.Millisecond
	m := startIdle(t, Spec{Name: "arp", Kind: announcers.KindARP, Path: testAnnouncer(t), IdleTimeout: idle})
	time.Sleep(300 * time.Millisecond)
	if h := healthOf(m, "arp"); h.State != StateIdle || h.PID != 0 || !h.Available() || h.Kind != announcers.KindARP {
		t.Fatalf("before any address: %+v; want idle, available, kind arp, no process", h)
	}

	res, err := m.Apply(t.Context(), "arp", addrs(1, "192.0.2.1"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("first Apply: %+v", res)
	waitFor(t, "started for its first address", 10*time.Second, func() bool { return healthOf(m, "arp").State == StateHealthy })
	pid := healthOf(m, "arp").PID
	if st, err := m.Status(t.Context(), "arp"); err != nil || len(st.Announced) != 1 {
		t.Fatalf("after the start: %+v, %v; want the address replayed", st, err)
	}

	// Churn: removing and re-adding within the idle time keeps the same process.
	for i := 0; i < 4; i++ {
		if _, err := m.Apply(t.Context(), "arp", nil, []string{"192.0.2.1/32"}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(idle / 3)
		if _, err := m.Apply(t.Context(), "arp", addrs(1, "192.0.2.1"), nil); err != nil {
			t.Fatal(err)
		}
	}
	if h := healthOf(m, "arp"); h.PID != pid {
		t.Fatalf("the announcer was restarted during churn: pid %d, was %d (%+v)", h.PID, pid, h)
	}

	if _, err := m.Apply(t.Context(), "arp", nil, []string{"192.0.2.1/32"}); err != nil {
		t.Fatal(err)
	}
	emptied := time.Now()
	waitFor(t, "stopped when idle", 10*time.Second, func() bool { return healthOf(m, "arp").State == StateIdle })
	if d := time.Since(emptied); d < idle {
		t.Errorf("stopped %s after it became empty, before its idle timeout %s", d, idle)
	}
	waitFor(t, "the idle process to be gone", 5*time.Second, func() bool { return gone(pid) })
	if h := healthOf(m, "arp"); h.PID != 0 || h.Restarts != 0 || !h.Available() {
		t.Errorf("idle again: %+v; want no process, no restart counted, available", h)
	}
}

// A BGP announcer starts for its first peer, even with nothing to advertise yet.
func TestManagerStartsForPeers(t *testing.T) {
	m := startIdle(t, Spec{Name: "bgp", Kind: announcers.KindBGP, Path: testAnnouncer(t), IdleTimeout: time.Minute})
	if err := m.Configure(t.Context(), "bgp", announcers.Config{BGP: &announcers.BGPConfig{}}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	if h := healthOf(m, "bgp"); h.State != StateIdle {
		t.Fatalf("with no peer: %+v, want idle", h)
	}
	if err := m.Configure(t.Context(), "bgp", announcers.Config{BGP: &announcers.BGPConfig{Peers: []announcers.BGPPeer{{Name: "p"}}}}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "started for its first peer", 10*time.Second, func() bool { return healthOf(m, "bgp").State == StateHealthy })
}

// An on-demand announcer whose executable is missing is refused at once, not when needed.
func TestManagerIdleMissingExecutableIsRefused(t *testing.T) {
	m := startIdle(t, Spec{Name: "ndp", Path: "/nonexistent/herald-announcer-ndp", IdleTimeout: time.Minute})
	waitFor(t, "refused", 5*time.Second, func() bool { return healthOf(m, "ndp").State == StateRefused })
	if h := healthOf(m, "ndp"); h.Available() {
		t.Errorf("%+v is available", h)
	}
}

// The manager routes by the kind an announcer serves, not by its name: a custom announcer
// configured under a name of its own is found for the kind its executable reports, before it
// ever ran for real (it starts on demand), and a built-in one by its Spec.Kind. Routing by
// name, a custom BGP announcer started and was never given a peer or a route (issue 17).
func TestManagerRoutesByKind(t *testing.T) {
	m := startIdle(t,
		Spec{Name: "arp", Kind: announcers.KindARP, Path: testAnnouncer(t), IdleTimeout: time.Minute},
		Spec{Name: "corp-bgp", Path: testAnnouncer(t), Env: []string{"TESTANNOUNCER_KIND=bgp"}, IdleTimeout: time.Minute},
		Spec{Name: "broken", Path: "/nonexistent/herald-announcer-custom", IdleTimeout: time.Minute})
	for _, tc := range []struct{ kind, want string }{
		{announcers.KindARP, "arp"},
		{announcers.KindBGP, "corp-bgp"},
		{announcers.KindNDP, ""},
		{"", ""},
	} {
		if got := m.For(tc.kind); got != tc.want {
			t.Errorf("For(%q) = %q, want %q", tc.kind, got, tc.want)
		}
	}
	if h := healthOf(m, "corp-bgp"); h.Kind != announcers.KindBGP || h.PID != 0 {
		t.Fatalf("custom announcer before it is needed: %+v; want kind bgp and no process", h)
	}
	// Peers given through the routed name start it.
	name := m.For(announcers.KindBGP)
	if err := m.Configure(t.Context(), name, announcers.Config{BGP: &announcers.BGPConfig{Peers: []announcers.BGPPeer{{Name: "p"}}}}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the custom BGP announcer to start for its first peer", 10*time.Second, func() bool { return healthOf(m, name).State == StateHealthy })
}

// Two announcers of one kind: the first by name gets the kind, whichever declared or
// reported it, and the operator is told the other is not used.
func TestManagerRoutesAKindServedTwiceToTheFirstByName(t *testing.T) {
	for _, tc := range []struct {
		name  string
		specs []Spec
		want  string
	}{
		{name: "declared", specs: []Spec{{Name: "arp2", Kind: announcers.KindARP, Path: "/bin/true"}, {Name: "arp", Kind: announcers.KindARP, Path: "/bin/true"}}, want: "arp"},
		{name: "reported", specs: []Spec{{Name: "corp-arp", Path: testAnnouncer(t), Env: []string{"TESTANNOUNCER_KIND=arp"}}, {Name: "arp", Kind: announcers.KindARP, Path: "/bin/true"}}, want: "arp"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var logs logBuffer
			m, err := New(logs.logger(t), tc.specs, fastOptions)
			if err != nil {
				t.Fatal(err)
			}
			if got := m.For(announcers.KindARP); got != tc.want {
				t.Errorf("For(arp) = %q, want %q", got, tc.want)
			}
			if !logs.contains("only the first by name", `"used"="`+tc.want+`"`) {
				t.Error("the kind served twice is not logged")
			}
		})
	}
}

// What the callers test: a change is kept (not acknowledged yet, sent when it can be) for a
// pending result and for a refused executable; it is lost for an unknown announcer or a
// stopped manager, and acknowledged otherwise.
func TestKept(t *testing.T) {
	for _, tc := range []struct {
		name string
		res  Result
		err  error
		kept bool
	}{
		{name: "acknowledged"},
		{name: "pending", res: Result{Pending: "idle: starting it"}, kept: true},
		{name: "refused", res: Result{Pending: "refused: checksum mismatch"}, err: fmt.Errorf("announcer %q: %w", "arp", ErrRefused), kept: true},
		{name: "refused, from Configure", err: fmt.Errorf("announcer %q: %w", "arp", ErrRefused), kept: true},
		{name: "not running", err: fmt.Errorf("arp: %w", ErrUnavailable), kept: true},
		{name: "unknown", err: fmt.Errorf("announcer %q: %w", "x", ErrUnknownAnnouncer)},
		{name: "stopped", err: ErrStopped},
	} {
		t.Run(tc.name, func(t *testing.T) {
			why, kept := Kept(tc.res, tc.err)
			if kept != tc.kept || kept && why == "" || !kept && why != "" {
				t.Fatalf("Kept = %q, %v; want kept %v with a reason when kept", why, kept, tc.kept)
			}
		})
	}
}
