//go:build e2e

package ndp_test

import (
	"bytes"
	"context"
	"fmt"
	"net/netip"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/herald-lb/herald/announcers/internal/labtest"
	"github.com/herald-lb/herald/test/lab"
)

var targetRE = regexp.MustCompile(`Target link-layer address: ([0-9A-Fa-f:]+)`)

// ndisc6 runs the real ndisc6 from h and returns the MAC it resolved addr to, or "".
func ndisc6(t *testing.T, h *lab.Host, addr netip.Addr, tries int) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(tries+5)*time.Second)
	defer cancel()
	// ndisc6 exits 2 when nothing answers: that is an answer here.
	out, _ := h.Command(ctx, "ndisc6", "-r", fmt.Sprint(tries), "-w", "1000", addr.String(), h.Iface).CombinedOutput()
	if m := targetRE.FindStringSubmatch(string(out)); m != nil {
		return strings.ToLower(m[1])
	}
	return ""
}

func TestE2ENDPAnswersForAnnouncedAddressOnly(t *testing.T) {
	l := lab.New(t, lab.Options{Nodes: 1})
	node := l.Nodes[0]
	var log labtest.Log
	m := labtest.Start(t, log.Logger(t), nil, labtest.SpecOn(node, "ndp", labtest.Binary(t, "herald-announcer-ndp")))
	vip := labtest.OnLink6(node, 0x100)

	if mac := ndisc6(t, l.Client, vip, 1); mac != "" {
		t.Fatalf("before announcing, %s resolved to %s", vip, mac)
	}
	labtest.Announce(t, m, "ndp", []netip.Addr{vip})
	if mac := ndisc6(t, l.Client, vip, 3); mac != node.MAC.String() {
		t.Fatalf("ndisc6 resolved %s to %q, want the node's MAC %s", vip, mac, node.MAC)
	}
	if mac := ndisc6(t, l.Client, labtest.OnLink6(node, 0x101), 1); mac != "" {
		t.Errorf("an address never announced resolved to %s", mac)
	}
	labtest.Announce(t, m, "ndp", nil)
	if mac := ndisc6(t, l.Client, vip, 2); mac != "" {
		t.Errorf("after withdraw, %s still resolved to %s", vip, mac)
	}
}

// TestE2ENDPAnswersBeyondOldMembershipLimit announces 10,000 addresses: joining one
// solicited-node group per address stopped at about 2,300, so the 5,000th and the last
// went unanswered. Now every one of them resolves and the status stays healthy.
func TestE2ENDPAnswersBeyondOldMembershipLimit(t *testing.T) {
	l := lab.New(t, lab.Options{Nodes: 1})
	node := l.Nodes[0]
	var log labtest.Log
	m := labtest.Start(t, log.Logger(t), nil, labtest.SpecOn(node, "ndp", labtest.Binary(t, "herald-announcer-ndp")))
	set := make([]netip.Addr, 10000)
	for i := range set {
		set[i] = labtest.OnLink6(node, uint16(0x1000+i))
	}
	labtest.Announce(t, m, "ndp", set)

	st, err := m.Status(context.Background(), "ndp")
	if err != nil {
		t.Fatalf("status: %v", err)
	}
	if len(st.Announced) != len(set) || st.Message != "" {
		t.Errorf("status: %d addresses announced, health %s %q; want %d and no problem", len(st.Announced), st.Health, truncate(st.Message, 200), len(set))
	}
	for _, addr := range []netip.Addr{set[4999], set[len(set)-1]} {
		if mac := ndisc6(t, l.Client, addr, 3); mac != node.MAC.String() {
			t.Errorf("ndisc6 resolved %s to %q, want the node's MAC %s", addr, mac, node.MAC)
		}
	}
	if mac := ndisc6(t, l.Client, labtest.OnLink6(node, uint16(0x1000+len(set))), 1); mac != "" {
		t.Errorf("the address after the announced range resolved to %s", mac)
	}
}

// allMulticast reports IFF_ALLMULTI in h's interface flags as the kernel holds them (sysfs
// shows the flag while any socket's all-multicast membership counts; `ip link` does not).
func allMulticast(t *testing.T, h *lab.Host) bool {
	out, err := h.Command(context.Background(), "cat", "/sys/class/net/"+h.Iface+"/flags").Output()
	if err != nil {
		t.Fatalf("interface flags: %v", err)
	}
	flags, err := strconv.ParseUint(strings.TrimSpace(string(out)), 0, 32)
	if err != nil {
		t.Fatalf("interface flags %q: %v", out, err)
	}
	return flags&0x200 != 0 // IFF_ALLMULTI
}

