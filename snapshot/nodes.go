package snapshot

import (
	"maps"
	"slices"
	"strings"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"

	"github.com/herald-lb/herald/framework"
	"github.com/herald-lb/herald/heartbeat"
)

// Nodes and their speakers' heartbeats: a change rebuilds that node's NodeInfo only.

// SetNode adds or updates a Node.
func (b *Builder) SetNode(n *corev1.Node) {
	b.mu.Lock()
	b.nodes[n.Name] = NodeInfo(n)
	b.remerge(n.Name)
	b.done(Change{All: true})
}

// DeleteNode removes a Node.
func (b *Builder) DeleteNode(name string) {
	b.mu.Lock()
	delete(b.nodes, name)
	b.remerge(name)
	b.done(Change{All: true})
}

// SetLease adds or updates a Lease; Leases that are not speaker heartbeats are ignored. A
// heartbeat with malformed interfaces keeps its liveness (see heartbeat.Decode); the problem
// is reported by Errors.
func (b *Builder) SetLease(l *coordinationv1.Lease) {
	if !heartbeat.IsHeartbeat(l) {
		return
	}
	key := "Lease " + l.Namespace + "/" + l.Name
	hb, err := heartbeat.Decode(l)
	b.mu.Lock()
	b.setErr(key, err)
	if old, ok := b.leaseNode[l.Namespace+"/"+l.Name]; ok && (hb == nil || old != hb.NodeName) {
		delete(b.speakers, old)
		delete(b.leaseNode, l.Namespace+"/"+l.Name)
		b.remerge(old)
	}
	change := Change{All: true}
	if hb != nil {
		info := hb.SpeakerInfo()
		now := b.now()
		info.ObservedAt = observed(b.speakers[hb.NodeName], info, now)
		info.Paced = paced(b.speakers[hb.NodeName], info)
		info.Returned = returned(b.speakers[hb.NodeName], info)
		if renewalOnly(b.speakers[hb.NodeName], info, now) {
			change.All = false
		}
		b.speakers[hb.NodeName] = info
		b.leaseNode[l.Namespace+"/"+l.Name] = hb.NodeName
		b.remerge(hb.NodeName)
	}
	b.done(change)
}

// observed is when this builder saw the heartbeat next change: now when its renew time
// differs from prev's (a renewal, whatever the writer's clock says: one running backwards
// renews too), else when prev was seen (a resync or an unrelated update of the same renewal).
// A heartbeat seen for the first time counts from now: a (re)started speaker takes every
// node as alive for one lease duration, as client-go's leader election does.
func observed(prev, next *framework.SpeakerInfo, now time.Time) time.Time {
	if prev != nil && prev.RenewTime.Equal(next.RenewTime) && !prev.ObservedAt.IsZero() {
		return prev.ObservedAt
	}
	return now
}

// lateAfter is how much later than its pace (see framework.SpeakerInfo.Paced) a renewal must
// arrive to count as delivered late: more than a watch's ordinary jitter, so a prompt watch
// keeps resetting the pace to what it observed and no drift between two clocks' rates adds up.
const lateAfter = 250 * time.Millisecond

// paced is next's framework.SpeakerInfo.Paced, next.ObservedAt being set. The gap between two
// renew times of one writer is on one clock, so skew does not enter it. A gap of a lease
// duration or more sets no pace: the writer's own renewals stopped meanwhile (it was cut off
// or restarted), so how long its next write took is unknown, and a write that is slow after
// an outage is not a late delivery (sim outage set, seed 99: paced from before the outage, a
// renewal that took 1.6 s to write made a settling node take its writer for dead).
func paced(prev, next *framework.SpeakerInfo) time.Time {
	if prev == nil || prev.ObservedAt.IsZero() {
		return time.Time{}
	}
	if prev.RenewTime.Equal(next.RenewTime) {
		return prev.Paced
	}
	gap := next.RenewTime.Sub(prev.RenewTime)
	if gap <= 0 || gap >= next.LeaseDuration {
		return time.Time{}
	}
	base := prev.ObservedAt
	if !prev.Paced.IsZero() {
		base = prev.Paced
	}
	if at := base.Add(gap); at.Before(next.ObservedAt.Add(-lateAfter)) {
		return at
	}
	return time.Time{}
}

