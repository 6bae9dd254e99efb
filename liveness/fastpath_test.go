package liveness

import (
	"strings"
	"testing"
	"time"

	"github.com/herald-lb/herald/framework"
)

// FastPath counts a node the fast path lost as gone from then on, but only from the larger
// side of a cut; the smaller side counts itself gone. Nodes the fast path never heard of, and
// nodes whose heartbeat lapsed, are judged by their heartbeats.
func TestFastPath(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	now := t0.Add(time.Second)
	lost := t0.Add(500 * time.Millisecond)
	up, down := Reach{Reachable: true, Since: t0.Add(-time.Minute)}, Reach{Since: lost}
	lapsed := func(name string) *framework.NodeInfo {
		return heartbeatNode(name, t0.Add(-time.Minute), 10*time.Second)
	}
	withID := func(n *framework.NodeInfo, id string) *framework.NodeInfo { n.Speaker.FastPathID = id; return n }
	alive := func(names ...string) []*framework.NodeInfo {
		var out []*framework.NodeInfo
		for _, n := range names {
			out = append(out, heartbeatNode(n, t0, 10*time.Second))
		}
		return out
	}
	tests := []struct {
		name  string
		nodes []*framework.NodeInfo
		self  string
		reach map[string]Reach
		// gone are the nodes that must not be alive at now; the others must be.
		gone []string
		why  string
	}{
		{name: "no fast path: heartbeats only", nodes: alive("a", "b", "c"), self: "a"},
		{name: "all reachable", nodes: alive("a", "b", "c"), self: "a", reach: map[string]Reach{"b": up, "c": up}},
		{name: "one lost of three: gone", nodes: alive("a", "b", "c"), self: "a",
			reach: map[string]Reach{"b": up, "c": down}, gone: []string{"c"}, why: "failed the fast path's probes"},
		{name: "self cut off from two of three: counts itself gone", nodes: alive("a", "b", "c"), self: "a",
			reach: map[string]Reach{"b": down, "c": down}, gone: []string{"a"}, why: "reaches only 1 of the 3"},
		{name: "two of four each: the side with the first name keeps acting", nodes: alive("a", "b", "c", "d"), self: "a",
			reach: map[string]Reach{"b": up, "c": down, "d": down}, gone: []string{"c", "d"}},
		{name: "two of four each: the other side counts itself gone", nodes: alive("a", "b", "c", "d"), self: "c",
			reach: map[string]Reach{"a": down, "b": down, "d": up}, gone: []string{"c"}},
		{name: "one of two, with the first name: the other is gone", nodes: alive("a", "b"), self: "a",
			reach: map[string]Reach{"b": down}, gone: []string{"b"}},
		{name: "one of two, without it: itself gone", nodes: alive("a", "b"), self: "b",
			reach: map[string]Reach{"a": down}, gone: []string{"b"}},
		{name: "a node the fast path never heard of is judged by its heartbeat", nodes: alive("a", "b", "c"), self: "a",
			reach: map[string]Reach{"b": down}, gone: []string{"b"}},
		{name: "lapsed heartbeats are not members: the rest is the larger side",
			nodes: append(alive("a"), heartbeatNode("b", t0.Add(-time.Minute), 10*time.Second), heartbeatNode("c", t0.Add(-time.Minute), 10*time.Second)),
			self:  "a", reach: map[string]Reach{"b": down, "c": down}, gone: []string{"b", "c"}},
		{name: "reachable again", nodes: alive("a", "b", "c"), self: "a", reach: map[string]Reach{"b": up, "c": {Reachable: true, Since: now}}},
		{name: "lapsed but reached, the same process: held alive", nodes: append(alive("a", "b"), withID(lapsed("c"), "p1")), self: "a",
			reach: map[string]Reach{"b": up, "c": {Reachable: true, Since: t0, ID: "p1"}}},
		{name: "lapsed and reached, a restarted process: not held", nodes: append(alive("a", "b"), withID(lapsed("c"), "p1")), self: "a",
			reach: map[string]Reach{"b": up, "c": {Reachable: true, Since: t0, ID: "p2"}}, gone: []string{"c"}},
		{name: "lapsed, reached, no ID published: not held", nodes: append(alive("a", "b"), lapsed("c")), self: "a",
			reach: map[string]Reach{"b": up, "c": {Reachable: true, Since: t0}}, gone: []string{"c"}},
		{name: "the smaller side holds nobody", nodes: append(alive("a", "b", "d", "e"), withID(lapsed("c"), "p1")), self: "a",
			reach: map[string]Reach{"b": down, "c": {Reachable: true, Since: t0, ID: "p1"}, "d": down, "e": down}, gone: []string{"a", "c"}, why: "reaches only 2 of the 5"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := tt.nodes[0].Speaker.Unreachable
			got := FastPath(tt.nodes, tt.self, tt.reach, now)
			if !tt.nodes[0].Speaker.Unreachable.Equal(before) {
				t.Fatal("FastPath modified its input")
			}
			for _, n := range got {
				wantGone := contains(tt.gone, n.Name)
				if n.Speaker.AliveAt(now) == wantGone {
					t.Errorf("%s alive = %v, want %v (unreachable %s: %q)", n.Name, wantGone, !wantGone, n.Speaker.Unreachable, n.Speaker.UnreachableWhy)
				}
				if wantGone && n.Speaker.Unreachable.IsZero() && n.Speaker.AliveAt(t0) && n.Speaker.RenewTime.Equal(t0) {
					t.Errorf("%s gone without a fast-path verdict", n.Name)
				}
				if !n.Speaker.Unreachable.IsZero() && !strings.Contains(n.Speaker.UnreachableWhy, tt.why) {
					t.Errorf("%s why = %q, want it to contain %q", n.Name, n.Speaker.UnreachableWhy, tt.why)
				}
				if !n.Speaker.Unreachable.IsZero() && !n.Speaker.Unreachable.Equal(lost) {
					t.Errorf("%s unreachable since %s, want %s (when the fast path lost it)", n.Name, n.Speaker.Unreachable, lost)
				}
			}
		})
	}
}

func contains(names []string, name string) bool {
	for _, n := range names {
		if n == name {
			return true
		}
	}
	return false
}
