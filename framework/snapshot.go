package framework

import (
	"net/netip"
	"sort"
	"time"

	"k8s.io/apimachinery/pkg/labels"
)

// Mode is how a unit is announced.
type Mode string

// The announcement modes. L2 selects the single best node; BGP selects every feasible node.
const (
	ModeL2  Mode = "L2"
	ModeBGP Mode = "BGP"
)

// ConditionStatus mirrors a Node condition's status ("True", "False", "Unknown"); empty means
// the condition is absent.
type ConditionStatus string

// Condition statuses.
const (
	ConditionTrue    ConditionStatus = "True"
	ConditionFalse   ConditionStatus = "False"
	ConditionUnknown ConditionStatus = "Unknown"
)

// Interface is a network interface a speaker published in its heartbeat.
type Interface struct {
	Name string
	Up   bool
	// MAC is the hardware address in its usual text form; empty for interfaces without one.
	MAC string
	// Prefixes are the interface's addresses with their prefix lengths (its on-link subnets).
	Prefixes []netip.Prefix
}

// SpeakerInfo is what a node's speaker publishes in its heartbeat Lease.
type SpeakerInfo struct {
	// RenewTime is when the speaker last renewed its heartbeat.
	RenewTime time.Time
	// LeaseDuration is how long a renewal stays valid.
	LeaseDuration time.Duration
	// ObservedAt is when the reader (this speaker) saw the heartbeat change, on the reader's
	// own clock; zero when unknown. When set, the heartbeat stays valid for LeaseDuration
	// after it, so the writer's clock never counts (see Expiry).
	ObservedAt time.Time
	// Paced is when the reader would have seen this renewal had its watch delivered it as
	// promptly as the previous one (that one's ObservedAt, or Paced, plus the time between
	// the two renew times, both on the writer's clock); zero unless the renewal came
	// noticeably later than that, as a backlog does after the reader's watch was cut off.
	// Only a settling node's claim view reads it (see liveness.Generous).
	Paced time.Time
	// Returned is when the reader saw the writer's first renewal after it had renewed nothing
	// for a lease duration or more (its renewals failed, it was cut off from the API server,
	// or it restarted); zero when the reader has seen none. A settling node reads it to tell
	// an outage others shared from one of its own (see liveness.Generous).
	Returned time.Time
	// Unreachable is when the reader's fast path (speaker-to-speaker probes) found the
	// speaker gone, or found the reader itself cut off from most speakers (then set on the
	// reader's own node); zero when it has no such verdict. The heartbeat counts as lapsed
	// from then on (see Expiry); UnreachableWhy says why, for explanations.
	Unreachable    time.Time
	UnreachableWhy string
	// Held is set when the reader's fast path holds the speaker alive past its lapsed
	// heartbeat (it lost the API server, not the segment): it keeps the units it announces
	// (Unit.AnnouncingNodes) and takes no other.
	Held bool
	// FastPath is the address the speaker's fast path listens at, FastPathID the process
	// that runs it; empty: it runs none.
	FastPath, FastPathID string
	// Draining is set by a speaker that is shutting down and hands its IPs over.
	Draining bool
	// Interfaces are the node's usable interfaces.
	Interfaces []Interface
	// Announcers says, per announcer kind (AnnouncerKindL2v4, ...), whether the node can
	// answer for units of that kind. A kind that is absent is not reported (a speaker from
	// before this field): no opinion, the node stays a candidate.
	Announcers map[AnnouncerKind]AnnouncerHealth
}

// AnnouncerKind names what answers for a unit: its mode and, in L2, its address family,
// because ARP and NDP are different announcers that fail apart.
type AnnouncerKind string

// The announcer kinds a speaker reports.
const (
	AnnouncerKindL2v4 AnnouncerKind = "l2-v4" // ARP
	AnnouncerKindL2v6 AnnouncerKind = "l2-v6" // NDP
	AnnouncerKindBGP  AnnouncerKind = "bgp"
)

// AnnouncerKinds are every kind, in a fixed order.
var AnnouncerKinds = []AnnouncerKind{AnnouncerKindL2v4, AnnouncerKindL2v6, AnnouncerKindBGP}

// AnnouncerState is whether a node's announcer of one kind can answer.
type AnnouncerState string

// Announcer states. Only Ready makes the node a candidate for the kind's units.
const (
	// AnnouncerReady: the announcer runs and the node may win units.
	AnnouncerReady AnnouncerState = "ready"
	// AnnouncerWarming: the speaker is (re)starting this kind: it has not synced, its
	// announcer is not up yet, or it is announcing the units it is about to win before it
	// becomes a candidate (make before break).
	AnnouncerWarming AnnouncerState = "warming"
	// AnnouncerUnavailable: nothing on the node can answer for the kind (announcer refused,
	// crashed, not configured).
	AnnouncerUnavailable AnnouncerState = "unavailable"
)

// AnnouncerHealth is one kind's state with a short reason when it is not Ready.
type AnnouncerHealth struct {
	State  AnnouncerState
	Reason string
}

// AnnouncerKind is the kind of announcer that answers for the unit.
func (u *Unit) AnnouncerKind() AnnouncerKind {
	switch {
	case u.Mode == ModeBGP:
		return AnnouncerKindBGP
	case u.IP.Is4() || u.IP.Is4In6():
		return AnnouncerKindL2v4
	default:
		return AnnouncerKindL2v6
	}
}

