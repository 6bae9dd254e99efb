// Package liveness holds the speaker's liveness rules as pure pieces on an injected clock, so
// the speaker and the deterministic simulation (package liveness/sim) run the same code:
//
//   - Renewals: whether this node may act on its view, from how its own heartbeat renewals
//     went (the freeze);
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
}

// Started records that a renewal started at now.
func (r *Renewals) Started(now time.Time) { r.pendingSince = now }

// Finished records the end of the renewal in flight; err is its error (nil: it succeeded,
// and Succeeded was called).
func (r *Renewals) Finished(err error) {
	r.pendingSince = time.Time{}
	if err != nil {
		r.failure = err
	}
}

// Succeeded records a successful renewal with the renew time it wrote (the node's clock) and
// the renew time as the API server stored it (microseconds: what the watch delivers).
func (r *Renewals) Succeeded(renewTime, stored time.Time) {
	if !r.lastRenew.IsZero() && (r.failure != nil || renewTime.Sub(r.lastRenew) >= r.Duration) {
		r.resumed = stored
	}
	r.lastRenew = renewTime
	r.failure = nil
}

// Frozen says why this node must neither claim nor withdraw at now ("" when it may), given
// the renew time of its own heartbeat as its snapshot shows it (seen).
//
// Another node's heartbeat lapsing is evidence that node died only if this node could reach
// the API server meanwhile: when the API server is down every heartbeat lapses, and the node
// whose last renewal happened to be the latest would otherwise claim everyone's IPs. So the
// node freezes (keeps announcing what it has, claims nothing, withdraws nothing) from its
// first failed renewal, or one pending longer than half the margin between the renew interval
// and the lease duration, until it is sure of its view again: a renewal succeeded, its own
// watch has delivered that renewal (so everything written before it, the others' renewals
// included, has been seen), and one lease duration has passed since, in which the others,
// also cut off until then, had their chance to renew. A node whose own renewals keep
// succeeding never freezes, so failover when only other nodes' heartbeats lapse is as fast
// as before.
func (r *Renewals) Frozen(now, seen time.Time) string {
	stall := max((r.Duration-r.Interval)/2, 100*time.Millisecond)
	switch {
	case r.lastRenew.IsZero():
		return "no heartbeat renewal has succeeded yet"
	case r.failure != nil:
		return fmt.Sprintf("its last heartbeat renewal failed: %v", r.failure)
	case !r.pendingSince.IsZero() && now.Sub(r.pendingSince) > stall:
		return fmt.Sprintf("its heartbeat renewal has been pending for %s", now.Sub(r.pendingSince).Round(time.Millisecond))
	case now.Sub(r.lastRenew) >= r.Duration:
		return fmt.Sprintf("its last heartbeat renewal succeeded %s ago, longer than the lease duration", now.Sub(r.lastRenew).Round(time.Millisecond))
	case r.resumed.IsZero():
		return ""
	case seen.Before(r.resumed):
		return "its watch has not delivered its renewal since the API server became reachable again"
	case now.Before(r.resumed.Add(r.Duration)):
		return fmt.Sprintf("the other nodes have until %s to renew their heartbeats after the API server became reachable again", r.resumed.Add(r.Duration).UTC().Format("15:04:05.000"))
	}
	r.resumed = time.Time{}
	return ""
}

// SettleAt is when Frozen can next turn "" without a renewal: the end of the grace after an
// outage; zero when it is not waiting for one.
func (r *Renewals) SettleAt() time.Time {
	if r.resumed.IsZero() {
		return time.Time{}
	}
	return r.resumed.Add(r.Duration)
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
