// Package liveness holds the speaker's liveness rules as pure pieces on an injected clock, so
// the speaker and the deterministic simulation (package liveness/sim) run the same code:
//
//   - Renewals: whether this node may act on its view, from how its own heartbeat renewals
//     went and whether its watch delivers them (the freeze), and Generous, what it may
//     claim while it settles;
//   - NextExpiry and LapsedBetween: when another node's heartbeat lapses, which re-runs every
//     unit.
//
// How long a heartbeat stays valid is measured on the observer's clock: the snapshot builder
// records when it saw each heartbeat change (framework.SpeakerInfo.ObservedAt), never
// comparing another machine's timestamp with its own.
package liveness

import (
	"fmt"
	"time"

	"github.com/herald-lb/herald/framework"
)

// NextExpiry is the earliest expiry after t of the nodes' heartbeats; zero when none is alive.
func NextExpiry(nodes []*framework.NodeInfo, t time.Time) time.Time {
	var next time.Time
	for _, n := range nodes {
		if n.Speaker == nil {
			continue
		}
		exp := n.Speaker.Expiry()
		if exp.After(t) && (next.IsZero() || exp.Before(next)) {
			next = exp
		}
	}
	return next
}

// LapsedBetween reports whether a heartbeat of the nodes expired after since and by now.
func LapsedBetween(nodes []*framework.NodeInfo, since, now time.Time) bool {
	for _, n := range nodes {
		if n.Speaker == nil {
			continue
		}
		exp := n.Speaker.Expiry()
		if exp.After(since) && !exp.After(now) {
			return true
		}
	}
	return false
}

// Renewals remembers how this node's own heartbeat renewals went, on the node's own clock,
// and says when the node must freeze (see Frozen). It is not safe for concurrent use: the
// speaker guards it with its heartbeater's lock.
type Renewals struct {
	// Duration is the lease duration, Interval the renew interval.
	Duration, Interval time.Duration

	lastRenew time.Time
	// pendingSince is when the renewal in flight started (zero: none is).
	pendingSince time.Time
	// failure is the last renewal's error (nil: it succeeded).
	failure error
	// resumed is the renew time, as the API server stored it, of the first renewal that
	// succeeded after a failed or lapsed one; zero once the node has settled again.
	resumed time.Time
	// first is the renew time of the first renewal that succeeded in this process: until
	// the watch delivers one of this process's renewals, the view is the informer's list.
	first time.Time
	// stale is set while the watch has not delivered the node's own renewals for too long
	// (see Frozen); since is when the trouble began: heartbeats that lapsed after it lapsed
	// while this node's view was in doubt (see Generous).
	stale bool
	since time.Time
	// cut is when the first renewal that failed started: a node cut off by the same outage
	// committed its last renewal before it (see Doubt).
	cut time.Time
	// sure is when the node first found its view sure again while it settles: a heartbeat
	// that lapses after it lapses in a view the node trusts (see Doubt.Until). It is when a
	// call found it, so a caller that looks late doubts more, never less.
	sure time.Time
}

// Doubt is what a settling node doubts (see Renewals.Settling and Generous): heartbeats that
// lapsed after Since and by Until, of nodes whose last renewal it saw no later than Cut plus
// Slack, may be of nodes cut off by the same outage rather than dead.
type Doubt struct {
	Since, Cut time.Time
	// Until is when the node found its view sure again (zero: now). A heartbeat that lapses
	// later lapses in a view the node trusts, as it does in the others' views, and they hand
	// that node's IPs to this one: doubting it for the rest of the settle left them
	// unanswered (sim seed 153: node-12 crashed 0.7 s after its last renewal, which node-02's
	// watch delivered late, after node-02's partition; it lapsed 0.3 s into node-02's settle
	// and its IP went unanswered 4.3 s). A node cut off by an outage that lasted a lease
	// duration, as one that hung this node's renewal did, has lapsed by then: its last
	// renewal came before the outage. After a shorter outage such a node may lapse later,
	// briefly, until its next renewal; this node then answers its IPs with it until the
	// settle ends, a two-answer window no longer than the settle.
	Until time.Time
	// Slack is how late a watch that was up to date may deliver a renewal.
	Slack time.Duration
	// Alone is when the doubt ends unless the outage was shared (see Generous): a lease
	// duration after the node's first renewal that succeeded again. Self is the node's own
	// name (its own return does not show that the outage was shared).
	Alone time.Time
	Self  string
}

// Started records that a renewal started at now.
func (r *Renewals) Started(now time.Time) { r.pendingSince = now }

