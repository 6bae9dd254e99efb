// Package announcers holds the protocol between Herald's speaker and its announcer processes
// (ARP, NDP, BGP): the go-plugin handshake and plugin map, the Go interface Announcer that every
// announcer implements, its Go types, and the gRPC adapters that carry it over go-plugin.
// An announcer's main is a few lines calling Serve; the host side lives in announcers/manager.
//
// The protocol is level-triggered: the host sends Configure and the full desired set
// (SetDesired) after any restart of either side, and batched deltas (Apply) in between.
// This package imports no Kubernetes package.
package announcers

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"time"
)

// ProtocolVersion is the version of the announcer protocol; it is part of the go-plugin
// handshake, so a host and an announcer of different versions refuse each other.
const ProtocolVersion = 1

// Kinds of announcers.
const (
	KindARP = "arp"
	KindNDP = "ndp"
	KindBGP = "bgp"
)

// Announcer is what every announcer implements, and what the host calls through the gRPC
// adapters. Every method takes the caller's context.
type Announcer interface {
	// Info reports the protocol version, the kind and the capabilities.
	Info(ctx context.Context) (Info, error)
	// Configure replaces the protocol-level configuration.
	Configure(ctx context.Context, cfg Config) error
	// SetDesired replaces the whole set of announcements. Invalid announcements are rejected
	// one by one in the result; the others are applied.
	SetDesired(ctx context.Context, set DesiredSet) (ApplyResult, error)
	// Apply changes the set by a delta. It fails with an error wrapping ErrOutOfSync when
	// delta.BaseGeneration is not the announcer's current generation.
	Apply(ctx context.Context, delta Delta) (ApplyResult, error)
	// Status reports what is announced now.
	Status(ctx context.Context) (Status, error)
	// Events streams asynchronous events until ctx is done; the channel is closed then.
	Events(ctx context.Context) (<-chan Event, error)
	// Drain withdraws everything and reports how many announcements it withdrew.
	Drain(ctx context.Context) (int, error)
}

// ErrOutOfSync is returned (wrapped) by Apply when the delta's base generation is not the
// announcer's current one; the host answers by sending the full set.
var ErrOutOfSync = errors.New("announcer out of sync: send the full desired set")

// Capability is something an announcer supports.
type Capability string

// Capabilities.
const (
	CapabilityIPv4              Capability = "ipv4"
	CapabilityIPv6              Capability = "ipv6"
	CapabilityL2                Capability = "l2"
	CapabilityBGP               Capability = "bgp"
	CapabilityBFD               Capability = "bfd"
	CapabilityConflictDetection Capability = "conflict-detection"
)

// Info describes an announcer.
type Info struct {
	ProtocolVersion int
	Kind            string
	// Version is the announcer build's own version, for logs.
	Version      string
	Capabilities []Capability
}

// Has reports whether the announcer has capability c.
func (i Info) Has(c Capability) bool {
	for _, have := range i.Capabilities {
		if have == c {
			return true
		}
	}
	return false
}

// Config is the protocol-level configuration; an announcer reads the part for its kind.
type Config struct {
	L2  *L2Config
	BGP *BGPConfig
}

// L2Config tunes the ARP and NDP announcers. Zero values select the defaults.
type L2Config struct {
	// RefreshInterval re-sends gratuitous ARP / unsolicited NA so switch tables do not age out.
	RefreshInterval time.Duration
	// GratuitousCount packets are sent on announce, GratuitousInterval apart.
	GratuitousCount    int
	GratuitousInterval time.Duration
	// ConflictReportInterval is the least time between two conflict events for one address.
	ConflictReportInterval time.Duration
}

// Defaults of L2Config.
const (
	DefaultRefreshInterval        = 30 * time.Second
	DefaultGratuitousCount        = 3
	DefaultGratuitousInterval     = 200 * time.Millisecond
	DefaultConflictReportInterval = 10 * time.Second
)

// WithDefaults returns c with zero fields set to their defaults.
func (c L2Config) WithDefaults() L2Config {
	if c.RefreshInterval <= 0 {
		c.RefreshInterval = DefaultRefreshInterval
	}
	if c.GratuitousCount <= 0 {
		c.GratuitousCount = DefaultGratuitousCount
	}
	if c.GratuitousInterval <= 0 {
		c.GratuitousInterval = DefaultGratuitousInterval
	}
	if c.ConflictReportInterval <= 0 {
		c.ConflictReportInterval = DefaultConflictReportInterval
	}
	return c
}

// BGPConfig is the BGP announcer's configuration.
type BGPConfig struct {
	Peers []BGPPeer
}

// BGPPeer mirrors metallb.io BGPPeer, resolved for one node (the password read from its Secret).
type BGPPeer struct {
	// Name identifies the peer in BGPRoute.Peers and in status.
	Name    string
	MyASN   uint32
	PeerASN uint32
	// DynamicASN is "", "internal" or "external" (then PeerASN is 0).
	DynamicASN    string
	Address       string
	Port          uint16
	SourceAddress string
	RouterID      string
	HoldTime      time.Duration
	KeepaliveTime time.Duration
	ConnectTime   time.Duration
	EBGPMultiHop  bool
	Password      Secret
	VRF           string
	// Interface names the link for BGP unnumbered; Address is empty then.
	Interface              string
	EnableGracefulRestart  bool
	DisableMP              bool
	DualStackAddressFamily bool
	// BFD is set when the peer uses a BFD profile.
	BFD *BFDProfile
}