// Expiry is when the heartbeat stops being valid unless renewed: LeaseDuration after the
// reader observed its last change, on the reader's clock, as client-go's leader election and
// the node lifecycle controller measure it. Comparing the writer's RenewTime with the reader's
// clock instead let a few seconds of clock skew make two nodes announce one IP for good.
// Without ObservedAt (a heartbeat read once, by `herald diag`) RenewTime counts.
// A fast-path verdict (Unreachable) ends it earlier.
func (s *SpeakerInfo) Expiry() time.Time {
	exp := s.RenewTime.Add(s.LeaseDuration)
	if !s.ObservedAt.IsZero() {
		exp = s.ObservedAt.Add(s.LeaseDuration)
	}
	if !s.Unreachable.IsZero() && s.Unreachable.Before(exp) {
		return s.Unreachable
	}
	return exp
}

// AliveAt reports whether the heartbeat is still valid at t.
func (s *SpeakerInfo) AliveAt(t time.Time) bool {
	return s != nil && t.Before(s.Expiry())
}

// NodeInfo is everything the framework knows about one node. Plugins read it and never mutate it.
type NodeInfo struct {
	Name          string
	Labels        map[string]string
	Unschedulable bool
	// Ready is the node's Ready condition; NetworkUnavailable is true when that condition is True.
	Ready              ConditionStatus
	NetworkUnavailable bool
	// Speaker is nil when no heartbeat was ever seen for the node.
	Speaker *SpeakerInfo
}

// ServiceKey names a Service as namespace/name.
type ServiceKey struct {
	Namespace string
	Name      string
}

func (k ServiceKey) String() string { return k.Namespace + "/" + k.Name }

// ServiceInfo is one Service of an announcement unit.
type ServiceInfo struct {
	Key    ServiceKey
	Labels map[string]string
	// TrafficPolicyLocal is externalTrafficPolicy: Local.
	TrafficPolicyLocal bool
	// ServingEndpoints counts, per node name, the endpoints of the Service that can take
	// traffic: ready, or serving and not terminating, as EndpointSlice conditions define it.
	ServingEndpoints map[string]int
}

// BGPRouteAttributes are the route attributes a BGPAdvertisement gives its prefixes.
type BGPRouteAttributes struct {
	AggregationLength   int32
	AggregationLengthV6 int32
	LocalPref           uint32
	// Communities are resolved values (aliases from Community resources already expanded).
	Communities []string
	// Peers restricts the advertisement to the named BGPPeers; empty means every peer.
	Peers []string
}

// Advertisement is an L2Advertisement or BGPAdvertisement in the form plugins read.
type Advertisement struct {
	Name string
	Mode Mode
	// IPAddressPools and IPAddressPoolSelectors say which pools it covers; both empty means all.
	IPAddressPools         []string
	IPAddressPoolSelectors []labels.Selector
	// ServiceSelectors restrict it to matching Services; empty means every Service.
	ServiceSelectors []labels.Selector
	// NodeSelectors restrict the nodes that may announce; empty means every node.
	NodeSelectors []labels.Selector
	// Interfaces restrict L2 announcements to the named interfaces; empty means any.
	Interfaces []string
	// BGP is set for BGP advertisements.
	BGP *BGPRouteAttributes
}

// Unit is one announcement unit: a load-balancer IP with every Service that shares it, in one
// mode. Scheduling per unit rather than per Service is what keeps one IP on one node in L2.
type Unit struct {
	IP   netip.Addr
	Mode Mode
	// Pool is the IPAddressPool the IP was allocated from, with that pool's labels.
	Pool       string
	PoolLabels map[string]string
	// Services share the IP; sorted by key.
	Services []*ServiceInfo
	// Advertisements are all the advertisements of the unit's mode in the snapshot; Covering
	// returns those that cover the unit.
	Advertisements []*Advertisement
	// AnnouncingNodes are the nodes that announce the IP now, as published in the status objects.
	AnnouncingNodes []string
	// Class is the Services' spec.loadBalancerClass ("" when unset); it picks the profile.
	Class string

	// covering records the covering advertisements once resolved (non-nil, maybe empty).
	covering []*Advertisement
}

// Key identifies the unit in queues and logs ("192.0.2.10/L2").
func (u *Unit) Key() string { return u.IP.String() + "/" + string(u.Mode) }

// Snapshot is an immutable view of the cluster for one or more cycles.
type Snapshot struct {
	// Time is when the snapshot was taken; plugins compare heartbeats with it, never with the clock.
	Time   time.Time
	nodes  []*NodeInfo
	byName map[string]*NodeInfo
}

// NewSnapshot returns a snapshot of the nodes, ordered by name so every speaker iterates alike.
func NewSnapshot(at time.Time, nodes []*NodeInfo) *Snapshot {
	sorted := append([]*NodeInfo(nil), nodes...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Name < sorted[j].Name })
	byName := make(map[string]*NodeInfo, len(sorted))
	for _, n := range sorted {
		byName[n.Name] = n
	}
	return &Snapshot{Time: at, nodes: sorted, byName: byName}
}

// Nodes returns the nodes ordered by name. Callers must not modify the slice.
func (s *Snapshot) Nodes() []*NodeInfo { return s.nodes }

// Node returns the named node, or nil.
func (s *Snapshot) Node(name string) *NodeInfo { return s.byName[name] }