// Finished records the end of the renewal in flight; err is its error (nil: it succeeded,
// and Succeeded was called).
func (r *Renewals) Finished(err error) {
	if err != nil {
		if r.cut.IsZero() {
			r.cut = r.pendingSince
		}
		r.failure = err
	}
	r.pendingSince = time.Time{}
}

// Succeeded records a successful renewal with the renew time it wrote (the node's clock) and
// the renew time as the API server stored it (microseconds: what the watch delivers).
func (r *Renewals) Succeeded(renewTime, stored time.Time) {
	if !r.lastRenew.IsZero() && (r.failure != nil || renewTime.Sub(r.lastRenew) >= r.Duration) {
		r.resumed, r.sure = stored, time.Time{}
		r.troubleSince(r.lastRenew)
		if r.cut.IsZero() {
			// No renewal failed: the next one after lastRenew hung.
			r.cut = r.lastRenew.Add(r.Interval)
		}
	}
	if r.first.IsZero() {
		r.first = renewTime
	}
	r.lastRenew = renewTime
	r.failure = nil
}

// troubleSince records that the node's view may have been wrong from t on (the earliest
// such time counts until the node has settled).
func (r *Renewals) troubleSince(t time.Time) {
	if r.since.IsZero() || t.Before(r.since) {
		r.since = t
	}
}

// StaleAfter is how long after one of its renewals started the node's own watch may take to
// deliver it before the node takes its view as stale: the lease duration less the renew
// interval. A renewal that started at s and came back through the watch proves that every
// write committed before s has been seen; another node's heartbeat lapses (on this node's
// clock) no earlier than the lease duration after this node saw its last renewal, which that
// node committed at most a renew interval before the one the watch has not delivered. So a
// view no staler than this never takes a live node for dead, and a stall of the watch
// freezes the node before the first heartbeat it stopped seeing lapses (with the default
// 2.5 s and 1 s: 1.5 s, which leaves a renewal half a second to be written and come back).
// It is never shorter than the renew interval plus a quarter of a second, or a node whose
// watch is merely a little slow would freeze between two renewals.
func StaleAfter(duration, interval time.Duration) time.Duration {
	return max(duration-interval, interval+250*time.Millisecond)
}

// Frozen says why this node must neither claim nor withdraw at now ("" when it may), given
// the renew time of its own heartbeat as its snapshot shows it (seen). While the node is
// settling (see Settling) it may claim what it wins in the Generous view, but still not
// withdraw.
//
// Another node's heartbeat lapsing is evidence that node died only if this node could reach
// the API server meanwhile: when the API server is down every heartbeat lapses, and the node
// whose last renewal happened to be the latest would otherwise claim everyone's IPs. So the
// node freezes (keeps announcing what it has, claims nothing, withdraws nothing) from its
// first failed renewal, or one pending longer than half the margin between the renew interval
// and the lease duration, until it is sure of its view again: a renewal succeeded, its own
// watch has delivered that renewal (so everything written before it, the others' renewals
// included, has been seen), and two lease durations have passed since, in which the others,
// also cut off until then, had their chance to renew (see settleEnd).
//
// Its writes may succeed while its watch stalls (watch lag, a relist after an API server
// restart): then every heartbeat, its own included, lapses in its view, and it would
// withdraw everything while the others, who see it alive, take nothing over. So it also
// freezes when its watch has not delivered its own renewal for StaleAfter, until the watch
// delivers one within that bound again. A node whose own renewals keep succeeding and coming
// back never freezes, so failover when only other nodes' heartbeats lapse is as fast as
// before.
func (r *Renewals) Frozen(now, seen time.Time) string {
	why, _ := r.state(now, seen)
	return why
}

// Settling reports whether the node is frozen only because it waits out the lease duration
// after its view became sure again (see Frozen), and which lapsed heartbeats count as alive
// in what it may claim (see Generous). Others see it alive then and leave it the IPs it wins;
// claiming those it wins even if every node possibly cut off with it were alive answers them
// without taking an IP from a node that is merely slow to come back.
func (r *Renewals) Settling(now, seen time.Time) (Doubt, bool) {
	if _, settling := r.state(now, seen); settling {
		return Doubt{Since: r.since, Cut: r.cut, Until: r.sure, Slack: StaleAfter(r.Duration, r.Interval) - r.Interval,
			Alone: r.resumed.Add(r.Duration)}, true
	}
	return Doubt{}, false
}

