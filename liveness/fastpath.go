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
}

// FastPath is the view a node decides from once its fast path has spoken: the nodes it finds
// gone count as lapsed from when it found them so (framework.SpeakerInfo.Unreachable), well
// before their heartbeats lapse. Nodes are not modified; changed ones are copies.
//
// The fast path and the heartbeats can disagree, and each node has its own fast path, so the
// rule is built so that they cannot disagree for long:
//   - Only nodes whose heartbeat is alive, and which the fast path has heard of, count
//     (members). A heartbeat that lapses excludes a node whatever the fast path says; a node
//     the fast path never heard of (starting, or without a fast path) is judged by its
//     heartbeat alone.
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
		if !n.Speaker.AliveAt(now) {
			continue
		}
		r, known := reach[n.Name]
		switch {
		case n.Name == self:
		case !known:
			continue
		case !r.Reachable:
			members[n.Name] = true
			lost = later(lost, r.Since)
			continue
		}
		members[n.Name] = true
		side = append(side, n.Name)
	}
	if len(side) == len(members) {
		return nodes
	}
	larger := 2*len(side) > len(members) ||
		2*len(side) == len(members) && slices.Contains(side, slices.Min(slices.Collect(maps.Keys(members))))
	out := slices.Clone(nodes)
	for i, n := range nodes {
		r := reach[n.Name]
		switch {
		case !members[n.Name]:
		case larger && n.Name != self && !r.Reachable:
			out[i] = unreachable(n, r.Since, "its speaker failed the fast path's probes from this node and the nodes it asked")
		case !larger && n.Name == self:
			out[i] = unreachable(n, lost, fmt.Sprintf("this node reaches only %d of the %d live speakers on the fast path: "+
				"it is on the smaller side of a cut, which the others take for gone", len(side), len(members)))
		}
	}
	return out
}

func unreachable(n *framework.NodeInfo, since time.Time, why string) *framework.NodeInfo {
	c, si := *n, *n.Speaker
	si.Unreachable, si.UnreachableWhy = since, why
	c.Speaker = &si
	return &c
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}
