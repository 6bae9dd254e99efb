package sim

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"time"

	"github.com/go-logr/logr"
	metallbv1beta1 "github.com/herald-lb/herald/config/metallb/v1beta1"
	"github.com/herald-lb/herald/framework"
	"github.com/herald-lb/herald/heartbeat"
	"github.com/herald-lb/herald/liveness"
	"github.com/herald-lb/herald/plugins"
	"github.com/herald-lb/herald/snapshot"
)

// namespace is the speakers' namespace in the simulation.
const namespace = "herald-system"

// freezeRecheck is how often a frozen speaker looks again (speaker.freezeRecheck).
const freezeRecheck = 250 * time.Millisecond

// speaker is one node's speaker as far as liveness goes: its builder fed by its own watch,
// its own renewals, and the IPs it announces.
type speaker struct {
	w      *world
	idx    int
	name   string
	up     bool
	offset time.Duration // its clock minus the true time
	delay  time.Duration // its watch's normal delay

	builder *snapshot.Builder
	fw      *framework.Framework
	// renewals is its own renewal history (the real freeze rule).
	renewals liveness.Renewals
	// cursor is how far into the API server's log its watch has delivered.
	cursor int
	// inflight is the renewal in flight (nil: none); nextRenew when the next one starts.
	inflight  *renewal
	nextRenew time.Duration
	// dirty: the builder reported a change; recheck: when a frozen speaker looks again;
	// checked: the time (its clock) its last full pass saw every heartbeat as it was.
	dirty   bool
	frozen  bool
	recheck time.Duration
	checked time.Time
	// expAt is when its expiry timer fires (its clock; zero: not armed).
	expAt time.Time
	// warm is false from a (re)start until its pre phase ended (speaker/readiness.go): it
	// publishes its announcer as warming, announces what it wins in its own view, and ends
	// the phase with a pass in which its heartbeat is alive, once it has watched the
	// heartbeats for a lease duration (liveness.Watched) since syncedAt (its clock).
	warm     bool
	syncedAt time.Time
	// announced is what its announcers answer for; winner is who its last pass chose per
	// IP, and why it is frozen ("": it is not), for traces.
	announced map[netip.Addr]bool
	winner    map[netip.Addr]string
	why       string
	// statused are the IPs whose status object names it, as far as its writes went.
	statused map[netip.Addr]bool
	// fast is what its fast path reports (world.stepFastPath); nil without one. procID is
	// the process's fast-path ID, new on every start.
	fast   map[string]liveness.Reach
	procID string
	// joinDue is when a restarted speaker's joins have all answered or failed (0: done).
	joinDue time.Duration
}

// renewal is a Lease write on its way: it completes (or fails) at done.
type renewal struct {
	hb   heartbeat.Heartbeat
	done time.Duration
	fail bool
}

// now is the speaker's clock.
func (s *speaker) now() time.Time { return s.w.epoch.Add(s.w.t + s.offset) }

