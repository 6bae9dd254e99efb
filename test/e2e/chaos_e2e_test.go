//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/herald-lb/herald/test/lab"
)

// The chaos benchmark (issue 15, "Proof"): 6 nodes, 100 Services, random faults drawn from
// the data-plane, control-plane and liveness issues, one at a time on one node, each held for
// a random while and then undone. A client probes every address every 20 ms throughout; the
// benchmark reports, per fault kind and overall, the longest time an address went unanswered
// (with five healthy nodes left there is always a candidate; only the probe's own stalls,
// seen on the nodes' own addresses, are taken out), the longest time two MACs
// answered one address, and whether, once the faults stop, every ServiceL2Status names the
// node whose MAC answers. `make chaos` runs it (CHAOS_FAULTS, default 100; CHAOS_SEED, default
// the clock, printed so a run can be replayed in its draws; CHAOS_FASTPATH=1 runs the speakers'
// fast path, and adds blocking one node's fast-path traffic to the faults).

const (
	chaosNodes    = 6
	chaosServices = 100
	// chaosSettle bounds the wait, after a fault is undone, for one MAC per address again.
	chaosSettle = 60 * time.Second
)

// chaosFault is one kind of fault: inject breaks node i and returns what undoes it.
type chaosFault struct {
	name   string
	inject func(c *cluster, i int) (undo func())
}

