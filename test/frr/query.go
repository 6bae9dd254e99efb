package frr

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// Vtysh runs vtysh commands against this router and returns the output.
func (r *Router) Vtysh(ctx context.Context, cmds ...string) (string, error) {
	args := []string{"--vty_socket", r.Dir}
	for _, c := range cmds {
		args = append(args, "-c", c)
	}
	out, err := exec.CommandContext(ctx, "vtysh", args...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("vtysh %q: %w: %s", cmds, err, out)
	}
	return string(out), nil
}

// JSON runs one vtysh "show ... json" command and decodes its output into v.
func (r *Router) JSON(cmd string, v any) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := r.Vtysh(ctx, cmd)
	if err != nil {
		return err
	}
	if err := json.Unmarshal([]byte(out), v); err != nil {
		return fmt.Errorf("vtysh %q: decode: %w: %.300s", cmd, err, out)
	}
	return nil
}

// Route is a route in zebra's RIB.
type Route struct {
	Prefix    string
	Protocol  string
	Installed bool
	// Nexthops are the active next hops installed in the FIB.
	Nexthops []netip.Addr
}

// Route returns the selected route for prefix, ok false when there is none.
func (r *Router) Route(prefix netip.Prefix) (Route, bool, error) {
	family := "ip"
	if prefix.Addr().Is6() {
		family = "ipv6"
	}
	var raw map[string][]struct {
		Prefix    string `json:"prefix"`
		Protocol  string `json:"protocol"`
		Selected  bool   `json:"selected"`
		Installed bool   `json:"installed"`
		Nexthops  []struct {
			IP     string `json:"ip"`
			Active bool   `json:"active"`
			FIB    bool   `json:"fib"`
		} `json:"nexthops"`
	}
	if err := r.JSON(fmt.Sprintf("show %s route %s json", family, prefix), &raw); err != nil {
		return Route{}, false, err
	}
	for _, e := range raw[prefix.String()] {
		if !e.Selected {
			continue
		}
		rt := Route{Prefix: e.Prefix, Protocol: e.Protocol, Installed: e.Installed}
		for _, nh := range e.Nexthops {
			if a, err := netip.ParseAddr(nh.IP); err == nil && nh.Active && nh.FIB {
				rt.Nexthops = append(rt.Nexthops, a)
			}
		}
		return rt, true, nil
	}
	return Route{}, false, nil
}

// WaitRoute waits until prefix is installed with exactly n next hops (n 0: no route) and
// returns it, or fails the test after timeout.
func (r *Router) WaitRoute(t testing.TB, prefix netip.Prefix, n int, timeout time.Duration) Route {
	t.Helper()
	rt, err := r.AwaitRoute(prefix, n, timeout)
	if err != nil {
		t.Fatal(err)
	}
	return rt
}

