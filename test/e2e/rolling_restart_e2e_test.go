//go:build e2e

package e2e

import (
	"bufio"
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/herald-lb/herald/framework"
	"github.com/herald-lb/herald/heartbeat"
	"github.com/herald-lb/herald/test/lab"
	"github.com/herald-lb/herald/test/testbin"
)

// Issue 13, defect 5: moving IPs back to a restarted speaker must be make-before-break. A
// returning speaker publishes "warming" until it has synced, its announcers are up and it
// answers for the IPs it is about to win; only then is it a candidate, and the old owners
// withdraw once it already answers.
const (
	rrIPs = 40
	// rrMaxGap is the longest an IP may go unanswered during a node's return.
	rrMaxGap = 100 * time.Millisecond
)

// rrIP is the i-th shared address, inside the harness pool (192.0.2.100-140).
func rrIP(i int) netip.Addr { return netip.AddrFrom4([4]byte{192, 0, 2, byte(100 + i)}) }

// TestE2ERollingRestart is the rolling restart (3 nodes, Services sharing 40 IPs; each
// speaker in turn restarted with SIGTERM, then separately crash-restarted with SIGKILL; ARP
// probed every 20 ms) with 40 Services, so it runs in make test (about 1 minute);
// HERALD_RR_SERVICES=1000 runs the benchmark's scale. It fails on a gap over rrMaxGap,
// stalls of the machine or of a responder process subtracted (see gapsIn).
func TestE2ERollingRestart(t *testing.T) {
	n := 40
	if v, err := strconv.Atoi(os.Getenv("HERALD_RR_SERVICES")); err == nil {
		n = v
	}
	for _, r := range rollingRestart(t, n) {
		if r.worst > rrMaxGap {
			t.Errorf("%s: %s unanswered for %s (stalls subtracted; raw %s), want at most %s", r.name, r.worstIP, r.worst, r.worstRaw, rrMaxGap)
		}
	}
}

// BenchmarkE2ERollingRestart1kServices reports the worst and p99 ARP gap per node return in
// the rolling restart above (goal ≤ 20 ms, i.e. no missed 20 ms probe).
func BenchmarkE2ERollingRestart1kServices(b *testing.B) {
	var worst, raw, p99 []time.Duration
	for i := 0; i < b.N; i++ {
		for _, r := range rollingRestart(b, 1000) {
			if r.worst > rrMaxGap {
				b.Errorf("%s: %s unanswered for %s (stalls subtracted; raw %s), want at most %s", r.name, r.worstIP, r.worst, r.worstRaw, rrMaxGap)
			}
			worst = append(worst, r.worst)
			raw = append(raw, r.worstRaw)
			p99 = append(p99, r.p99)
		}
	}
	slices.Sort(worst)
	slices.Sort(raw)
	slices.Sort(p99)
	b.ReportMetric(raw[len(raw)-1].Seconds()*1000, "worst-raw-gap-ms")
	b.ReportMetric(worst[len(worst)-1].Seconds()*1000, "worst-gap-ms")
	b.ReportMetric(p99[len(p99)-1].Seconds()*1000, "p99-gap-ms")
}

// returnResult is one node's return.
type returnResult struct {
	name string
	// worst is the longest time an IP went unanswered beyond the probe's own stalls (see
	// gapsIn); worstRaw the same without that correction; p99 the 99th percentile of every
	// IP's gaps between replies, with the same correction.
	worst, worstRaw, p99 time.Duration
	worstIP              netip.Addr
	worstAt              time.Time
	// won counts the IPs the returning node answers for at the end.
	won int
}

