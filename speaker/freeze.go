package speaker

import (
	"context"
	"sync"
	"time"

	"k8s.io/klog/v2"

	"github.com/herald-lb/herald/framework"
	"github.com/herald-lb/herald/liveness"
)

// freezeRecheck is how often a frozen speaker looks again whether it may decide: it has no
// event to wait for when its own watch catches up, because a renewal alone queues no pass.
const freezeRecheck = 250 * time.Millisecond

// freezeState remembers why the speaker skipped its last pass, to log only transitions and
// to run a pass as soon as a renewal may have ended the freeze.
type freezeState struct {
	mu       sync.Mutex
	why      string
	settling bool
}

// frozen says why this node may not change what it announces now ("" when it may).
func (s *Speaker) frozen() string {
	return s.hb.frozen(s.builder.RenewTime(s.o.NodeName))
}

// settling reports whether this node is frozen only while it settles (it may claim, from the
// view claimView makes, but not withdraw), and since when lapsed heartbeats count as alive.
func (s *Speaker) settling() (liveness.Doubt, bool) {
	return s.hb.settling(s.builder.RenewTime(s.o.NodeName))
}

// mayClaim reports whether Announce may start announcing an IP: when the node is not frozen,
// or only settling (the pass then decides from claimView).
func (s *Speaker) mayClaim() bool {
	if s.hb.isDraining() {
		return false
	}
	if s.frozen() == "" {
		return true
	}
	_, ok := s.settling()
	return ok
}

// claimView is the snapshot a pass decides from: snap, or while the node settles, snap with
// every heartbeat that lapsed while its view was in doubt alive (liveness.Generous), so that
// it claims what the others leave to it without taking an IP from a node that is merely slow
// to come back.
// A settle whose doubt is over (liveness.Doubt.Over) ends here, and snap is the view. The fast
// path's verdicts apply last (see fastClaimView): a node it found gone is gone whatever the
// settle doubts.
func (s *Speaker) claimView(ctx context.Context, snap *framework.Snapshot) *framework.Snapshot {
	doubt, ok := s.settling()
	if !ok {
		return s.fastClaimView(ctx, snap)
	}
	if doubt.Over(snap.Nodes(), snap.Time) {
		s.hb.endSettle()
		return s.fastClaimView(ctx, snap)
	}
	return s.fastClaimView(ctx, framework.NewSnapshot(snap.Time, liveness.Generous(snap.Nodes(), doubt, snap.Time)))
}

// skipFrozen reports whether the pass must be skipped because the node is frozen; it then
// queues a full pass for when the freeze may have ended. Skipping the whole pass, rather than
// refusing each claim and withdrawal in Bind, keeps a stale view from touching anything and
// costs nothing per unit. A settling node runs its passes: it claims (see claimView) but
// withdraws nothing (MayWithdraw).
func (s *Speaker) skipFrozen(ctx context.Context) bool {
	why := s.frozen()
	_, settling := s.settling()
	s.freeze.mu.Lock()
	prev, prevSettling := s.freeze.why, s.freeze.settling
	s.freeze.why, s.freeze.settling = why, settling
	s.freeze.mu.Unlock()
	switch {
	case why != "" && settling && (prev == "" || !prevSettling):
		klog.FromContext(ctx).Info("Settling: claiming what it wins even counting every node that lapsed meanwhile as alive, withdrawing nothing", "reason", why)
	case why != "" && !settling && (prev == "" || prevSettling):
		klog.FromContext(ctx).Info("Frozen: keeping every announcement as it is, claiming and withdrawing nothing", "reason", why)
	case why == "" && prev != "":
		klog.FromContext(ctx).Info("No longer frozen: deciding again")
	}
	if why == "" {
		return false
	}
	wait := freezeRecheck
	if at := s.hb.settleAt(); !at.IsZero() && time.Until(at) > 0 && time.Until(at) < wait {
		wait = time.Until(at) + 5*time.Millisecond
	}
	s.queue.AddAfter(allKey, wait)
	return !settling
}

// renewed runs after each successful heartbeat renewal: a frozen speaker looks again at once.
func (s *Speaker) renewed() {
	s.freeze.mu.Lock()
	was := s.freeze.why != ""
	s.freeze.mu.Unlock()
	if was {
		select {
		case <-s.synced:
			s.queue.Add(allKey)
		default:
		}
	}
}
