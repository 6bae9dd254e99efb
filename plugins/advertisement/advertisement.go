// Package advertisement is the Advertisement filter plugin: a node may announce a unit only
// when an L2Advertisement (L2 units) or BGPAdvertisement (BGP units) covers the unit and
// selects the node.
//
// Coverage follows MetalLB's semantics:
//   - pools: the advertisement names the unit's pool in ipAddressPools, or one of its
//     ipAddressPoolSelectors matches the pool's labels; with both empty it covers every pool;
//   - Services: with serviceSelectors set, at least one Service of the unit must match one of
//     them. MetalLB decides per Service and announces an IP while any Service using it is
//     covered; a shared IP is one announcement on the wire, so "any Service" is the same rule;
//   - nodes: the node matches one of the nodeSelectors of a covering advertisement; with no
//     nodeSelectors it selects every node.
//
// When nothing covers the unit, PreFilter rejects it for every node as
// UnschedulableAndUnresolvable: no node can help, only a change of configuration.
package advertisement

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/labels"

	"github.com/herald-lb/herald/framework"
)

// Name is the plugin's registry name.
const Name = "Advertisement"

// Stable rejection reasons.
const (
	// ReasonNoL2Advertisement and ReasonNoBGPAdvertisement reject the whole unit.
	ReasonNoL2Advertisement  = "no L2Advertisement covers the IP's pool and Services"
	ReasonNoBGPAdvertisement = "no BGPAdvertisement covers the IP's pool and Services"
	// ReasonNodeNotSelected rejects a node outside every covering advertisement's nodeSelectors.
	ReasonNodeNotSelected = "node(s) not selected by any advertisement's nodeSelectors"
)

// stateKey is where PreFilter stores the covering advertisements.
const stateKey framework.StateKey = Name

// Covering is the cycle state PreFilter writes: the advertisements covering the unit.
type Covering []*framework.Advertisement

// Clone implements framework.StateData; the slice is never mutated after PreFilter.
func (c Covering) Clone() framework.StateData { return c }

// Plugin is the Advertisement filter.
type Plugin struct{}

var (
	_ framework.PreFilterPlugin = (*Plugin)(nil)
	_ framework.FilterPlugin    = (*Plugin)(nil)
)

// New is the plugin's framework.Factory; the plugin takes no args.
func New(framework.PluginArgs, framework.Handle) (framework.Plugin, error) { return &Plugin{}, nil }

// Name implements framework.Plugin.
func (p *Plugin) Name() string { return Name }

// PreFilter finds the covering advertisements, or rejects the unit when there are none.
func (p *Plugin) PreFilter(_ context.Context, state *framework.CycleState, unit *framework.Unit) *framework.Status {
	cov := CoveringAdvertisements(unit)
	if len(cov) == 0 {
		reason := ReasonNoL2Advertisement
		if unit.Mode == framework.ModeBGP {
			reason = ReasonNoBGPAdvertisement
		}
		return framework.NewStatus(framework.UnschedulableAndUnresolvable, reason).WithDetail("%s", explainNone(unit))
	}
	state.Write(stateKey, Covering(cov))
	return nil
}

// Filter accepts the node when a covering advertisement selects it.
func (p *Plugin) Filter(_ context.Context, state *framework.CycleState, unit *framework.Unit, node *framework.NodeInfo) *framework.Status {
	cov := FromState(state, unit)
	for _, a := range cov {
		if SelectsNode(a, node) {
			return nil
		}
	}
	names := make([]string, len(cov))
	for i, a := range cov {
		names[i] = a.Name
	}
	return framework.NewStatus(framework.Unschedulable, ReasonNodeNotSelected).
		WithDetail("node labels match the nodeSelectors of none of %s", strings.Join(names, ", "))
}

// FromState returns the covering advertisements PreFilter stored, computing them when this
// plugin's PreFilter did not run in the cycle.
func FromState(state *framework.CycleState, unit *framework.Unit) []*framework.Advertisement {
	if state != nil {
		if d, err := state.Read(stateKey); err == nil {
			return d.(Covering)
		}
	}
	return CoveringAdvertisements(unit)
}

// CoveringAdvertisements returns the unit's advertisements of its mode that cover its pool
// and at least one of its Services, in the unit's order.
func CoveringAdvertisements(unit *framework.Unit) []*framework.Advertisement {
	var out []*framework.Advertisement
	for _, a := range unit.Advertisements {
		if Covers(a, unit) {
			out = append(out, a)
		}
	}
	return out
}

// Covers reports whether the advertisement applies to the unit: same mode, covers the pool,
// and selects one of the unit's Services.
func Covers(a *framework.Advertisement, unit *framework.Unit) bool {
	return a.Mode == unit.Mode && coversPool(a, unit) && coversServices(a, unit)
}

func coversPool(a *framework.Advertisement, unit *framework.Unit) bool {
	if len(a.IPAddressPools) == 0 && len(a.IPAddressPoolSelectors) == 0 {
		return true
	}
	if slices.Contains(a.IPAddressPools, unit.Pool) {
		return true
	}
	return anyMatches(a.IPAddressPoolSelectors, unit.PoolLabels)
}

func coversServices(a *framework.Advertisement, unit *framework.Unit) bool {
	if len(a.ServiceSelectors) == 0 {
		return true
	}
	for _, s := range unit.Services {
		if anyMatches(a.ServiceSelectors, s.Labels) {
			return true
		}
	}
	return false
}

// SelectsNode reports whether the advertisement's nodeSelectors admit the node; no selectors
// admit every node.
func SelectsNode(a *framework.Advertisement, node *framework.NodeInfo) bool {
	return len(a.NodeSelectors) == 0 || anyMatches(a.NodeSelectors, node.Labels)
}

func anyMatches(sels []labels.Selector, set map[string]string) bool {
	for _, s := range sels {
		if s != nil && s.Matches(labels.Set(set)) {
			return true
		}
	}
	return false
}

// explainNone says, for `herald explain`, why each advertisement of the mode missed the unit.
func explainNone(unit *framework.Unit) string {
	var parts []string
	n := 0
	for _, a := range unit.Advertisements {
		if a.Mode != unit.Mode {
			continue
		}
		n++
		switch {
		case !coversPool(a, unit):
			parts = append(parts, fmt.Sprintf("%s: pool not in ipAddressPools %v nor matched by ipAddressPoolSelectors", a.Name, a.IPAddressPools))
		case !coversServices(a, unit):
			parts = append(parts, fmt.Sprintf("%s: no Service matches serviceSelectors", a.Name))
		}
	}
	head := fmt.Sprintf("pool %q: %d %sAdvertisement(s) in the cluster", unit.Pool, n, unit.Mode)
	if len(parts) == 0 {
		return head
	}
	return head + ", none covers it (" + strings.Join(parts, "; ") + ")"
}
