//go:build e2e

package e2e

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/herald-lb/herald/test/faultproxy"
)

// TestE2EWatchStall stalls every watch of one speaker (the one announcing the first Service)
// for 8 s, four lease durations of the harness's 2 s, while its Lease writes go through:
// issue 15's "a watch stall on one node withdraws nothing". BenchmarkE2EWatchStall60s runs
// the full 60 s.
func TestE2EWatchStall(t *testing.T) { watchStall(t, 8*time.Second) }

// BenchmarkE2EWatchStall60s is TestE2EWatchStall with the 60 s stall of issue 15 (too slow
// for make test): go test -tags e2e -run '^$' -bench WatchStall60s -benchtime 1x ./test/e2e/
func BenchmarkE2EWatchStall60s(b *testing.B) {
	for range b.N {
		watchStall(b, 60*time.Second)
	}
}

// watchStall checks, by ARP probes of the Services' IPs every 50 ms, that while one node's
// watches deliver nothing for stall (its heartbeat renewals still succeed) it withdraws
// nothing and no other node claims, that it says it is frozen because its view is stale,
// and that everything converges after.
func watchStall(t testing.TB, stall time.Duration) {
	const (
		converge = 10 * time.Second
		interval = 50 * time.Millisecond
		maxGap   = time.Second
	)
	c := newCluster(t, clusterOptions{nodes: 3, proxied: true})
	names := []string{"stall-a", "stall-b", "stall-c", "stall-d"}
	ips := make([]netip.Addr, len(names))
	owners := map[netip.Addr]string{}
	for i, n := range names {
		c.createService(serviceOptions{name: n})
		ips[i] = c.waitIP(n)
	}
	for i, n := range names {
		owners[ips[i]] = c.waitAnnouncer(n, 30*time.Second)
		c.waitARPOwner(ips[i], owners[ips[i]], 10*time.Second)
	}
	macOf := func(node string) string { return strings.ToLower(c.lab.Nodes[c.nodeIndex(node)].MAC.String()) }
	stalledNode := owners[ips[0]]
	stalled := c.nodeIndex(stalledNode)
	proxy := c.proxies[stalled]

	stopProbe := c.watchARP(ips, interval, stall+converge+60*time.Second)
	time.Sleep(2 * time.Second)
	before := proxy.Stats().Requests
	start := time.Now()
	proxy.Set(faultproxy.Faults{StallWatches: true})
	t.Logf("%s's watches stalled at %s", stalledNode, start.Format(time.StampMilli))
	// Its view is stale within the lease duration less the renew interval: it says so, and
	// its renewals still reach the API server (the others keep seeing it alive).
	time.Sleep(min(stall/2, 4*time.Second))
	if code, body := c.readyz(stalled); code == 200 || !strings.Contains(body, "stale") {
		t.Errorf("%s /readyz during the stall = %d %q, want 503 saying it is frozen because its view is stale", stalledNode, code, body)
	}
	if ok, why := c.heartbeatsRenewedSince(start); !ok {
		t.Errorf("heartbeats during the stall: %s (the stalled node's writes must go through)", why)
	}
	time.Sleep(stall - time.Since(start))
	proxy.Set(faultproxy.Faults{})
	end := time.Now()
	t.Logf("%s's watches delivering again at %s, after %s; its proxy forwarded %d requests meanwhile",
		stalledNode, end.Format(time.StampMilli), end.Sub(start).Round(time.Millisecond), proxy.Stats().Requests-before)

	var converged time.Duration
	eventually(t, converge, func() (bool, string) {
		if ok, why := c.readyAndOwnedBy(names, ips, owners); !ok {
			return false, why
		}
		converged = time.Since(end)
		return true, ""
	})
	// Keep probing a little after convergence: a late claim or withdrawal would show there.
	time.Sleep(2 * time.Second)
	replies := stopProbe()
	t.Logf("converged %s after the stall ended (%d ARP replies probed)", converged.Round(time.Millisecond), len(replies))

	// Only Herald's nodes can make a claim; a MAC of no lab node is logged, not counted.
	var herald []arpReply
	for _, r := range replies {
		if c.macOwner(r.mac) != "" {
			herald = append(herald, r)
		}
	}
	t.Logf("%d of the replies came from MACs of no lab node", len(replies)-len(herald))
	to := time.Now()
	for _, ip := range ips {
		claims, gap, answers := outageVerdict(herald, ip, macOf(owners[ip]), start, to, maxGap)
		t.Logf("%s (announced by %s): %d answers from %s to %s, longest silence %s, other MACs: %v",
			ip, owners[ip], answers, start.Format(time.StampMilli), to.Format(time.StampMilli), gap.Round(time.Millisecond), claims)
		if len(claims) > 0 {
			t.Errorf("%s: claimed by another node during or after %s's watch stall: %v", ip, stalledNode, claims)
		}
		if gap > maxGap {
			t.Errorf("%s: silent for %s (withdrawn) during or after %s's watch stall", ip, gap.Round(time.Millisecond), stalledNode)
		}
	}
}
