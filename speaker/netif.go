package speaker

import (
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/herald-lb/herald/framework"
)

// link is what the kernel says of one interface, before LocalInterfaces decides what of it
// the heartbeat publishes.
type link struct {
	name     string
	up       bool
	loopback bool
	noARP    bool
	mac      net.HardwareAddr
	prefixes []netip.Prefix
}

// LocalInterfaces reads the interfaces of the network namespace the speaker runs in (the
// node's, with hostNetwork) in the form the heartbeat publishes (see publishable). It reads
// every address in one netlink dump: on a kube-proxy IPVS node one interface holds every
// ClusterIP, and asking per interface would walk them once per interface.
func LocalInterfaces() ([]framework.Interface, error) {
	links, err := netlink.LinkList()
	if err != nil {
		return nil, fmt.Errorf("listing interfaces: %w", err)
	}
	addrs, err := netlink.AddrList(nil, netlink.FAMILY_ALL)
	if err != nil {
		return nil, fmt.Errorf("listing addresses: %w", err)
	}
	byIndex := make(map[int]*link, len(links))
	out := make([]*link, 0, len(links))
	for _, l := range links {
		a := l.Attrs()
		li := &link{
			name:     a.Name,
			up:       a.Flags&net.FlagUp != 0,
			loopback: a.Flags&net.FlagLoopback != 0,
			noARP:    a.RawFlags&unix.IFF_NOARP != 0,
			mac:      a.HardwareAddr,
		}
		byIndex[a.Index] = li
		out = append(out, li)
	}
	for _, a := range addrs {
		li, ok := byIndex[a.LinkIndex]
		if !ok || a.IPNet == nil {
			continue
		}
		ip, ok := netip.AddrFromSlice(a.IP)
		if !ok {
			continue
		}
		ones, _ := a.Mask.Size()
		li.prefixes = append(li.prefixes, netip.PrefixFrom(ip.Unmap(), ones))
	}
	return publishable(out), nil
}

// publishable keeps of the node's interfaces only what the election uses (the Interfaces
// plugin: name, up, on-link subnets) and the conflict check uses (MAC), sorted by name:
//   - no loopback, and no NOARP interface (kube-ipvs0, dummies): nothing answers ARP or NDP
//     there, and kube-proxy in IPVS mode puts every ClusterIP and load-balancer IP on one,
//     which once made the heartbeat outgrow the annotation limit;
//   - no host prefix (/32, /128): it names one address, not a subnet, so it cannot put an IP
//     on-link (and would, for a VIP that kube-proxy or keepalived placed on the node itself);
//   - no link-local prefix: a load-balancer IP is never link-local.
func publishable(links []*link) []framework.Interface {
	out := make([]framework.Interface, 0, len(links))
	for _, l := range links {
		if l.loopback || l.noARP {
			continue
		}
		itf := framework.Interface{Name: l.name, Up: l.up, MAC: l.mac.String()}
		for _, p := range l.prefixes {
			if p.IsSingleIP() || p.Addr().IsLinkLocalUnicast() {
				continue
			}
			itf.Prefixes = append(itf.Prefixes, p)
		}
		slices.SortFunc(itf.Prefixes, comparePrefixes)
		out = append(out, itf)
	}
	slices.SortFunc(out, func(a, b framework.Interface) int { return strings.Compare(a.Name, b.Name) })
	return out
}

func comparePrefixes(a, b netip.Prefix) int {
	if c := a.Addr().Compare(b.Addr()); c != 0 {
		return c
	}
	return a.Bits() - b.Bits()
}
