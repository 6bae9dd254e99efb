//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/herald-lb/herald/heartbeat"
)

// ipvsServices is how many ClusterIPs the emulated kube-proxy puts on kube-ipvs0.
const ipvsServices = 10000

// heartbeatBudget is the most a heartbeat Lease may carry in annotations (issue 15): the
// Lease is read by every speaker, so its size is paid once per node per reader.
const heartbeatBudget = 4 << 10

// An IPVS node (kube-proxy puts every ClusterIP and load-balancer IP on the NOARP dummy
// kube-ipvs0) publishes a small heartbeat: neither kube-ipvs0 nor host /32s, only what the
// election uses. Once, every ClusterIP went into the heartbeat and at 8,000 Services renewals
// failed on the annotation limit, so no node was alive.
func TestE2EHeartbeatOfAnIPVSNodeStaysSmall(t *testing.T) {
	c := newCluster(t, clusterOptions{nodes: 2})
	node := c.lab.Nodes[0]
	// kube-proxy makes kube-ipvs0 a dummy; this kernel may lack that driver, and what makes
	// the interface useless for ARP is its NOARP flag, which a bridge can carry too.
	node.Run(t, "ip", "link", "add", "kube-ipvs0", "type", "bridge")
	node.Run(t, "ip", "link", "set", "kube-ipvs0", "arp", "off")
	var batch strings.Builder
	for i := range ipvsServices {
		fmt.Fprintf(&batch, "addr add 198.19.%d.%d/32 dev kube-ipvs0\n", i/250, i%250+1)
	}
	for i := 100; i <= 140; i++ {
		fmt.Fprintf(&batch, "addr add 192.0.2.%d/32 dev kube-ipvs0\n", i)
	}
	// A VIP that something else placed on the node's NIC as a host address is not a subnet.
	batch.WriteString("addr add 203.0.113.7/32 dev eth0\n")
	runBatch(t, node.Netns, batch.String())

	// The speakers (newCluster started them) read the interfaces again at every renewal.
	c.createService(serviceOptions{name: "web"})
	c.waitIP("web")
	c.waitAnnouncer("web", 30*time.Second)

	lease := c.heartbeatLease(c.nodes[0])
	size := 0
	for k, v := range lease.Annotations {
		size += len(k) + len(v)
	}
	itfs := lease.Annotations[heartbeat.AnnotationInterfaces]
	t.Logf("heartbeat of the IPVS node: %d bytes of annotations; interfaces %s", size, itfs)
	if size > heartbeatBudget {
		t.Fatalf("heartbeat of %s carries %d bytes of annotations, over the %d budget; interfaces: %.300s…", c.nodes[0], size, heartbeatBudget, itfs)
	}
	for _, bad := range []string{"kube-ipvs0", "/32", "203.0.113.7"} {
		if strings.Contains(itfs, bad) {
			t.Fatalf("heartbeat interfaces publish %q: %s", bad, itfs)
		}
	}
	eth0 := fmt.Sprintf("%s/%d", node.IPv4, c.lab.Subnet4.Bits())
	if !strings.Contains(itfs, `"eth0"`) || !strings.Contains(itfs, eth0) {
		t.Fatalf("heartbeat interfaces lack eth0 with %s: %s", eth0, itfs)
	}
	// Both nodes stay candidates: the small heartbeat still says what the election needs.
	exp := c.explain("web")
	if len(exp.Units) != 1 || !strings.Contains(exp.Units[0].Summary, "2/2 nodes can announce") {
		t.Fatalf("explain: %+v", exp)
	}
}

// heartbeatLease returns a node's heartbeat Lease.
func (c *cluster) heartbeatLease(node string) *coordinationv1.Lease {
	c.t.Helper()
	l, err := c.client.CoordinationV1().Leases(c.heraldNS).Get(context.Background(), heartbeat.LeaseName(node), metav1.GetOptions{})
	if err != nil {
		c.t.Fatalf("heartbeat lease of %s: %v", node, err)
	}
	return l
}

// runBatch runs `ip -batch -` inside a namespace with the commands on standard input.
func runBatch(t *testing.T, netns, commands string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "ip", "-n", netns, "-batch", "-")
	cmd.Stdin = strings.NewReader(commands)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("ip -n %s -batch: %v\n%s", netns, err, tail(string(out), 20))
	}
}