// returned is next's framework.SpeakerInfo.Returned, next.ObservedAt being set: when a
// renewal follows a gap of a lease duration or more in the writer's renew times (one clock),
// the time it was seen; else prev's. A restarted speaker's first renewals also follow a gap,
// but say its announcers are warming: a restart is not a return.
func returned(prev, next *framework.SpeakerInfo) time.Time {
	if prev == nil {
		return time.Time{}
	}
	gap := next.RenewTime.Sub(prev.RenewTime)
	if next.LeaseDuration > 0 && gap >= next.LeaseDuration && !warming(next) {
		return next.ObservedAt
	}
	return prev.Returned
}

// warming reports whether the speaker says one of its announcers is warming (it has just
// started).
func warming(s *framework.SpeakerInfo) bool {
	for _, a := range s.Announcers {
		if a.State == framework.AnnouncerWarming {
			return true
		}
	}
	return false
}

// renewalOnly reports whether next differs from prev only by a later renewal of a heartbeat
// that was alive at now, or by the reasons it gives for its announcers' states. Such a change
// changes no decision (plugins read an announcer's state; its reason is detail for people), so
// it must not re-run every unit: with 1,000 speakers renewing every few seconds that would keep
// a core busy for nothing, and a starting speaker, whose reasons change twice while it warms
// up, would make every speaker run two full passes more. The speaker's expiry timer still
// re-runs every unit when a heartbeat lapses.
func renewalOnly(prev, next *framework.SpeakerInfo, now time.Time) bool {
	return prev != nil && prev.AliveAt(now) &&
		prev.Draining == next.Draining && prev.LeaseDuration == next.LeaseDuration &&
		!next.RenewTime.Before(prev.RenewTime) &&
		slices.EqualFunc(prev.Interfaces, next.Interfaces, equalInterface) &&
		maps.EqualFunc(prev.Announcers, next.Announcers, sameState) && (prev.Announcers == nil) == (next.Announcers == nil)
}

func sameState(a, b framework.AnnouncerHealth) bool { return a.State == b.State }

func equalInterface(a, b framework.Interface) bool {
	return a.Name == b.Name && a.Up == b.Up && a.MAC == b.MAC && slices.Equal(a.Prefixes, b.Prefixes)
}

// DeleteLease removes a Lease.
func (b *Builder) DeleteLease(namespace, name string) {
	b.mu.Lock()
	delete(b.errs, "Lease "+namespace+"/"+name)
	if node, ok := b.leaseNode[namespace+"/"+name]; ok {
		delete(b.speakers, node)
		delete(b.leaseNode, namespace+"/"+name)
		b.remerge(node)
	}
	b.done(Change{All: true})
}

// Snapshot returns an immutable snapshot of the nodes taken at `at` (the time plugins compare
// heartbeats with).
func (b *Builder) Snapshot(at time.Time) *framework.Snapshot {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.nodeList == nil {
		b.nodeList = make([]*framework.NodeInfo, 0, len(b.merged))
		for _, n := range b.merged {
			b.nodeList = append(b.nodeList, n)
		}
		// Sorted here once, so NewSnapshot's sort meets sorted input on every later call.
		slices.SortFunc(b.nodeList, func(x, y *framework.NodeInfo) int { return strings.Compare(x.Name, y.Name) })
	}
	return framework.NewSnapshot(at, b.nodeList)
}

// remerge rebuilds one node's NodeInfo from its Node and heartbeat; NodeInfos handed out
// earlier are never modified.
func (b *Builder) remerge(name string) {
	b.nodeList = nil
	n, ok := b.nodes[name]
	if !ok {
		delete(b.merged, name)
		return
	}
	info := *n
	info.Speaker = b.speakers[name]
	b.merged[name] = &info
}

// RenewTime is the renew time of the node's heartbeat as the builder has seen it (zero when it
// has seen none): the speaker checks that its watch caught up with its own renewals.
func (b *Builder) RenewTime(node string) time.Time {
	b.mu.Lock()
	defer b.mu.Unlock()
	if si := b.speakers[node]; si != nil {
		return si.RenewTime
	}
	return time.Time{}
}
