package speaker

import (
	"sync/atomic"
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
			if got := nextExpiry(nodes, tt.after); !got.Equal(tt.wantNext) {
				t.Errorf("nextExpiry(%s) = %s, want %s", tt.after, got, tt.wantNext)
			}
			if got := lapsedBetween(nodes, tt.since, tt.now); got != tt.wantLapsed {
				t.Errorf("lapsedBetween(%s, %s) = %v, want %v", tt.since, tt.now, got, tt.wantLapsed)
			}
		})
	}
}

// A timer set for a heartbeat that was renewed since must re-arm, not queue a full pass; one
// that really lapsed must queue it.
func TestExpiryWatchFiresOnlyOnLapse(t *testing.T) {
	now := time.Now()
	lease := 200 * time.Millisecond
	var current atomic.Pointer[[]*framework.NodeInfo]
	set := func(nodes ...*framework.NodeInfo) []*framework.NodeInfo { current.Store(&nodes); return nodes }
	first := set(heartbeatNode("a", now, lease))
	fired := make(chan struct{}, 10)
	w := &expiryWatch{
		snapshot: func(at time.Time) *framework.Snapshot { return framework.NewSnapshot(at, *current.Load()) },
		fire:     func() { fired <- struct{}{} },
	}
	defer w.stop()
	w.passed(framework.NewSnapshot(now, first))

	// Renew before the timer fires: it must only re-arm for the new expiry.
	set(heartbeatNode("a", now.Add(lease), time.Hour))
	w.check()
	select {
	case <-fired:
		t.Fatal("a full pass was queued though the heartbeat was renewed")
	default:
	}
	w.mu.Lock()
	at := w.at
	w.mu.Unlock()
	if want := now.Add(lease + time.Hour); !at.Equal(want) {
		t.Fatalf("timer armed for %s, want the renewed expiry %s", at, want)
	}

	// Now let a short heartbeat really lapse: the timer must queue a full pass.
	w.stop()
	short := set(heartbeatNode("a", time.Now(), 50*time.Millisecond))
	w.passed(framework.NewSnapshot(time.Now(), short))
	select {
	case <-fired:
	case <-time.After(5 * time.Second):
		t.Fatal("no full pass queued after the heartbeat lapsed")
	}
}
