package frameworktest

import (
	"net/netip"
	"sort"
	"time"

	"github.com/herald-lb/herald/framework"
)

// Now is the time of every snapshot Snapshot builds; builders date heartbeats from it.
var Now = time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)

// LeaseDuration is the heartbeat lease of the nodes Node builds.
const LeaseDuration = 15 * time.Second

// Snapshot returns a snapshot of the nodes taken at Now.
func Snapshot(nodes ...*framework.NodeInfo) *framework.Snapshot {
	return framework.NewSnapshot(Now, nodes)
}

// NodeBuilder builds a NodeInfo; start with Node.
type NodeBuilder struct{ n framework.NodeInfo }

// Node starts a node that every in-tree filter but the interface and endpoint ones accepts:
// Ready, schedulable, its speaker's heartbeat renewed at Now and reporting no announcer.
func Node(name string) *NodeBuilder {
	return &NodeBuilder{n: framework.NodeInfo{
		Name:   name,
		Labels: map[string]string{},
		Ready:  framework.ConditionTrue,
		Speaker: &framework.SpeakerInfo{
			RenewTime:     Now,
			LeaseDuration: LeaseDuration,
		},
	}}
}

// Label sets a label.
func (b *NodeBuilder) Label(key, value string) *NodeBuilder {
	b.n.Labels[key] = value
	return b
}

// Ready sets the Ready condition's status.
func (b *NodeBuilder) Ready(s framework.ConditionStatus) *NodeBuilder {
	b.n.Ready = s
	return b
}

// Cordoned marks the node unschedulable.
func (b *NodeBuilder) Cordoned() *NodeBuilder {
	b.n.Unschedulable = true
	return b
}

// NoHeartbeat removes the speaker's heartbeat, as for a node no speaker ever ran on.
func (b *NodeBuilder) NoHeartbeat() *NodeBuilder {
	b.n.Speaker = nil
	return b
}

// Interface adds an interface that is up, with the prefixes ("192.0.2.5/24").
func (b *NodeBuilder) Interface(name string, prefixes ...string) *NodeBuilder {
	iface := framework.Interface{Name: name, Up: true}
	for _, p := range prefixes {
		iface.Prefixes = append(iface.Prefixes, netip.MustParsePrefix(p))
	}
	b.speaker().Interfaces = append(b.speaker().Interfaces, iface)
	return b
}

// Announcer sets the node's reported state for one announcer kind.
func (b *NodeBuilder) Announcer(kind framework.AnnouncerKind, state framework.AnnouncerState, reason string) *NodeBuilder {
	s := b.speaker()
	if s.Announcers == nil {
		s.Announcers = map[framework.AnnouncerKind]framework.AnnouncerHealth{}
	}
	s.Announcers[kind] = framework.AnnouncerHealth{State: state, Reason: reason}
	return b
}

func (b *NodeBuilder) speaker() *framework.SpeakerInfo {
	if b.n.Speaker == nil {
		b.n.Speaker = &framework.SpeakerInfo{RenewTime: Now, LeaseDuration: LeaseDuration}
	}
	return b.n.Speaker
}

// Obj returns the node; the builder is not to be used after it.
func (b *NodeBuilder) Obj() *framework.NodeInfo {
	n := b.n
	return &n
}

// UnitBuilder builds a Unit; start with L2Unit or BGPUnit.
type UnitBuilder struct{ u framework.Unit }

// L2Unit starts an L2 unit for ip with no Services and no advertisements.
func L2Unit(ip string) *UnitBuilder {
	return &UnitBuilder{u: framework.Unit{IP: netip.MustParseAddr(ip), Mode: framework.ModeL2}}
}

// BGPUnit starts a BGP unit for ip.
func BGPUnit(ip string) *UnitBuilder {
	return &UnitBuilder{u: framework.Unit{IP: netip.MustParseAddr(ip), Mode: framework.ModeBGP}}
}

// Pool sets the IPAddressPool the IP comes from and its labels.
func (b *UnitBuilder) Pool(name string, labels map[string]string) *UnitBuilder {
	b.u.Pool, b.u.PoolLabels = name, labels
	return b
}

// Service adds a Service sharing the IP, with its serving endpoints per node name;
// local is externalTrafficPolicy: Local. Services stay sorted by key, as in a real unit.
func (b *UnitBuilder) Service(namespace, name string, local bool, endpoints map[string]int) *UnitBuilder {
	b.u.Services = append(b.u.Services, &framework.ServiceInfo{
		Key:                framework.ServiceKey{Namespace: namespace, Name: name},
		TrafficPolicyLocal: local,
		ServingEndpoints:   endpoints,
	})
	sort.Slice(b.u.Services, func(i, j int) bool { return b.u.Services[i].Key.String() < b.u.Services[j].Key.String() })
	return b
}

// Advertisement adds an advertisement; its mode is set to the unit's.
func (b *UnitBuilder) Advertisement(a framework.Advertisement) *UnitBuilder {
	a.Mode = b.u.Mode
	b.u.Advertisements = append(b.u.Advertisements, &a)
	return b
}

// AnnouncedBy sets the nodes that announce the IP now (the status objects).
func (b *UnitBuilder) AnnouncedBy(nodes ...string) *UnitBuilder {
	b.u.AnnouncingNodes = nodes
	return b
}

// Obj returns the unit with its coverage resolved, as the snapshot returns units; the builder
// is not to be used after it.
func (b *UnitBuilder) Obj() *framework.Unit {
	u := b.u
	u.ResolveCoverage()
	return &u
}
