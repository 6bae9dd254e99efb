// Package announce is the speaker's in-tree Bind plugin, Announce: when the cycle selects this
// node it announces the unit's IP through the announcer manager and publishes the unit's status
// objects; when the cycle does not select this node it withdraws the IP and deletes the status
// objects this node wrote.
//
// L2 units go to the ARP or NDP announcer on the interfaces the cycle's Interfaces filter
// chose (framework.ChosenInterfaces), with one ServiceL2Status per Service and an Event on each
// Service when the announcing node changes. BGP units (every feasible node is selected) go to the BGP announcer with the route
// attributes of each BGPAdvertisement that covers the unit and selects this node, with one
// ServiceBGPStatus per Service and node naming the peers the routes go to.
//
// The plugin decides; what this node holds is the Ledger the speaker owns and hands it (with
// a few small interfaces: Router, Peers, Observer, see Deps), so unlike the other plugins it is
// built with dependencies rather than from args alone. It never withdraws while the ledger's
// Gate is closed (the speaker cannot vouch for its view of the cluster: its heartbeat cannot
// be renewed, or it is draining and waiting for another node to take over): a stale view
// must not take the data plane down.
package announce

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/tools/record"
	"k8s.io/klog/v2"

	"github.com/herald-lb/herald/announcers"
	"github.com/herald-lb/herald/announcers/manager"
	"github.com/herald-lb/herald/framework"
)

// Name is the plugin's registry name.
const Name = "Announce"

// Event reasons recorded on Services.
const (
	// ReasonNodeChanged is recorded by the node that takes an IP over.
	ReasonNodeChanged = "AnnouncingNodeChanged"
	// ReasonNoNode is recorded by the node that withdraws an IP no node can announce.
	ReasonNoNode = "NoAnnouncingNode"
	// ReasonAnnounceFailed is recorded when the announcer rejects an announcement.
	ReasonAnnounceFailed = "AnnounceFailed"
)

// Announcer is the part of the announcer manager the plugin drives.
type Announcer interface {
	// Apply records the change; a pending Result means the announcer has not acknowledged it
	// yet (not running, restarting, idle, slow) and the manager sends it when it can.
	Apply(ctx context.Context, name string, upserts []announcers.Announcement, removes []string) (manager.Result, error)
}

// StatusWriter publishes the status objects of this node (ServiceL2Status or ServiceBGPStatus).
type StatusWriter interface {
	// Publish makes the Service's status object name this node and the list (L2: the
	// interfaces; BGP: the peers), replacing an object that names another node.
	Publish(ctx context.Context, svc framework.ServiceKey, ip netip.Addr, list []string) error
	// Retract deletes the Service's status object if it names this node.
	Retract(ctx context.Context, svc framework.ServiceKey, ip netip.Addr) error
}

// Router names the announcer of each kind of unit and says whether it answers.
type Router interface {
	// AnnouncerFor names the announcer of a kind of unit ("arp" for IPv4 L2 units, "ndp" for
	// IPv6, "bgp" for BGP); "" means none is configured.
	AnnouncerFor(kind framework.AnnouncerKind) string
	// Answers reports why the named announcer cannot answer now; nil when it can. A unit is
	// claimed (status objects, Events) only while its announcer answers: a status must never
	// name a node where nothing answers.
	Answers(announcer string) error
}

// Peers lists the BGP peers this node has sessions with.
type Peers interface {
	// Names returns the names of the BGPPeers this node has sessions with, sorted.
	Names() []string
}

// Observer is told what this node starts announcing.
type Observer interface {
	// Announced is told each time this node starts announcing a unit; takeover is set when
	// another node announced it before (an L2 failover).
	Announced(mode framework.Mode, takeover bool)
}

// Deps are the plugin's dependencies, given by the speaker.
type Deps struct {
	// Ledger is what this node holds: the plugin binds into it, and asks its gate before it
	// claims or withdraws a unit.
	Ledger *Ledger
	Router Router
	// Peers are the BGP peers the routes of BGP units go to; nil: none.
	Peers Peers
	// Observer is told each announcement this node starts; nil: nobody.
	Observer Observer
	Recorder record.EventRecorder
}

// Current is one unit this node announces.
type Current struct {
	Key        string
	IP         netip.Addr
	Mode       framework.Mode
	Announcer  string
	Interfaces []string
	Services   []framework.ServiceKey
	// Routes are the announcements sent for a BGP unit (one per BGPAdvertisement); an L2 unit
	// sends one announcement keyed by Key.
	Routes []announcers.Announcement
	// Peers are the BGP peers the routes go to, as published in ServiceBGPStatus.
	Peers []string
	// Claimed is set once the unit's status objects name this node: the announcer had
	// it, and the cycle was not told to announce without claiming (WithoutClaim).
	Claimed bool
	// pending is set while the manager keeps the unit's announcements without the announcer
	// having acknowledged them (starting on demand, restarting, slow). The next cycle sends
	// them again rather than taking the record for an answer: a node warming up would
	// otherwise count a unit nothing answers for yet as announced, publish itself ready,
	// and the old owner would withdraw before the new one answers.
	pending bool
}

