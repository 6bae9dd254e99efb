package liveness

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/herald-lb/herald/framework"
)

func heartbeatNode(name string, renew time.Time, lease time.Duration) *framework.NodeInfo {
	return &framework.NodeInfo{Name: name, Speaker: &framework.SpeakerInfo{RenewTime: renew, LeaseDuration: lease}}
}

func TestNextExpiryAndLapse(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	nodes := []*framework.NodeInfo{
		heartbeatNode("a", t0, 3*time.Second),                // expires t0+3s
		heartbeatNode("b", t0.Add(time.Second), time.Second), // expires t0+2s
		{Name: "no-speaker"},
		heartbeatNode("dead", t0.Add(-time.Hour), time.Second),
	}
	tests := []struct {
		name       string
		after      time.Time
		wantNext   time.Time
		since, now time.Time
		wantLapsed bool
	}{
		{name: "earliest live expiry", after: t0, wantNext: t0.Add(2 * time.Second), since: t0, now: t0.Add(time.Second)},
		{name: "one expired in the window", after: t0.Add(2 * time.Second), wantNext: t0.Add(3 * time.Second),
			since: t0.Add(time.Second), now: t0.Add(2 * time.Second), wantLapsed: true},
		{name: "expired before the window is old news", after: t0.Add(2500 * time.Millisecond), wantNext: t0.Add(3 * time.Second),
			since: t0.Add(2500 * time.Millisecond), now: t0.Add(2900 * time.Millisecond)},
		{name: "none alive", after: t0.Add(time.Minute), since: t0.Add(time.Minute), now: t0.Add(2 * time.Minute)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := NextExpiry(nodes, tt.after); !got.Equal(tt.wantNext) {
				t.Errorf("NextExpiry(%s) = %s, want %s", tt.after, got, tt.wantNext)
			}
			if got := LapsedBetween(nodes, tt.since, tt.now); got != tt.wantLapsed {
				t.Errorf("LapsedBetween(%s, %s) = %v, want %v", tt.since, tt.now, got, tt.wantLapsed)
			}
		})
	}
}

