// Package ndp is Herald's IPv6 announcer: it joins the solicited-node multicast group of each
// announced address, answers Neighbor Solicitations with the interface's MAC, sends unsolicited
// Neighbor Advertisements (override flag set) on announce and refresh, and reports other MACs
// advertising our addresses (see package l2 for the shared behaviour and how links are chosen).
//
// Solicitations are read from an ICMPv6 socket (mdlayher/ndp); advertisements are written as
// whole Ethernet frames on a packet socket so their IPv6 source is the announced address itself
// (hosts such as ndisc6 ignore an advertisement whose source is not its target) without
// needing net.ipv6.ip_nonlocal_bind. Both need CAP_NET_RAW only.
//
// Limit: each distinct solicited-node group is a membership of the ICMPv6 socket, and the
// kernel bounds those by net.core.optmem_max (131072 allows about 2,300). Addresses whose join
// fails are still answered when a solicitation reaches the host some other way, are retried on
// every change, and make the status degraded, naming them. Reading solicitations from a
// packet socket in all-multicast mode would lift the limit.
package ndp

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"

	"github.com/hashicorp/go-hclog"
	"github.com/mdlayher/ethernet"
	"github.com/mdlayher/ndp"
	"github.com/mdlayher/packet"
	"golang.org/x/net/ipv6"

	"github.com/herald-lb/herald/announcers"
	"github.com/herald-lb/herald/announcers/l2"
)

// New returns the NDP announcer.
func New(log hclog.Logger, version string) *l2.Announcer {
	return l2.New(Driver{}, log, nil, version)
}

// Driver is the NDP protocol for package l2.
type Driver struct{}

// Kind implements l2.Driver.
func (Driver) Kind() string { return announcers.KindNDP }

// Validate implements l2.Driver.
func (Driver) Validate(addr netip.Addr) error {
	if !addr.Is6() || addr.Is4In6() {
		return errors.New("not an IPv6 address")
	}
	if addr.Zone() != "" {
		return errors.New("has a zone")
	}
	if !addr.IsGlobalUnicast() {
		return errors.New("not a global unicast address")
	}
	return nil
}

// Suitable implements l2.Driver: any IPv6 address, link-local included, makes NDP usable.
func (Driver) Suitable(ifaceAddr netip.Addr) bool { return ifaceAddr.Is6() && !ifaceAddr.Is4In6() }

// Open implements l2.Driver.
func (Driver) Open(ifi *net.Interface, h l2.Handler) (l2.Link, error) {
	conn, _, err := ndp.Listen(ifi, ndp.LinkLocal)
	if err != nil {
		return nil, fmt.Errorf("ndp listen: %w", err)
	}
	var filter ipv6.ICMPFilter
	filter.SetAll(true)
	filter.Accept(ipv6.ICMPTypeNeighborSolicitation)
	filter.Accept(ipv6.ICMPTypeNeighborAdvertisement)
	if err := conn.SetICMPFilter(&filter); err != nil {
		_ = conn.Close()
		return nil, fmt.Errorf("ndp filter: %w", err)
	}
	// Protocol 0: this socket only sends, it receives nothing.
	out, err := packet.Listen(ifi, packet.Raw, 0, nil)
	if err != nil {
		_ = conn.Close()
		return nil, fmt.Errorf("packet socket: %w", err)
	}
	return &link{conn: conn, out: out, mac: ifi.HardwareAddr, h: h, groups: map[netip.Addr]int{}}, nil
}

type link struct {
	conn *ndp.Conn
	out  *packet.Conn
	mac  net.HardwareAddr
	h    l2.Handler

	mu     sync.Mutex
	groups map[netip.Addr]int // solicited-node group → announced addresses in it
}

var (
	allNodes    = netip.MustParseAddr("ff02::1")
	allNodesMAC = net.HardwareAddr{0x33, 0x33, 0, 0, 0, 1}
)

// Serve answers solicitations for owned addresses and reports foreign advertisements.
func (l *link) Serve() error {
	for {
		msg, _, src, err := l.conn.ReadFrom()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			// A malformed message (a parse error, not a socket error) is the sender's
			// problem, not a reason to stop.
			if !isNetError(err) {
				continue
			}
			return err
		}
		switch m := msg.(type) {
		case *ndp.NeighborSolicitation:
			l.solicited(m, src)
		case *ndp.NeighborAdvertisement:
			if l.h.Owns(m.TargetAddress) {
				if mac := linkLayer(m.Options, ndp.Target); mac != nil {
					l.h.Foreign(m.TargetAddress, mac, "neighbor advertisement from another MAC")
				}
			}
		}
	}
}

