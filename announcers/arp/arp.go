// Package arp is Herald's IPv4 announcer: it answers ARP requests for announced addresses with
// the interface's MAC, sends gratuitous ARP on announce and refresh, and reports other MACs
// claiming our addresses (see package l2 for the shared behaviour and how links are chosen).
// It needs CAP_NET_RAW only. Frames are parsed here (parseFrame), strictly, so a frame it cannot
// use is counted and skipped rather than ending the read loop.
package arp

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/hashicorp/go-hclog"
	"github.com/mdlayher/arp"
	"github.com/mdlayher/ethernet"
	"github.com/mdlayher/packet"
	"golang.org/x/sys/unix"

	"github.com/herald-lb/herald/announcers"
	"github.com/herald-lb/herald/announcers/l2"
)

// New returns the ARP announcer.
func New(log hclog.Logger, version string) *l2.Announcer {
	return l2.New(Driver{}, log, nil, version)
}

// Driver is the ARP protocol for package l2.
type Driver struct{}

// Kind implements l2.Driver.
func (Driver) Kind() string { return announcers.KindARP }

// Validate implements l2.Driver.
func (Driver) Validate(addr netip.Addr) error {
	if !addr.Is4() {
		return errors.New("not an IPv4 address")
	}
	if addr.IsUnspecified() || addr.IsMulticast() || addr.IsLoopback() || addr == netip.AddrFrom4([4]byte{255, 255, 255, 255}) {
		return errors.New("not a unicast address")
	}
	return nil
}

// Suitable implements l2.Driver: ARP needs an IPv4 address on the link.
func (Driver) Suitable(ifaceAddr netip.Addr) bool { return ifaceAddr.Is4() }

// Open implements l2.Driver: one packet socket for ARP on the link, reading every ARP frame
// whatever its destination (requests are broadcast; answers to our probes are unicast to us).
func (Driver) Open(ifi *net.Interface, h l2.Handler) (l2.Link, error) {
	conn, err := packet.Listen(ifi, packet.Raw, unix.ETH_P_ARP, nil)
	if err != nil {
		return nil, fmt.Errorf("arp: packet socket: %w", err)
	}
	return &link{conn: conn, mac: ifi.HardwareAddr, h: h}, nil
}

type link struct {
	conn *packet.Conn
	mac  net.HardwareAddr
	h    l2.Handler
}

// Serve answers requests for owned addresses and reports foreign claims until Close. A frame
// it cannot use (see parseFrame) is counted and skipped: bad input from the wire never stops
// the responder. A read error ends Serve; the engine reopens the link.
func (l *link) Serve() error {
	// One byte more than the largest frame accepted, so an oversized frame is seen as such
	// rather than silently cut to a valid-looking prefix.
	b := make([]byte, maxFrame+1)
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
		p, err := parseFrame(b[:n])
		if err != nil {
			l.h.Malformed(err)
			continue
		}
		l.handle(p)
	}
}

func (l *link) handle(p *arp.Packet) {
	// The packet socket also sees our own replies and announcements going out.
	if bytes.Equal(p.SenderHardwareAddr, l.mac) {
		return
	}
	// Any packet whose sender is one of our addresses but not our MAC (reply, gratuitous
	// request, or a request from a host using the address) is a foreign claim. Replies to our
	// conflict probes arrive here too.
	if l.h.Owns(p.SenderIP) {
		kind := "ARP reply"
		if p.Operation == arp.OperationRequest {
			kind = "ARP request"
			if p.SenderIP == p.TargetIP {
				kind = "gratuitous ARP"
			}
		}
		l.h.Foreign(p.SenderIP, p.SenderHardwareAddr, kind+" from another MAC")
	}
	if p.Operation != arp.OperationRequest || p.SenderIP == p.TargetIP || !l.h.Owns(p.TargetIP) {
		return
	}
	// An RFC 5227 probe (sender 0.0.0.0) is answered like any request, as the kernel does.
	reply, err := arp.NewPacket(arp.OperationReply, l.mac, p.TargetIP, p.SenderHardwareAddr, p.SenderIP)
	if err != nil {
		return
	}
	if err := l.write(reply, p.SenderHardwareAddr); err == nil {
		l.h.Answered()
	}
}

// Announce sends a gratuitous ARP request (sender and target both addr), which neighbours
// treat as an update of an existing entry even within their lock time.
func (l *link) Announce(addr netip.Addr) error {
	p, err := arp.NewPacket(arp.OperationRequest, l.mac, addr, ethernet.Broadcast, addr)
	if err != nil {
		return err
	}
	return l.write(p, ethernet.Broadcast)
}

// Probe sends an RFC 5227 ARP probe for addr: a request with sender address 0.0.0.0, which
// updates nobody's neighbour table, and which a host holding addr answers with its MAC.
func (l *link) Probe(addr netip.Addr) error {
	p, err := arp.NewPacket(arp.OperationRequest, l.mac, netip.IPv4Unspecified(), net.HardwareAddr{0, 0, 0, 0, 0, 0}, addr)
	if err != nil {
		return err
	}
	return l.write(p, ethernet.Broadcast)
}

func (l *link) write(p *arp.Packet, dst net.HardwareAddr) error {
	b, err := marshalFrame(p, dst)
	if err != nil {
		return err
	}
	_, err = l.conn.WriteTo(b, &packet.Addr{HardwareAddr: dst})
	return err
}

func (l *link) Watch(netip.Addr) error   { return nil }
func (l *link) Unwatch(netip.Addr) error { return nil }
func (l *link) Close() error             { return l.conn.Close() }
