package speaker

import (
	"sync"
	"time"
)

// freezeRecheck is how often a frozen speaker looks again whether it may decide: it has no
// event to wait for when its own watch catches up, because a renewal alone queues no pass.
const freezeRecheck = 250 * time.Millisecond

// freezeState remembers why the speaker skipped its last pass, to log only transitions and
// to run a pass as soon as a renewal may have ended the freeze.
type freezeState struct {
	mu  sync.Mutex
	why string
}

// frozen says why this node may not change what it announces now ("" when it may).
func (s *Speaker) frozen() string {
	return s.hb.frozen(s.builder.RenewTime(s.o.NodeName))
}

// skipFrozen reports whether the pass must be skipped because the node is frozen; it then
// queues a full pass for when the freeze may have ended. Skipping the whole pass, rather than
// refusing each claim and withdrawal in Bind, keeps a stale view from touching anything and
// costs nothing per unit.
func (s *Speaker) skipFrozen() bool {
	why := s.frozen()
	s.freeze.mu.Lock()
	prev := s.freeze.why
	s.freeze.why = why
	s.freeze.mu.Unlock()
	switch {
	case why != "" && prev == "":
		s.log.Info("frozen: keeping every announcement as it is, claiming and withdrawing nothing", "reason", why)
	case why == "" && prev != "":
		s.log.Info("no longer frozen: deciding again")
	}
	if why == "" {
		return false
	}
	wait := freezeRecheck
	if at := s.hb.settleAt(); !at.IsZero() && time.Until(at) > 0 && time.Until(at) < wait {
		wait = time.Until(at) + 5*time.Millisecond
	}
	s.queue.AddAfter(allKey, wait)
	return true
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
