// Package arp is Herald's IPv4 announcer: it answers ARP requests for announced addresses with
// the interface's MAC, sends gratuitous ARP on announce and refresh, and reports other MACs
// claiming our addresses (see package l2 for the shared behaviour and how links are chosen).
// It needs CAP_NET_RAW, and mdlayher/arp needs an IPv4 address on every link it opens.
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

// Open implements l2.Driver.
func (Driver) Open(ifi *net.Interface, h l2.Handler) (l2.Link, error) {
	c, err := arp.Dial(ifi)
	if err != nil {
		return nil, fmt.Errorf("arp: %w", err)
	}
	return &link{client: c, mac: ifi.HardwareAddr, h: h}, nil
}

type link struct {
	client *arp.Client
	mac    net.HardwareAddr
	h      l2.Handler
}

// Serve answers requests for owned addresses and reports foreign claims until Close.
func (l *link) Serve() error {
	for {
		p, _, err := l.client.Read()
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
		l.handle(p)
	}
}

func (l *link) handle(p *arp.Packet) {
	// The packet socket also sees our own replies and announcements going out.
	if bytes.Equal(p.SenderHardwareAddr, l.mac) {
		return
	}
	// Any packet whose sender is one of our addresses but not our MAC (reply, gratuitous
	// request, or a request from a host using the address) is a foreign claim.
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
	if err := l.client.Reply(p, l.mac, p.TargetIP); err == nil {
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
	return l.client.WriteTo(p, ethernet.Broadcast)
}

func (l *link) Watch(netip.Addr) error   { return nil }
func (l *link) Unwatch(netip.Addr) error { return nil }
func (l *link) Close() error             { return l.client.Close() }
