//go:build e2e

package e2e

import (
	"slices"
	"strings"
	"testing"
	"time"
)

// S1: for every announced IP, the node named by its ServiceL2Status is the node whose MAC
// answers arping from the client, and herald explain names the same winner.
func TestE2EStatusARPAndExplainAgree(t *testing.T) {
	c := newCluster(t, clusterOptions{nodes: 3})
	svcs := []string{"web-a", "web-b", "web-c", "web-d"}
	for _, s := range svcs {
		c.createService(serviceOptions{name: s})
	}
	for _, s := range svcs {
		ip := c.waitIP(s)
		node := c.waitAnnouncer(s, 20*time.Second)
		c.waitARPOwner(ip, node, 10*time.Second)
		exp := c.explain(s)
		if len(exp.Units) != 1 {
			t.Fatalf("%s: explain gave %d units: %+v", s, len(exp.Units), exp)
		}
		d := exp.Units[0]
		if len(d.Selected) != 1 || d.Selected[0] != node {
			t.Fatalf("%s (%s): explain selects %v, ServiceL2Status and arping say %s; summary %q", s, ip, d.Selected, node, d.Summary)
		}
		if !strings.Contains(d.Summary, "3/3 nodes can announce "+ip.String()) {
			t.Fatalf("%s: summary %q", s, d.Summary)
		}
		// A cold start may move an IP once (the first speaker ready takes it, the others
		// join): some Event names the node that answers.
		if evs := c.events(s, "AnnouncingNodeChanged"); !slices.ContainsFunc(evs, func(e string) bool { return strings.Contains(e, "announced by node "+node+" ") }) {
			t.Fatalf("%s: AnnouncingNodeChanged events %v", s, evs)
		}
	}
}

// S2: NotReady nodes never announce; patching the announcing node NotReady moves the IP;
// herald explain shows the NotReady nodes as not ready.
func TestE2ENotReadyNodesNeverAnnounceAndFailover(t *testing.T) {
	c := newCluster(t, clusterOptions{nodes: 6, notReady: []int{4, 5}})
	notReady := []string{c.nodes[4], c.nodes[5]}
	svcs := []string{"s2-a", "s2-b", "s2-c", "s2-d", "s2-e", "s2-f"}
	for _, s := range svcs {
		c.createService(serviceOptions{name: s})
	}
	owners := map[string]string{}
	for _, s := range svcs {
		ip := c.waitIP(s)
		node := c.waitAnnouncer(s, 20*time.Second)
		for _, bad := range notReady {
			if node == bad {
				t.Fatalf("%s is announced by NotReady node %s", s, node)
			}
		}
		c.waitARPOwner(ip, node, 10*time.Second)
		owners[s] = node
		d := c.explain(s).Units[0]
		if !strings.Contains(d.Summary, "4/6 nodes can announce") || !strings.Contains(d.Summary, "2 node(s) not ready") {
			t.Fatalf("%s: summary %q", s, d.Summary)
		}
		for _, n := range d.Nodes {
			isBad := n.Name == notReady[0] || n.Name == notReady[1]
			if isBad != (n.Rejection != nil && n.Rejection.Plugin == "NodeReady" && strings.Contains(strings.Join(n.Rejection.Reasons, ","), "not ready")) {
				t.Fatalf("%s: node %s rejection %+v", s, n.Name, n.Rejection)
			}
		}
	}
	// Fail the announcing node of the first Service.
	victim := owners[svcs[0]]
	ip := c.waitIP(svcs[0])
	start := time.Now()
	c.setReady(victim, false)
	c.waitARPOwnerNot(ip, victim, 10*time.Second)
	took := time.Since(start)
	next := c.waitAnnouncer(svcs[0], 10*time.Second, victim)
	c.waitARPOwner(ip, next, 5*time.Second)
	t.Logf("failover after NotReady patch: client sees %s's MAC after %s", next, took)
	for _, bad := range append(notReady, victim) {
		if next == bad {
			t.Fatalf("moved to NotReady node %s", next)
		}
	}
	// Every Service the victim announced moved; no other Service moved.
	for _, s := range svcs {
		node := c.waitAnnouncer(s, 10*time.Second, victim)
		if owners[s] != victim && node != owners[s] {
			t.Fatalf("%s moved from %s to %s although its node stayed ready", s, owners[s], node)
		}
	}
	// The hand-over is not a conflict: the old node may hear the new one's gratuitous ARP
	// before it withdraws, and must not report a live Herald peer as a foreign claim.
	time.Sleep(time.Second) // Events are recorded asynchronously
	for _, s := range svcs {
		if evs := c.events(s, "AddressConflict"); len(evs) > 0 {
			t.Errorf("%s: AddressConflict Events after a hand-over between Herald nodes: %v", s, evs)
		}
	}
}

// waitARPOwnerNot waits until arping gets exactly one answer, from a node other than node.
func (c *cluster) waitARPOwnerNot(ip interface{ String() string }, node string, timeout time.Duration) {
	c.t.Helper()
	eventually(c.t, timeout, func() (bool, string) {
		macs := c.arping(mustAddr(ip.String()), 1)
		if len(macs) != 1 {
			return false, "MACs " + strings.Join(macs, ",")
		}
		owner := c.macOwner(macs[0])
		return owner != "" && owner != node, "owner " + owner
	})
}