// A settling node counts as alive the heartbeats that lapsed while its view was in doubt
// (after its trouble began and by the time its view was sure again) of nodes whose last
// renewal came before its outage began, and only those: one that lapsed before was judged on
// a view it could trust, one that renewed after the outage began was not cut off, and one
// that lapsed once its view was sure again lapsed in a view it trusts, as the others see it.
// A heartbeat its watch delivered late, in the backlog before its view was sure again, lapses
// at its pace, as it did for the others, and is doubted by its pace if it had lapsed by then;
// one that came after was slow to be written, not delivered late: the others saw it when this
// node did. After the first lease duration of the settle it doubts only if another node came
// back from the outage too.
func TestGenerous(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	nodes := []*framework.NodeInfo{
		heartbeatNode("alive", t0.Add(9*time.Second), 3*time.Second),
		heartbeatNode("lapsed-in-trouble", t0.Add(2*time.Second), 3*time.Second), // expired t0+5s
		heartbeatNode("lapsed-before", t0.Add(-time.Second), 3*time.Second),      // expired t0+2s
		{Name: "no-speaker"},
		heartbeatNode("renewed-after-cut", t0.Add(5*time.Second), 3*time.Second), // expired t0+8s
		// Seen last before the cut plus the slack, expired t0+5.4s: after the view was sure
		// again in the second case.
		heartbeatNode("lapsed-when-sure", t0.Add(2400*time.Millisecond), 3*time.Second),
		// Delivered at t0+8s, 2 s after its pace: alive in this node's view until t0+11s;
		// when that was in a backlog (the first case), lapsed for the others since its pace
		// plus the lease duration, t0+9s.
		heartbeatNode("delivered-late", t0.Add(8*time.Second), 3*time.Second),
		// Renewed before the cut (paced at t0+2s) and delivered in the backlog at t0+5.1s,
		// after it had lapsed by its pace (t0+5s): it may have been cut off too (sim outage
		// set, seed 1).
		heartbeatNode("cut-off-delivered-late", t0.Add(5100*time.Millisecond), 3*time.Second),
		// Renewed before the cut too (paced at t0+2.2s) but delivered at t0+5s, before it
		// lapsed by its pace (t0+5.2s): it lapsed while the watch was delivering again, where a
		// renewal would have shown (sim seed 153).
		heartbeatNode("delivered-late-while-paced", t0.Add(5*time.Second), 3*time.Second),
	}
	setPace := func(name string, paced time.Duration) {
		for _, n := range nodes {
			if n.Name == name {
				n.Speaker.ObservedAt, n.Speaker.Paced = n.Speaker.RenewTime, t0.Add(paced)
			}
		}
	}
	setPace("delivered-late", 6*time.Second)
	setPace("cut-off-delivered-late", 2*time.Second)
	setPace("delivered-late-while-paced", 2200*time.Millisecond)
	now := t0.Add(10 * time.Second)
	d := Doubt{Since: t0.Add(4 * time.Second), Cut: t0.Add(2 * time.Second), Slack: 500 * time.Millisecond, Alone: now.Add(time.Second), Self: "self"}
	doubtAll := map[string]bool{"alive": true, "lapsed-in-trouble": true, "lapsed-before": false, "no-speaker": false,
		"renewed-after-cut": false, "lapsed-when-sure": true, "delivered-late": false, "cut-off-delivered-late": true,
		"delivered-late-while-paced": false}
	tests := []struct {
		name  string
		until time.Time
		alone time.Time
		// returned names the nodes that came back after the cut (SpeakerInfo.Returned).
		returned []string
		want     map[string]bool
	}{
		{name: "view sure again only now", want: doubtAll},
		{name: "view sure again before a lapse", until: t0.Add(5200 * time.Millisecond), want: map[string]bool{"alive": true,
			"lapsed-in-trouble": true, "lapsed-before": false, "no-speaker": false, "renewed-after-cut": false, "lapsed-when-sure": false,
			"delivered-late": true, "cut-off-delivered-late": true, "delivered-late-while-paced": false}},
		{name: "past the first lease duration, alone", alone: now, want: map[string]bool{"alive": true,
			"lapsed-in-trouble": false, "lapsed-before": false, "no-speaker": false, "renewed-after-cut": false, "lapsed-when-sure": false,
			"delivered-late": false, "cut-off-delivered-late": false, "delivered-late-while-paced": false}},
		{name: "past the first lease duration, its own return only", alone: now, returned: []string{"self"}, want: map[string]bool{"alive": true,
			"lapsed-in-trouble": false, "lapsed-before": false, "no-speaker": false, "renewed-after-cut": false, "lapsed-when-sure": false,
			"delivered-late": false, "cut-off-delivered-late": false, "delivered-late-while-paced": false, "self": true}},
		// One of the seven others alive when the trouble began came back: their partitions
		// overlapped, the outage was not shared.
		{name: "past the first lease duration, one other back", alone: now, returned: []string{"alive"}, want: map[string]bool{"alive": true,
			"lapsed-in-trouble": false, "lapsed-before": false, "no-speaker": false, "renewed-after-cut": false, "lapsed-when-sure": false,
			"delivered-late": false, "cut-off-delivered-late": false, "delivered-late-while-paced": false}},
		// Four of the seven came back: the API server's outage.
		{name: "past the first lease duration, shared", alone: now, returned: []string{"alive", "renewed-after-cut", "delivered-late", "delivered-late-while-paced"},
			want: doubtAll},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := d
			d.Until = tt.until
			if !tt.alone.IsZero() {
				d.Alone = tt.alone
			}
			in := append([]*framework.NodeInfo(nil), nodes...)
			for _, name := range tt.returned {
				i := slices.IndexFunc(in, func(n *framework.NodeInfo) bool { return n.Name == name })
				if i < 0 {
					in = append(in, heartbeatNode(name, t0.Add(9*time.Second), 3*time.Second))
					i = len(in) - 1
				}
				c, si := *in[i], *in[i].Speaker
				si.Returned = t0.Add(6 * time.Second)
				c.Speaker = &si
				in[i] = &c
			}
			got := Generous(in, d, now)
			for _, n := range got {
				if alive := n.Speaker != nil && n.Speaker.AliveAt(now); alive != tt.want[n.Name] {
					t.Errorf("%s alive at now in the generous view = %v, want %v", n.Name, alive, tt.want[n.Name])
				}
			}
			if nodes[1].Speaker.AliveAt(now) {
				t.Errorf("Generous modified its input")
			}
		})
	}
}