func isNetError(err error) bool {
	var ne net.Error
	var oe *net.OpError
	return errors.As(err, &ne) || errors.As(err, &oe)
}

func (l *link) solicited(ns *ndp.NeighborSolicitation, src netip.Addr) {
	if !l.h.Owns(ns.TargetAddress) {
		return
	}
	na := &ndp.NeighborAdvertisement{
		Solicited: true, Override: true, TargetAddress: ns.TargetAddress,
		Options: []ndp.Option{&ndp.LinkLayerAddress{Direction: ndp.Target, Addr: l.mac}},
	}
	dst, dstMAC := src, linkLayer(ns.Options, ndp.Source)
	if src.IsUnspecified() {
		// Duplicate address detection: answer to all nodes (RFC 4861 7.2.4).
		na.Solicited, dst, dstMAC = false, allNodes, allNodesMAC
	}
	if dstMAC == nil {
		return // nowhere to send it: hosts include their address in solicitations
	}
	if err := l.send(na, dst, dstMAC); err == nil {
		l.h.Answered()
	}
}

// Announce sends an unsolicited advertisement with the override flag to all nodes.
func (l *link) Announce(addr netip.Addr) error {
	na := &ndp.NeighborAdvertisement{
		Override: true, TargetAddress: addr,
		Options: []ndp.Option{&ndp.LinkLayerAddress{Direction: ndp.Target, Addr: l.mac}},
	}
	return l.send(na, allNodes, allNodesMAC)
}

// send writes na from its target address as a whole Ethernet frame.
func (l *link) send(na *ndp.NeighborAdvertisement, dst netip.Addr, dstMAC net.HardwareAddr) error {
	src := na.TargetAddress
	body, err := ndp.MarshalMessageChecksum(na, src, dst)
	if err != nil {
		return fmt.Errorf("marshal advertisement: %w", err)
	}
	ip := make([]byte, 40, 40+len(body))
	ip[0] = 6 << 4
	binary.BigEndian.PutUint16(ip[4:6], uint16(len(body)))
	ip[6] = 58 // ICMPv6
	ip[7] = ndp.HopLimit
	s, d := src.As16(), dst.As16()
	copy(ip[8:24], s[:])
	copy(ip[24:40], d[:])
	frame := ethernet.Frame{Destination: dstMAC, Source: l.mac, EtherType: ethernet.EtherTypeIPv6, Payload: append(ip, body...)}
	b, err := frame.MarshalBinary()
	if err != nil {
		return fmt.Errorf("marshal frame: %w", err)
	}
	_, err = l.out.WriteTo(b, &packet.Addr{HardwareAddr: dstMAC})
	return err
}

// Watch joins addr's solicited-node group so solicitations for it reach us.
func (l *link) Watch(addr netip.Addr) error {
	group, err := ndp.SolicitedNodeMulticast(addr)
	if err != nil {
		return err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.groups[group] == 0 {
		if err := l.conn.JoinGroup(group); err != nil {
			return fmt.Errorf("join %s: %w", group, err)
		}
	}
	l.groups[group]++
	return nil
}

// Unwatch leaves the group when no announced address is left in it.
func (l *link) Unwatch(addr netip.Addr) error {
	group, err := ndp.SolicitedNodeMulticast(addr)
	if err != nil {
		return err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.groups[group] == 0 {
		return nil
	}
	l.groups[group]--
	if l.groups[group] == 0 {
		delete(l.groups, group)
		return l.conn.LeaveGroup(group)
	}
	return nil
}

func (l *link) Close() error {
	return errors.Join(l.conn.Close(), l.out.Close())
}

func linkLayer(opts []ndp.Option, dir ndp.Direction) net.HardwareAddr {
	for _, o := range opts {
		if lla, ok := o.(*ndp.LinkLayerAddress); ok && lla.Direction == dir {
			return lla.Addr
		}
	}
	return nil
}