// start (re)starts the speaker: an empty builder that lists what exists, nothing announced.
func (s *speaker) start() error {
	s.up, s.cursor, s.inflight, s.dirty, s.frozen = true, 0, nil, false, false
	s.warm, s.syncedAt = false, s.now()
	s.procID = processID(s.name, s.w.t)
	if s.fast != nil && s.w.t > 0 {
		s.joinDue = s.w.t + s.w.cfg.FastJoin
	}
	s.recheck, s.checked, s.expAt = 0, time.Time{}, time.Time{}
	s.renewals = liveness.Renewals{Duration: s.w.cfg.LeaseDuration, Interval: s.w.cfg.RenewInterval}
	s.announced, s.winner = map[netip.Addr]bool{}, map[netip.Addr]string{}
	s.builder = snapshot.NewBuilder(func(snapshot.Change) { s.dirty = true })
	s.builder.SetClock(s.now)
	for _, n := range s.w.nodes {
		s.builder.SetNode(n)
	}
	for _, svc := range s.w.services {
		s.builder.SetService(svc)
	}
	for _, es := range s.w.slices {
		s.builder.SetEndpointSlice(es)
	}
	pool := &metallbv1beta1.IPAddressPool{}
	pool.Namespace, pool.Name = namespace, "pool"
	pool.Spec.Addresses = []string{"198.51.100.0/24", "203.0.113.0/24"}
	s.builder.SetPool(pool)
	adv := &metallbv1beta1.L2Advertisement{}
	adv.Namespace, adv.Name = namespace, "l2"
	s.builder.SetL2Advertisement(adv)
	fw, err := framework.NewFramework(plugins.NewInTreeRegistry(), plugins.DefaultProfile(), framework.NewHandle(logr.Discard()))
	if err != nil {
		return err
	}
	s.fw = fw
	// Its informers list the Leases and status objects as they are now and watch from there;
	// it takes the status objects naming it as its own, and deletes those of the IPs it does
	// not announce (syncStatus).
	for _, l := range s.w.api.leases {
		s.builder.SetLease(l)
	}
	s.statused = map[netip.Addr]bool{}
	for ip, node := range s.w.api.statuses {
		st := &metallbv1beta1.ServiceL2Status{}
		i := int(ip.As4()[3]) - 1
		st.Namespace, st.Name = namespace, fmt.Sprintf("l2-svc-%03d", i)
		st.Status.ServiceNamespace, st.Status.ServiceName, st.Status.Node = "default", fmt.Sprintf("svc-%03d", i), node
		s.builder.SetL2Status(st)
		if node == s.name {
			s.statused[ip] = true
		}
	}
	s.cursor = len(s.w.api.log)
	s.nextRenew = s.w.t // a starting speaker renews at once
	s.dirty = true
	return nil
}

// crash stops the speaker; its announcers die with it.
func (s *speaker) crash() {
	s.up = false
	s.announced = map[netip.Addr]bool{}
	if s.fast != nil {
		s.fast = map[string]liveness.Reach{}
	}
}

// step runs what the speaker does at the current time: watch events, renewals, passes.
func (s *speaker) step() error {
	if !s.up {
		return nil
	}
	s.deliver()
	if err := s.renew(); err != nil {
		return err
	}
	if err := s.maybePass(); err != nil {
		return err
	}
	s.syncStatus()
	return nil
}

// syncStatus writes the status objects of what it announces and deletes those of what it
// does not, while it reaches the API server (AsyncStatus; a write takes no time here). Its
// status objects are what the others' Sticky and NodeReady (a held node) read.
func (s *speaker) syncStatus() {
	if s.w.partitioned(s.idx) {
		return
	}
	for i := range s.w.cfg.IPs {
		ip := serviceIP(i)
		switch {
		case s.announced[ip] && !s.statused[ip]:
			s.w.api.writeStatus(s.w.t, ip, s.name)
			s.statused[ip] = true
		case !s.announced[ip] && s.statused[ip]:
			if s.w.api.statuses[ip] == s.name {
				s.w.api.writeStatus(s.w.t, ip, "")
			}
			delete(s.statused, ip)
		}
	}
}

// deliver feeds the builder every logged write its watch has delivered by now.
func (s *speaker) deliver() {
	if s.w.partitioned(s.idx) || s.w.stalled(s.idx) {
		return
	}
	for s.cursor < len(s.w.api.log) {
		e := s.w.api.log[s.cursor]
		if e.at+s.delay > s.w.t {
			return
		}
		switch {
		case e.lease != nil:
			s.builder.SetLease(e.lease)
		case e.status.Status.Node == "":
			s.builder.DeleteL2Status(e.status.Namespace, e.status.Name)
		default:
			s.builder.SetL2Status(e.status)
		}
		s.cursor++
	}
}

