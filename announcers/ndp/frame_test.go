package ndp

import (
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"testing"

	"github.com/mdlayher/ndp"
	"golang.org/x/net/bpf"
)

var (
	clientMAC = net.HardwareAddr{0x02, 0, 0, 0, 0, 1}
	clientIP  = netip.MustParseAddr("2001:db8:1::1")
	vip       = netip.MustParseAddr("2001:db8:1::100")
)

func solicitation(t *testing.T) []byte {
	t.Helper()
	group, err := ndp.SolicitedNodeMulticast(vip)
	if err != nil {
		t.Fatal(err)
	}
	ns := &ndp.NeighborSolicitation{TargetAddress: vip, Options: []ndp.Option{&ndp.LinkLayerAddress{Direction: ndp.Source, Addr: clientMAC}}}
	b, err := marshalFrame(ns, clientIP, clientMAC, group, net.HardwareAddr{0x33, 0x33, 0xff, 0, 1, 0})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func advertisement(t *testing.T) []byte {
	t.Helper()
	na := &ndp.NeighborAdvertisement{Override: true, TargetAddress: vip, Options: []ndp.Option{&ndp.LinkLayerAddress{Direction: ndp.Target, Addr: clientMAC}}}
	b, err := marshalFrame(na, vip, clientMAC, allNodes, allNodesMAC)
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

func TestFilterKeepsOnlyNDP(t *testing.T) {
	raw, err := filter()
	if err != nil {
		t.Fatal(err)
	}
	insns, ok := bpf.Disassemble(raw)
	if !ok {
		t.Fatal("filter does not disassemble")
	}
	vm, err := bpf.NewVM(insns)
	if err != nil {
		t.Fatal(err)
	}
	ns := solicitation(t)
	tests := []struct {
		name  string
		frame []byte
		keep  bool
	}{
		{"neighbor solicitation", ns, true},
		{"neighbor advertisement", advertisement(t), true},
		{"echo request", edit(ns, func(b []byte) { b[offICMPType] = 128 }), false},
		{"router solicitation", edit(ns, func(b []byte) { b[offICMPType] = 133 }), false},
		{"UDP", edit(ns, func(b []byte) { b[offNextHeader] = 17 }), false},
		{"behind a hop-by-hop header", edit(ns, func(b []byte) { b[offNextHeader] = 0 }), false},
		{"IPv4", edit(ns, func(b []byte) { binary.BigEndian.PutUint16(b[offEtherType:], 0x0800) }), false},
		{"ARP", edit(ns, func(b []byte) { binary.BigEndian.PutUint16(b[offEtherType:], 0x0806) }), false},
		{"runt", ns[:20], false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, err := vm.Run(tt.frame)
			if err != nil {
				t.Fatal(err)
			}
			if got := n > 0; got != tt.keep {
				t.Errorf("kept %v (%d bytes), want %v", got, n, tt.keep)
			}
			if tt.keep && n < len(tt.frame) {
				t.Errorf("kept %d of %d bytes", n, len(tt.frame))
			}
		})
	}
}

func TestParseFrame(t *testing.T) {
	ns := solicitation(t)
	tests := []struct {
		name    string
		frame   []byte
		wantErr bool
	}{
		{name: "solicitation", frame: ns},
		{name: "Ethernet padding after the payload", frame: append(append([]byte(nil), ns...), 0, 0, 0, 0)},
		{name: "forwarded by a router", frame: edit(ns, func(b []byte) { b[offHopLimit] = 254 }), wantErr: true},
		{name: "bad checksum", frame: edit(ns, func(b []byte) { b[len(b)-1] ^= 1 }), wantErr: true},
		{name: "payload length beyond the frame", frame: ns[:len(ns)-1], wantErr: true},
		{name: "not IPv6", frame: edit(ns, func(b []byte) { b[ethHeaderLen] = 4 << 4 }), wantErr: true},
		{name: "runt", frame: ns[:50], wantErr: true},
		{name: "not an NDP message", frame: edit(ns, func(b []byte) { b[offICMPType] = 0 }), wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := parseFrame(tt.frame)
			if tt.wantErr {
				if !errors.Is(err, errNotNDP) {
					t.Fatalf("err = %v, want errNotNDP", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			m, ok := r.msg.(*ndp.NeighborSolicitation)
			if !ok || m.TargetAddress != vip {
				t.Fatalf("message %#v, want a solicitation for %s", r.msg, vip)
			}
			if r.src != clientIP || r.srcMAC.String() != clientMAC.String() || !r.dst.IsMulticast() {
				t.Errorf("src %s (%s) dst %s, want %s (%s) to a multicast group", r.src, r.srcMAC, r.dst, clientIP, clientMAC)
			}
			if got := linkLayer(m.Options, ndp.Source); got.String() != clientMAC.String() {
				t.Errorf("source link-layer option %s, want %s", got, clientMAC)
			}
		})
	}
}

func TestChecksumOddLength(t *testing.T) {
	// RFC 1071: an odd byte is padded with a zero on the right.
	src, dst := netip.IPv6Unspecified(), netip.IPv6Unspecified()
	if got, want := checksum(src, dst, []byte{0x01}), ^uint16(0x0100+1+protoICMPv6); got != want {
		t.Errorf("checksum = %#04x, want %#04x", got, want)
	}
}
