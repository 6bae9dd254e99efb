package speaker

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"k8s.io/klog/v2"

	"github.com/herald-lb/herald/announcers"
	"github.com/herald-lb/herald/announcers/manager"
	"github.com/herald-lb/herald/framework"
)

// Whether this node can answer for a kind of unit (ARP, NDP, BGP) is a fact only it sees, so
// the speaker publishes it in its heartbeat and every speaker's NodeReady filter reads it
// there. readiness computes it, per announcer kind, from the manager's health, whether the
// informers have synced, and whether this node already announces what it is about to win:
//
//   - unavailable: the announcer is not configured, was refused, crashed or reports itself
//     unhealthy; it stays unavailable through restarts until it is up again;
//   - warming: the speaker starts (announcer starting, informers not synced), an announcer that
//     failed again within stableAfter of its last failure has not yet stayed up for holdDown,
//     or this node is announcing the units it would win before it becomes a candidate (the
//     "pre" phase);
//   - ready: a candidate.
//
// In the pre phase the node decides from its local view (the kind counts ready for itself),
// announces what it wins there without claiming it in status objects, and once a full pass
// has done so, publishes ready: the old owners withdraw only when the new one already answers
// (make before break), and every speaker still decides from the same published facts.
type readiness struct {
	now func() time.Time
	// holdDown is how long an announcer that failed again within stableAfter of its previous
	// failure must stay up before its kind warms again, so a crash-looping announcer does not
	// win IPs between crashes. A single failure (a hung process replaced) is not held down:
	// the IPs only this node may answer for (local traffic policy) wait for it.
	holdDown    time.Duration
	stableAfter time.Duration

	// watchFor is how long the heartbeats are watched after the informers synced before the
	// node may become a candidate (see liveness.Watched): the lease duration; zero: no wait.
	watchFor time.Duration

	mu     sync.Mutex
	synced bool
	// watched is set once the heartbeats have been watched for watchFor (setWatched).
	watched bool
	kinds   map[framework.AnnouncerKind]*kindState
}

// kindState is one announcer kind's inputs.
type kindState struct {
	// announcer is the configured announcer's name; "" when none is configured.
	announcer string
	up        bool
	// reason says why the announcer is not up (kept while it restarts).
	reason string
	// failed is set once the announcer was seen failing; it clears when it has been up for
	// hold (holdDown for a repeated failure, zero for one after a stable run).
	failed     bool
	hold       time.Duration
	lastFailed time.Time
	upSince    time.Time
	// epoch counts the times the kind stopped being up, so a warm pass that started before a
	// failure does not complete the warming after it.
	epoch  uint64
	warmed bool
}

// phase is a kind's state as this node sees it.
type phase int

const (
	phaseUnavailable phase = iota
	phaseWaiting           // warming: not synced, announcer starting or recovering
	phasePre               // warming: announcing what it will win before becoming a candidate
	phaseReady
)

// announcerKinds maps the kind an announcer serves to the kind of unit it answers for.
var announcerKinds = map[string]framework.AnnouncerKind{
	announcers.KindARP: framework.AnnouncerKindL2v4,
	announcers.KindNDP: framework.AnnouncerKindL2v6,
	announcers.KindBGP: framework.AnnouncerKindBGP,
}

// newReadiness tracks the kinds of the configured announcers. The L2 kinds are tracked even
// without an announcer (reported unavailable, so IPv6 units go to nodes that run NDP); BGP
// only with one (other bind plugins may advertise BGP units).
// configured are announcer names that are also the kinds they serve (the built-in ones).
func newReadiness(configured []string, holdDown, stableAfter time.Duration, now func() time.Time) *readiness {
	byKind := map[string]string{}
	for _, name := range configured {
		byKind[name] = name
	}
	return newReadinessByKind(byKind, holdDown, stableAfter, now)
}