var chaosFaults = []chaosFault{
	{"speaker-sigkill", func(c *cluster, i int) func() {
		c.speaker(c.nodes[i]).Kill()
		return func() { c.startSpeaker(i) }
	}},
	{"speaker-sigterm", func(c *cluster, i int) func() {
		sp := c.speaker(c.nodes[i])
		_ = syscall.Kill(sp.PID(), syscall.SIGTERM)
		select {
		case <-sp.Done():
		case <-time.After(30 * time.Second):
			c.t.Fatalf("chaos: speaker of %s did not exit within 30 s of SIGTERM:\n%s", c.nodes[i], tail(sp.Output(), 30))
		}
		return func() { c.startSpeaker(i) }
	}},
	// A hung speaker: its announcers keep answering, its heartbeat stops.
	{"speaker-sigstop", func(c *cluster, i int) func() {
		pid := c.speaker(c.nodes[i]).PID()
		_ = syscall.Kill(pid, syscall.SIGSTOP)
		return func() { _ = syscall.Kill(pid, syscall.SIGCONT) }
	}},
	{"announcer-sigkill", func(c *cluster, i int) func() {
		for _, pid := range announcerPIDs(c.t, c.speaker(c.nodes[i]).PID(), "arp") {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		return func() {}
	}},
	{"announcer-sigstop", func(c *cluster, i int) func() {
		pids := announcerPIDs(c.t, c.speaker(c.nodes[i]).PID(), "arp")
		for _, pid := range pids {
			_ = syscall.Kill(pid, syscall.SIGSTOP)
		}
		return func() {
			for _, pid := range pids {
				_ = syscall.Kill(pid, syscall.SIGCONT)
			}
		}
	}},
	{"link-flap", func(c *cluster, i int) func() {
		h := c.lab.Nodes[i]
		h.Run(c.t, "ip", "link", "set", h.Iface, "down")
		return func() { c.linkUp(h) }
	}},
	// The whole node dies: every process of its namespace stops and its link goes down.
	{"node-death", func(c *cluster, i int) func() {
		h := c.lab.Nodes[i]
		sp := c.speaker(c.nodes[i])
		_ = sp.Signal(syscall.SIGSTOP)
		h.Run(c.t, "ip", "link", "set", h.Iface, "down")
		return func() {
			c.linkUp(h)
			_ = sp.Signal(syscall.SIGCONT)
		}
	}},
	// The node loses the API server only: its segment still works.
	{"api-partition", func(c *cluster, i int) func() {
		h := c.lab.Nodes[i]
		rule := []string{"OUTPUT", "-p", "tcp", "-d", c.lab.Gateway.String(), "--dport", strconv.Itoa(c.env.Port), "-j", "DROP"}
		h.Run(c.t, "iptables", append([]string{"-w", "-A"}, rule...)...)
		return func() { h.Run(c.t, "iptables", append([]string{"-w", "-D"}, rule...)...) }
	}},
	{"node-notready", func(c *cluster, i int) func() {
		c.setReady(c.nodes[i], false)
		return func() { c.setReady(c.nodes[i], true) }
	}},
}

// linkUp brings a node's eth0 back as the node's network manager would: the kernel drops the
// routes through a link that goes down and restores only the link's own subnets, so the route
// to the API server (the lab's gateway) is put back too. Without it a flapped node stays cut
// off from the API server for good, a different fault (api-partition, unbounded).
func (c *cluster) linkUp(h *lab.Host) {
	h.Run(c.t, "ip", "link", "set", h.Iface, "up")
	h.Run(c.t, "ip", "route", "replace", c.lab.Gateway.String()+"/32", "dev", h.Iface)
}

// chaosResult is what one fault did to the addresses.
type chaosResult struct {
	fault, node string
	held        time.Duration
	gaps        returnResult
	dual        time.Duration
	dualIP      netip.Addr
	settled     time.Duration
}

func BenchmarkE2EChaos(b *testing.B) {
	faults := envInt(b, "CHAOS_FAULTS", 100)
	seed := uint64(envInt(b, "CHAOS_SEED", int(time.Now().UnixNano()%1_000_000)))
	b.Logf("chaos: seed %d (CHAOS_SEED=%d replays the draws), %d faults", seed, seed, faults)
	rng := rand.New(rand.NewPCG(seed, 0))

	fast := os.Getenv("CHAOS_FASTPATH") == "1"
	faultKinds := chaosFaults
	if fast {
		faultKinds = append(slices.Clone(chaosFaults), chaosFault{"fastpath-blocked", func(c *cluster, i int) func() {
			return blockFastPath(c.t, c.lab.Nodes[i])
		}})
	}
	c := newCluster(b, clusterOptions{nodes: chaosNodes, defaultHeartbeat: true, fastPath: fast})
	c.createBatchPool()
	names := make([]string, chaosServices)
	ips := make([]netip.Addr, chaosServices)
	err := parallel(chaosServices, apiWorkers, func(i int) error {
		names[i], ips[i] = fmt.Sprintf("chaos-%03d", i), batchIP(i)
		svc, es := c.batchService(names[i], ips[i])
		ctx := context.Background()
		if _, err := c.client.CoreV1().Services(c.ns).Create(ctx, svc, metav1.CreateOptions{}); err != nil {
			return err
		}
		_, err := c.client.DiscoveryV1().EndpointSlices(c.ns).Create(ctx, es, metav1.CreateOptions{})
		return err
	})
	if err != nil {
		b.Fatalf("creating Services: %v", err)
	}
	c.ownersOf(names, 5*time.Minute)
	p := c.startReplyProbe(b, ips, time.Duration(faults)*2*chaosSettle)
	c.waitOneMACEach(p, ips, chaosSettle, "before the faults")

	var results []chaosResult
	for n := range faults {
		f := faultKinds[rng.IntN(len(faultKinds))]
		i := rng.IntN(chaosNodes)
		held := time.Duration(1000+rng.IntN(5000)) * time.Millisecond
		start := time.Now()
		undo := f.inject(c, i)
		time.Sleep(held)
		undo()
		settled := c.waitOneMACEach(p, ips, chaosSettle, fmt.Sprintf("after fault %d (%s on %s)", n, f.name, c.nodes[i]))
		end := time.Now()
		r := chaosResult{fault: f.name, node: c.nodes[i], held: held, gaps: p.gapsWithin(ips, start, end, false), settled: settled.Sub(start)}
		r.dual, r.dualIP = p.longestDual(ips, start, end)
		b.Logf("fault %3d %-17s on %s held %5s: worst gap %s (%s, raw %s), two MACs %s (%s), one MAC each %s after the fault began",
			n, f.name, r.node, held, r.gaps.worst, r.gaps.worstIP, r.gaps.worstRaw, r.dual, r.dualIP, r.settled.Round(time.Millisecond))
		results = append(results, r)
		p.dump(fmt.Sprintf("chaos-%03d-%s", n, f.name), ips, start, end)
	}
	wrong := c.statusDisagreements(p, names, ips)
	for _, w := range wrong {
		b.Logf("status disagrees with the wire: %s", w)
	}
	reportChaos(b, results, len(wrong))
}

// waitOneMACEach waits until every address was answered by exactly one MAC in the last 300
// ms, and returns when.
func (c *cluster) waitOneMACEach(p *replyProbe, ips []netip.Addr, timeout time.Duration, what string) time.Time {
	c.t.Helper()
	eventually(c.t, timeout, func() (bool, string) {
		for _, ip := range ips {
			if macs := p.recentMACs(ip, 300*time.Millisecond); len(macs) != 1 {
				return false, fmt.Sprintf("%s: %s answered by %v in the last 300 ms", what, ip, macs)
			}
		}
		return true, ""
	})
	return time.Now()
}

// longestDual is the longest stretch in [from, to] during which two MACs answered one
// address: a reply whose MAC differs from another MAC's reply less than three probe intervals
// earlier starts or extends it.
func (p *replyProbe) longestDual(ips []netip.Addr, from, to time.Time) (time.Duration, netip.Addr) {
	p.mu.Lock()
	defer p.mu.Unlock()
	const overlap = 3 * probeInterval
	var longest time.Duration
	var worst netip.Addr
	for _, ip := range ips {
		last := map[string]time.Time{}
		var start, prev time.Time
		for _, rp := range p.replies[ip] {
			if rp.at.Before(from) || rp.at.After(to) {
				continue
			}
			last[rp.mac] = rp.at
			dual := false
			for mac, at := range last {
				if mac != rp.mac && rp.at.Sub(at) < overlap {
					dual = true
				}
			}
			switch {
			case dual && start.IsZero():
				start = rp.at
			case !dual && !start.IsZero() && rp.at.Sub(prev) >= overlap:
				start = time.Time{}
			}
			if dual {
				prev = rp.at
				if d := prev.Sub(start); d > longest {
					longest, worst = d, ip
				}
			}
		}
	}
	return longest, worst
}

// statusDisagreements lists the Services whose ServiceL2Status does not name the node whose
// MAC answers the address now.
func (c *cluster) statusDisagreements(p *replyProbe, names []string, ips []netip.Addr) []string {
	c.t.Helper()
	owners := c.ownersOf(names, chaosSettle)
	var out []string
	for k, name := range names {
		macs := p.recentMACs(ips[k], 300*time.Millisecond)
		if len(macs) != 1 || c.macOwner(macs[0]) != owners[name] {
			out = append(out, fmt.Sprintf("%s (%s): status names %s, answered by %v", name, ips[k], owners[name], macs))
		}
	}
	return out
}

// reportChaos logs the figures per fault kind and reports the overall ones.
func reportChaos(b *testing.B, results []chaosResult, wrong int) {
	byKind := map[string][]chaosResult{}
	for _, r := range results {
		byKind[r.fault] = append(byKind[r.fault], r)
	}
	kinds := make([]string, 0, len(byKind))
	for k := range byKind {
		kinds = append(kinds, k)
	}
	slices.Sort(kinds)
	var sb strings.Builder
	fmt.Fprintf(&sb, "%-17s %6s %12s %12s %12s\n", "fault", "count", "worst gap", "worst 2-MAC", "worst settle")
	var gaps, duals []float64
	for _, k := range kinds {
		var g, d, s time.Duration
		for _, r := range byKind[k] {
			g, d, s = max(g, r.gaps.worst), max(d, r.dual), max(s, r.settled)
			gaps = append(gaps, r.gaps.worst.Seconds())
			duals = append(duals, r.dual.Seconds())
		}
		fmt.Fprintf(&sb, "%-17s %6d %12s %12s %12s\n", k, len(byKind[k]), g.Round(time.Millisecond), d.Round(time.Millisecond), s.Round(time.Millisecond))
		// Also as metrics: without -v, go test keeps only the first lines of a benchmark's log.
		b.ReportMetric(g.Seconds(), k+"-unanswered-max-s")
		b.ReportMetric(d.Seconds(), k+"-two-mac-max-s")
	}
	b.Logf("chaos, %d faults:\n%s", len(results), sb.String())
	if len(gaps) > 0 {
		reportFloat(b, "unanswered", "s", gaps)
		reportFloat(b, "two-mac", "s", duals)
	}
	b.ReportMetric(float64(wrong), "wrong-statuses")
}
