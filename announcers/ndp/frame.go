package ndp

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/mdlayher/ndp"
	"golang.org/x/net/bpf"
)

// Offsets in an Ethernet frame carrying IPv6 with no extension header.
const (
	ethHeaderLen  = 14
	ipv6HeaderLen = 40
	offEtherType  = 12
	offNextHeader = ethHeaderLen + 6
	offHopLimit   = ethHeaderLen + 7
	offICMPType   = ethHeaderLen + ipv6HeaderLen

	etherTypeIPv6 = 0x86dd
	protoICMPv6   = 58

	icmpNeighborSolicitation  = 135
	icmpNeighborAdvertisement = 136

	// maxFrame bounds what the filter copies to us: an NS or NA with options fits easily.
	maxFrame = 2048
)

// filter keeps Ethernet frames carrying an ICMPv6 Neighbor Solicitation or Advertisement
// directly after the IPv6 header (RFC 4861 messages carry no extension header in practice;
// any that do are not seen). The kernel runs it before copying, so the announcer wakes only
// for NDP, whatever else crosses the link.
func filter() ([]bpf.RawInstruction, error) {
	const reject, accept = 7, 8 // instruction indexes below
	prog := []bpf.Instruction{
		/* 0 */ bpf.LoadAbsolute{Off: offEtherType, Size: 2},
		/* 1 */ bpf.JumpIf{Cond: bpf.JumpNotEqual, Val: etherTypeIPv6, SkipTrue: reject - 2},
		/* 2 */ bpf.LoadAbsolute{Off: offNextHeader, Size: 1},
		/* 3 */ bpf.JumpIf{Cond: bpf.JumpNotEqual, Val: protoICMPv6, SkipTrue: reject - 4},
		/* 4 */ bpf.LoadAbsolute{Off: offICMPType, Size: 1},
		/* 5 */ bpf.JumpIf{Cond: bpf.JumpEqual, Val: icmpNeighborSolicitation, SkipTrue: accept - 6},
		/* 6 */ bpf.JumpIf{Cond: bpf.JumpEqual, Val: icmpNeighborAdvertisement, SkipTrue: accept - 7},
		/* 7 */ bpf.RetConstant{Val: 0},
		/* 8 */ bpf.RetConstant{Val: maxFrame},
	}
	return bpf.Assemble(prog)
}

// received is an NDP message read off the wire with the addresses around it.
type received struct {
	msg    ndp.Message
	src    netip.Addr // IPv6 source
	dst    netip.Addr // IPv6 destination
	srcMAC net.HardwareAddr
}

var errNotNDP = errors.New("not a valid NDP message")

// parseFrame checks a frame the way the kernel checks NDP before its own stack acts on it
// (RFC 4861 7.1: hop limit 255, valid checksum) and parses the message.
func parseFrame(b []byte) (received, error) {
	if len(b) < ethHeaderLen+ipv6HeaderLen+4 {
		return received{}, fmt.Errorf("%w: %d-byte frame", errNotNDP, len(b))
	}
	if binary.BigEndian.Uint16(b[offEtherType:]) != etherTypeIPv6 || b[ethHeaderLen]>>4 != 6 || b[offNextHeader] != protoICMPv6 {
		return received{}, fmt.Errorf("%w: not ICMPv6 in IPv6", errNotNDP)
	}
	if b[offHopLimit] != ndp.HopLimit {
		// A router forwarded it: it comes from off link (RFC 4861 7.1.1).
		return received{}, fmt.Errorf("%w: hop limit %d", errNotNDP, b[offHopLimit])
	}
	ip := b[ethHeaderLen:]
	plen := int(binary.BigEndian.Uint16(ip[4:6]))
	if ipv6HeaderLen+plen > len(ip) {
		return received{}, fmt.Errorf("%w: payload length %d beyond the frame", errNotNDP, plen)
	}
	body := ip[ipv6HeaderLen : ipv6HeaderLen+plen]
	src := netip.AddrFrom16([16]byte(ip[8:24]))
	dst := netip.AddrFrom16([16]byte(ip[24:40]))
	if checksum(src, dst, body) != 0 {
		return received{}, fmt.Errorf("%w: bad checksum", errNotNDP)
	}
	msg, err := ndp.ParseMessage(body)
	if err != nil {
		return received{}, fmt.Errorf("%w: %v", errNotNDP, err)
	}
	// A copy: the read buffer is reused for the next frame.
	return received{msg: msg, src: src, dst: dst, srcMAC: net.HardwareAddr(append([]byte(nil), b[6:12]...))}, nil
}

// checksum is the ICMPv6 checksum over the pseudo-header and body (RFC 8200 8.1); it is 0
// for a body whose checksum field is right.
func checksum(src, dst netip.Addr, body []byte) uint16 {
	var sum uint32
	add := func(b []byte) {
		for i := 0; i+1 < len(b); i += 2 {
			sum += uint32(binary.BigEndian.Uint16(b[i:]))
		}
		if len(b)%2 == 1 {
			sum += uint32(b[len(b)-1]) << 8
		}
	}
	s, d := src.As16(), dst.As16()
	add(s[:])
	add(d[:])
	sum += uint32(len(body)) + protoICMPv6
	add(body)
	for sum>>16 != 0 {
		sum = sum&0xffff + sum>>16
	}
	return ^uint16(sum)
}

// marshalFrame builds the Ethernet frame carrying m from src to dst.
func marshalFrame(m ndp.Message, src netip.Addr, srcMAC net.HardwareAddr, dst netip.Addr, dstMAC net.HardwareAddr) ([]byte, error) {
	body, err := ndp.MarshalMessageChecksum(m, src, dst)
	if err != nil {
		return nil, fmt.Errorf("marshal %T: %w", m, err)
	}
	b := make([]byte, ethHeaderLen+ipv6HeaderLen, ethHeaderLen+ipv6HeaderLen+len(body))
	copy(b[0:6], dstMAC)
	copy(b[6:12], srcMAC)
	binary.BigEndian.PutUint16(b[offEtherType:], etherTypeIPv6)
	ip := b[ethHeaderLen:]
	ip[0] = 6 << 4
	binary.BigEndian.PutUint16(ip[4:6], uint16(len(body)))
	ip[6] = protoICMPv6
	ip[7] = ndp.HopLimit
	s, d := src.As16(), dst.As16()
	copy(ip[8:24], s[:])
	copy(ip[24:40], d[:])
	return append(b, body...), nil
}