// ids are the announcement keys the unit holds in its announcer.
func (c Current) ids() []string {
	if c.Mode != framework.ModeBGP {
		return []string{c.Key}
	}
	out := make([]string, len(c.Routes))
	for i, r := range c.Routes {
		out[i] = r.Key()
	}
	return out
}

// Plugin is the Announce bind plugin, a thin adapter over the ledger: Bind turns the cycle's
// decision into a change of what this node holds. One instance may serve several profiles'
// frameworks (see Registration).
type Plugin struct {
	node string
	deps Deps
	// ledger is deps.Ledger, or an empty one for the placeholder.
	ledger *Ledger

	mu sync.Mutex
	// warnedNoBGP is set once the missing BGP announcer has been logged.
	warnedNoBGP bool
}

var _ framework.BindPlugin = (*Plugin)(nil)

// New returns the plugin for node.
func New(node string, deps Deps) *Plugin {
	ledger := deps.Ledger
	if ledger == nil {
		ledger = NewLedger(nil, StatusWriters{}, nil)
	}
	return &Plugin{node: node, deps: deps, ledger: ledger}
}

// Registration returns a registry entry whose factory always returns p, so every profile
// shares one record of what this node announces.
func (p *Plugin) Registration() framework.Registration {
	return framework.Registration{Factory: func(framework.PluginArgs, framework.Handle) (framework.Plugin, error) { return p, nil }}
}

// Name implements framework.Plugin.
func (p *Plugin) Name() string { return Name }

// quietKey marks, in the CycleState, a cycle whose unit this node announces without claiming.
const quietKey framework.StateKey = "herald.dev/announce-quiet"

type quietData struct{}

func (quietData) Clone() framework.StateData { return quietData{} }

// WithoutClaim (a framework.CycleOption) makes Bind announce the unit if this node is selected
// but neither publish its status objects nor record an Event: the speaker's own view selected it, while the other
// speakers do not see this node as a candidate yet (it is warming up and answers for the
// IPs it is about to take over before the old owner withdraws).
func WithoutClaim(state *framework.CycleState) { state.Write(quietKey, quietData{}) }

func quiet(state *framework.CycleState) bool {
	_, err := state.Read(quietKey)
	return err == nil
}

// logger is Bind's logger (one line per announce and withdraw decision): ctx's, named
// "announce" (the framework hands every bind plugin the same ctx). Named where a line is
// logged, not per Bind: a pass binds every unit and logs for few.
func logger(ctx context.Context) klog.Logger {
	return klog.LoggerWithName(klog.FromContext(ctx), "announce")
}

// Bind announces the unit when this node is selected and withdraws it otherwise. BGP units are
// left to other bind plugins (Skip) when no BGP announcer is configured.
func (p *Plugin) Bind(ctx context.Context, state *framework.CycleState, unit *framework.Unit, selected []string) *framework.Status {
	defer p.ledger.lock(unit.Key())()
	switch unit.Mode {
	case framework.ModeL2:
		if slices.Contains(selected, p.node) {
			return p.announce(ctx, state, unit)
		}
	case framework.ModeBGP:
		if p.deps.Router.AnnouncerFor(framework.AnnouncerKindBGP) == "" {
			p.warnNoBGP(ctx, unit)
			return framework.NewStatus(framework.Skip)
		}
		if slices.Contains(selected, p.node) {
			return p.advertise(ctx, state, unit, selected)
		}
	default:
		return framework.NewStatus(framework.Skip)
	}
	return p.withdraw(ctx, state, unit, selected)
}

func (p *Plugin) warnNoBGP(ctx context.Context, unit *framework.Unit) {
	p.mu.Lock()
	warned := p.warnedNoBGP
	p.warnedNoBGP = true
	p.mu.Unlock()
	if !warned {
		logger(ctx).Info("A BGPAdvertisement covers this IP but the speaker runs no bgp announcer (add it to announcers in the configuration); BGP units are not advertised", "ip", unit.IP)
	}
}

func (p *Plugin) observe(mode framework.Mode, takeover bool) {
	if p.deps.Observer != nil {
		p.deps.Observer.Announced(mode, takeover)
	}
}

