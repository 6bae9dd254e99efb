package bgp

// The adapter's vocabulary: what the announcer and the GoBGP adapter (gobgp.go) exchange,
// in Herald's terms, so that no GoBGP type leaves the adapter.

import (
	"net/netip"
	"time"
)

// GlobalConfig is what a Speaker needs to start: GoBGP has one router id and one default ASN
// per server; each peer may override the local ASN.
type GlobalConfig struct {
	ASN      uint32
	RouterID netip.Addr
}

// PeerConfig is one BGP neighbor as the Speaker configures it.
type PeerConfig struct {
	Address netip.Addr
	// Port is the peer's TCP port; 0 means 179.
	Port            uint16
	LocalASN        uint32
	PeerASN         uint32 // 0 accepts any ASN (dynamic ASN)
	SourceAddress   netip.Addr
	HoldTime        time.Duration
	Keepalive       time.Duration
	ConnectRetry    time.Duration
	EBGPMultihop    bool
	Password        string
	GracefulRestart bool
	// DualStack negotiates both IPv4 and IPv6 unicast; otherwise only the family of Address.
	DualStack bool
	// BFD is nil when BFD is off.
	BFD *BFDConfig
}

// BFDConfig is a peer's BFD timers. BFD is run by package bfd (single hop, asynchronous mode),
// not by GoBGP: see that package for why. Echo, passive and demand modes and authentication
// are not implemented, so they have no field here.
type BFDConfig struct {
	DesiredMinTx     time.Duration
	RequiredMinRx    time.Duration
	DetectMultiplier uint32
}

// PeerState is a neighbor's session as GoBGP reports it.
type PeerState struct {
	Address netip.Addr
	State   SessionFSM
	// Reason is why the session last went down, empty when unknown.
	Reason string
}

// SessionFSM is a BGP finite-state-machine state.
type SessionFSM int

// BGP FSM states.
const (
	FSMUnknown SessionFSM = iota
	FSMIdle
	FSMConnect
	FSMActive
	FSMOpenSent
	FSMOpenConfirm
	FSMEstablished
)

// Path is one route the Speaker originates.
type Path struct {
	Prefix              netip.Prefix
	LocalPref           *uint32
	Communities         []uint32
	LargeCommunities    [][3]uint32
	ExtendedCommunities []ExtCommunity
}

// ExtCommunity is a route-target or route-origin extended community, e.g. "65000:100".
type ExtCommunity struct {
	// Origin is true for route-origin (site of origin), false for route-target.
	Origin bool
	Value  string
}
