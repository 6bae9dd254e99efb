package speaker

import (
	"strings"
	"testing"
	"time"

	"github.com/herald-lb/herald/announcers/manager"
	"github.com/herald-lb/herald/framework"
)

// The published state of each kind walks through the life of its announcer: starting,
// synced, announcing ahead, ready; a crash makes it unavailable through the restart, and it
// becomes a candidate again only after holdDown and a new pass.
func TestReadinessLifecycle(t *testing.T) {
	clock := time.Date(2026, 12, 7, 1, 0, 0, 0, time.UTC)
	r := newReadiness([]string{"arp", "bgp"}, 2*time.Second, 10*time.Second, func() time.Time { return clock })
	arp := func(state manager.State, msg string) bool {
		return r.update([]manager.Health{{Name: "arp", State: state, Message: msg}, {Name: "bgp", State: manager.StateHealthy}})
	}
	type want struct {
		state  framework.AnnouncerState
		reason string
	}
	check := func(step string, wantChanged, changed bool, v4 want, localV4 framework.AnnouncerState) {
		t.Helper()
		got := r.published()[framework.AnnouncerKindL2v4]
		if changed != wantChanged || got.State != v4.state || !strings.Contains(got.Reason, v4.reason) {
			t.Fatalf("%s: l2-v4 %+v (changed %v), want %s containing %q (changed %v)", step, got, changed, v4.state, v4.reason, wantChanged)
		}
		if local, _ := r.local(); local[framework.AnnouncerKindL2v4].State != localV4 {
			t.Fatalf("%s: local l2-v4 %+v, want %s", step, local[framework.AnnouncerKindL2v4], localV4)
		}
	}
	warm := func() bool { _, pre := r.local(); return r.warmed(pre) }

	check("before start", true, arp(manager.StateStopped, ""), want{framework.AnnouncerWarming, "announcer arp starting"}, framework.AnnouncerWarming)
	if v6 := r.published()[framework.AnnouncerKindL2v6]; v6.State != framework.AnnouncerUnavailable || !strings.Contains(v6.Reason, "no ndp announcer") {
		t.Fatalf("l2-v6 without an ndp announcer: %+v", v6)
	}
	check("up, not synced", true, arp(manager.StateHealthy, ""), want{framework.AnnouncerWarming, "informers not synced"}, framework.AnnouncerWarming)
	// A restarted speaker takes every heartbeat it sees first as alive for a lease duration,
	// a dead node's too: it waits that long before it announces ahead.
	r.watchFor = 2500 * time.Millisecond
	check("synced: watching heartbeats", true, r.setSynced(), want{framework.AnnouncerWarming, "watching the heartbeats"}, framework.AnnouncerWarming)
	if warm() {
		t.Fatal("a pass ended the warming before the heartbeats were watched for a lease duration")
	}
	check("watched: announcing ahead", true, r.setWatched(), want{framework.AnnouncerWarming, "announcing the IPs"}, framework.AnnouncerReady)
	check("warm pass done", true, warm(), want{framework.AnnouncerReady, ""}, framework.AnnouncerReady)
	check("unchanged health", false, arp(manager.StateHealthy, ""), want{framework.AnnouncerReady, ""}, framework.AnnouncerReady)

	// A first failure (a hung process replaced) is not held down: the IPs only this node
	// may answer for wait for it.
	_, stalePre := r.local()
	check("crashed", true, arp(manager.StateUnhealthy, "plugin exited"), want{framework.AnnouncerUnavailable, "announcer arp unhealthy: plugin exited"}, framework.AnnouncerUnavailable)
	check("restarting keeps the reason", false, arp(manager.StateStarting, ""), want{framework.AnnouncerUnavailable, "plugin exited"}, framework.AnnouncerUnavailable)
	check("back up after one failure: announcing ahead", true, arp(manager.StateHealthy, ""), want{framework.AnnouncerWarming, "announcing the IPs"}, framework.AnnouncerReady)
	if r.warmed(map[framework.AnnouncerKind]uint64{framework.AnnouncerKindL2v4: stalePre[framework.AnnouncerKindL2v4]}) {
		t.Fatal("a pass from before the crash ended the warming")
	}
	check("warm pass done", true, warm(), want{framework.AnnouncerReady, ""}, framework.AnnouncerReady)

	// Failing again within stableAfter is a crash loop: held down.
	clock = clock.Add(5 * time.Second)
	check("crashed again", true, arp(manager.StateUnhealthy, "plugin exited"), want{framework.AnnouncerUnavailable, "plugin exited"}, framework.AnnouncerUnavailable)
	check("back up: held down", true, arp(manager.StateHealthy, ""), want{framework.AnnouncerWarming, "back up after failing twice"}, framework.AnnouncerWarming)
	clock = clock.Add(2 * time.Second)
	check("held long enough: announcing ahead", true, arp(manager.StateHealthy, ""), want{framework.AnnouncerWarming, "announcing the IPs"}, framework.AnnouncerReady)
	check("warm pass done again", true, warm(), want{framework.AnnouncerReady, ""}, framework.AnnouncerReady)

	// A failure long after the last one is a single failure again.
	clock = clock.Add(30 * time.Second)
	check("crashed after a stable run", true, arp(manager.StateUnhealthy, "plugin exited"), want{framework.AnnouncerUnavailable, "plugin exited"}, framework.AnnouncerUnavailable)
	check("back up at once", true, arp(manager.StateHealthy, ""), want{framework.AnnouncerWarming, "announcing the IPs"}, framework.AnnouncerReady)
	check("warm pass done a third time", true, warm(), want{framework.AnnouncerReady, ""}, framework.AnnouncerReady)
	// An announcer the manager stops when idle and starts on demand stays a candidate.
	check("idle", false, arp(manager.StateIdle, ""), want{framework.AnnouncerReady, ""}, framework.AnnouncerReady)
	check("started on demand", false, arp(manager.StateStarting, ""), want{framework.AnnouncerReady, ""}, framework.AnnouncerReady)
	if ok, msg := r.ready(); !ok {
		t.Fatalf("readyz: %s", msg)
	}
}