// renew completes the renewal in flight or starts the next, as the heartbeater does: one at
// a time, each bounded by the lease duration.
func (s *speaker) renew() error {
	w := s.w
	if r := s.inflight; r != nil && w.t >= r.done {
		s.inflight = nil
		var err error
		if r.fail || w.partitioned(s.idx) {
			err = errors.New("lease renewal: context deadline exceeded")
		} else {
			stored, werr := w.api.write(w.t, r.hb, namespace)
			if werr != nil {
				return werr
			}
			s.renewals.Succeeded(r.hb.RenewTime, stored.Spec.RenewTime.Time)
			s.dirty = s.dirty || s.frozen // speaker.renewed: a frozen speaker looks again at once
		}
		s.renewals.Finished(err)
	}
	if s.inflight != nil || w.t < s.nextRenew {
		return nil
	}
	hb := s.heartbeat()
	s.renewals.Started(s.now())
	lat := w.latency(s.idx)
	r := &renewal{hb: hb, done: w.t + lat}
	if w.partitioned(s.idx) || lat > w.cfg.LeaseDuration {
		r.done, r.fail = w.t+w.cfg.LeaseDuration, true
	}
	s.inflight = r
	// A ticker: the next renewal is due an interval after this one started (ticks missed
	// while a renewal hangs are dropped).
	for s.nextRenew <= w.t {
		s.nextRenew += w.cfg.RenewInterval
	}
	return nil
}

// heartbeat is what the speaker writes in its Lease now.
func (s *speaker) heartbeat() heartbeat.Heartbeat {
	state := framework.AnnouncerReady
	if !s.warm {
		state = framework.AnnouncerWarming
	}
	return heartbeat.Heartbeat{NodeName: s.name, RenewTime: s.now(), LeaseDuration: s.w.cfg.LeaseDuration,
		Interfaces: []framework.Interface{{Name: "eth0", Up: true, Prefixes: nodePrefixes}},
		Announcers: map[framework.AnnouncerKind]framework.AnnouncerHealth{framework.AnnouncerKindL2v4: {State: state}},
		FastPathID: s.procID}
}

// processID is the fast-path ID of the node's process started at t.
func processID(name string, t time.Duration) string { return fmt.Sprintf("%s@%s", name, t) }

// maybePass runs a full pass when the speaker would: a change (or a renewal while frozen)
// was seen, its expiry timer found a lapsed heartbeat, or a frozen speaker's recheck is due.
func (s *speaker) maybePass() error {
	now := s.now()
	lapsed := false
	if !s.expAt.IsZero() && !now.Before(s.expAt) {
		lapsed = s.lapsedOrRearmed(s.builder.Snapshot(now))
	}
	due := s.recheck != 0 && s.w.t >= s.recheck
	if !s.dirty && !lapsed && !due {
		return nil
	}
	s.dirty = false
	seen := s.builder.RenewTime(s.name)
	doubt, settling := s.settling(now, seen)
	if settling && doubt.Over(s.builder.Snapshot(now).Nodes(), now) {
		// speaker.claimView: a settle whose doubt is over ends.
		s.renewals.EndSettle(now)
		doubt, settling = s.settling(now, seen)
	}
	why := s.renewals.Frozen(now, seen)
	s.frozen, s.why = why != "", why
	if s.frozen {
		wait := freezeRecheck
		if at := s.renewals.SettleAt(); !at.IsZero() && at.Sub(now) > 0 && at.Sub(now) < wait {
			wait = at.Sub(now) + 5*time.Millisecond
		}
		s.recheck = s.w.t + wait
		if !settling {
			return nil
		}
	} else {
		s.recheck = 0
	}
	snap := s.builder.Snapshot(now)
	s.rearm(snap)
	view := s.view(snap)
	if settling {
		// speaker.claimView: claim what it wins even counting every node that lapsed while its
		// view was in doubt, withdraw nothing.
		view = framework.NewSnapshot(view.Time, liveness.Generous(view.Nodes(), doubt, view.Time))
	}
	if s.fast != nil {
		// speaker.fastClaimView: the fast path's verdicts apply last.
		view = framework.NewSnapshot(view.Time, liveness.FastPath(view.Nodes(), s.name, s.fast, view.Time))
	}
	if err := s.pass(view, settling); err != nil {
		return err
	}
	s.endWarming(snap)
	return nil
}

