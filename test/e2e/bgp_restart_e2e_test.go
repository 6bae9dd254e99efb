//go:build e2e

package e2e

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
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
	if watch.err != nil {
		t.Fatal(watch.err)
	}
	t.Logf("graceful restart %v: %d requests, %d failed; each restart until every path was fresh again: %v; time each node's path was missing on the router: %v (%d changes of its route)",
		gr, ok+failed, failed, back, missing, watch.changes)
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

// nexthopWatch follows the router's kernel route for a prefix, the one that forwards the
// client's packets, through netlink route events, and sums, per node, how long the route did
// not go through it. Events, not polls: a withdrawal shows however short it is, and nothing
// is charged between two reads. Not zebra's RIB (show ip route): zebra replaces its entry
// when graceful restart marks a path stale and again when the path is re-sent, and until the
// data plane confirms the replacement it lists the new entry as queued, not installed, while
// the kernel keeps forwarding through every node (an identical replace is not even an event).
// A poll landing there counted every node missing for one poll interval.
type nexthopWatch struct {
	stopc   chan struct{}
	done    chan struct{}
	missing []time.Duration
	// changes counts the kernel's changes of the route while watched.
	changes int
	err     error
}

func (c *bgpCluster) watchNexthops(pfx netip.Prefix) *nexthopWatch {
	c.t.Helper()
	ns, err := netns.GetFromName(c.lab.Router.Netns)
	if err != nil {
		c.t.Fatalf("router namespace: %v", err)
	}
	c.t.Cleanup(func() { _ = ns.Close() })
	updates := make(chan netlink.RouteUpdate, 256)
	unsubscribe := make(chan struct{})
	failed := make(chan error, 1)
	// Subscribed before the route is read, so no change falls between the two.
	if err := netlink.RouteSubscribeWithOptions(updates, unsubscribe, netlink.RouteSubscribeOptions{Namespace: &ns,
		ErrorCallback: func(err error) {
			select {
			case failed <- err:
			default:
			}
		}}); err != nil {
		c.t.Fatalf("subscribing to the router's routes: %v", err)
	}
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		close(unsubscribe)
		c.t.Fatalf("netlink in the router namespace: %v", err)
	}
	routes, err := h.RouteListFiltered(netlink.FAMILY_ALL, &netlink.Route{Table: unix.RT_TABLE_MAIN}, netlink.RT_FILTER_TABLE)
	h.Close()
	if err != nil {
		close(unsubscribe)
		c.t.Fatalf("listing the router's routes: %v", err)
	}
	var via []netip.Addr
	for _, r := range routes {
		if routeFor(r, pfx) {
			via = gateways(r)
		}
	}
	w := &nexthopWatch{stopc: make(chan struct{}), done: make(chan struct{}), missing: make([]time.Duration, len(c.nodes))}
	go func() {
		defer close(w.done)
		defer close(unsubscribe)
		since := time.Now()
		account := func(now time.Time) {
			for i, n := range c.lab.Nodes {
				if !containsAddr(via, n.IPv4) {
					w.missing[i] += now.Sub(since)
				}
			}
			since = now
		}
		for {
			select {
			case <-w.stopc:
				account(time.Now())
				return
			case err := <-failed:
				account(time.Now())
				w.err = fmt.Errorf("following the router's routes: %w", err)
				return
			case u, ok := <-updates:
				if !ok {
					account(time.Now())
					w.err = errors.New("following the router's routes: the netlink subscription ended")
					return
				}
				if !routeFor(u.Route, pfx) {
					continue
				}
				account(time.Now())
				w.changes++
				if u.Type == unix.RTM_DELROUTE {
					via = nil
				} else {
					via = gateways(u.Route)
				}
			}
		}
	}()
	c.t.Cleanup(func() { w.stop() })
	return w
}

// routeFor reports whether r is the main table's route for pfx.
func routeFor(r netlink.Route, pfx netip.Prefix) bool {
	if r.Dst == nil || (r.Table != 0 && r.Table != unix.RT_TABLE_MAIN) {
		return false
	}
	ones, _ := r.Dst.Mask.Size()
	a, ok := netip.AddrFromSlice(r.Dst.IP)
	return ok && netip.PrefixFrom(a.Unmap(), ones) == pfx
}

// gateways returns a route's next hops.
func gateways(r netlink.Route) []netip.Addr {
	var out []netip.Addr
	add := func(ip net.IP) {
		if a, ok := netip.AddrFromSlice(ip); ok {
			out = append(out, a.Unmap())
		}
	}
	if len(r.MultiPath) == 0 {
		add(r.Gw)
	}
	for _, nh := range r.MultiPath {
		add(nh.Gw)
	}
	return out
}

// stop ends the watch and returns, per node index, how long the route did not go through
// it (err says whether the watch lost track).
func (w *nexthopWatch) stop() []time.Duration {
	select {
	case <-w.stopc:
	default:
		close(w.stopc)
	}
	<-w.done
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
