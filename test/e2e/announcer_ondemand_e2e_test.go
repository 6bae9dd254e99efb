//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/herald-lb/herald/heartbeat"
	"github.com/herald-lb/herald/test/frr"
)

// Announcers start on demand (issue 13 defect 9, issue 14): with the default configuration
// a node runs the ARP announcer only once it announces an IPv4 address, never an NDP one
// without an IPv6 address, and the BGP announcer once a BGPPeer selects it.

// waitHeartbeat waits until the node's speaker has written its heartbeat (it has started).
func (c *cluster) waitHeartbeat(node string) {
	c.t.Helper()
	eventually(c.t, 20*time.Second, func() (bool, string) {
		_, err := c.client.CoordinationV1().Leases(speakerNamespace).Get(context.Background(), heartbeat.LeaseName(node), metav1.GetOptions{})
		return err == nil, fmt.Sprintf("heartbeat of %s: %v", node, err)
	})
}

func TestE2EAnnouncersStartOnDemandAndStopWhenIdle(t *testing.T) {
	c := newCluster(t, clusterOptions{nodes: 1, idleTimeout: "2s"})
	node := c.nodes[0]
	sp := c.speaker(node)
	c.waitHeartbeat(node)
	time.Sleep(time.Second)
	if pids := announcerPIDs(t, sp.PID(), ""); len(pids) != 0 {
		t.Errorf("with nothing to announce the speaker runs announcers %v", pids)
	}

	for round := 0; round < 2; round++ {
		name := fmt.Sprintf("od-%d", round)
		c.createService(serviceOptions{name: name})
		ip := c.waitIP(name)
		c.waitARPOwner(ip, node, 10*time.Second)
		if pids := announcerPIDs(t, sp.PID(), "arp"); len(pids) != 1 {
			t.Errorf("round %d: ARP announcers %v, want one", round, pids)
		}
		for _, kind := range []string{"ndp", "bgp"} {
			if pids := announcerPIDs(t, sp.PID(), kind); len(pids) != 0 {
				t.Errorf("round %d: an IPv4-only node without BGPPeers runs %s announcers %v", round, kind, pids)
			}
		}
		if err := c.client.CoreV1().Services(c.ns).Delete(context.Background(), name, metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		deleted := time.Now()
		eventually(t, 20*time.Second, func() (bool, string) {
			pids := announcerPIDs(t, sp.PID(), "")
			return len(pids) == 0, fmt.Sprintf("announcers %v still run with nothing to announce (idleTimeout 2s)", pids)
		})
		t.Logf("round %d: the ARP announcer stopped %s after its last Service was deleted", round, time.Since(deleted).Round(100*time.Millisecond))
	}
}

// With the default configuration (no announcers listed), a BGPPeer makes the speaker start
// the BGP announcer and advertise.
func TestE2EBGPAnnouncerStartsForPeersByDefault(t *testing.T) {
	c := newCluster(t, clusterOptions{nodes: 1})
	sp := c.speaker(c.nodes[0])
	c.waitHeartbeat(c.nodes[0])
	time.Sleep(time.Second)
	if pids := announcerPIDs(t, sp.PID(), "bgp"); len(pids) != 0 {
		t.Errorf("without a BGPPeer the speaker runs BGP announcers %v", pids)
	}
	bc := &bgpCluster{cluster: c, pool: c.lab.Prefix + "bgp"}
	bc.router = frr.Start(t, c.lab.Router.Netns, frr.Config{ASN: bgpASN, RouterID: c.lab.Router.IPv4,
		Neighbors: []frr.Neighbor{{Address: c.lab.Nodes[0].IPv4, ASN: bgpASN, HoldTime: bgpHoldTime}}})
	bc.createBGPConfig(bgpOptions{})
	c.createService(serviceOptions{name: "bgp-default", ip: "203.0.113.20"})
	ip := c.waitIP("bgp-default")
	bc.waitNexthops(ip, 40*time.Second, 0)
	if pids := announcerPIDs(t, sp.PID(), "bgp"); len(pids) != 1 {
		t.Errorf("BGP announcers %v, want one", pids)
	}
	if pids := announcerPIDs(t, sp.PID(), "ndp"); len(pids) != 0 {
		t.Errorf("an IPv4-only node runs NDP announcers %v", pids)
	}
}