// newReadinessByKind is newReadiness for announcers of any name: byKind maps the kind an
// announcer serves (announcers.KindARP, …) to its name.
func newReadinessByKind(byKind map[string]string, holdDown, stableAfter time.Duration, now func() time.Time) *readiness {
	r := &readiness{now: now, holdDown: holdDown, stableAfter: stableAfter, kinds: map[framework.AnnouncerKind]*kindState{
		framework.AnnouncerKindL2v4: {reason: "no arp announcer in the speaker's configuration"},
		framework.AnnouncerKindL2v6: {reason: "no ndp announcer in the speaker's configuration"},
	}}
	for served, name := range byKind {
		if kind, ok := announcerKinds[served]; ok && name != "" {
			r.kinds[kind] = &kindState{announcer: name}
		}
	}
	return r
}

// stateOfLocked is the state of the kind the named announcer serves; nil when it serves none.
func (r *readiness) stateOfLocked(name string) *kindState {
	for _, k := range r.kinds {
		if k.announcer == name {
			return k
		}
	}
	return nil
}

// announcerUp reads the manager's health: whether the announcer answers now, whether it is
// only starting (not a failure), and why not.
func announcerUp(h manager.Health) (up, starting bool, reason string) {
	switch h.State {
	case manager.StateHealthy, manager.StateDegraded, manager.StateIdle:
		// Idle: not running because nothing needs it yet; it starts on its first
		// announcement, so it counts as up.
		return true, false, ""
	case manager.StateStarting, manager.StateStopped:
		return false, true, fmt.Sprintf("announcer %s starting", h.Name)
	}
	reason = fmt.Sprintf("announcer %s %s", h.Name, h.State)
	if h.Message != "" {
		reason += ": " + h.Message
	}
	return false, false, reason
}

// update takes the manager's health; it reports whether a published state changed.
func (r *readiness) update(health []manager.Health) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	before := r.publishedLocked()
	now := r.now()
	for _, h := range health {
		k := r.stateOfLocked(h.Name)
		if k == nil {
			continue
		}
		up, starting, reason := announcerUp(h)
		switch {
		case up:
			if !k.up {
				k.up, k.upSince = true, now
			}
		case starting:
			// A first start is warming with its reason; a restart after a failure keeps the
			// failure's reason; a start on demand (from idle) keeps the kind up: the manager
			// holds the announcements and sends them once it runs.
			if !k.up && !k.failed {
				k.reason = reason
			}
		default:
			if k.up || !k.failed {
				k.hold = 0
				if !k.lastFailed.IsZero() && now.Sub(k.lastFailed) < r.stableAfter {
					k.hold = r.holdDown
				}
				k.lastFailed = now
			}
			if k.up {
				k.up, k.warmed = false, false
				k.epoch++
			}
			k.failed, k.reason = true, reason
		}
		if k.up && k.failed && now.Sub(k.upSince) >= k.hold {
			k.failed = false
		}
	}
	return !maps.Equal(before, r.publishedLocked())
}

// setSynced records that the informers synced.
func (r *readiness) setSynced() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	before := r.publishedLocked()
	r.synced = true
	r.watched = r.watched || r.watchFor == 0
	return !maps.Equal(before, r.publishedLocked())
}

// setWatched records that the heartbeats have been watched for watchFor since the informers
// synced; it reports whether a published state changed.
func (r *readiness) setWatched() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	before := r.publishedLocked()
	r.watched = true
	return !maps.Equal(before, r.publishedLocked())
}

func (r *readiness) phaseLocked(k *kindState) (phase, string) {
	switch {
	case k.announcer == "", !k.up && k.failed:
		return phaseUnavailable, k.reason
	case !k.up:
		return phaseWaiting, k.reason
	case !r.synced:
		return phaseWaiting, "informers not synced"
	case !r.watched:
		// A heartbeat seen first counts as alive for a lease duration, a dead node's too:
		// before that, this node would leave the IPs it wins to nodes that died.
		return phaseWaiting, "watching the heartbeats for a lease duration"
	case k.failed:
		return phaseWaiting, fmt.Sprintf("announcer %s is back up after failing twice within %s; waiting %s to see it stay up", k.announcer, r.stableAfter, k.hold)
	case !k.warmed:
		return phasePre, "announcing the IPs it is about to take over"
	}
	return phaseReady, ""
}

// published is what the heartbeat says: every tracked kind's state and reason.
func (r *readiness) published() map[framework.AnnouncerKind]framework.AnnouncerHealth {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.publishedLocked()
}