func rollingRestart(t testing.TB, services int) []returnResult {
	c := newCluster(t, clusterOptions{nodes: 3})
	names := c.createSharedServices(t, services)
	owners := c.ownersOf(names, 5*time.Minute)
	t.Logf("%d Services on %d IPs announced: %v", len(owners), rrIPs, countValues(owners))

	ips := make([]netip.Addr, rrIPs)
	for i := range ips {
		ips[i] = rrIP(i)
	}
	p := c.startReplyProbe(t, ips, 30*time.Minute)
	waitAnswered := func(what string, ok func(ip netip.Addr, macs []string) bool) {
		t.Helper()
		eventually(t, 60*time.Second, func() (bool, string) {
			for _, ip := range ips {
				macs := p.recentMACs(ip, 200*time.Millisecond)
				if !ok(ip, macs) {
					return false, fmt.Sprintf("%s: %s answered by %v in the last 200 ms", what, ip, macs)
				}
			}
			return true, ""
		})
	}
	single := func(ip netip.Addr, macs []string) bool { return len(macs) == 1 }
	waitAnswered("before the restarts", single)

	var out []returnResult
	for _, crash := range []bool{false, true} {
		for i, node := range c.nodes {
			mac := strings.ToLower(c.lab.Nodes[i].MAC.String())
			sp := c.speaker(node)
			name := fmt.Sprintf("SIGTERM %s", node)
			if crash {
				name = fmt.Sprintf("SIGKILL %s", node)
				sp.Kill()
				// The crash's own gap is the failover benchmarks' subject; the return starts
				// once every IP is answered by the other nodes.
				waitAnswered("failover", func(ip netip.Addr, macs []string) bool { return len(macs) == 1 && macs[0] != mac })
			} else {
				if err := syscall.Kill(sp.PID(), syscall.SIGTERM); err != nil {
					t.Fatal(err)
				}
				select {
				case <-sp.Done():
				case <-time.After(20 * time.Second):
					t.Fatalf("speaker of %s did not exit after SIGTERM", node)
				}
			}
			start := time.Now()
			restarted := c.startSpeaker(i)
			c.waitL2Candidate(node, start, restarted)
			readyAt := time.Now()
			// Settled: the old owners withdrew, one MAC per IP again.
			waitAnswered("after the return of "+node, single)
			time.Sleep(time.Second)
			end := time.Now()
			won := p.answeredBy(t, ips, mac)
			r := p.gapsIn(ips, start, end)
			r.name, r.won = name, won
			t.Logf("%s: return took %s (ready after %s); node answers %d/%d IPs; worst gap %s (%s at %s, raw %s), p99 %s",
				name, end.Sub(start).Round(time.Millisecond), readyAt.Sub(start).Round(time.Millisecond), r.won, rrIPs,
				r.worst, r.worstIP, r.worstAt.Format("15:04:05.000"), r.worstRaw, r.p99)
			p.dump(strings.ReplaceAll(name, " ", "-"), ips, start, end)
			if r.won == 0 {
				t.Fatalf("%s: the returning node answers no IP: the return was not exercised", name)
			}
			out = append(out, r)
		}
	}
	p.stop()
	return out
}

// waitL2Candidate waits until node's heartbeat, renewed after since (a crashed speaker's
// Lease says ready until it expires), makes it a candidate for IPv4 L2 units.
func (c *cluster) waitL2Candidate(node string, since time.Time, sp *lab.Process) {
	c.t.Helper()
	ns := speakerNamespace
	if c.heraldNS != "" {
		ns = c.heraldNS
	}
	eventually(c.t, 60*time.Second, func() (bool, string) {
		l, err := c.client.CoordinationV1().Leases(ns).Get(context.Background(), heartbeat.LeaseName(node), metav1.GetOptions{})
		if err != nil {
			return false, fmt.Sprintf("%s: heartbeat: %v", node, err)
		}
		hb, err := heartbeat.Decode(l)
		if err != nil {
			return false, fmt.Sprintf("%s: heartbeat: %v", node, err)
		}
		h, ok := hb.Announcers[framework.AnnouncerKindL2v4]
		return ok && h.State == framework.AnnouncerReady && !hb.Draining && hb.RenewTime.After(since) && hb.SpeakerInfo().AliveAt(time.Now()),
			fmt.Sprintf("%s: heartbeat announcers %+v draining %v; speaker output:\n%s", node, hb.Announcers, hb.Draining, tail(sp.Output(), 20))
	})
}

// createSharedServices creates n Services sharing rrIPs addresses (each IP's Services on
// different ports, one sharing key), each with a ready endpoint on every node.
func (c *cluster) createSharedServices(t testing.TB, n int) []string {
	t.Helper()
	names := make([]string, n)
	err := parallel(n, apiWorkers, func(i int) error {
		name := fmt.Sprintf("rr-%04d", i)
		names[i] = name
		svc, es := c.batchService(name, rrIP(i%rrIPs))
		svc.Annotations["metallb.io/allow-shared-ip"] = "rolling"
		svc.Spec.Ports = []corev1.ServicePort{{Name: "p", Port: int32(1000 + i/rrIPs), TargetPort: intstr.FromInt32(8080), Protocol: corev1.ProtocolTCP}}
		ctx := context.Background()
		if _, err := c.client.CoreV1().Services(c.ns).Create(ctx, svc, metav1.CreateOptions{}); err != nil {
			return err
		}
		_, err := c.client.DiscoveryV1().EndpointSlices(c.ns).Create(ctx, es, metav1.CreateOptions{})
		return err
	})
	if err != nil {
		t.Fatalf("creating Services: %v", err)
	}
	return names
}