// A settling node's doubt ends when it first finds its view sure again, and a second outage
// during the settle puts that moment after the second outage.
func TestRenewalsSettlingUntil(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	r := Renewals{Duration: 2500 * time.Millisecond, Interval: time.Second}
	renew := func(at time.Time, err error) {
		r.Started(at)
		if err == nil {
			r.Succeeded(at, at)
		}
		r.Finished(err)
	}
	down := errors.New("connection refused")
	renew(t0, nil)
	renew(t0.Add(time.Second), down)
	back := t0.Add(2 * time.Second)
	renew(back, nil)
	steps := []struct {
		name      string
		at, seen  time.Time
		renew     bool // a renewal at at first
		fail      bool
		wantUntil time.Time // zero: not settling
	}{
		{name: "own renewal not delivered yet", at: back.Add(100 * time.Millisecond), seen: t0},
		{name: "delivered: sure from now on", at: back.Add(200 * time.Millisecond), seen: back, wantUntil: back.Add(200 * time.Millisecond)},
		{name: "later in the settle: still the first sure moment", at: back.Add(900 * time.Millisecond), seen: back, wantUntil: back.Add(200 * time.Millisecond)},
		{name: "a second outage", at: t0.Add(3 * time.Second), seen: back, renew: true, fail: true},
		{name: "back again, delivered", at: t0.Add(4*time.Second + 300*time.Millisecond), seen: t0.Add(4 * time.Second), renew: true,
			wantUntil: t0.Add(4*time.Second + 300*time.Millisecond)},
	}
	for _, st := range steps {
		if st.renew {
			at := st.at.Truncate(time.Second)
			if st.fail {
				renew(at, down)
			} else {
				renew(at, nil)
			}
		}
		d, ok := r.Settling(st.at, st.seen)
		if ok != !st.wantUntil.IsZero() || !d.Until.Equal(st.wantUntil) {
			t.Errorf("%s: Settling = %v, until %s; want settling %v until %s", st.name, ok, d.Until, !st.wantUntil.IsZero(), st.wantUntil)
		}
	}
}

// A node whose renewals succeed but whose watch stops delivering them freezes within
// StaleAfter, decides again once the watch delivers one, and is never "settling" for it.
func TestRenewalsStaleWatch(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	r := Renewals{Duration: 2500 * time.Millisecond, Interval: time.Second}
	for i := range 3 {
		at := t0.Add(time.Duration(i) * time.Second)
		r.Started(at)
		r.Succeeded(at, at)
		r.Finished(nil)
	}
	last := t0.Add(2 * time.Second)
	if why := r.Frozen(last.Add(300*time.Millisecond), last); why != "" {
		t.Fatalf("watch up to date: frozen %q", why)
	}
	seen := t0 // the watch delivered nothing after the first renewal
	if StaleAfter(r.Duration, r.Interval) != 1500*time.Millisecond {
		t.Fatalf("StaleAfter(2.5s, 1s) = %s, want 1.5s (lease duration less renew interval)", StaleAfter(r.Duration, r.Interval))
	}
	if why := r.Frozen(t0.Add(1499*time.Millisecond), seen); why != "" {
		t.Fatalf("stale for less than StaleAfter: frozen %q", why)
	}
	if why := r.Frozen(t0.Add(1500*time.Millisecond), seen); why == "" {
		t.Fatalf("stale for StaleAfter: not frozen")
	}
	if _, ok := r.Settling(t0.Add(2*time.Second), seen); ok {
		t.Fatalf("stale watch: settling (it may not claim from a stale view)")
	}
	if why := r.Frozen(last.Add(100*time.Millisecond), last); why != "" {
		t.Fatalf("watch caught up: still frozen %q", why)
	}
}