// A refused announcer is unavailable from the start and stays so while the manager retries.
func TestReadinessRefused(t *testing.T) {
	r := newReadiness([]string{"arp"}, time.Second, 10*time.Second, time.Now)
	r.setSynced()
	for _, st := range []manager.State{manager.StateRefused, manager.StateStarting, manager.StateRefused} {
		r.update([]manager.Health{{Name: "arp", State: st, Message: "executable /bin/herald-announcer-arp: checksum mismatch: refused"}})
		if got := r.published()[framework.AnnouncerKindL2v4]; got.State != framework.AnnouncerUnavailable || !strings.Contains(got.Reason, "checksum mismatch") {
			t.Fatalf("after %s: %+v", st, got)
		}
	}
	if ok, msg := r.ready(); ok || !strings.Contains(msg, "l2-v4 (arp) unavailable") {
		t.Fatalf("readyz %v %q", ok, msg)
	}
}

// view gives this node its local health, marks the kinds it announces without claiming, and
// in the pre phase counts warming peers ready (a cold cluster pre-announces shares, not all).
func TestView(t *testing.T) {
	now := time.Now()
	hb := func(v4 framework.AnnouncerState) *framework.SpeakerInfo {
		return &framework.SpeakerInfo{RenewTime: now, LeaseDuration: time.Minute,
			Announcers: map[framework.AnnouncerKind]framework.AnnouncerHealth{framework.AnnouncerKindL2v4: {State: v4}}}
	}
	snap := framework.NewSnapshot(now, []*framework.NodeInfo{
		{Name: "a", Speaker: hb(framework.AnnouncerWarming)},
		{Name: "b", Speaker: hb(framework.AnnouncerWarming)},
		{Name: "c", Speaker: hb(framework.AnnouncerReady)},
	})
	s := &Speaker{o: Options{NodeName: "a"}, ready: newReadiness([]string{"arp"}, time.Second, 10*time.Second, time.Now)}
	s.ready.update([]manager.Health{{Name: "arp", State: manager.StateHealthy}})
	s.ready.setSynced()

	v, quiet, pre := s.view(snap)
	if !quiet[framework.AnnouncerKindL2v4] || len(pre) != 1 {
		t.Fatalf("pre phase: quiet %v pre %v", quiet, pre)
	}
	for _, n := range []string{"a", "b", "c"} {
		if st := v.Node(n).Speaker.Announcers[framework.AnnouncerKindL2v4].State; st != framework.AnnouncerReady {
			t.Errorf("pre phase: node %s l2-v4 %s in the view, want ready", n, st)
		}
	}
	if snap.Node("b").Speaker.Announcers[framework.AnnouncerKindL2v4].State != framework.AnnouncerWarming {
		t.Fatal("view modified the snapshot it was given")
	}

	s.ready.warmed(pre)
	v, quiet, pre = s.view(snap)
	if !quiet[framework.AnnouncerKindL2v4] || pre != nil {
		t.Fatalf("ready, own Lease not back yet: quiet %v pre %v", quiet, pre)
	}
	if v.Node("a").Speaker.Announcers[framework.AnnouncerKindL2v4].State != framework.AnnouncerReady ||
		v.Node("b").Speaker.Announcers[framework.AnnouncerKindL2v4].State != framework.AnnouncerWarming {
		t.Fatal("after the pre phase only this node's own health differs from the snapshot")
	}

	published := framework.NewSnapshot(now, []*framework.NodeInfo{{Name: "a", Speaker: &framework.SpeakerInfo{
		RenewTime: now, LeaseDuration: time.Minute, Announcers: s.ready.published()}}})
	if v, quiet, _ := s.view(published); v != published || quiet != nil {
		t.Fatalf("own Lease caught up: got a new view (%v) or quiet kinds %v", v != published, quiet)
	}
}

// The Announce plugin's check accepts an announcer the manager starts on demand, but not one
// restarting after a failure.
func TestStartingOnDemand(t *testing.T) {
	r := newReadiness([]string{"arp"}, time.Second, 10*time.Second, time.Now)
	r.update([]manager.Health{{Name: "arp", State: manager.StateIdle}})
	r.update([]manager.Health{{Name: "arp", State: manager.StateStarting}})
	if !r.startingOnDemand("arp") {
		t.Fatal("an idle announcer starting for its first announcement does not count as starting on demand")
	}
	r.update([]manager.Health{{Name: "arp", State: manager.StateUnhealthy, Message: "exited"}})
	r.update([]manager.Health{{Name: "arp", State: manager.StateStarting}})
	if r.startingOnDemand("arp") {
		t.Fatal("an announcer restarting after a crash counts as starting on demand")
	}
	if r.startingOnDemand("ndp") {
		t.Fatal("an unconfigured announcer counts as starting on demand")
	}
}
