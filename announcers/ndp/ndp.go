// Package ndp is Herald's IPv6 announcer: it answers Neighbor Solicitations for announced
// addresses with the interface's MAC, sends unsolicited Neighbor Advertisements (override
// flag set) on announce and refresh, and reports other MACs advertising our addresses (see
// package l2 for the shared behaviour and how links are chosen).
//
// Each link is one packet socket bound to IPv6 on the interface, with a BPF filter that lets
// only Neighbor Solicitations and Advertisements through and a PACKET_MR_ALLMULTI membership,
// so every solicitation on the link reaches it whatever its solicited-node group, and
// unicast ones (neighbour unreachability probes) too, which the host's own stack would drop
// for an address it does not hold. Announcing an address therefore costs no system call and
// there is no limit on how many are announced (joining one solicited-node group per address
// on an ICMPv6 socket stopped at about 2,300, where net.core.optmem_max (131072) bounds a
// socket's memberships).
// The membership belongs to the socket, so the kernel takes the interface out of
// all-multicast mode when the socket closes, even if the process is killed.
//
// Advertisements are written as whole Ethernet frames so their IPv6 source is the announced
// address itself (hosts such as ndisc6 ignore an advertisement whose source is not its
// target) without needing net.ipv6.ip_nonlocal_bind. Answers go out at once; unsolicited
// advertisements are paced (see pacer). All of it needs CAP_NET_RAW only.
package ndp

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/mdlayher/ndp"
	"github.com/mdlayher/packet"
	"golang.org/x/sys/unix"

	"github.com/herald-lb/herald/announcers"
	"github.com/herald-lb/herald/announcers/l2"
)

// New returns the NDP announcer.
func New(log hclog.Logger, version string) *l2.Announcer {
	return l2.New(Driver{Log: log}, log, nil, version)
}

// Driver is the NDP protocol for package l2.
type Driver struct {
	// Log receives failures of paced advertisements, which no caller waits for.
	Log hclog.Logger
}

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
func (d Driver) Open(ifi *net.Interface, h l2.Handler) (l2.Link, error) {
	prog, err := filter()
	if err != nil {
		return nil, fmt.Errorf("assemble filter: %w", err)
	}
	conn, err := packet.Listen(ifi, packet.Raw, unix.ETH_P_IPV6, &packet.Config{Filter: prog})
	if err != nil {
		return nil, fmt.Errorf("packet socket: %w", err)
	}
	if err := setsockopt(conn, func(fd int) error {
		return unix.SetsockoptPacketMreq(fd, unix.SOL_PACKET, unix.PACKET_ADD_MEMBERSHIP,
			&unix.PacketMreq{Ifindex: int32(ifi.Index), Type: unix.PACKET_MR_ALLMULTI})
	}); err != nil {
		_ = conn.Close()
		return nil, fmt.Errorf("all-multicast membership: %w", err)
	}
	// Our own advertisements would otherwise come back to us. Kernels before 4.20 lack the
	// option; l2 then drops them as coming from our own MAC.
	_ = setsockopt(conn, func(fd int) error {
		return unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_IGNORE_OUTGOING, 1)
	})
	log := d.Log
	if log == nil {
		log = hclog.NewNullLogger()
	}
	l := &link{conn: conn, name: ifi.Name, index: ifi.Index, mac: ifi.HardwareAddr, h: h}
	l.pacer = newPacer(h.Owns, func(addr netip.Addr) {
		if err := l.announce(addr); err != nil {
			l.warn(log, addr, err)
		}
	}, pacerBatch, pacerTick)
	return l, nil
}

func setsockopt(conn *packet.Conn, set func(fd int) error) error {
	rc, err := conn.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := rc.Control(func(fd uintptr) { serr = set(int(fd)) }); err != nil {
		return err
	}
	return serr
}

type link struct {
	conn  *packet.Conn
	name  string
	index int
	mac   net.HardwareAddr
	h     l2.Handler
	pacer *pacer

	srcMu   sync.Mutex
	src     netip.Addr // the link-local address probes are sent from
	srcRead time.Time

	warnMu   sync.Mutex
	warnLast time.Time
	warnLeft int // failures not logged since warnLast
}

var (
	allNodes    = netip.MustParseAddr("ff02::1")
	allNodesMAC = net.HardwareAddr{0x33, 0x33, 0, 0, 0, 1}
)

// Serve answers solicitations for owned addresses and reports foreign advertisements.
func (l *link) Serve() error {
	b := make([]byte, maxFrame)
	for {
		n, _, err := l.conn.ReadFrom(b)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return err
		}
		r, err := parseFrame(b[:n])
		if err != nil {
			l.h.Malformed(err) // the sender's problem, not a reason to stop
			continue
		}
		switch m := r.msg.(type) {
		case *ndp.NeighborSolicitation:
			l.solicited(m, r)
		case *ndp.NeighborAdvertisement:
			if l.h.Owns(m.TargetAddress) {
				if mac := linkLayer(m.Options, ndp.Target); mac != nil {
					l.h.Foreign(m.TargetAddress, mac, "neighbor advertisement from another MAC")
				}
			}
		}
	}
}

