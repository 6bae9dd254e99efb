//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/herald-lb/herald/framework"
)

// wrongSHA256 is a checksum no announcer executable has.
const wrongSHA256 = "0000000000000000000000000000000000000000000000000000000000000000"

// Defect 4 of issue 13: a node whose ARP announcer is refused (wrong sha256 in its speaker's
// configuration) keeps its heartbeat alive but must not win IPv4 IPs: its IPs are answered by
// another node, no ServiceL2Status names it, herald explain names the reason for that node,
// and /readyz on it fails.
func TestE2ERefusedAnnouncerLosesItsIPs(t *testing.T) {
	c := newCluster(t, clusterOptions{nodes: 3})
	svcs := []string{"ref-a", "ref-b", "ref-c", "ref-d", "ref-e", "ref-f"}
	for _, s := range svcs {
		c.createService(serviceOptions{name: s})
	}
	// The refused node is the one announcing the first Service, so it held an IP before.
	owners := map[string]string{}
	for _, s := range svcs {
		c.waitIP(s)
		owners[s] = c.waitAnnouncer(s, 30*time.Second)
	}
	bad := owners[svcs[0]]
	i := c.nodeIndex(bad)
	cfg := c.refusingConfig(t)

	p := c.speaker(bad)
	// Only the speaker, as the kubelet signals a container's main process.
	if err := syscall.Kill(p.PID(), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.Done():
	case <-time.After(15 * time.Second):
		t.Fatalf("speaker of %s did not exit after SIGTERM", bad)
	}
	restarted := c.startSpeakerWith(i, cfg)
	// Its heartbeat is back, alive and not draining, and says why ARP cannot answer there.
	eventually(t, 20*time.Second, func() (bool, string) {
		hb := c.heartbeatOf(bad)
		h := hb.Announcers[framework.AnnouncerKindL2v4]
		return !hb.Draining && hb.SpeakerInfo().AliveAt(time.Now()) && h.State == framework.AnnouncerUnavailable && strings.Contains(h.Reason, "checksum"),
			fmt.Sprintf("heartbeat of %s: draining %v, announcers %+v; speaker output:\n%s", bad, hb.Draining, hb.Announcers, tail(restarted.Output(), 20))
	})
	// A few renewals later nothing has moved back to it.
	time.Sleep(2 * time.Second)
	for _, s := range svcs {
		ip := c.waitIP(s)
		node := c.waitAnnouncer(s, 20*time.Second, bad)
		c.waitARPOwner(ip, node, 10*time.Second)
		if macs := c.arping(ip, 2); len(macs) != 1 || c.macOwner(macs[0]) == bad {
			t.Fatalf("%s (%s): arping MACs %v, want one, not %s's", s, ip, macs, bad)
		}
	}
	d := c.explain(svcs[0]).Units[0]
	var verdict *framework.Verdict
	for _, n := range d.Nodes {
		if n.Name == bad {
			verdict = n.Rejection
		}
	}
	if verdict == nil || verdict.Plugin != "NodeReady" || !strings.Contains(strings.Join(verdict.Reasons, ","), "announcer unavailable") ||
		!strings.Contains(verdict.Detail, "l2-v4 announcer unavailable") || !strings.Contains(verdict.Detail, "checksum mismatch") {
		t.Fatalf("explain for %s: verdict %+v, want NodeReady naming the refused ARP announcer; summary %q", bad, verdict, d.Summary)
	}
	if !strings.Contains(d.Summary, "1 node(s) announcer unavailable") {
		t.Errorf("summary %q does not count the refused node", d.Summary)
	}
	code, body := c.readyz(i)
	if code != 503 || !strings.Contains(body, "l2-v4 (arp) unavailable") || !strings.Contains(body, "checksum mismatch") {
		t.Fatalf("/readyz on %s: %d %q, want 503 naming the refused announcer", bad, code, body)
	}
	for j := range c.nodes {
		if j == i {
			continue
		}
		if code, body := c.readyz(j); code != 200 {
			t.Errorf("/readyz on healthy %s: %d %q", c.nodes[j], code, body)
		}
	}
}

// refusingConfig is the cluster's speaker configuration with the ARP announcer pinned to a
// checksum its executable does not have.
func (c *cluster) refusingConfig(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(c.config)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), "announcers:") {
		t.Fatalf("the cluster configuration lists announcers already:\n%s", b)
	}
	cfg := string(b) + "announcers:\n- {name: arp, sha256: \"" + wrongSHA256 + "\"}\n- {name: ndp}\n"
	path := filepath.Join(t.TempDir(), "refusing.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// readyz asks node i's speaker for /readyz on its metrics port, from inside its namespace.
func (c *cluster) readyz(i int) (int, string) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := c.lab.Nodes[i].Command(ctx, "curl", "-s", "--max-time", "5", "-w", "\n%{http_code}", "http://127.0.0.1:7472/readyz").Output()
	if err != nil {
		c.t.Fatalf("curl /readyz on %s: %v", c.nodes[i], err)
	}
	s := strings.TrimRight(string(out), "\n")
	cut := strings.LastIndex(s, "\n")
	var code int
	fmt.Sscan(s[cut+1:], &code)
	return code, strings.TrimSpace(s[:max(cut, 0)])
}
