//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"net/netip"
	"sync"
	"syscall"
	"testing"
	"time"
)

// TestE2EBGPRollingRestart restarts every speaker in turn as a DaemonSet's rolling update
// does (SIGTERM, the process exits, a new speaker starts) while a client behind the router
// asks the VIP over HTTP every 50 ms (each request bounded by 1 s). With graceful restart on,
// no request fails and the router never loses a node's path: the stopping speaker leaves its
// paths with FRR, which keeps them as stale until the next speaker re-sends them. With it
// off, each restart's withdrawal shows on the router and is bounded (the node is back within
// 30 s); the figures are logged.
func TestE2EBGPRollingRestart(t *testing.T) {
	for _, gr := range []bool{true, false} {
		t.Run(fmt.Sprintf("gracefulRestart=%v", gr), func(t *testing.T) { testBGPRollingRestart(t, gr) })
	}
}

func testBGPRollingRestart(t *testing.T, gr bool) {
	c := newBGPCluster(t, 3, bgpOptions{gracefulRestart: gr})
	c.routeClientThroughRouter()
	c.createService(serviceOptions{name: "bgp-rolling", ip: "203.0.113.60"})
	ip := c.waitIP("bgp-rolling")
	c.serveEcho(ip)
	c.waitNexthops(ip, 40*time.Second, 0, 1, 2)
	if got := c.curl(ip, time.Second); got == "" {
		t.Fatalf("the client cannot reach %s through the router", ip)
	}

	load := c.startCurlLoop(ip)
	watch := c.watchNexthops(netip.PrefixFrom(ip, 32))
	var back []time.Duration
	for i := range c.nodes {
		start := time.Now()
		sp := c.speaker(c.nodes[i])
		if err := syscall.Kill(sp.PID(), syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		select {
		case <-sp.Done():
		case <-time.After(30 * time.Second):
			t.Fatalf("speaker of %s did not exit within 30 s of SIGTERM", c.nodes[i])
		}
		c.startSpeaker(i)
		c.waitFreshPaths(ip, 30*time.Second)
		back = append(back, time.Since(start))
	}
	ok, failed := load.stop()
	missing := watch.stop()
	t.Logf("graceful restart %v: %d requests, %d failed; each restart until every path was fresh again: %v; time each node's path was missing on the router: %v",
		gr, ok+failed, failed, back, missing)
	if ok == 0 {
		t.Fatal("no request succeeded: the loop measured nothing")
	}
	for i, n := range c.nodes {
		switch {
		case gr && missing[i] > 0:
			t.Errorf("with graceful restart the router lost %s's path for %s", n, missing[i])
		case !gr && missing[i] == 0:
			t.Errorf("without graceful restart %s's path was never withdrawn: nothing was restarted", n)
		}
	}
	if gr && failed > 0 {
		t.Errorf("with graceful restart %d of %d requests failed", failed, ok+failed)
	}
}

// routeClientThroughRouter makes the router forward and the client reach 203.0.113.0/24
// through it, without ICMP redirects (which would send the client to a node directly).
func (c *bgpCluster) routeClientThroughRouter() {
	c.t.Helper()
	c.lab.Router.Run(c.t, "sysctl", "-qw", "net.ipv4.ip_forward=1", "net.ipv4.conf.all.send_redirects=0", "net.ipv4.conf.eth0.send_redirects=0",
		"net.ipv4.fib_multipath_hash_policy=1")
	c.lab.Client.Run(c.t, "sysctl", "-qw", "net.ipv4.conf.all.accept_redirects=0", "net.ipv4.conf.eth0.accept_redirects=0")
	c.lab.Client.Run(c.t, "ip", "route", "replace", "203.0.113.0/24", "via", c.lab.Router.IPv4.String())
}

// waitFreshPaths waits until FRR holds a path from every node for ip, none stale, and routes
// it through all of them.
func (c *bgpCluster) waitFreshPaths(ip netip.Addr, timeout time.Duration) {
	c.t.Helper()
	pfx := netip.PrefixFrom(ip, 32)
	eventually(c.t, timeout, func() (bool, string) {
		paths, err := c.router.Paths(pfx)
		if err != nil {
			return false, err.Error()
		}
		for _, p := range paths {
			if p.Stale {
				return false, fmt.Sprintf("the path from %s is stale", p.Peer)
			}
		}
		if len(paths) != len(c.nodes) {
			return false, fmt.Sprintf("%d paths for %s, want %d", len(paths), pfx, len(c.nodes))
		}
		rt, ok, err := c.router.Route(pfx)
		return err == nil && ok && rt.Installed && len(rt.Nexthops) == len(c.nodes), fmt.Sprintf("route %+v, %v, %v", rt, ok, err)
	})
}

// curlLoop asks a VIP from the client every 50 ms until stopped.
type curlLoop struct {
	cancel     context.CancelFunc
	done       chan struct{}
	ok, failed int
}

func (c *bgpCluster) startCurlLoop(ip netip.Addr) *curlLoop {
	ctx, cancel := context.WithCancel(context.Background())
	l := &curlLoop{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(l.done)
		for ctx.Err() == nil {
			if c.curl(ip, time.Second) == "" {
				l.failed++
			} else {
				l.ok++
			}
			time.Sleep(50 * time.Millisecond)
		}
	}()
	c.t.Cleanup(func() { l.stop() })
	return l
}

// stop ends the loop and returns the requests that succeeded and failed.
func (l *curlLoop) stop() (ok, failed int) {
	l.cancel()
	<-l.done
	return l.ok, l.failed
}

// nexthopWatch polls FRR's route every 20 ms and sums, per node, how long it was not a next
// hop.
type nexthopWatch struct {
	cancel  context.CancelFunc
	done    chan struct{}
	mu      sync.Mutex
	missing []time.Duration
}

func (c *bgpCluster) watchNexthops(pfx netip.Prefix) *nexthopWatch {
	ctx, cancel := context.WithCancel(context.Background())
	w := &nexthopWatch{cancel: cancel, done: make(chan struct{}), missing: make([]time.Duration, len(c.nodes))}
	go func() {
		defer close(w.done)
		last := time.Now()
		for ctx.Err() == nil {
			rt, ok, err := c.router.Route(pfx)
			now := time.Now()
			if err == nil {
				w.mu.Lock()
				for i, n := range c.lab.Nodes {
					if !ok || !rt.Installed || !containsAddr(rt.Nexthops, n.IPv4) {
						w.missing[i] += now.Sub(last)
					}
				}
				w.mu.Unlock()
			}
			last = now
			time.Sleep(20 * time.Millisecond)
		}
	}()
	c.t.Cleanup(func() { w.stop() })
	return w
}

// stop ends the watch and returns, per node index, how long its path was missing.
func (w *nexthopWatch) stop() []time.Duration {
	w.cancel()
	<-w.done
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make([]time.Duration, len(w.missing))
	for i, d := range w.missing {
		out[i] = d.Round(time.Millisecond)
	}
	return out
}

func containsAddr(list []netip.Addr, a netip.Addr) bool {
	for _, x := range list {
		if x == a {
			return true
		}
	}
	return false
}
