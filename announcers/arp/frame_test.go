package arp

import (
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"strings"
	"testing"

	"github.com/mdlayher/arp"
	"github.com/mdlayher/ethernet"
)

var (
	clientMAC = net.HardwareAddr{0x02, 0, 0, 0, 0, 1}
	clientIP  = netip.MustParseAddr("192.0.2.2")
	vip       = netip.MustParseAddr("192.0.2.100")
)

// request is a well-formed ARP request from the client for vip, as on the wire (padded to
// Ethernet's 60-byte minimum).
func request(t testing.TB) []byte {
	t.Helper()
	p, err := arp.NewPacket(arp.OperationRequest, clientMAC, clientIP, net.HardwareAddr{0, 0, 0, 0, 0, 0}, vip)
	if err != nil {
		t.Fatal(err)
	}
	b, err := marshalFrame(p, ethernet.Broadcast)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// edit returns a copy of b changed by fn.
func edit(b []byte, fn func([]byte)) []byte {
	c := append([]byte(nil), b...)
	fn(c)
	return c
}

func TestParseFrame(t *testing.T) {
	req := request(t)
	tagged := append(append(append([]byte(nil), req[:12]...), 0x81, 0x00, 0x00, 0x05), req[12:]...)
	for _, tc := range []struct {
		name    string
		frame   []byte
		wantErr string // "" means it parses
	}{
		{"request", req, ""},
		{"unpadded 42-byte request", req[:42], ""},
		{"reply", edit(req, func(b []byte) { b[21] = 2 }), ""},
		{"VLAN-tagged request", tagged, ""},
		{"trailing bytes after the ARP body", append(append([]byte(nil), req...), make([]byte, 100)...), ""},
		{"empty", nil, "truncated"},
		{"Ethernet header cut", req[:10], "truncated"},
		{"ARP body cut", req[:41], "truncated"},
		{"VLAN tag cut", tagged[:16], "truncated"},
		{"not ARP", edit(req, func(b []byte) { b[12], b[13] = 0x86, 0xdd }), "EtherType 0x86dd"},
		{"hardware type not Ethernet", edit(req, func(b []byte) { b[15] = 6 }), "hardware type 6"},
		{"protocol type not IPv4", edit(req, func(b []byte) { b[16], b[17] = 0x86, 0xdd }), "protocol type 0x86dd"},
		{"hardware address length 8", edit(req, func(b []byte) { b[18] = 8 }), "hardware address length 8"},
		{"protocol address length 16 (what made mdlayher/arp fail with ErrInvalidIP)", edit(req, func(b []byte) { b[19] = 16 }), "protocol address length 16"},
		{"protocol address length 0", edit(req, func(b []byte) { b[19] = 0 }), "protocol address length 0"},
		{"opcode 0", edit(req, func(b []byte) { b[20], b[21] = 0, 0 }), "opcode 0"},
		{"opcode 3 (RARP)", edit(req, func(b []byte) { b[21] = 3 }), "opcode 3"},
		{"opcode 0xffff", edit(req, func(b []byte) { b[20], b[21] = 0xff, 0xff }), "opcode 65535"},
		{"oversized", append(append([]byte(nil), req...), make([]byte, maxFrame)...), "oversized"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := parseFrame(tc.frame)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("parseFrame: %v", err)
				}
				if p.SenderIP != clientIP || p.TargetIP != vip || p.SenderHardwareAddr.String() != clientMAC.String() {
					t.Errorf("parsed %+v, want the client asking for %s", p, vip)
				}
				return
			}
			if !errors.Is(err, errMalformed) || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("parseFrame = %v, want an errMalformed saying %q", err, tc.wantErr)
			}
		})
	}
}

// The parsed packet does not alias the read buffer, which the next read overwrites.
func TestParseFrameCopies(t *testing.T) {
	b := request(t)
	p, err := parseFrame(b)
	if err != nil {
		t.Fatal(err)
	}
	for i := range b {
		b[i] = 0xff
	}
	if p.SenderHardwareAddr.String() != clientMAC.String() || p.SenderIP != clientIP {
		t.Errorf("packet changed with the buffer: %+v", p)
	}
}

// A frame built by marshalFrame parses back to the same packet (probe, reply, gratuitous).
func TestMarshalParseRoundTrip(t *testing.T) {
	ours := net.HardwareAddr{0x02, 0, 0, 0, 0, 0x0a}
	for _, tc := range []struct {
		name string
		op   arp.Operation
		sha  net.HardwareAddr
		spa  netip.Addr
		tha  net.HardwareAddr
		tpa  netip.Addr
	}{
		{"probe", arp.OperationRequest, ours, netip.IPv4Unspecified(), net.HardwareAddr{0, 0, 0, 0, 0, 0}, vip},
		{"gratuitous", arp.OperationRequest, ours, vip, ethernet.Broadcast, vip},
		{"reply", arp.OperationReply, ours, vip, clientMAC, clientIP},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := arp.NewPacket(tc.op, tc.sha, tc.spa, tc.tha, tc.tpa)
			if err != nil {
				t.Fatal(err)
			}
			b, err := marshalFrame(p, ethernet.Broadcast)
			if err != nil {
				t.Fatal(err)
			}
			got, err := parseFrame(b)
			if err != nil {
				t.Fatal(err)
			}
			if got.Operation != tc.op || got.SenderIP != tc.spa || got.TargetIP != tc.tpa ||
				got.SenderHardwareAddr.String() != tc.sha.String() || got.TargetHardwareAddr.String() != tc.tha.String() {
				t.Errorf("round trip gave %+v", got)
			}
			if binary.BigEndian.Uint16(b[12:14]) != etherTypeARP {
				t.Errorf("EtherType %#x", binary.BigEndian.Uint16(b[12:14]))
			}
		})
	}
}

// FuzzParseFrame feeds parseFrame arbitrary frames: it must never panic, must wrap
// errMalformed when it rejects, and what it accepts must be an Ethernet/IPv4 request or reply
// that marshals back to the same ARP body. The seeds (testdata/fuzz/FuzzParseFrame) run with
// every `go test`.
func FuzzParseFrame(f *testing.F) {
	f.Add(request(f))
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := parseFrame(b)
		if err != nil {
			if !errors.Is(err, errMalformed) {
				t.Fatalf("error %v does not wrap errMalformed", err)
			}
			return
		}
		if p.HardwareType != hwEthernet || p.ProtocolType != etherTypeIPv4 || p.HardwareAddrLength != 6 || p.IPLength != 4 ||
			(p.Operation != arp.OperationRequest && p.Operation != arp.OperationReply) || !p.SenderIP.Is4() || !p.TargetIP.Is4() {
			t.Fatalf("accepted %+v", p)
		}
		body, err := p.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		off := ethHeaderLen
		if binary.BigEndian.Uint16(b[12:14]) == etherTypeVLAN {
			off += vlanTagLen
		}
		if string(body) != string(b[off:off+arpIPv4Len]) {
			t.Fatalf("accepted body % x marshals to % x", b[off:off+arpIPv4Len], body)
		}
	})
}
