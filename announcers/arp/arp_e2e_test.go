//go:build e2e

package arp_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/herald-lb/herald/announcers"
	"github.com/herald-lb/herald/announcers/internal/labtest"
	"github.com/herald-lb/herald/announcers/manager"
	"github.com/herald-lb/herald/test/lab"
)

var replyRE = regexp.MustCompile(`reply from (\S+) \[([0-9A-Fa-f:]+)\]`)

// arping runs the real arping from h and returns the MACs that replied for addr.
func arping(t *testing.T, h *lab.Host, addr netip.Addr, count int) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(count+5)*time.Second)
	defer cancel()
	// arping exits 1 when nothing answers: that is an answer here, not an error.
	out, _ := h.Command(ctx, "arping", "-c", strconv.Itoa(count), "-w", strconv.Itoa(count+1), "-I", h.Iface, addr.String()).CombinedOutput()
	var macs []string
	for _, m := range replyRE.FindAllStringSubmatch(string(out), -1) {
		if m[1] == addr.String() {
			macs = append(macs, strings.ToLower(m[2]))
		}
	}
	return macs
}

func TestE2EARPAnswersForAnnouncedAddressOnly(t *testing.T) {
	l := lab.New(t, lab.Options{Nodes: 1})
	node := l.Nodes[0]
	var log labtest.Log
	m := labtest.Start(t, log.Logger(t), nil, labtest.SpecOn(node, "arp", labtest.Binary(t, "herald-announcer-arp")))
	vip := netip.MustParseAddr("192.0.2.100")

	if macs := arping(t, l.Client, vip, 1); len(macs) != 0 {
		t.Fatalf("before announcing, %s answered from %v", vip, macs)
	}
	labtest.Announce(t, m, "arp", []netip.Addr{vip})
	macs := arping(t, l.Client, vip, 3)
	if len(macs) != 3 {
		t.Fatalf("arping got %d replies (%v), want 3", len(macs), macs)
	}
	for _, mac := range macs {
		if mac != node.MAC.String() {
			t.Errorf("reply from %s, want the node's MAC %s", mac, node.MAC)
		}
	}
	if macs := arping(t, l.Client, netip.MustParseAddr("192.0.2.101"), 1); len(macs) != 0 {
		t.Errorf("an address never announced answered from %v", macs)
	}

	labtest.Announce(t, m, "arp", nil)
	if macs := arping(t, l.Client, vip, 2); len(macs) != 0 {
		t.Errorf("after withdraw, %s still answered from %v", vip, macs)
	}
}

// neighbour returns the MAC the host's kernel holds for addr, or "".
func neighbour(t *testing.T, h *lab.Host, addr netip.Addr) string {
	out, err := h.Command(context.Background(), "ip", "neigh", "show", addr.String(), "dev", h.Iface).Output()
	if err != nil {
		t.Fatalf("ip neigh: %v", err)
	}
	f := strings.Fields(string(out))
	for i := range f {
		if f[i] == "lladdr" && i+1 < len(f) {
			return f[i+1]
		}
	}
	return ""
}

func TestE2EClientNeighbourFollowsTakeover(t *testing.T) {
	l := lab.New(t, lab.Options{Nodes: 2})
	var log labtest.Log
	bin := labtest.Binary(t, "herald-announcer-arp")
	m := labtest.Start(t, log.Logger(t), nil, labtest.SpecOn(l.Nodes[0], "node0", bin), labtest.SpecOn(l.Nodes[1], "node1", bin))
	vip := netip.MustParseAddr("192.0.2.100")

	labtest.Announce(t, m, "node0", []netip.Addr{vip})
	// One ping makes the client's kernel resolve the address (the ping itself goes unanswered).
	_ = l.Client.Command(context.Background(), "ping", "-c", "1", "-W", "1", vip.String()).Run()
	if got := neighbour(t, l.Client, vip); got != l.Nodes[0].MAC.String() {
		t.Fatalf("client resolved %s to %q, want node0's %s", vip, got, l.Nodes[0].MAC)
	}

	// Takeover: node0 withdraws, node1 announces. The client sends nothing; only node1's
	// gratuitous ARP can move its entry.
	labtest.Announce(t, m, "node0", nil)
	labtest.Announce(t, m, "node1", []netip.Addr{vip})
	start := time.Now()
	labtest.WaitFor(t, "the client's entry to move to node1", 5*time.Second, func() bool {
		return neighbour(t, l.Client, vip) == l.Nodes[1].MAC.String()
	})
	t.Logf("client neighbour entry switched to node1 after %s", time.Since(start))
}

