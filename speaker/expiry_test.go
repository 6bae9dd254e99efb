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