func (r *Renewals) state(now, seen time.Time) (string, bool) {
	stall := max((r.Duration-r.Interval)/2, 100*time.Millisecond)
	switch {
	case r.lastRenew.IsZero():
		return "no heartbeat renewal has succeeded yet", false
	case r.failure != nil:
		return fmt.Sprintf("its last heartbeat renewal failed: %v", r.failure), false
	case !r.pendingSince.IsZero() && now.Sub(r.pendingSince) > stall:
		return fmt.Sprintf("its heartbeat renewal has been pending for %s", now.Sub(r.pendingSince).Round(time.Millisecond)), false
	case now.Sub(r.lastRenew) >= r.Duration:
		return fmt.Sprintf("its last heartbeat renewal succeeded %s ago, longer than the lease duration", now.Sub(r.lastRenew).Round(time.Millisecond)), false
	}
	if !r.stale && seen.Before(r.resumed) {
		return "its watch has not delivered its renewal since the API server became reachable again", false
	}
	fresh := seen
	if fresh.Before(r.first) {
		fresh = r.first
	}
	if age := now.Sub(fresh); age >= StaleAfter(r.Duration, r.Interval) {
		if !r.stale {
			r.stale, r.sure = true, time.Time{}
			r.troubleSince(fresh)
		}
		return fmt.Sprintf("its watch has not delivered its own heartbeat renewal for %s: its view of the heartbeats is stale", age.Round(time.Millisecond)), false
	}
	if r.stale {
		// Caught up: its watch delivered, in order, every write the others made meanwhile,
		// so it decides again at once. The grace after an outage is for others that were cut
		// off too; a stall of this node's watch cut off nobody, and a grace here would leave
		// unanswered, for a lease duration more, an IP the others hand to it meanwhile.
		r.stale = false
		if r.resumed.IsZero() {
			r.since, r.cut = time.Time{}, time.Time{}
		}
	}
	switch {
	case r.resumed.IsZero():
		return "", false
	case now.Before(r.settleEnd()):
		if r.sure.IsZero() {
			r.sure = now
		}
		return fmt.Sprintf("the other nodes have until %s to renew their heartbeats after this node's view became sure again", r.settleEnd().UTC().Format("15:04:05.000")), true
	}
	r.resumed, r.since, r.cut, r.sure = time.Time{}, time.Time{}, time.Time{}, time.Time{}
	return "", false
}

// Over reports whether a settle with this doubt may end at now although its two lease
// durations have not passed: the first has, and the outage was this node's alone (see
// Generous), so nothing is doubted any more. A node back from its own partition then decides,
// withdrawals included, as soon as the others had the time to renew, rather than answering,
// with the node that took them meanwhile, the IPs the others gave away for another lease
// duration (sim: the worst two-answer window of the faults set, 16.15 s, was 13.65 s with a
// settle of one lease duration).
func (d Doubt) Over(nodes []*framework.NodeInfo, now time.Time) bool {
	return !d.Alone.IsZero() && !d.Alone.After(now) && !shared(nodes, d.Self, d.Since, d.Cut)
}

// EndSettle ends the settle at now (see Doubt.Over); the node then decides from its own view.
func (r *Renewals) EndSettle(now time.Time) {
	if !r.resumed.IsZero() && !now.Before(r.resumed.Add(r.Duration)) {
		r.resumed, r.since, r.cut, r.sure = time.Time{}, time.Time{}, time.Time{}, time.Time{}
	}
}

// settleEnd is when the grace after an outage ends: two lease durations after the renewal
// that ended it. The others were cut off too, and one of them may have had a renewal in
// flight when the API server came back, hanging until its deadline (a lease duration), before
// its next one could go through and come back through this node's watch: the second lease
// duration is for that one (sim outage set: with one, a node whose first write after the
// outage hung had its IPs taken over in 39 of 40 seeds; in the lab a write hung ~2 s after a
// restart of kube-apiserver).
func (r *Renewals) settleEnd() time.Time { return r.resumed.Add(2 * r.Duration) }

// SettleAt is when Frozen can next turn "" without a renewal: the end of the grace after an
// outage; zero when it is not waiting for one.
func (r *Renewals) SettleAt() time.Time {
	if r.resumed.IsZero() {
		return time.Time{}
	}
	return r.settleEnd()
}

// Watched reports whether a speaker whose informers synced at syncedAt has, at now, watched
// the heartbeats for one lease duration. Until then it cannot tell a dead node from a live
// one: a heartbeat seen for the first time counts as alive for a lease duration (see
// framework.SpeakerInfo.ObservedAt), so a restarted speaker still takes a node that died
// before its restart as alive. It stays warming (no candidate for the others) until then,
// or the others would hand it IPs that it leaves to the dead node.
func Watched(syncedAt, now time.Time, leaseDuration time.Duration) bool {
	return !syncedAt.IsZero() && !now.Before(syncedAt.Add(leaseDuration))
}