func TestE2EConflictEventNamesForeignMAC(t *testing.T) {
	l := lab.New(t, lab.Options{Nodes: 2})
	var log labtest.Log
	bin := labtest.Binary(t, "herald-announcer-arp")
	m := labtest.Start(t, log.Logger(t), nil, labtest.SpecOn(l.Nodes[0], "node0", bin), labtest.SpecOn(l.Nodes[1], "node1", bin))
	vip := netip.MustParseAddr("192.0.2.100")
	labtest.Announce(t, m, "node0", []netip.Addr{vip})
	time.Sleep(time.Second) // node0's own gratuitous burst is over
	labtest.Announce(t, m, "node1", []netip.Addr{vip})

	timeout := time.After(5 * time.Second)
	for {
		select {
		case e := <-m.Events():
			if e.Conflict == nil || e.Announcer != "node0" {
				continue
			}
			if e.Conflict.Address != vip || e.Conflict.ForeignMAC != l.Nodes[1].MAC.String() || e.Conflict.Interface != l.Nodes[0].Iface {
				t.Fatalf("conflict %+v, want %s claimed by node1's %s on %s", e.Conflict, vip, l.Nodes[1].MAC, l.Nodes[0].Iface)
			}
			// The manager logs the conflict around the time it hands the event over; wait for it.
			labtest.WaitFor(t, "the conflict in the speaker's log", 2*time.Second, func() bool {
				return log.Contains("address conflict", l.Nodes[1].MAC.String())
			})
			return
		case <-timeout:
			t.Fatal("node0 reported no conflict within 5s of node1 announcing the same address")
		}
	}
}

func TestE2EARPRecoversAfterSIGKILL(t *testing.T) {
	l := lab.New(t, lab.Options{Nodes: 1})
	node := l.Nodes[0]
	var log labtest.Log
	m := labtest.Start(t, log.Logger(t), nil, labtest.SpecOn(node, "arp", labtest.Binary(t, "herald-announcer-arp")))
	addrs := labtest.Range("192.0.2.100", 100)
	labtest.Announce(t, m, "arp", addrs)
	prober := labtest.NewARPProber(t, l.Client.Netns, l.Client.Iface)
	probeUntilAll(t, prober, addrs, 5*time.Second)

	before := labtest.HealthOf(m, "arp")
	prober.Reset()
	if err := syscall.Kill(before.PID, syscall.SIGKILL); err != nil {
		t.Fatalf("kill %d: %v", before.PID, err)
	}
	killed := time.Now()
	answered := probeUntilAll(t, prober, addrs, 10*time.Second)
	var last time.Time
	for _, r := range answered {
		if r.At.After(last) {
			last = r.At
		}
		if r.MAC.String() != node.MAC.String() {
			t.Errorf("%s answered from %s after the restart, want %s", r.Addr, r.MAC, node.MAC)
		}
	}
	recovery := last.Sub(killed)
	t.Logf("time from SIGKILL to all 100 addresses answering again: %s", recovery)
	if after := labtest.HealthOf(m, "arp"); after.PID == before.PID || after.Restarts != before.Restarts+1 {
		t.Errorf("health after recovery %+v, want a new PID and one more restart", after)
	}
	if recovery > 3*time.Second {
		t.Errorf("recovery took %s; the goal is 1s", recovery)
	}
	// And the real arping agrees for every address.
	for _, a := range addrs {
		if macs := arping(t, l.Client, a, 1); len(macs) != 1 || macs[0] != node.MAC.String() {
			t.Errorf("arping %s after recovery: %v", a, macs)
		}
	}
}