func (r *readiness) publishedLocked() map[framework.AnnouncerKind]framework.AnnouncerHealth {
	out := make(map[framework.AnnouncerKind]framework.AnnouncerHealth, len(r.kinds))
	for kind, k := range r.kinds {
		ph, reason := r.phaseLocked(k)
		switch ph {
		case phaseReady:
			out[kind] = framework.AnnouncerHealth{State: framework.AnnouncerReady}
		case phaseUnavailable:
			out[kind] = framework.AnnouncerHealth{State: framework.AnnouncerUnavailable, Reason: reason}
		default:
			out[kind] = framework.AnnouncerHealth{State: framework.AnnouncerWarming, Reason: reason}
		}
	}
	return out
}

// local is this node's own view: kinds in the pre phase count ready, since the node
// announces what it would win as a candidate. pre lists those kinds with their epochs.
func (r *readiness) local() (view map[framework.AnnouncerKind]framework.AnnouncerHealth, pre map[framework.AnnouncerKind]uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	view = r.publishedLocked()
	for kind, k := range r.kinds {
		if ph, _ := r.phaseLocked(k); ph == phasePre {
			view[kind] = framework.AnnouncerHealth{State: framework.AnnouncerReady}
			if pre == nil {
				pre = map[framework.AnnouncerKind]uint64{}
			}
			pre[kind] = k.epoch
		}
	}
	return view, pre
}

// warmed ends the pre phase of the kinds a full pass announced without failure, unless the
// announcer failed since the pass began; it reports whether a published state changed.
func (r *readiness) warmed(done map[framework.AnnouncerKind]uint64) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	changed := false
	for kind, epoch := range done {
		k := r.kinds[kind]
		if ph, _ := r.phaseLocked(k); ph == phasePre && k.epoch == epoch {
			k.warmed, changed = true, true
		}
	}
	return changed
}

// ready is /readyz: synced, and every configured announcer's kind a candidate. The message
// lists each kind that is not, with its reason.
func (r *readiness) ready() (bool, string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var problems []string
	if !r.synced {
		problems = append(problems, "informers not synced")
	}
	for _, kind := range slices.Sorted(maps.Keys(r.kinds)) {
		k := r.kinds[kind]
		if k.announcer == "" {
			continue
		}
		if ph, reason := r.phaseLocked(k); ph != phaseReady {
			state := framework.AnnouncerWarming
			if ph == phaseUnavailable {
				state = framework.AnnouncerUnavailable
			}
			problems = append(problems, fmt.Sprintf("%s (%s) %s: %s", kind, k.announcer, state, reason))
		}
	}
	if len(problems) > 0 {
		return false, strings.Join(problems, "\n")
	}
	return true, "ok"
}

// view is the snapshot this speaker decides from: the cluster's, with this node's announcer
// health as the node knows it now (its own Lease comes back through the watch a moment
// later). In the pre phase of a kind, peers that are warming that kind count ready too, so a
// cluster starting cold pre-announces each node's share rather than every IP on every node.
// quiet lists the kinds this node announces without claiming them in status objects yet,
// because the others do not see it as a candidate; pre are the kinds in the pre phase with
// their epochs (see readiness.warmed).
func (s *Speaker) view(snap *framework.Snapshot) (_ *framework.Snapshot, quiet map[framework.AnnouncerKind]bool, pre map[framework.AnnouncerKind]uint64) {
	self := snap.Node(s.o.NodeName)
	if self == nil || self.Speaker == nil {
		return snap, nil, nil
	}
	local, pre := s.ready.local()
	for kind, h := range local {
		if h.State == framework.AnnouncerReady && !readyIn(self.Speaker, kind) {
			if quiet == nil {
				quiet = map[framework.AnnouncerKind]bool{}
			}
			quiet[kind] = true
		}
	}
	if len(pre) == 0 && maps.Equal(local, self.Speaker.Announcers) {
		return snap, quiet, nil
	}
	nodes := slices.Clone(snap.Nodes())
	for i, n := range nodes {
		switch {
		case n.Name == s.o.NodeName:
			nodes[i] = withAnnouncers(n, local)
		case n.Speaker != nil && len(pre) > 0:
			peer := maps.Clone(n.Speaker.Announcers)
			for kind := range pre {
				if h, ok := peer[kind]; ok && h.State == framework.AnnouncerWarming {
					peer[kind] = framework.AnnouncerHealth{State: framework.AnnouncerReady}
				}
			}
			if !maps.Equal(peer, n.Speaker.Announcers) {
				nodes[i] = withAnnouncers(n, peer)
			}
		}
	}
	return framework.NewSnapshot(snap.Time, nodes), quiet, pre
}