// TestE2ENDPAllMulticastOnlyWhileAnnouncing checks the interface is in all-multicast mode
// exactly while the announcer has its link open: the membership goes with the socket.
func TestE2ENDPAllMulticastOnlyWhileAnnouncing(t *testing.T) {
	l := lab.New(t, lab.Options{Nodes: 1})
	node := l.Nodes[0]
	var log labtest.Log
	m := labtest.Start(t, log.Logger(t), nil, labtest.SpecOn(node, "ndp", labtest.Binary(t, "herald-announcer-ndp")))
	vip := labtest.OnLink6(node, 0x100)
	if allMulticast(t, node) {
		t.Fatal("all-multicast before announcing")
	}
	labtest.Announce(t, m, "ndp", []netip.Addr{vip})
	if !allMulticast(t, node) {
		t.Error("not all-multicast while announcing")
	}
	labtest.Announce(t, m, "ndp", nil) // nothing left on the link: it closes
	// The kernel releases the socket once the reader blocked on it has returned.
	labtest.WaitFor(t, "all-multicast to end after the last address was withdrawn", 2*time.Second, func() bool {
		return !allMulticast(t, node)
	})
}

func neighbour(t *testing.T, h *lab.Host, addr netip.Addr) string {
	out, err := h.Command(context.Background(), "ip", "-6", "neigh", "show", addr.String(), "dev", h.Iface).Output()
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

func TestE2ENDPClientNeighbourFollowsTakeover(t *testing.T) {
	l := lab.New(t, lab.Options{Nodes: 2})
	var log labtest.Log
	bin := labtest.Binary(t, "herald-announcer-ndp")
	m := labtest.Start(t, log.Logger(t), nil, labtest.SpecOn(l.Nodes[0], "node0", bin), labtest.SpecOn(l.Nodes[1], "node1", bin))
	vip := labtest.OnLink6(l.Nodes[0], 0x100)

	labtest.Announce(t, m, "node0", []netip.Addr{vip})
	_ = l.Client.Command(context.Background(), "ping", "-6", "-c", "1", "-W", "1", vip.String()).Run()
	if got := neighbour(t, l.Client, vip); got != l.Nodes[0].MAC.String() {
		t.Fatalf("client resolved %s to %q, want node0's %s", vip, got, l.Nodes[0].MAC)
	}
	labtest.Announce(t, m, "node0", nil)
	labtest.Announce(t, m, "node1", []netip.Addr{vip})
	start := time.Now()
	labtest.WaitFor(t, "the client's entry to move to node1", 5*time.Second, func() bool {
		return neighbour(t, l.Client, vip) == l.Nodes[1].MAC.String()
	})
	t.Logf("client neighbour entry switched to node1 after %s", time.Since(start))
}

func TestE2ENDPConflictEventNamesForeignMAC(t *testing.T) {
	l := lab.New(t, lab.Options{Nodes: 2})
	var log labtest.Log
	bin := labtest.Binary(t, "herald-announcer-ndp")
	m := labtest.Start(t, log.Logger(t), nil, labtest.SpecOn(l.Nodes[0], "node0", bin), labtest.SpecOn(l.Nodes[1], "node1", bin))
	vip := labtest.OnLink6(l.Nodes[0], 0x100)
	labtest.Announce(t, m, "node0", []netip.Addr{vip})
	time.Sleep(time.Second)
	labtest.Announce(t, m, "node1", []netip.Addr{vip})
	timeout := time.After(5 * time.Second)
	for {
		select {
		case e := <-m.Events():
			if e.Conflict == nil || e.Announcer != "node0" {
				continue
			}
			if e.Conflict.Address != vip || e.Conflict.ForeignMAC != l.Nodes[1].MAC.String() {
				t.Fatalf("conflict %+v, want %s claimed by node1's %s", e.Conflict, vip, l.Nodes[1].MAC)
			}
			return
		case <-timeout:
			t.Fatal("node0 reported no conflict within 5s of node1 announcing the same address")
		}
	}
}

// BenchmarkE2ENDPSetDesired10k measures sending 10,000 new addresses through the real
// go-plugin RPC to the NDP announcer in a lab node, until it acknowledges (the announcer
// answers for them from then on; the gratuitous bursts run in the background). Withdrawing
// them between iterations is not timed.
func BenchmarkE2ENDPSetDesired10k(b *testing.B) {
	l := lab.New(b, lab.Options{Nodes: 1})
	node := l.Nodes[0]
	var log labtest.Log
	m := labtest.Start(b, log.Logger(b), nil, labtest.SpecOn(node, "ndp", labtest.Binary(b, "herald-announcer-ndp")))
	set := make([]netip.Addr, 10000)
	for i := range set {
		set[i] = labtest.OnLink6(node, uint16(0x1000+i))
	}
	pid := labtest.HealthOf(m, "ndp").PID
	var cpu time.Duration
	b.ResetTimer()
	for b.Loop() {
		before := cpuTime(b, pid)
		labtest.Announce(b, m, "ndp", set)
		b.StopTimer()
		cpu += cpuTime(b, pid) - before
		labtest.Announce(b, m, "ndp", nil)
		b.StartTimer()
	}
	b.StopTimer()
	// CPU the announcer used while the call was timed (its background sends included): a
	// figure the other processes on a loaded machine do not inflate as they do wall time.
	b.ReportMetric(float64(cpu.Milliseconds())/float64(b.N), "announcer-cpu-ms/op")
	labtest.Announce(b, m, "ndp", set)
	st, err := m.Status(context.Background(), "ndp")
	if err != nil || len(st.Announced) != len(set) {
		b.Fatalf("after the benchmark %d addresses announced (%v), want %d", len(st.Announced), err, len(set))
	}
	b.Logf("status with 10k addresses: %s %q ... %q", st.Health, truncate(st.Message, 120), st.Message[max(0, len(st.Message)-40):])
}

// BenchmarkE2ENDPUnsolicited10k announces 10,000 new addresses and counts the frames the
// client's interface receives until it goes quiet: ideally three unsolicited advertisements
// per address (the gratuitous burst), fewer when the pacer merges repeats that are still
// queued, and far fewer when frames are dropped on the way (a burst faster than the
// receiving host's backlog). It reports NAs received per address and the time from the
// acknowledged Apply to the last one.
func BenchmarkE2ENDPUnsolicited10k(b *testing.B) {
	l := lab.New(b, lab.Options{Nodes: 1})
	node := l.Nodes[0]
	var log labtest.Log
	m := labtest.Start(b, log.Logger(b), nil, labtest.SpecOn(node, "ndp", labtest.Binary(b, "herald-announcer-ndp")))
	set := make([]netip.Addr, 10000)
	for i := range set {
		set[i] = labtest.OnLink6(node, uint16(0x1000+i))
	}
	var received, took float64
	for b.Loop() {
		b.StopTimer()
		labtest.Announce(b, m, "ndp", nil)
		quiet(b, l.Client)
		before := rxPackets(b, l.Client)
		labtest.Announce(b, m, "ndp", set)
		start := time.Now()
		last, n := quiet(b, l.Client)
		received += float64(n - before)
		took += last.Sub(start).Seconds()
		b.StartTimer()
	}
	b.ReportMetric(received/float64(b.N)/float64(len(set)), "NAs/address")
	b.ReportMetric(took/float64(b.N), "s-to-last-NA")
	b.ReportMetric(0, "ns/op") // the Apply is timed by BenchmarkE2ENDPSetDesired10k
}

// quiet waits until h's eth0 has received nothing for 500ms (at most 20s) and returns when
// its receive counter last moved and its value.
func quiet(b *testing.B, h *lab.Host) (time.Time, uint64) {
	last, n := time.Now(), rxPackets(b, h)
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); {
		time.Sleep(50 * time.Millisecond)
		if m := rxPackets(b, h); m != n {
			last, n = time.Now(), m
		} else if time.Since(last) > 500*time.Millisecond {
			break
		}
	}
	return last, n
}

func rxPackets(b *testing.B, h *lab.Host) uint64 {
	out, err := h.Command(context.Background(), "cat", "/sys/class/net/"+h.Iface+"/statistics/rx_packets").Output()
	if err != nil {
		b.Fatalf("rx_packets: %v", err)
	}
	var n uint64
	if _, err := fmt.Sscan(string(out), &n); err != nil {
		b.Fatalf("rx_packets %q: %v", out, err)
	}
	return n
}

// cpuTime is the user and system time process pid has used (clock-tick resolution).
func cpuTime(b *testing.B, pid int) time.Duration {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		b.Fatalf("announcer CPU time: %v", err)
	}
	// Fields after the command name, which is in parentheses and may hold spaces.
	f := strings.Fields(string(raw[bytes.LastIndexByte(raw, ')')+1:]))
	var ticks int64
	for _, s := range f[11:13] { // utime, stime
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			b.Fatalf("announcer CPU time %q: %v", s, err)
		}
		ticks += n
	}
	return time.Duration(ticks) * time.Second / 100 // USER_HZ is 100 on Linux
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
