package liveness

import (
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/herald-lb/herald/framework"
)

// Reach is what this node's fast path (package fastpath) knows of another node: whether its
// speaker answers the probes, and since when, on this node's clock.
type Reach struct {
	Reachable bool
	Since     time.Time
	// ID is the process the fast path reaches (its fastpath ID); a reachable node is held
	// alive past its heartbeat only while it is the process that wrote that heartbeat
	// (framework.SpeakerInfo.FastPathID).
	ID string
}

// FastPath is the view a node decides from once its fast path has spoken. Nodes are not
// modified; changed ones are copies.
//   - A node the fast path finds gone counts as lapsed from when it found it so
//     (framework.SpeakerInfo.Unreachable), well before its heartbeat lapses: sub-second
//     failover after a crash, without frequent heartbeat writes.
//   - A node whose heartbeat lapsed while the fast path still reaches the same process
//     (Reach.ID is the heartbeat's framework.SpeakerInfo.FastPathID) is held alive for the
//     units it announces (framework.SpeakerInfo.Held): it lost the API server, not the
//     segment, and keeps answering them, frozen, so nobody takes them; it takes no other,
//     since a frozen node claims nothing. A slow heartbeat write moves nothing either. A
//     restarted process has a new ID that its heartbeat does not show yet, and is not held.
//
// The fast path and the heartbeats can disagree, and each node has its own fast path, so the
// rule is built so that they cannot disagree for long:
//   - Members are the nodes the fast path has heard of whose heartbeat is alive or which it
//     reaches, and this node; a node it never heard of (starting, or without a fast path) is
//     judged by its heartbeat alone.
//   - This node acts on the fast path only from the larger side: when it reaches, itself
//     included, more than half of the members, or exactly half with the member whose name
//     sorts first. Every node reachable from it reaches, by the same count, the same side
//     (memberlist's verdicts spread by gossip within a few probe intervals).
//   - From the smaller side it counts itself as unreachable (and the others by their
//     heartbeats): a node cut off from the segment is gone for everyone else, and one whose
//     probes alone are blocked answers for IPs that the larger side hands out meanwhile. It
//     withdraws rather than answer with them, for as long as the cut lasts, and comes back
//     as soon as the fast path reaches the others again. If the others really died their
//     heartbeats lapse, they stop being members, and it is the larger side again, alone.
//
// So every node reaches the same decision from the same facts once the gossip has spread, and
// no two sides of a cut both keep an IP: the smaller side holds nothing. The price is that a
// node left alone, or one of two, fails over at the heartbeats' pace, not the fast path's.
func FastPath(nodes []*framework.NodeInfo, self string, reach map[string]Reach, now time.Time) []*framework.NodeInfo {
	if len(reach) == 0 {
		return nodes
	}
	members := map[string]bool{}
	var side []string
	var lost time.Time
	for _, n := range nodes {
		if n.Speaker == nil {
			continue
		}
		r, known := reach[n.Name]
		switch {
		case n.Name == self, known && r.Reachable:
			side = append(side, n.Name)
		case known && n.Speaker.AliveAt(now):
			lost = later(lost, r.Since)
		default:
			continue
		}
		members[n.Name] = true
	}
	larger := 2*len(side) > len(members) ||
		2*len(side) == len(members) && slices.Contains(side, slices.Min(slices.Collect(maps.Keys(members))))
	var out []*framework.NodeInfo
	set := func(i int, n *framework.NodeInfo) {
		if out == nil {
			out = slices.Clone(nodes)
		}
		out[i] = n
	}
	for i, n := range nodes {
		r := reach[n.Name]
		switch {
		case !members[n.Name]:
		case !larger:
			if n.Name == self {
				set(i, unreachable(n, lost, fmt.Sprintf("this node reaches only %d of the %d live speakers on the fast path: "+
					"it is on the smaller side of a cut, which the others take for gone", len(side), len(members))))
			}
		case n.Name == self:
		case !r.Reachable:
			set(i, unreachable(n, r.Since, "its speaker failed the fast path's probes from this node and the nodes it asked"))
		case !n.Speaker.AliveAt(now) && r.ID != "" && r.ID == n.Speaker.FastPathID:
			set(i, held(n, now))
		}
	}
	if out == nil {
		return nodes
	}
	return out
}

func unreachable(n *framework.NodeInfo, since time.Time, why string) *framework.NodeInfo {
	c, si := *n, *n.Speaker
	si.Unreachable, si.UnreachableWhy = since, why
	c.Speaker = &si
	return &c
}

// held is n alive at now for its lease duration, its heartbeat's content as last seen, for
// the units it announces only (framework.SpeakerInfo.Held).
func held(n *framework.NodeInfo, now time.Time) *framework.NodeInfo {
	c, si := *n, *n.Speaker
	si.ObservedAt, si.Held = now, true
	c.Speaker = &si
	return &c
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}
