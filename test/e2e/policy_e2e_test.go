//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"os/exec"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// S3: with externalTrafficPolicy Local only a node with a ready local endpoint announces, and
// the announcement follows the endpoint when it moves.
func TestE2ELocalTrafficPolicyFollowsEndpoint(t *testing.T) {
	c := newCluster(t, clusterOptions{nodes: 3})
	c.createService(serviceOptions{name: "local", local: true, endpoints: []int{1}})
	ip := c.waitIP("local")
	if node := c.waitAnnouncer("local", 20*time.Second); node != c.nodes[1] {
		t.Fatalf("announced by %s, the only endpoint is on %s", node, c.nodes[1])
	}
	c.waitARPOwner(ip, c.nodes[1], 10*time.Second)
	c.setEndpoints("local", []int{2})
	if node := c.waitAnnouncer("local", 10*time.Second, c.nodes[1]); node != c.nodes[2] {
		t.Fatalf("after the endpoint moved to %s, announced by %s", c.nodes[2], node)
	}
	c.waitARPOwner(ip, c.nodes[2], 10*time.Second)
	d := c.explain("local").Units[0]
	if !strings.Contains(d.Summary, "1/3 nodes can announce") {
		t.Fatalf("summary %q", d.Summary)
	}
	// No serving endpoint anywhere: nobody announces, and the status object goes away.
	c.setEndpoints("local", nil)
	eventually(t, 10*time.Second, func() (bool, string) {
		st := c.l2Statuses("local")
		return len(st) == 0, fmt.Sprintf("%d ServiceL2Status left", len(st))
	})
	eventually(t, 10*time.Second, func() (bool, string) {
		macs := c.arping(ip, 1)
		return len(macs) == 0, fmt.Sprintf("still answered by %v", macs)
	})
}

// Two Services sharing one IP are announced by one node, and both status objects name it.
func TestE2ESharedIPOneNode(t *testing.T) {
	c := newCluster(t, clusterOptions{nodes: 3})
	c.createService(serviceOptions{name: "dns-tcp", ip: "192.0.2.120", sharingKey: "dns", port: 53})
	c.createService(serviceOptions{name: "dns-udp", ip: "192.0.2.120", sharingKey: "dns", port: 5353})
	ip := c.waitIP("dns-tcp")
	if ip2 := c.waitIP("dns-udp"); ip2 != ip {
		t.Fatalf("sharing Services got %s and %s", ip, ip2)
	}
	a := c.waitAnnouncer("dns-tcp", 20*time.Second)
	b := c.waitAnnouncer("dns-udp", 20*time.Second)
	if a != b {
		t.Fatalf("shared IP %s announced by %s (dns-tcp) and %s (dns-udp)", ip, a, b)
	}
	c.waitARPOwner(ip, a, 10*time.Second)
	// Fail that node: both move together.
	c.setReady(a, false)
	na := c.waitAnnouncer("dns-tcp", 10*time.Second, a)
	nb := c.waitAnnouncer("dns-udp", 10*time.Second, a)
	if na != nb {
		t.Fatalf("after failover: %s and %s", na, nb)
	}
	c.waitARPOwner(ip, na, 10*time.Second)
	if exp := c.explain("dns-udp"); len(exp.Units) != 1 || len(exp.Units[0].Services) != 2 {
		t.Fatalf("explain does not show one unit with both Services: %+v", exp.Units)
	}
}