// Generous is the view a settling node claims from (see Renewals.Settling). The heartbeats d
// doubts are alive at now: those that lapsed after d.Since and by d.Until (and now) whose last
// renewal was seen no later than d.Cut plus d.Slack. Such a node may only have been cut off
// like this one (its last renewal came before the outage began), so this node claims nothing
// it would win; a node that renewed after the outage began was not cut off by it, and its
// lapse counts.
//
// It doubts so for the whole settle (two lease durations) only when the outage was shared: at
// least half of the other nodes came back from it (framework.SpeakerInfo.Returned after
// d.Cut), as every node does after the API server's own outage, and then one whose first
// write hangs comes back late. Otherwise (a partition of this node alone) it doubts for the first lease
// duration only (until d.Alone), as long as the others needed to renew: a node that died just
// before this node's partition would otherwise leave its IPs, which the others hand to this
// node, unanswered for a lease duration more (sim seeds 153 and 215).
//
// A heartbeat that this node's watch delivered late (framework.SpeakerInfo.Paced), in the
// backlog before its view was sure again, expires at its pace: a node whose last renewals
// came in that backlog lapsed for the others a lease duration after they saw them, up to the
// length of the cut earlier than in this node's view, and they hand its IPs to this node,
// which would leave them unanswered until its own view caught up (sim seed 393: node-16
// crashed during node-13's partition and its IP went unanswered 3.45 s). Its pace also
// decides whether it is doubted: a node that renewed last just before the outage, which the
// outage kept from this node's watch until it ended, was cut off like this one (sim outage
// set, seed 1: judged by when it was delivered, it had renewed after the cut, lapsed at its
// pace, and lost its IPs to settling nodes in 79 of 100 seeds), but only if it lapsed by then:
// one whose pace still ran when the watch delivered it lapsed while the watch was delivering
// again, where a renewal would have shown, as the others saw it lapse (sim seed 153:
// node-12, renewed just before node-02's cut, delivered 0.35 s late and crashed). A heartbeat
// delivered after the view was sure again came from a watch that was up to date: it was slow
// to be written, not late, and the others saw it when this node did (a pace there took a node
// whose first write after an outage took 1.8 s for dead). Expiring early can only make this node claim,
// not withdraw, while it settles: a two-answer window no longer than the settle if the pace
// was early. Nodes are not modified; changed ones are copies.
func Generous(nodes []*framework.NodeInfo, d Doubt, now time.Time) []*framework.NodeInfo {
	until := now
	if !d.Until.IsZero() && d.Until.Before(now) {
		until = d.Until
	}
	doubting := d.Alone.After(now) || shared(nodes, d.Self, d.Since, d.Cut)
	var out []*framework.NodeInfo
	for i, n := range nodes {
		if n.Speaker == nil {
			continue
		}
		exp, sure := n.Speaker.Expiry(), until
		late := !n.Speaker.Paced.IsZero() && n.Speaker.Paced.Before(n.Speaker.ObservedAt) && !n.Speaker.ObservedAt.After(until)
		if late {
			exp = n.Speaker.Paced.Add(n.Speaker.LeaseDuration)
			if n.Speaker.ObservedAt.Before(sure) {
				sure = n.Speaker.ObservedAt
			}
		}
		doubted := doubting && exp.After(d.Since) && !exp.After(sure) && !exp.Add(-n.Speaker.LeaseDuration).After(d.Cut.Add(d.Slack))
		if !doubted && !late {
			continue
		}
		if out == nil {
			out = append([]*framework.NodeInfo(nil), nodes...)
		}
		c, si := *n, *n.Speaker
		if doubted {
			si.ObservedAt, si.RenewTime = now, now
		} else {
			si.ObservedAt = si.Paced
		}
		c.Speaker = &si
		out[i] = &c
	}
	if out == nil {
		return nodes
	}
	return out
}

// shared reports whether at least half of the nodes other than self that were alive when
// the trouble began (a heartbeat expiring after since) came back after cut
// (framework.SpeakerInfo.Returned): their renewals stopped for a lease duration too, so the
// outage that began at cut was the API server's, not self's alone. One other node's return is
// not enough: two nodes' partitions that merely overlap are not a shared outage (sim seed
// 1468: node-09's partition began while node-13's ran, and node-13 doubted a dead node for
// 5 s).
func shared(nodes []*framework.NodeInfo, self string, since, cut time.Time) bool {
	alive, back := 0, 0
	for _, n := range nodes {
		if n.Name == self || n.Speaker == nil || !n.Speaker.Expiry().After(since) {
			continue
		}
		alive++
		if n.Speaker.Returned.After(cut) {
			back++
		}
	}
	return back > 0 && 2*back >= alive
}