func (l *link) solicited(ns *ndp.NeighborSolicitation, r received) {
	if !l.h.Owns(ns.TargetAddress) {
		return
	}
	na := &ndp.NeighborAdvertisement{
		Solicited: true, Override: true, TargetAddress: ns.TargetAddress,
		Options: []ndp.Option{&ndp.LinkLayerAddress{Direction: ndp.Target, Addr: l.mac}},
	}
	dst, dstMAC := r.src, linkLayer(ns.Options, ndp.Source)
	switch {
	case r.src.IsUnspecified():
		// Duplicate address detection: answer to all nodes (RFC 4861 7.2.4).
		na.Solicited, dst, dstMAC = false, allNodes, allNodesMAC
	case dstMAC == nil:
		// A unicast probe may leave the option out (RFC 4861 7.2.2); the frame says
		// where it came from.
		dstMAC = r.srcMAC
	}
	if err := l.send(na, dst, dstMAC); err == nil {
		l.h.Answered()
	}
}

// Announce queues an unsolicited advertisement with the override flag to all nodes; the
// pacer sends it shortly, if addr is still ours then.
func (l *link) Announce(addr netip.Addr) error {
	l.pacer.enqueue(addr)
	return nil
}

func (l *link) announce(addr netip.Addr) error {
	na := &ndp.NeighborAdvertisement{
		Override: true, TargetAddress: addr,
		Options: []ndp.Option{&ndp.LinkLayerAddress{Direction: ndp.Target, Addr: l.mac}},
	}
	return l.send(na, allNodes, allNodesMAC)
}

// send writes na from its target address.
func (l *link) send(na *ndp.NeighborAdvertisement, dst netip.Addr, dstMAC net.HardwareAddr) error {
	b, err := marshalFrame(na, na.TargetAddress, l.mac, dst, dstMAC)
	if err != nil {
		return err
	}
	_, err = l.conn.WriteTo(b, &packet.Addr{HardwareAddr: dstMAC})
	return err
}

// warn logs a failed advertisement at most once a second, with the number left out since,
// so 10,000 addresses failing the same way make one line.
func (l *link) warn(log hclog.Logger, addr netip.Addr, err error) {
	l.warnMu.Lock()
	now := time.Now()
	if now.Sub(l.warnLast) < time.Second {
		l.warnLeft++
		l.warnMu.Unlock()
		return
	}
	left := l.warnLeft
	l.warnLast, l.warnLeft = now, 0
	l.warnMu.Unlock()
	log.Warn("unsolicited advertisement failed", "interface", l.name, "address", addr, "error", err, "suppressedSinceLast", left)
}

// Probe sends a Neighbor Solicitation for addr to its solicited-node group, from the link's
// link-local address with our MAC in the source link-layer option. A host holding addr
// answers with a solicited advertisement to us alone, which Serve reports as foreign. (A DAD
// solicitation from :: would make that host advertise to all nodes with the override flag and
// so pull every neighbour's cache to itself: detection must not move traffic.)
func (l *link) Probe(addr netip.Addr) error {
	src, err := l.linkLocal()
	if err != nil {
		return err
	}
	b, dstMAC, err := probeFrame(addr, src, l.mac)
	if err != nil {
		return err
	}
	_, err = l.conn.WriteTo(b, &packet.Addr{HardwareAddr: dstMAC})
	return err
}

// probeFrame builds the solicitation Probe sends and returns it with its destination MAC.
func probeFrame(addr, src netip.Addr, mac net.HardwareAddr) ([]byte, net.HardwareAddr, error) {
	group, err := ndp.SolicitedNodeMulticast(addr)
	if err != nil {
		return nil, nil, err
	}
	g := group.As16()
	dstMAC := net.HardwareAddr{0x33, 0x33, g[12], g[13], g[14], g[15]}
	ns := &ndp.NeighborSolicitation{TargetAddress: addr,
		Options: []ndp.Option{&ndp.LinkLayerAddress{Direction: ndp.Source, Addr: mac}}}
	b, err := marshalFrame(ns, src, mac, group, dstMAC)
	return b, dstMAC, err
}

// linkLocalTTL is how long the link-local source of probes is cached.
const linkLocalTTL = 10 * time.Second

// linkLocal returns the interface's link-local IPv6 address, read at most every linkLocalTTL.
func (l *link) linkLocal() (netip.Addr, error) {
	l.srcMu.Lock()
	defer l.srcMu.Unlock()
	if l.src.IsValid() && time.Since(l.srcRead) < linkLocalTTL {
		return l.src, nil
	}
	ifi, err := net.InterfaceByIndex(l.index)
	if err != nil {
		return netip.Addr{}, err
	}
	addrs, err := ifi.Addrs()
	if err != nil {
		return netip.Addr{}, err
	}
	for _, a := range addrs {
		if p, err := netip.ParsePrefix(a.String()); err == nil && p.Addr().Is6() && p.Addr().IsLinkLocalUnicast() {
			l.src, l.srcRead = p.Addr(), time.Now()
			return l.src, nil
		}
	}
	return netip.Addr{}, fmt.Errorf("interface %s has no link-local IPv6 address to probe from", l.name)
}

// Watch and Unwatch have nothing to do: the socket sees every solicitation on the link.
func (l *link) Watch(netip.Addr) error   { return nil }
func (l *link) Unwatch(netip.Addr) error { return nil }

// Close stops the pacer first so no advertisement is written to a closed socket.
func (l *link) Close() error {
	l.pacer.stop()
	return l.conn.Close()
}

func linkLayer(opts []ndp.Option, dir ndp.Direction) net.HardwareAddr {
	for _, o := range opts {
		if lla, ok := o.(*ndp.LinkLayerAddress); ok && lla.Direction == dir {
			return lla.Addr
		}
	}
	return nil
}