// probeUntilAll asks for every address not yet answered every 10ms until all have answered.
func probeUntilAll(t *testing.T, p *labtest.ARPProber, addrs []netip.Addr, timeout time.Duration) map[netip.Addr]labtest.Reply {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		answered, _ := p.Answered()
		if len(answered) == len(addrs) {
			return answered
		}
		if time.Now().After(deadline) {
			t.Fatalf("only %d of %d addresses answered within %s", len(answered), len(addrs), timeout)
		}
		for _, a := range addrs {
			if _, ok := answered[a]; !ok {
				_ = p.Request(a)
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestE2ETamperedAnnouncerRefused(t *testing.T) {
	l := lab.New(t, lab.Options{Nodes: 2})
	bin := labtest.Binary(t, "herald-announcer-arp")
	body, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(body)
	tampered := filepath.Join(t.TempDir(), "herald-announcer-arp")
	if err := os.WriteFile(tampered, append(body, 0), 0o755); err != nil {
		t.Fatal(err)
	}
	bad := labtest.SpecOn(l.Nodes[0], "node0", tampered)
	bad.SHA256 = hex.EncodeToString(sum[:])
	good := labtest.SpecOn(l.Nodes[1], "node1", bin)
	good.SHA256 = bad.SHA256

	var log labtest.Log
	m, err := manager.New(log.Logger(t), []manager.Spec{bad, good}, manager.Options{})
	if err != nil {
		t.Fatal(err)
	}
	m.Start(context.Background())
	t.Cleanup(func() { _ = m.Stop(context.Background()) })
	labtest.WaitFor(t, "node0 refused, node1 healthy", 15*time.Second, func() bool {
		return labtest.HealthOf(m, "node0").State == manager.StateRefused && labtest.HealthOf(m, "node1").State == manager.StateHealthy
	})
	if h := labtest.HealthOf(m, "node0"); !strings.Contains(h.Message, "checksum mismatch") || h.PID != 0 {
		t.Errorf("node0 health %+v, want the checksum reason and no process", h)
	}
	if !log.Contains(`"announcer"="node0"`, "checksum mismatch", tampered) {
		t.Error("the log does not say node0 was refused and why")
	}
	vip := netip.MustParseAddr("192.0.2.100")
	if _, err := m.SetDesired(context.Background(), "node0", []announcers.Announcement{{Prefix: netip.PrefixFrom(vip, 32)}}); err == nil {
		t.Error("SetDesired on the refused announcer succeeded")
	}
	labtest.Announce(t, m, "node1", []netip.Addr{vip})
	if macs := arping(t, l.Client, vip, 2); len(macs) != 2 || macs[0] != l.Nodes[1].MAC.String() {
		t.Errorf("the good announcer did not answer: %v", macs)
	}
}

// BenchmarkE2EARPAnswersPerSecond floods one ARP announcer from the client namespace with
// requests for one announced address (bounded: at most 1,000,000 requests or 3s per run) and
// reports the replies the client received per second of flooding.
func BenchmarkE2EARPAnswersPerSecond(b *testing.B) {
	l := lab.New(b, lab.Options{Nodes: 1})
	var log labtest.Log
	m := labtest.Start(b, log.Logger(b), nil, labtest.SpecOn(l.Nodes[0], "arp", labtest.Binary(b, "herald-announcer-arp")))
	vip := netip.MustParseAddr("192.0.2.100")
	labtest.Announce(b, m, "arp", []netip.Addr{vip})
	p := labtest.NewARPProber(b, l.Client.Netns, l.Client.Iface)
	b.ResetTimer()
	sent, answered, took := p.Flood(vip, 1_000_000, 3*time.Second)
	b.StopTimer()
	if answered == 0 {
		b.Fatalf("no replies to %d requests", sent)
	}
	b.ReportMetric(float64(answered)/took.Seconds(), "answers/s")
	b.ReportMetric(float64(sent)/took.Seconds(), "requests/s")
	b.ReportMetric(float64(answered)/float64(sent), "answered/sent")
}