// BFDProfile mirrors metallb.io BFDProfile.
type BFDProfile struct {
	Name             string
	ReceiveInterval  time.Duration
	TransmitInterval time.Duration
	DetectMultiplier uint32
	EchoInterval     time.Duration
	EchoMode         bool
	PassiveMode      bool
	MinimumTTL       uint32
}

// Secret is a string that never prints: its String, GoString and Format show "[redacted]",
// so a peer logged with %v or %+v does not leak its password.
type Secret string

// String implements fmt.Stringer.
func (Secret) String() string { return "[redacted]" }

// GoString implements fmt.GoStringer.
func (Secret) GoString() string { return `"[redacted]"` }

// Format implements fmt.Formatter so every verb redacts.
func (s Secret) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(s.String())) }

// Reveal returns the secret value; call it only where the value is used.
func (s Secret) Reveal() string { return string(s) }

// Announcement is one address (or prefix) to announce.
type Announcement struct {
	// ID identifies the announcement in deltas; empty means Prefix.String().
	ID     string
	Prefix netip.Prefix
	// Interfaces restricts L2 announcing to these links; empty means every suitable link.
	Interfaces []string
	// BGP carries route attributes for the BGP announcer.
	BGP *BGPRoute
}

// Key is the announcement's identity in deltas: ID, or the prefix when ID is empty.
func (a Announcement) Key() string {
	if a.ID != "" {
		return a.ID
	}
	return a.Prefix.String()
}

// BGPRoute mirrors the route attributes of metallb.io BGPAdvertisement.
type BGPRoute struct {
	// AggregationLength is the prefix length announced (0 means the full host length).
	AggregationLength int
	// LocalPref is nil when not set.
	LocalPref           *uint32
	Communities         []string
	LargeCommunities    []string
	ExtendedCommunities []string
	// Peers restricts the route to these BGPPeer names; empty means all peers.
	Peers []string
}

// DesiredSet is the whole set of announcements at a generation.
type DesiredSet struct {
	Generation    uint64
	Announcements []Announcement
}

// Delta changes a set from BaseGeneration to Generation.
type Delta struct {
	BaseGeneration uint64
	Generation     uint64
	// Upserts add or replace announcements by Key.
	Upserts []Announcement
	// Removes are keys.
	Removes []string
}

// ApplyResult is the outcome of SetDesired or Apply.
type ApplyResult struct {
	Generation uint64
	// Rejected lists announcements that were not accepted; the others were applied.
	Rejected []Rejection
}

// Rejection names an announcement that was not accepted and why.
type Rejection struct {
	ID     string
	Reason string
}

// HealthState is an announcer's own view of its health.
type HealthState int

// Health states.
const (
	HealthUnknown HealthState = iota
	HealthHealthy
	HealthDegraded
	HealthUnhealthy
)

func (h HealthState) String() string {
	switch h {
	case HealthHealthy:
		return "healthy"
	case HealthDegraded:
		return "degraded"
	case HealthUnhealthy:
		return "unhealthy"
	}
	return "unknown"
}

// Status is what an announcer announces now.
type Status struct {
	Generation uint64
	Health     HealthState
	Message    string
	Announced  []AnnouncedPrefix
	Peers      []PeerStatus
}

// AnnouncedPrefix is one prefix being announced and where.
type AnnouncedPrefix struct {
	Prefix netip.Prefix
	// Interfaces are the links it is announced on (L2).
	Interfaces []string
	// Peers are the BGP peers it is sent to.
	Peers []string
}

// SessionState is a BGP session's FSM state.
type SessionState int

// BGP session states.
const (
	SessionUnknown SessionState = iota
	SessionIdle
	SessionConnect
	SessionActive
	SessionOpenSent
	SessionOpenConfirm
	SessionEstablished
)

func (s SessionState) String() string {
	names := [...]string{"unknown", "idle", "connect", "active", "opensent", "openconfirm", "established"}
	if s < 0 || int(s) >= len(names) {
		return "unknown"
	}
	return names[s]
}

// PeerStatus is one BGP session.
type PeerStatus struct {
	Name    string
	Address string
	State   SessionState
	BFDUp   bool
	Message string
}

// Event is an asynchronous report from an announcer; exactly one of its pointers is set.
type Event struct {
	Time     time.Time
	Conflict *Conflict
	Session  *SessionChange
	Error    *EventError
}

// Conflict reports another MAC answering for or announcing one of our addresses.
type Conflict struct {
	Address    netip.Addr
	Interface  string
	ForeignMAC string
	Detail     string
}

// SessionChange reports a BGP session changing state.
type SessionChange struct {
	Peer    string
	Address string
	State   SessionState
	Reason  string
}

// EventError reports an asynchronous failure (e.g. a send that failed).
type EventError struct {
	Message string
}

func (e Event) String() string {
	switch {
	case e.Conflict != nil:
		c := e.Conflict
		return fmt.Sprintf("conflict: %s on %s also claimed by %s (%s)", c.Address, c.Interface, c.ForeignMAC, c.Detail)
	case e.Session != nil:
		s := e.Session
		return fmt.Sprintf("session %s (%s) %s: %s", s.Peer, s.Address, s.State, s.Reason)
	case e.Error != nil:
		return "error: " + e.Error.Message
	}
	return "empty event"
}