func countValues(m map[string]string) map[string]int {
	out := map[string]int{}
	for _, v := range m {
		out[v]++
	}
	return out
}

// replyProbe is test/arpprobe -all running for the whole test: every reply to its requests,
// per address. The lab nodes' own addresses are probed too, as a control: the kernel answers
// for them whatever Herald does, so a gap they share is the probe (or the machine) stalling,
// not an address going unanswered.
type replyProbe struct {
	mu      sync.Mutex
	replies map[netip.Addr][]probeReply
	control []netip.Addr
	stop    func()
}

type probeReply struct {
	at  time.Time
	mac string
}

func (c *cluster) startReplyProbe(t testing.TB, ips []netip.Addr, deadline time.Duration) *replyProbe {
	t.Helper()
	p := &replyProbe{replies: map[netip.Addr][]probeReply{}}
	args := []string{"-all", "-i", c.lab.Client.Iface, "-interval", probeInterval.String(), "-deadline", deadline.String()}
	for _, ip := range ips {
		args = append(args, ip.String())
	}
	for _, h := range c.lab.Nodes {
		p.control = append(p.control, h.IPv4)
		args = append(args, h.IPv4.String())
	}
	ctx, cancel := context.WithTimeout(context.Background(), deadline+10*time.Second)
	cmd := c.lab.Client.Command(ctx, testbin.Build(t, "./test/arpprobe"), args...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			f := strings.Fields(sc.Text())
			if len(f) != 3 {
				continue
			}
			ip, err1 := netip.ParseAddr(f[0])
			ns, err2 := strconv.ParseInt(f[2], 10, 64)
			if err1 != nil || err2 != nil {
				continue
			}
			p.mu.Lock()
			p.replies[ip] = append(p.replies[ip], probeReply{at: time.Unix(0, ns), mac: strings.ToLower(f[1])})
			p.mu.Unlock()
		}
	}()
	p.stop = func() {
		cancel()
		<-done
		_ = cmd.Wait()
	}
	t.Cleanup(p.stop)
	eventually(t, 10*time.Second, func() (bool, string) {
		return len(p.recentMACs(p.control[0], time.Second)) > 0, "arpprobe: no reply from a lab node yet: " + stderr.String()
	})
	return p
}

// answeredBy counts the IPs mac answers, once every IP was answered by one MAC in the last
// 200 ms: a probe that stalled a moment (the machine is shared) would count none.
func (p *replyProbe) answeredBy(t testing.TB, ips []netip.Addr, mac string) int {
	t.Helper()
	won := 0
	eventually(t, 10*time.Second, func() (bool, string) {
		won = 0
		for _, ip := range ips {
			macs := p.recentMACs(ip, 200*time.Millisecond)
			if len(macs) != 1 {
				return false, fmt.Sprintf("%s answered by %v in the last 200 ms", ip, macs)
			}
			if macs[0] == mac {
				won++
			}
		}
		return true, ""
	})
	return won
}

// dump writes every reply in the window to probe-NAME.txt under $HERALD_E2E_LOGDIR, when
// set, to read beside the speakers' logs (see startSpeakerWith).
func (p *replyProbe) dump(name string, ips []netip.Addr, from, to time.Time) {
	dir := os.Getenv("HERALD_E2E_LOGDIR")
	if dir == "" {
		return
	}
	var sb strings.Builder
	p.mu.Lock()
	for _, ip := range ips {
		for _, rp := range p.replies[ip] {
			if rp.at.After(from) && rp.at.Before(to) {
				fmt.Fprintf(&sb, "%s %s %s\n", rp.at.Format("15:04:05.000"), ip, rp.mac)
			}
		}
	}
	p.mu.Unlock()
	_ = os.WriteFile(filepath.Join(dir, "probe-"+name+".txt"), []byte(sb.String()), 0o644)
}