// S5: a Service of another loadBalancerClass is left alone; a foreign ARP claim on a Herald
// IP produces an Event and a metric naming the foreign MAC.
func TestE2EOtherClassAndForeignClaim(t *testing.T) {
	c := newCluster(t, clusterOptions{nodes: 2})
	other := c.createService(serviceOptions{name: "kube-vip-svc", class: "kube-vip.io/kube-vip-class"})
	// The other implementation gives it an address from the same range.
	other.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{{IP: "192.0.2.139"}}
	if _, err := c.client.CoreV1().Services(c.ns).UpdateStatus(context.Background(), other, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	c.createService(serviceOptions{name: "mine"})
	ip := c.waitIP("mine")
	node := c.waitAnnouncer("mine", 20*time.Second)
	c.waitARPOwner(ip, node, 10*time.Second)
	if st := c.l2Statuses("kube-vip-svc"); len(st) != 0 {
		t.Fatalf("Herald wrote status for another class's Service: %+v", st)
	}
	if macs := c.arping(netip.MustParseAddr("192.0.2.139"), 2); len(macs) != 0 {
		t.Fatalf("another class's IP answered by %v", macs)
	}
	if exp := c.explain("kube-vip-svc"); !strings.Contains(exp.Message, "not handled") || len(exp.Units) != 0 {
		t.Fatalf("explain of another class: %+v", exp)
	}

	// A foreign responder: the router claims our IP with gratuitous ARPs.
	router := c.lab.Router
	router.Run(t, "ip", "addr", "add", ip.String()+"/32", "dev", router.Iface)
	router.Run(t, "arping", "-U", "-c", "3", "-I", router.Iface, ip.String())
	foreign := strings.ToLower(router.MAC.String())
	eventually(t, 10*time.Second, func() (bool, string) {
		evs := c.events("mine", "AddressConflict")
		for _, e := range evs {
			if strings.Contains(strings.ToLower(e), foreign) {
				return true, ""
			}
		}
		return false, fmt.Sprintf("AddressConflict events %v, want one naming %s", evs, foreign)
	})
	metrics := c.lab.Nodes[c.nodeIndex(node)].Run(t, "curl", "-s", "--max-time", "5", "http://127.0.0.1:7472/metrics")
	// The counter has no label from the wire (a MAC-spraying neighbour would make unbounded
	// series); the MAC is in the Event above.
	want := `herald_speaker_address_conflicts_total{announcer="arp"}`
	if !strings.Contains(metrics, want) || strings.Contains(metrics, foreign) {
		t.Fatalf("metrics of %s: want %s and no series naming %s", node, want, foreign)
	}
	// Herald keeps announcing (it reports, it does not fight or give up).
	if st := c.l2Statuses("mine"); len(st) != 1 || st[0].Status.Node != node {
		t.Fatalf("status after the conflict: %+v", st)
	}
}

// A passive foreign responder: a host whose kernel holds the Service's IP and only answers
// ARP (no gratuitous ARP, so nothing announces it). The announcing node's probe finds it: an
// AddressConflict Event naming its MAC within 10s, the same finding in `herald diag`, and
// Herald keeps announcing.
func TestE2EPassiveForeignResponderReported(t *testing.T) {
	c := newCluster(t, clusterOptions{nodes: 2})
	foreign := c.lab.Router
	const ip = "192.0.2.130"
	foreign.Run(t, "sysctl", "-qw", "net.ipv4.conf.all.arp_notify=0", "net.ipv4.conf."+foreign.Iface+".arp_notify=0")
	foreign.Run(t, "ip", "addr", "add", ip+"/32", "dev", foreign.Iface)
	mac := strings.ToLower(foreign.MAC.String())

	c.createService(serviceOptions{name: "quiet", ip: ip})
	node := c.waitAnnouncer("quiet", 20*time.Second)
	announced := time.Now()
	eventually(t, 10*time.Second, func() (bool, string) {
		evs := c.events("quiet", "AddressConflict")
		for _, e := range evs {
			if strings.Contains(strings.ToLower(e), mac) {
				return true, ""
			}
		}
		return false, fmt.Sprintf("AddressConflict events %v, want one naming %s", evs, mac)
	})
	t.Logf("passive foreign responder reported %s after the status named %s", time.Since(announced), node)

	// herald diag shows it (it exits 1 on any critical finding; the lab has no speaker pods,
	// so read the report rather than the status).
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, _ := exec.CommandContext(ctx, c.herald, "diag", "--json", "--kubeconfig", c.env.Kubeconfig).Output()
	var report struct {
		Findings []struct {
			Check   string `json:"check"`
			Message string `json:"message"`
			Object  struct {
				Namespace, Name string
			} `json:"object"`
		} `json:"findings"`
	}
	if err := json.Unmarshal(out, &report); err != nil {
		t.Fatalf("herald diag --json: %v\n%s", err, out)
	}
	found := false
	for _, f := range report.Findings {
		found = found || f.Check == "service.address-conflict" && f.Object.Name == "quiet" && strings.Contains(strings.ToLower(f.Message), mac)
	}
	if !found {
		t.Errorf("herald diag has no service.address-conflict finding naming %s for the Service:\n%s", mac, out)
	}
	// Reported, not fought: the node still announces.
	if st := c.l2Statuses("quiet"); len(st) != 1 || st[0].Status.Node != node {
		t.Errorf("status after the conflict: %+v", st)
	}
}
