//go:build e2e

package e2e

import (
	"bufio"
	"context"
	"fmt"
	"net/netip"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/herald-lb/herald/heartbeat"
	"github.com/herald-lb/herald/test/testbin"
)

// arpReply is one ARP reply the probe read.
type arpReply struct {
	ip  netip.Addr
	mac string
	at  time.Time
}

// watchARP runs test/arpprobe -all from the client on ips, a request for each every interval,
// and returns a function that stops it and returns every reply it read.
func (c *cluster) watchARP(ips []netip.Addr, interval, deadline time.Duration) (stop func() []arpReply) {
	c.t.Helper()
	args := []string{"-all", "-i", c.lab.Client.Iface, "-interval", interval.String(), "-deadline", deadline.String()}
	for _, ip := range ips {
		args = append(args, ip.String())
	}
	ctx, cancel := context.WithTimeout(context.Background(), deadline+10*time.Second)
	cmd := c.lab.Client.Command(ctx, testbin.Build(c.t, "./test/arpprobe"), args...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		c.t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		c.t.Fatal(err)
	}
	var mu sync.Mutex
	var replies []arpReply
	ready, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			f := strings.Fields(sc.Text())
			if len(f) == 1 && f[0] == "ready" {
				close(ready)
				continue
			}
			if len(f) != 3 {
				continue
			}
			ip, err1 := netip.ParseAddr(f[0])
			ns, err2 := strconv.ParseInt(f[2], 10, 64)
			if err1 != nil || err2 != nil {
				continue
			}
			mu.Lock()
			replies = append(replies, arpReply{ip: ip, mac: strings.ToLower(f[1]), at: time.Unix(0, ns)})
			mu.Unlock()
		}
	}()
	select {
	case <-ready:
	case <-done:
		c.t.Fatalf("arpprobe exited before probing: %s", stderr.String())
	}
	return func() []arpReply {
		cancel()
		<-done
		_ = cmd.Wait()
		mu.Lock()
		defer mu.Unlock()
		return replies
	}
}

// heartbeatsRenewedSince reports whether every node's speaker renewed its heartbeat Lease
// after t, and describes those that did not.
func (c *cluster) heartbeatsRenewedSince(t time.Time) (bool, string) {
	var late []string
	for _, n := range c.nodes {
		l, err := c.client.CoordinationV1().Leases(speakerNamespace).Get(context.Background(), heartbeat.LeaseName(n), metav1.GetOptions{})
		switch {
		case err != nil:
			late = append(late, n+": "+err.Error())
		case l.Spec.RenewTime == nil || !l.Spec.RenewTime.After(t):
			late = append(late, fmt.Sprintf("%s renewed at %v", n, l.Spec.RenewTime))
		}
	}
	return len(late) == 0, strings.Join(late, "; ")
}

// outageVerdict checks the replies of the window [from, to] for one IP: only want's MAC may
// answer (no new claim) and it must not fall silent for more than maxGap (no withdrawal).
func outageVerdict(replies []arpReply, ip netip.Addr, wantMAC string, from, to time.Time, maxGap time.Duration) (claims []string, longestGap time.Duration, answers int) {
	last := from
	others := map[string]int{}
	for _, r := range replies {
		if r.ip != ip || r.at.Before(from) || r.at.After(to) {
			continue
		}
		if r.mac != wantMAC {
			others[r.mac]++
			continue
		}
		answers++
		longestGap = max(longestGap, r.at.Sub(last))
		last = r.at
	}
	longestGap = max(longestGap, to.Sub(last))
	for mac, n := range others {
		claims = append(claims, fmt.Sprintf("%s answered %d times", mac, n))
	}
	sort.Strings(claims)
	return claims, longestGap, answers
}