// readyIn reports whether the heartbeat makes the node a candidate for the kind (a kind the
// speaker does not report counts, as NodeReady reads it).
func readyIn(si *framework.SpeakerInfo, kind framework.AnnouncerKind) bool {
	h, ok := si.Announcers[kind]
	return !ok || h.State == framework.AnnouncerReady
}

// withAnnouncers returns a copy of the node with other announcer health.
func withAnnouncers(n *framework.NodeInfo, anns map[framework.AnnouncerKind]framework.AnnouncerHealth) *framework.NodeInfo {
	c := *n
	si := *n.Speaker
	si.Announcers = anns
	c.Speaker = &si
	return &c
}

const (
	// healthPoll is how often the speaker reads its announcers' health: a refused or crashed
	// announcer is published within it (the manager's state is in memory, reading it is cheap).
	healthPoll = 100 * time.Millisecond
	// announcerHoldDown is how long an announcer that failed twice within announcerStable
	// must stay up before its node becomes a candidate again.
	announcerHoldDown = 2 * time.Second
	announcerStable   = 10 * time.Second
	// warmRetry is the wait before another pass when a warm pass left units pending.
	warmRetry = 100 * time.Millisecond
)

// watchHealth publishes announcer health changes until ctx is done: at once in the
// heartbeat, and to this node's own decisions with a pass over every unit.
func (s *Speaker) watchHealth(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if s.ready.update(s.mgr.Health()) {
			s.readinessChanged(ctx)
		}
	}
}

func (s *Speaker) readinessChanged(ctx context.Context) {
	published := s.ready.published()
	klog.FromContext(ctx).Info("Announcer health changed", "announcers", published)
	if s.peers != nil && published[framework.AnnouncerKindBGP].State == framework.AnnouncerReady {
		// The BGP kind is ready once a full pass has given the announcer every route this
		// node advertises: the graceful-restart sessions may open now.
		s.peers.release()
	}
	s.hb.poke()
	select {
	case <-s.synced:
		s.queue.Add(allKey)
	default:
	}
}

// endWarming ends the pre phase of the kinds a full pass announced without a failure. The
// pass counts only when this node's own heartbeat was alive in it: otherwise nobody, itself
// included, saw it as a candidate, and it announced nothing it will win.
func (s *Speaker) endWarming(ctx context.Context, published *framework.Snapshot, pre map[framework.AnnouncerKind]uint64, failed map[framework.AnnouncerKind]bool) {
	if len(pre) == 0 {
		return
	}
	if self := published.Node(s.o.NodeName); self == nil || !self.Speaker.AliveAt(published.Time) {
		return
	}
	done := maps.Clone(pre)
	for kind := range failed {
		if _, ok := done[kind]; ok {
			delete(done, kind)
			// Units still pending (an announcer starting on demand, slow): pass again soon;
			// nothing else may queue a pass while health stays the same.
			s.queue.AddAfter(allKey, warmRetry)
		}
	}
	if s.ready.warmed(done) {
		s.readinessChanged(ctx)
	}
}

// answers is the Announce plugin's check before it claims a unit: nil when the named
// announcer answers now, or is starting on demand (the manager holds the announcements and
// sends them once it runs, as readiness counts it).
func (s *Speaker) answers(name string) error {
	for _, h := range s.mgr.Health() {
		if h.Name != name {
			continue
		}
		up, starting, reason := announcerUp(h)
		if !up && !(starting && s.ready.startingOnDemand(name)) {
			return errors.New(reason)
		}
		return nil
	}
	return fmt.Errorf("no announcer %q is configured", name)
}

// startingOnDemand reports whether the named announcer was up (or idle) and has not failed
// since: a start then is the manager starting it for its first announcement.
func (r *readiness) startingOnDemand(name string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, k := range r.kinds {
		if k.announcer == name {
			return k.up && !k.failed
		}
	}
	return false
}
