package speaker

import (
	"sync"
	"time"

	"github.com/herald-lb/herald/framework"
	"github.com/herald-lb/herald/liveness"
)

// expiryWatch queues a full pass when a live heartbeat lapses. Plugins compare heartbeats
// with the snapshot's time, so without a new cycle a dead speaker's IPs would stay with it
// until some other event. Renewals do not queue passes (see snapshot.renewalOnly), so the
// timer set for a heartbeat's expiry often fires after that heartbeat was renewed; it then
// only re-arms. Queuing a full pass every time it fired made a speaker in a 1,000-node
// cluster re-run every unit once per lease duration for nothing.
type expiryWatch struct {
	snapshot func(time.Time) *framework.Snapshot
	fire     func()

	mu    sync.Mutex
	timer *time.Timer
	at    time.Time
	// checked is the latest time the current decisions saw every heartbeat as it was: a
	// heartbeat that expires after it and before now has lapsed since.
	checked time.Time
}

// passed records that a full pass ran with snap and arms the timer for its next expiry.
func (w *expiryWatch) passed(snap *framework.Snapshot) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.rearm(snap)
}

// check runs when the timer fires: a full pass if a heartbeat lapsed, else a new timer.
func (w *expiryWatch) check() {
	if w.lapsedOrRearmed(w.snapshot(time.Now())) {
		w.fire() // the full pass calls passed, which re-arms
	}
}

func (w *expiryWatch) lapsedOrRearmed(snap *framework.Snapshot) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if liveness.LapsedBetween(snap.Nodes(), w.checked, snap.Time) {
		w.timer, w.at = nil, time.Time{}
		return true
	}
	w.rearm(snap)
	return false
}

func (w *expiryWatch) rearm(snap *framework.Snapshot) {
	if snap.Time.After(w.checked) {
		w.checked = snap.Time
	}
	next := liveness.NextExpiry(snap.Nodes(), snap.Time)
	if next.IsZero() || (w.timer != nil && w.at.Equal(next)) {
		return
	}
	if w.timer != nil {
		w.timer.Stop()
	}
	w.at = next
	// A few milliseconds late so the snapshot taken then sees the heartbeat as expired.
	w.timer = time.AfterFunc(time.Until(next)+5*time.Millisecond, w.check)
}

// stop disarms the timer.
func (w *expiryWatch) stop() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.timer != nil {
		w.timer.Stop()
		w.timer = nil
	}
}