func (p *Plugin) announce(ctx context.Context, state *framework.CycleState, unit *framework.Unit) *framework.Status {
	key := unit.Key()
	prev, already := p.ledger.get(key)
	if !already && !p.ledger.mayClaim() {
		logger(ctx).Info("Not claiming an IP this node won: its heartbeat is not current", "ip", unit.IP)
		return framework.NewStatus(framework.Success).WithDetail("not claiming %s: this node's heartbeat is not current", unit.IP)
	}
	name := p.deps.Router.AnnouncerFor(unit.AnnouncerKind())
	if name == "" {
		return framework.AsStatus(fmt.Errorf("no announcer is configured for %s", unit.IP))
	}
	var itfs []string
	if node := state.Snapshot().Node(p.node); node != nil {
		var chosen bool
		if itfs, chosen = framework.ChosenInterfaces(state, unit, node); !chosen {
			return framework.AsStatus(fmt.Errorf("selected for %s but no filter chose its interfaces: the profile needs the Interfaces plugin's PreFilter", unit.IP))
		}
	}
	if len(itfs) == 0 {
		return framework.AsStatus(fmt.Errorf("selected for %s but no interface of node %q qualifies", unit.IP, p.node))
	}
	if err := p.deps.Router.Answers(name); err != nil {
		// Selected on a view that has not caught up with the announcer's failure: claim
		// nothing; the node's published health moves the unit away.
		return framework.AsStatus(fmt.Errorf("selected for %s but announcer %q cannot answer: %w", unit.IP, name, err))
	}
	cur := Current{Key: key, IP: unit.IP, Mode: framework.ModeL2, Announcer: name, Interfaces: itfs, Services: serviceKeys(unit), Claimed: prev.Claimed}
	if !already || prev.pending || !slices.Equal(prev.Interfaces, itfs) || prev.Announcer != name {
		ann := announcers.Announcement{ID: key, Prefix: netip.PrefixFrom(unit.IP, unit.IP.BitLen()), Interfaces: itfs}
		err := p.ledger.send(ctx, name, unit.IP, []announcers.Announcement{ann}, nil)
		if errors.Is(err, errPending) {
			// The manager keeps the announcement and replays it when the announcer is back,
			// so it is this node's to withdraw; but nothing answers yet, so it is not claimed.
			cur.pending = true
			p.ledger.hold(cur)
			return framework.AsStatus(err)
		}
		if err != nil {
			p.recordAll(unit, corev1.EventTypeWarning, ReasonAnnounceFailed, err.Error())
			return framework.AsStatus(err)
		}
	}
	if quiet(state) {
		if !already {
			logger(ctx).Info("Announcing ahead of taking over", "ip", unit.IP, "interfaces", itfs, "announcedBy", unit.AnnouncingNodes)
		}
		p.ledger.hold(cur)
		return framework.NewStatus(framework.Success).WithDetail("announcing %s ahead of taking it over", unit.IP)
	}
	first := !cur.Claimed
	if first {
		logger(ctx).Info("Announcing", "ip", unit.IP, "interfaces", itfs, "was", unit.AnnouncingNodes)
		p.observe(framework.ModeL2, len(unit.AnnouncingNodes) > 0 && !slices.Contains(unit.AnnouncingNodes, p.node))
	}
	cur.Claimed = true
	p.ledger.hold(cur)
	var errs []error
	for _, svc := range cur.Services {
		if err := p.ledger.status.L2.Publish(ctx, svc, unit.IP, itfs); err != nil {
			errs = append(errs, fmt.Errorf("service %s: status: %w", svc, err))
		}
	}
	for _, svc := range removedServices(prev.Services, cur.Services) {
		if err := p.ledger.status.L2.Retract(ctx, svc, unit.IP); err != nil {
			errs = append(errs, fmt.Errorf("service %s: status: %w", svc, err))
		}
	}
	if !slices.Equal(unit.AnnouncingNodes, []string{p.node}) && first {
		was := "none"
		if len(unit.AnnouncingNodes) > 0 {
			was = strings.Join(unit.AnnouncingNodes, ",")
		}
		p.recordAll(unit, corev1.EventTypeNormal, ReasonNodeChanged,
			fmt.Sprintf("%s is announced by node %s (was %s): %s", unit.IP, p.node, was, state.Summary()))
	}
	return framework.AsStatus(errors.Join(errs...))
}

func (p *Plugin) recordAll(unit *framework.Unit, eventType, reason, message string) {
	if p.deps.Recorder == nil {
		return
	}
	for _, svc := range unit.Services {
		p.deps.Recorder.Event(ServiceRef(svc.Key), eventType, reason, message)
	}
}

// ServiceRef is the object reference Events about a Service are recorded on.
func ServiceRef(svc framework.ServiceKey) *corev1.ObjectReference {
	return &corev1.ObjectReference{Kind: "Service", APIVersion: "v1", Namespace: svc.Namespace, Name: svc.Name}
}

func serviceKeys(unit *framework.Unit) []framework.ServiceKey {
	out := make([]framework.ServiceKey, len(unit.Services))
	for i, s := range unit.Services {
		out[i] = s.Key
	}
	return out
}

func removedServices(before, after []framework.ServiceKey) []framework.ServiceKey {
	var out []framework.ServiceKey
	for _, s := range before {
		if !slices.Contains(after, s) {
			out = append(out, s)
		}
	}
	return out
}

// PlaceholderRegistration lets a configuration that names Announce in a profile's bind stage
// be validated where no speaker runs (herald explain, herald config): the plugin it builds
// has no dependencies and must never bind.
func PlaceholderRegistration() framework.Registration {
	return framework.Registration{Factory: func(framework.PluginArgs, framework.Handle) (framework.Plugin, error) {
		return New("", Deps{}), nil
	}}
}