// recentMACs are the MACs that answered for ip within the last d, sorted.
func (p *replyProbe) recentMACs(ip netip.Addr, d time.Duration) []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	since := time.Now().Add(-d)
	var out []string
	rs := p.replies[ip]
	for i := len(rs) - 1; i >= 0 && rs[i].at.After(since); i-- {
		out = append(out, rs[i].mac)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// gaps returns the pairs of consecutive replies for ip whose second is in [from, to].
func (p *replyProbe) gaps(ip netip.Addr, from, to time.Time) [][2]probeReply {
	rs := p.replies[ip]
	var out [][2]probeReply
	for i := 1; i < len(rs); i++ {
		if rs[i].at.Before(from) || rs[i].at.After(to) {
			continue
		}
		out = append(out, [2]probeReply{rs[i-1], rs[i]})
	}
	return out
}

// gapsIn measures the window: per IP, each gap between replies, less the stalls inside it
// that say nothing about the return (with four test runs on two cores, stalls of 100-200 ms
// are common):
//   - the probe, or the whole machine, stalled: no control address (answered by the
//     kernel) got a reply;
//   - the responder that answered before the gap stalled: it answered none of its addresses
//     for a while and then answered again (a process the machine did not run; one stalled
//     520 ms at a load of 34 just before its hand-over). An address a node stopped
//     answering while it answered others is never excused, nor a node that never answered
//     again (drained, killed), nor the new owner being late.
func (p *replyProbe) gapsIn(ips []netip.Addr, from, to time.Time) returnResult {
	return p.gapsWithin(ips, from, to, true)
}

// gapsWithin is gapsIn; without excuseResponder only the probe's own stalls are excused (the
// chaos benchmark stalls responders on purpose: that silence is what it measures).
func (p *replyProbe) gapsWithin(ips []netip.Addr, from, to time.Time, excuseResponder bool) returnResult {
	p.mu.Lock()
	defer p.mu.Unlock()
	var control []time.Time
	for _, ip := range p.control {
		control = appendTimes(control, p.replies[ip], from.Add(-time.Minute), to)
	}
	byMAC := map[string][]time.Time{}
	for _, ip := range ips {
		for _, rp := range p.replies[ip] {
			if rp.at.After(from.Add(-time.Minute)) && !rp.at.After(to) {
				byMAC[rp.mac] = append(byMAC[rp.mac], rp.at)
			}
		}
	}
	sortTimes(control)
	for _, ts := range byMAC {
		sortTimes(ts)
	}
	var r returnResult
	var all []time.Duration
	for _, ip := range ips {
		for _, g := range p.gaps(ip, from, to) {
			a, b := g[0].at, g[1].at
			raw := b.Sub(a)
			stall := quietWithin(control, a, b)
			if ts := byMAC[g[0].mac]; excuseResponder && len(ts) > 0 && ts[len(ts)-1].After(a) {
				stall = max(stall, quietWithin(ts, a, b))
			}
			adj := raw - stall
			all = append(all, adj)
			if adj > r.worst {
				r.worst, r.worstIP, r.worstAt = adj, ip, a
			}
			r.worstRaw = max(r.worstRaw, raw)
		}
	}
	if len(all) > 0 {
		slices.Sort(all)
		r.p99 = all[min(len(all)-1, len(all)*99/100)]
	}
	return r
}

func appendTimes(out []time.Time, rs []probeReply, from, to time.Time) []time.Time {
	for _, rp := range rs {
		if rp.at.After(from) && !rp.at.After(to) {
			out = append(out, rp.at)
		}
	}
	return out
}

func sortTimes(ts []time.Time) { slices.SortFunc(ts, func(x, y time.Time) int { return x.Compare(y) }) }

// quietWithin is the longest stretch inside (a, b) without any of the sorted times, less
// one probe interval (a stretch that short is no stall).
func quietWithin(times []time.Time, a, b time.Time) time.Duration {
	i := sort.Search(len(times), func(i int) bool { return times[i].After(a) })
	prev, longest := a, time.Duration(0)
	for ; i < len(times) && times[i].Before(b); i++ {
		longest = max(longest, times[i].Sub(prev))
		prev = times[i]
	}
	longest = max(longest, b.Sub(prev))
	return max(0, longest-probeInterval)
}