// TestE2EAPIServerOutage stops kube-apiserver for 60 s while speakers announce four VIPs. An
// ARP probe of every VIP every 50 ms must see each answered throughout by the node that
// announced it before (zero withdrawals: no silence over 1 s; zero new claims: no other MAC),
// also while the speakers catch up after the return. During the outage every speaker is
// frozen and says so in /readyz; they converge (every heartbeat renewed, every status naming
// the node that answers, every speaker ready, deciding again) within 10 s of the API server
// being ready again: a speaker settles for two lease durations (5 s) after its first renewal
// goes through, so that one whose first write hangs is not taken for dead (liveness.Renewals).
func TestE2EAPIServerOutage(t *testing.T) {
	const (
		outage   = 60 * time.Second
		converge = 10 * time.Second
		interval = 50 * time.Millisecond
		maxGap   = time.Second
	)
	c := newCluster(t, clusterOptions{nodes: 3})
	// Every speaker ready (warmed up) before the Services exist: a speaker still warming
	// takes over IPs as it becomes a candidate, and an owner recorded during that hand-over
	// is not the one the outage must keep (a run recorded hl1-node-2, which handed
	// 192.0.2.100 on 0.9 s later, 4 s before the outage).
	c.waitAllReady(60 * time.Second)
	names := []string{"outage-a", "outage-b", "outage-c", "outage-d"}
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

	stopProbe := c.watchARP(ips, interval, outage+converge+60*time.Second)
	time.Sleep(2 * time.Second)
	down := time.Now()
	c.env.StopAPIServer(t)
	t.Logf("kube-apiserver stopped at %s", down.Format(time.StampMilli))
	time.Sleep(10 * time.Second)
	// The speakers know they are cut off: each says it is frozen.
	for i, n := range c.nodes {
		if code, body := c.readyz(i); code == 200 || !strings.Contains(body, "frozen") {
			t.Errorf("%s /readyz during the outage = %d %q, want 503 saying it is frozen", n, code, body)
		}
	}
	time.Sleep(outage - time.Since(down))
	c.env.RestartAPIServer(t)
	up := time.Now()
	t.Logf("kube-apiserver ready again at %s, %s after it stopped", up.Format(time.StampMilli), up.Sub(down).Round(time.Millisecond))

	var converged time.Duration
	eventually(t, converge, func() (bool, string) {
		if ok, why := c.heartbeatsRenewedSince(up); !ok {
			return false, "heartbeats not renewed since the return: " + why
		}
		if ok, why := c.readyAndOwnedBy(names, ips, owners); !ok {
			return false, why
		}
		converged = time.Since(up)
		return true, ""
	})
	// Keep probing a little after convergence: a late claim would show there.
	time.Sleep(2 * time.Second)
	end := time.Now()
	replies := stopProbe()
	t.Logf("converged %s after the API server was ready again (%d ARP replies probed)", converged.Round(time.Millisecond), len(replies))

	// Only Herald's nodes can make a new claim; a MAC of no lab node (a neighbour's proxy ARP
	// on the shared segment answered every address in one run) is logged, not counted.
	var herald []arpReply
	for _, r := range replies {
		if c.macOwner(r.mac) != "" {
			herald = append(herald, r)
		}
	}
	t.Logf("%d of the replies came from MACs of no lab node", len(replies)-len(herald))
	for _, ip := range ips {
		claims, gap, answers := outageVerdict(herald, ip, macOf(owners[ip]), down, end, maxGap)
		t.Logf("%s (announced by %s): %d answers from %s to %s, longest silence %s, other MACs: %v",
			ip, owners[ip], answers, down.Format(time.StampMilli), end.Format(time.StampMilli), gap.Round(time.Millisecond), claims)
		if len(claims) > 0 {
			t.Errorf("%s: new claims during or after the outage: %v", ip, claims)
		}
		if gap > maxGap {
			t.Errorf("%s: silent for %s (withdrawn) during or after the outage", ip, gap.Round(time.Millisecond))
		}
	}
}

// waitAllReady waits until every speaker's /readyz answers 200 (a speaker that does not
// listen yet is not ready).
func (c *cluster) waitAllReady(timeout time.Duration) {
	c.t.Helper()
	eventually(c.t, timeout, func() (bool, string) {
		for i, n := range c.nodes {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			out, err := c.lab.Nodes[i].Command(ctx, "curl", "-s", "-f", "--max-time", "5", "http://127.0.0.1:7472/readyz").CombinedOutput()
			cancel()
			if err != nil {
				return false, fmt.Sprintf("%s /readyz: %v %q", n, err, out)
			}
		}
		return true, ""
	})
}

// readyAndOwnedBy reports whether every speaker is ready and each Service names[i] has exactly
// one ServiceL2Status, naming owners[ips[i]]: the state the fault tests expect to return to.
func (c *cluster) readyAndOwnedBy(names []string, ips []netip.Addr, owners map[netip.Addr]string) (bool, string) {
	for i, n := range c.nodes {
		if code, body := c.readyz(i); code != 200 {
			return false, fmt.Sprintf("%s /readyz = %d %q", n, code, body)
		}
	}
	for i, n := range names {
		st := c.l2Statuses(n)
		if len(st) != 1 || st[0].Status.Node != owners[ips[i]] {
			return false, fmt.Sprintf("%s: %d ServiceL2Status %+v, want one naming %s", n, len(st), st, owners[ips[i]])
		}
	}
	return true, ""
}
