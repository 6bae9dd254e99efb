// Package bfd is Herald's BFD (RFC 5880, asynchronous mode, single hop over UDP per RFC 5881)
// for the BGP announcer's sessions. It exists because GoBGP's built-in BFD tore sessions down
// during bring-up against FRR: it ignores the peer's Required Min RX Interval, has no slow
// start or Poll/Final sequence of its own, expires sessions that never came up, and resets the
// BGP session through a notification that GoBGP queues while the session is not established
// and delivers on the next establishment (so the next session is reset as soon as it comes up).
// Here a session reports its state changes to the caller, which decides what BGP does: the
// announcer resets a BGP session only when its BFD session goes from Up to Down.
package bfd

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"
)

// State is a BFD session state as carried on the wire.
type State uint8

// Session states (RFC 5880 section 4.1).
const (
	AdminDown State = 0
	Down      State = 1
	Init      State = 2
	Up        State = 3
)

func (s State) String() string {
	switch s {
	case AdminDown:
		return "AdminDown"
	case Down:
		return "Down"
	case Init:
		return "Init"
	case Up:
		return "Up"
	}
	return fmt.Sprintf("State(%d)", uint8(s))
}

// Diag is a BFD diagnostic code: why the sender's session last left Up.
type Diag uint8

// Diagnostic codes used here (RFC 5880 section 4.1).
const (
	DiagNone             Diag = 0
	DiagDetectionExpired Diag = 1
	DiagNeighborDown     Diag = 3
	DiagAdminDown        Diag = 7
)

func (d Diag) String() string {
	switch d {
	case DiagNone:
		return "no diagnostic"
	case DiagDetectionExpired:
		return "control detection time expired"
	case 2:
		return "echo function failed"
	case DiagNeighborDown:
		return "neighbor signaled session down"
	case 4:
		return "forwarding plane reset"
	case 5:
		return "path down"
	case 6:
		return "concatenated path down"
	case DiagAdminDown:
		return "administratively down"
	case 8:
		return "reverse concatenated path down"
	}
	return fmt.Sprintf("diagnostic %d", uint8(d))
}

// Packet is a BFD Control packet without authentication.
type Packet struct {
	Diag  Diag
	State State
	// Poll asks the receiver to confirm a change of parameters with Final.
	Poll, Final bool
	// ControlPlaneIndependent is the C bit.
	ControlPlaneIndependent bool
	DetectMult              uint8
	MyDiscr, YourDiscr      uint32
	DesiredMinTx            time.Duration
	RequiredMinRx           time.Duration
	RequiredMinEchoRx       time.Duration
}

const (
	version    = 1
	packetSize = 24
	flagPoll   = 0x20
	flagFinal  = 0x10
	flagCPI    = 0x08
	flagAuth   = 0x04
	flagDemand = 0x02
	flagMulti  = 0x01
)

// Marshal encodes p (24 bytes; intervals are whole microseconds on the wire).
func (p Packet) Marshal() []byte {
	b := make([]byte, packetSize)
	b[0] = version<<5 | byte(p.Diag)&0x1f
	b[1] = byte(p.State) << 6
	if p.Poll {
		b[1] |= flagPoll
	}
	if p.Final {
		b[1] |= flagFinal
	}
	if p.ControlPlaneIndependent {
		b[1] |= flagCPI
	}
	b[2] = p.DetectMult
	b[3] = packetSize
	binary.BigEndian.PutUint32(b[4:], p.MyDiscr)
	binary.BigEndian.PutUint32(b[8:], p.YourDiscr)
	binary.BigEndian.PutUint32(b[12:], micros(p.DesiredMinTx))
	binary.BigEndian.PutUint32(b[16:], micros(p.RequiredMinRx))
	binary.BigEndian.PutUint32(b[20:], micros(p.RequiredMinEchoRx))
	return b
}

func micros(d time.Duration) uint32 {
	us := d.Microseconds()
	if us < 0 {
		return 0
	}
	if us > 1<<32-1 {
		return 1<<32 - 1
	}
	return uint32(us)
}

// Errors for packets RFC 5880 section 6.8.6 says to discard.
var (
	errShort         = errors.New("bfd: packet shorter than 24 bytes")
	errVersion       = errors.New("bfd: version is not 1")
	errLength        = errors.New("bfd: length field does not match the packet")
	errAuth          = errors.New("bfd: authentication is not supported")
	errDetectMult    = errors.New("bfd: detect multiplier is zero")
	errMultipoint    = errors.New("bfd: multipoint bit set")
	errMyDiscr       = errors.New("bfd: my discriminator is zero")
	errYourDiscrZero = errors.New("bfd: your discriminator is zero in a packet that is neither Down nor AdminDown")
)

// Unmarshal decodes and checks a BFD Control packet received from the network. Every check of
// RFC 5880 section 6.8.6 that needs no session is made here.
func Unmarshal(b []byte) (Packet, error) {
	if len(b) < packetSize {
		return Packet{}, errShort
	}
	if b[0]>>5 != version {
		return Packet{}, errVersion
	}
	if n := int(b[3]); n < packetSize || n > len(b) {
		return Packet{}, errLength
	}
	if b[1]&flagAuth != 0 {
		return Packet{}, errAuth
	}
	p := Packet{
		Diag:                    Diag(b[0] & 0x1f),
		State:                   State(b[1] >> 6),
		Poll:                    b[1]&flagPoll != 0,
		Final:                   b[1]&flagFinal != 0,
		ControlPlaneIndependent: b[1]&flagCPI != 0,
		DetectMult:              b[2],
		MyDiscr:                 binary.BigEndian.Uint32(b[4:]),
		YourDiscr:               binary.BigEndian.Uint32(b[8:]),
		DesiredMinTx:            time.Duration(binary.BigEndian.Uint32(b[12:])) * time.Microsecond,
		RequiredMinRx:           time.Duration(binary.BigEndian.Uint32(b[16:])) * time.Microsecond,
		RequiredMinEchoRx:       time.Duration(binary.BigEndian.Uint32(b[20:])) * time.Microsecond,
	}
	switch {
	case p.DetectMult == 0:
		return Packet{}, errDetectMult
	case b[1]&flagMulti != 0:
		return Packet{}, errMultipoint
	case p.MyDiscr == 0:
		return Packet{}, errMyDiscr
	case p.YourDiscr == 0 && p.State != Down && p.State != AdminDown:
		return Packet{}, errYourDiscrZero
	}
	return p, nil
}
