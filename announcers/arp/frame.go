package arp

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/mdlayher/arp"
	"github.com/mdlayher/ethernet"
)

// Sizes and values of an Ethernet frame carrying ARP for IPv4 (RFC 826).
const (
	ethHeaderLen = 14
	vlanTagLen   = 4
	// arpIPv4Len is the ARP body for Ethernet and IPv4: 8 fixed bytes, two 6-byte hardware
	// and two 4-byte protocol addresses.
	arpIPv4Len = 28

	etherTypeARP  = 0x0806
	etherTypeVLAN = 0x8100
	etherTypeIPv4 = 0x0800
	hwEthernet    = 1

	// maxFrame is the largest frame accepted: a VLAN-tagged Ethernet frame at the standard
	// 1500-byte MTU. ARP needs 42 bytes; anything beyond maxFrame is nobody's ARP.
	maxFrame = ethHeaderLen + vlanTagLen + 1500
)

// errMalformed is wrapped by every reason parseFrame rejects a frame for.
var errMalformed = errors.New("malformed ARP frame")

// parseFrame checks one frame read from the packet socket and returns its ARP packet. It
// accepts only what an IPv4 ARP responder can act on (Ethernet hardware, IPv4 protocol,
// 6- and 4-byte addresses, a request or a reply) and says why it rejects anything else;
// padding and trailing bytes after the ARP body are ignored, as the kernel ignores them.
// Every address in the result is a copy, so the read buffer can be reused.
func parseFrame(b []byte) (*arp.Packet, error) {
	if len(b) > maxFrame {
		return nil, fmt.Errorf("%w: oversized: %d bytes, more than %d", errMalformed, len(b), maxFrame)
	}
	if len(b) < ethHeaderLen {
		return nil, fmt.Errorf("%w: truncated: %d-byte frame", errMalformed, len(b))
	}
	etherType, body := binary.BigEndian.Uint16(b[12:14]), b[ethHeaderLen:]
	if etherType == etherTypeVLAN {
		if len(body) < vlanTagLen {
			return nil, fmt.Errorf("%w: truncated: %d-byte VLAN-tagged frame", errMalformed, len(b))
		}
		etherType, body = binary.BigEndian.Uint16(body[2:4]), body[vlanTagLen:]
	}
	if etherType != etherTypeARP {
		return nil, fmt.Errorf("%w: EtherType %#04x", errMalformed, etherType)
	}
	if len(body) < arpIPv4Len {
		return nil, fmt.Errorf("%w: truncated: %d-byte ARP body", errMalformed, len(body))
	}
	htype, ptype := binary.BigEndian.Uint16(body[0:2]), binary.BigEndian.Uint16(body[2:4])
	hlen, plen := body[4], body[5]
	if htype != hwEthernet || ptype != etherTypeIPv4 {
		return nil, fmt.Errorf("%w: hardware type %d, protocol type %#04x", errMalformed, htype, ptype)
	}
	if hlen != 6 || plen != 4 {
		return nil, fmt.Errorf("%w: hardware address length %d, protocol address length %d", errMalformed, hlen, plen)
	}
	op := arp.Operation(binary.BigEndian.Uint16(body[6:8]))
	if op != arp.OperationRequest && op != arp.OperationReply {
		return nil, fmt.Errorf("%w: opcode %d", errMalformed, op)
	}
	return &arp.Packet{
		HardwareType: htype, ProtocolType: ptype, HardwareAddrLength: hlen, IPLength: plen, Operation: op,
		SenderHardwareAddr: net.HardwareAddr(append([]byte(nil), body[8:14]...)),
		SenderIP:           netip.AddrFrom4([4]byte(body[14:18])),
		TargetHardwareAddr: net.HardwareAddr(append([]byte(nil), body[18:24]...)),
		TargetIP:           netip.AddrFrom4([4]byte(body[24:28])),
	}, nil
}

// marshalFrame builds the Ethernet frame carrying p to dst.
func marshalFrame(p *arp.Packet, dst net.HardwareAddr) ([]byte, error) {
	body, err := p.MarshalBinary()
	if err != nil {
		return nil, err
	}
	f := &ethernet.Frame{Destination: dst, Source: p.SenderHardwareAddr, EtherType: ethernet.EtherTypeARP, Payload: body}
	return f.MarshalBinary()
}