// AwaitRoute is WaitRoute returning an error, for use outside the test goroutine; it polls
// every 10ms.
func (r *Router) AwaitRoute(prefix netip.Prefix, n int, timeout time.Duration) (Route, error) {
	deadline := time.Now().Add(timeout)
	var last Route
	var lastErr error
	for {
		rt, ok, err := r.Route(prefix)
		lastErr = err
		if err == nil {
			last = rt
			if (n == 0 && !ok) || (ok && rt.Installed && len(rt.Nexthops) == n) {
				return rt, nil
			}
		}
		if time.Now().After(deadline) {
			return last, fmt.Errorf("frr: %s with %d next hops not seen within %s (last: %+v, err %v)", prefix, n, timeout, last, lastErr)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Path is one BGP path the router received for a prefix.
type Path struct {
	Peer                string
	Nexthop             string
	LocalPref           *uint32
	Communities         []string
	LargeCommunities    []string
	ExtendedCommunities []string
	Valid, Best         bool
	Multipath           bool
	// Stale is set while graceful restart keeps a path of a peer whose session went down.
	Stale bool
}

// Paths returns the BGP paths the router holds for prefix.
func (r *Router) Paths(prefix netip.Prefix) ([]Path, error) {
	family := "ipv4"
	if prefix.Addr().Is6() {
		family = "ipv6"
	}
	var raw struct {
		Paths []struct {
			LocPrf    *uint32 `json:"locPrf"`
			Valid     bool    `json:"valid"`
			Multipath bool    `json:"multipath"`
			Stale     bool    `json:"stale"`
			Bestpath  *struct {
				Overall bool `json:"overall"`
			} `json:"bestpath"`
			Community *struct {
				String string `json:"string"`
			} `json:"community"`
			LargeCommunity *struct {
				String string `json:"string"`
			} `json:"largeCommunity"`
			ExtendedCommunity *struct {
				String string `json:"string"`
			} `json:"extendedCommunity"`
			Nexthops []struct {
				IP string `json:"ip"`
			} `json:"nexthops"`
			Peer struct {
				PeerID string `json:"peerId"`
			} `json:"peer"`
		} `json:"paths"`
	}
	if err := r.JSON(fmt.Sprintf("show bgp %s unicast %s json", family, prefix), &raw); err != nil {
		return nil, err
	}
	out := make([]Path, 0, len(raw.Paths))
	for _, p := range raw.Paths {
		q := Path{Peer: p.Peer.PeerID, LocalPref: p.LocPrf, Valid: p.Valid, Multipath: p.Multipath, Best: p.Bestpath != nil && p.Bestpath.Overall, Stale: p.Stale}
		if len(p.Nexthops) > 0 {
			q.Nexthop = p.Nexthops[0].IP
		}
		if p.Community != nil {
			q.Communities = strings.Fields(p.Community.String)
		}
		if p.LargeCommunity != nil {
			q.LargeCommunities = strings.Fields(p.LargeCommunity.String)
		}
		if p.ExtendedCommunity != nil {
			q.ExtendedCommunities = strings.Fields(p.ExtendedCommunity.String)
		}
		out = append(out, q)
	}
	return out, nil
}

// ReceivedPrefixes returns how many prefixes of a family ("ipv4" or "ipv6") the router has
// accepted from the neighbor at addr.
func (r *Router) ReceivedPrefixes(family string, addr netip.Addr) (int, error) {
	var raw struct {
		Peers map[string]struct {
			PfxRcd int `json:"pfxRcd"`
		} `json:"peers"`
	}
	if err := r.JSON(fmt.Sprintf("show bgp %s unicast summary json", family), &raw); err != nil {
		return 0, err
	}
	return raw.Peers[addr.String()].PfxRcd, nil
}

// NeighborState is a BGP neighbor's state as the router sees it.
type NeighborState struct {
	State string `json:"bgpState"`
	// LastReset is why the session last went down, e.g. a hold timer expiry.
	LastReset string `json:"lastResetDueTo"`
	// Established counts the sessions that reached Established.
	Established int `json:"connectionsEstablished"`
}

// Neighbor returns one neighbor's session state.
func (r *Router) Neighbor(addr netip.Addr) (NeighborState, error) {
	var raw map[string]NeighborState
	if err := r.JSON(fmt.Sprintf("show bgp neighbors %s json", addr), &raw); err != nil {
		return NeighborState{}, err
	}
	st, ok := raw[addr.String()]
	if !ok {
		return NeighborState{}, fmt.Errorf("frr: no neighbor %s", addr)
	}
	return st, nil
}

// BFDPeer is one BFD session of bfdd.
type BFDPeer struct {
	Peer   string `json:"peer"`
	Status string `json:"status"`
}

// BFDPeers returns bfdd's sessions.
func (r *Router) BFDPeers() ([]BFDPeer, error) {
	var out []BFDPeer
	err := r.JSON("show bfd peers json", &out)
	return out, err
}

// BFDStatus returns the status ("up", "down", ...) of the BFD session with addr.
func (r *Router) BFDStatus(addr netip.Addr) (string, error) {
	peers, err := r.BFDPeers()
	if err != nil {
		return "", err
	}
	for _, p := range peers {
		if p.Peer == addr.String() {
			return p.Status, nil
		}
	}
	return "", errors.New("frr: no BFD session with " + addr.String())
}
