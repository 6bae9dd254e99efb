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

func solicitation(t testing.TB) []byte {
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

func advertisement(t testing.TB) []byte {
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

// A conflict probe is an ordinary solicitation from our link-local address to the target's
// solicited-node group, with our MAC as source link-layer address: never a DAD probe from ::,
// whose answer would go to all nodes with the override flag.
func TestProbeFrame(t *testing.T) {
	ours := net.HardwareAddr{0x02, 0, 0, 0, 0, 0x0a}
	ll := netip.MustParseAddr("fe80::48:4cff:fe00:a")
	b, dstMAC, err := probeFrame(vip, ll, ours)
	if err != nil {
		t.Fatal(err)
	}
	r, err := parseFrame(b)
	if err != nil {
		t.Fatalf("our own probe does not parse: %v", err)
	}
	ns, ok := r.msg.(*ndp.NeighborSolicitation)
	if !ok || ns.TargetAddress != vip {
		t.Fatalf("probe carries %#v, want a solicitation for %s", r.msg, vip)
	}
	group, _ := ndp.SolicitedNodeMulticast(vip)
	if r.src != ll || r.dst != group || dstMAC.String() != "33:33:ff:00:01:00" || r.srcMAC.String() != ours.String() {
		t.Errorf("probe %s -> %s (%s), want %s -> %s (33:33:ff:00:01:00)", r.src, r.dst, dstMAC, ll, group)
	}
	if got := linkLayer(ns.Options, ndp.Source); got.String() != ours.String() {
		t.Errorf("source link-layer option %s, want %s", got, ours)
	}
}

// FuzzParseFrame feeds parseFrame arbitrary frames: it must never panic, must wrap errNotNDP
// when it rejects, and must accept only a hop-limit-255 ICMPv6 NDP message. The seeds
// (testdata/fuzz/FuzzParseFrame) run with every `go test`.
func FuzzParseFrame(f *testing.F) {
	f.Add(solicitation(f))
	f.Add(advertisement(f))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := parseFrame(b)
		if err != nil {
			if !errors.Is(err, errNotNDP) {
				t.Fatalf("error %v does not wrap errNotNDP", err)
			}
			return
		}
		if r.msg == nil || b[offHopLimit] != ndp.HopLimit || b[offNextHeader] != protoICMPv6 || len(r.srcMAC) != 6 {
			t.Fatalf("accepted %+v from % x", r, b)
		}
	})
}
