// Package interfaces is the Interfaces filter plugin: in L2 mode a node may announce an IP only
// from an interface that is allowed, up, and (by default) on the IP's subnet, as the node's
// speaker published them in its heartbeat.
//
// The allowed interfaces are the union of the interfaces lists of the covering advertisements
// that select the node; when one of them lists none, every interface is allowed (MetalLB's
// meaning of an empty list). With requireSubnet (default true) one allowed, up interface must
// carry a prefix containing the IP: a node outside the IP's broadcast domain would win the
// election and answer ARP/NDP where no client can hear it. Set requireSubnet: false when the
// pool is not on any node subnet but still reachable on the link (rare).
//
// BGP units are skipped: routes are not tied to an interface. For L2 units PreFilter records
// the plugin's rule in the CycleState (framework.InterfaceChoice), and the speaker's bind
// plugin announces on the interfaces it names for the node, so the election and the
// announcement use the same rule.
package interfaces

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/herald-lb/herald/framework"
)

// Name is the plugin's registry name.
const Name = "Interfaces"

// Stable rejection reasons.
const (
	ReasonNoInterfaces       = "node(s) published no interfaces"
	ReasonNoAllowedInterface = "node(s) have no allowed interface up"
	ReasonNotOnSubnet        = "node(s) have no allowed interface on the IP's subnet"
)

// InterfacesArgs are the plugin's args.
type InterfacesArgs struct {
	// RequireSubnet requires, in L2, an allowed interface with a prefix containing the IP.
	// Default true.
	RequireSubnet *bool `json:"requireSubnet,omitempty"`
}

// Default implements framework.PluginArgs.
func (a *InterfacesArgs) Default() {
	if a.RequireSubnet == nil {
		t := true
		a.RequireSubnet = &t
	}
}

// Validate implements framework.PluginArgs; every value is valid.
func (a *InterfacesArgs) Validate(*field.Path) field.ErrorList { return nil }

// Plugin is the Interfaces filter.
type Plugin struct {
	requireSubnet bool
}

var (
	_ framework.PreFilterPlugin = (*Plugin)(nil)
	_ framework.FilterPlugin    = (*Plugin)(nil)
)

// New is the plugin's framework.Factory: args are defaulted and valid (framework.Factory).
func New(args framework.PluginArgs, _ framework.Handle) (framework.Plugin, error) {
	a, ok := args.(*InterfacesArgs)
	if !ok {
		return nil, fmt.Errorf("want *InterfacesArgs, got %T", args)
	}
	return &Plugin{requireSubnet: *a.RequireSubnet}, nil
}

// NewArgs returns the plugin's empty args, for the configuration to decode into.
func NewArgs() framework.PluginArgs { return &InterfacesArgs{} }

// Name implements framework.Plugin.
func (p *Plugin) Name() string { return Name }

// PreFilter skips BGP units; for L2 units it records the rule the bind plugin announces by.
func (p *Plugin) PreFilter(_ context.Context, state *framework.CycleState, unit *framework.Unit) *framework.Status {
	if unit.Mode != framework.ModeL2 {
		return framework.NewStatus(framework.Skip)
	}
	state.Write(framework.InterfaceChoiceKey, choice{requireSubnet: p.requireSubnet})
	return nil
}

// choice is the plugin's framework.InterfaceChoice: its rule with the profile's args.
type choice struct{ requireSubnet bool }

// Clone implements framework.StateData; the choice is immutable.
func (c choice) Clone() framework.StateData { return c }

// Filter rejects nodes with no usable interface for the unit.
func (p *Plugin) Filter(_ context.Context, _ *framework.CycleState, unit *framework.Unit, node *framework.NodeInfo) *framework.Status {
	if unit.Mode != framework.ModeL2 {
		return nil
	}
	if node.Speaker == nil || len(node.Speaker.Interfaces) == 0 {
		return framework.NewStatus(framework.Unschedulable, ReasonNoInterfaces).WithDetail("the node's speaker heartbeat lists no interface")
	}
	allowed := allowedFor(unit.Covering(), node)
	// Filter runs for every node of every unit: decide without building lists, and describe
	// the node's interfaces only when rejecting it.
	anyUp := false
	for _, itf := range node.Speaker.Interfaces {
		if !itf.Up || (allowed != nil && !allowed[itf.Name]) {
			continue
		}
		if !p.requireSubnet || onSubnet(itf, unit) {
			return nil
		}
		anyUp = true
	}
	if !anyUp {
		return framework.NewStatus(framework.Unschedulable, ReasonNoAllowedInterface).
			WithDetail("allowed %s; node has %s", describeAllowed(allowed), describe(node.Speaker.Interfaces))
	}
	var up []framework.Interface
	for _, itf := range node.Speaker.Interfaces {
		if itf.Up && (allowed == nil || allowed[itf.Name]) {
			up = append(up, itf)
		}
	}
	return framework.NewStatus(framework.Unschedulable, ReasonNotOnSubnet).
		WithDetail("no prefix of %s contains %s", describe(up), unit.IP)
}

// Interfaces implements framework.InterfaceChoice: the interfaces allowed by the covering
// advertisements that select the node, up, and on the IP's subnet when requireSubnet (the
// rule Filter admits a node by), sorted. None for BGP units and for nodes that cannot
// announce the unit.
func (c choice) Interfaces(unit *framework.Unit, node *framework.NodeInfo) []string {
	if unit.Mode != framework.ModeL2 || node.Speaker == nil {
		return nil
	}
	allowed := allowedFor(unit.Covering(), node)
	var out []string
	for _, itf := range node.Speaker.Interfaces {
		if itf.Up && (allowed == nil || allowed[itf.Name]) && (!c.requireSubnet || onSubnet(itf, unit)) {
			out = append(out, itf.Name)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// allowedFor returns the interface names the covering advertisements selecting the node allow,
// or nil when any interface is allowed.
func allowedFor(covering []*framework.Advertisement, node *framework.NodeInfo) map[string]bool {
	var allowed map[string]bool
	for _, a := range covering {
		if !a.SelectsNode(node) {
			continue
		}
		if len(a.Interfaces) == 0 {
			return nil
		}
		if allowed == nil {
			allowed = map[string]bool{}
		}
		for _, n := range a.Interfaces {
			allowed[n] = true
		}
	}
	return allowed
}

func onSubnet(itf framework.Interface, unit *framework.Unit) bool {
	ip := unit.IP.Unmap()
	for _, p := range itf.Prefixes {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

func describeAllowed(allowed map[string]bool) string {
	if allowed == nil {
		return "any interface"
	}
	names := make([]string, 0, len(allowed))
	for n := range allowed {
		names = append(names, n)
	}
	slices.Sort(names)
	return "[" + strings.Join(names, " ") + "]"
}

func describe(itfs []framework.Interface) string {
	parts := make([]string, len(itfs))
	for i, itf := range itfs {
		state := "down"
		if itf.Up {
			state = "up"
		}
		parts[i] = fmt.Sprintf("%s(%s %v)", itf.Name, state, itf.Prefixes)
	}
	return "[" + strings.Join(parts, " ") + "]"
}