// A settle may end after its first lease duration when the outage was this node's alone (at
// most half of the others came back from it), and EndSettle ends it only then.
func TestDoubtOverAndEndSettle(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	back := func(name string) *framework.NodeInfo {
		n := heartbeatNode(name, t0.Add(20*time.Second), 3*time.Second)
		n.Speaker.Returned = t0.Add(20 * time.Second)
		return n
	}
	steady := func(name string) *framework.NodeInfo {
		return heartbeatNode(name, t0.Add(20*time.Second), 3*time.Second)
	}
	d := Doubt{Since: t0, Cut: t0.Add(time.Second), Alone: t0.Add(22 * time.Second), Self: "self"}
	tests := []struct {
		name  string
		nodes []*framework.NodeInfo
		now   time.Duration
		want  bool
	}{
		{"alone, first lease duration not over", []*framework.NodeInfo{steady("a"), steady("b"), steady("c")}, 21 * time.Second, false},
		{"alone, past it", []*framework.NodeInfo{steady("a"), steady("b"), steady("c")}, 22 * time.Second, true},
		{"one of three others back", []*framework.NodeInfo{back("a"), steady("b"), steady("c")}, 22 * time.Second, true},
		{"two of three others back: shared", []*framework.NodeInfo{back("a"), back("b"), steady("c")}, 22 * time.Second, false},
		{"only itself back", []*framework.NodeInfo{back("self"), steady("b"), steady("c")}, 22 * time.Second, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := d.Over(tt.nodes, t0.Add(tt.now)); got != tt.want {
				t.Errorf("Over = %v, want %v", got, tt.want)
			}
		})
	}

	r := Renewals{Duration: 2500 * time.Millisecond, Interval: time.Second}
	r.Started(t0)
	r.Succeeded(t0, t0)
	r.Finished(nil)
	r.Started(t0.Add(time.Second))
	r.Finished(errors.New("refused"))
	r.Started(t0.Add(10 * time.Second))
	r.Succeeded(t0.Add(10*time.Second), t0.Add(10*time.Second))
	r.Finished(nil)
	seen := t0.Add(10 * time.Second)
	if _, ok := r.Settling(t0.Add(11*time.Second), seen); !ok {
		t.Fatal("not settling after an outage")
	}
	r.EndSettle(t0.Add(11 * time.Second))
	if _, ok := r.Settling(t0.Add(11*time.Second), seen); !ok {
		t.Error("EndSettle ended the settle within its first lease duration")
	}
	for _, at := range []time.Duration{11 * time.Second, 12 * time.Second} {
		r.Started(t0.Add(at))
		r.Succeeded(t0.Add(at), t0.Add(at))
		r.Finished(nil)
		seen = t0.Add(at)
	}
	if _, ok := r.Settling(t0.Add(12500*time.Millisecond), seen); !ok {
		t.Fatal("not settling within two lease durations of the return")
	}
	r.EndSettle(t0.Add(12500 * time.Millisecond))
	if why := r.Frozen(t0.Add(12500*time.Millisecond), seen); why != "" {
		t.Errorf("after EndSettle past the first lease duration, frozen = %q, want \"\"", why)
	}
}