// settling is the renewals' settle with the speaker's name in the doubt (the heartbeater's
// settling).
func (s *speaker) settling(now, seen time.Time) (liveness.Doubt, bool) {
	d, ok := s.renewals.Settling(now, seen)
	d.Self = s.name
	return d, ok
}

// view is the speaker's own view (speaker.view): in the pre phase it counts itself, and the
// peers that are warming too, as ready; before (watching the heartbeats) it counts itself
// warming, as it publishes.
func (s *speaker) view(snap *framework.Snapshot) *framework.Snapshot {
	if s.warm || !s.watched() {
		return snap
	}
	nodes := slices.Clone(snap.Nodes())
	for i, n := range nodes {
		if n.Speaker == nil || (n.Name != s.name && n.Speaker.Announcers[framework.AnnouncerKindL2v4].State != framework.AnnouncerWarming) {
			continue
		}
		c, si := *n, *n.Speaker
		si.Announcers = map[framework.AnnouncerKind]framework.AnnouncerHealth{framework.AnnouncerKindL2v4: {State: framework.AnnouncerReady}}
		c.Speaker = &si
		nodes[i] = &c
	}
	return framework.NewSnapshot(snap.Time, nodes)
}

// watched reports whether the speaker has watched the heartbeats for a lease duration since
// it synced (speaker.readiness.setWatched); before, it waits for that.
func (s *speaker) watched() bool {
	return liveness.Watched(s.syncedAt, s.now(), s.w.cfg.LeaseDuration)
}

// endWarming ends the pre phase after a pass in which its own heartbeat was alive
// (speaker.endWarming); it then renews at once. While it still watches, it looks again
// when the watch is long enough (the speaker's readinessChanged).
func (s *speaker) endWarming(published *framework.Snapshot) {
	if s.warm {
		return
	}
	if !s.watched() {
		s.recheck = s.w.t + s.syncedAt.Add(s.w.cfg.LeaseDuration).Sub(published.Time)
		return
	}
	if self := published.Node(s.name); self == nil || !self.Speaker.AliveAt(published.Time) {
		return
	}
	s.warm = true
	s.nextRenew = s.w.t
}

// lapsedOrRearmed and rearm are the speaker's expiry watch (speaker/expiry.go) on the
// simulated clock: a full pass when a heartbeat lapsed since the last check, else a timer
// for the next expiry, a few milliseconds late.
func (s *speaker) lapsedOrRearmed(snap *framework.Snapshot) bool {
	if liveness.LapsedBetween(snap.Nodes(), s.checked, snap.Time) {
		s.expAt = time.Time{}
		return true
	}
	s.rearm(snap)
	return false
}

func (s *speaker) rearm(snap *framework.Snapshot) {
	if snap.Time.After(s.checked) {
		s.checked = snap.Time
	}
	s.expAt = time.Time{}
	if next := liveness.NextExpiry(snap.Nodes(), snap.Time); !next.IsZero() {
		s.expAt = next.Add(5 * time.Millisecond)
	}
}

// pass decides every unit with the real framework and applies the result as Announce's bind
// does when the node is not frozen: announce where selected, withdraw elsewhere (unless
// claimOnly: a settling node withdraws nothing).
func (s *speaker) pass(snap *framework.Snapshot, claimOnly bool) error {
	ctx := context.Background()
	for _, u := range s.builder.Units() {
		res := s.fw.Schedule(ctx, snap, u)
		if res.Err != nil {
			err := res.Err
			res.Release()
			return err
		}
		selected := false
		s.winner[u.IP] = ""
		for _, n := range res.Selected {
			s.winner[u.IP] = n
			if n == s.name {
				selected = true
			}
		}
		res.Release()
		if selected {
			s.announced[u.IP] = true
		} else if !claimOnly {
			delete(s.announced, u.IP)
		}
	}
	return nil
}
