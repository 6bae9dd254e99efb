// Package advertisement is the Advertisement filter plugin: a node may announce a unit only
// when an L2Advertisement (L2 units) or BGPAdvertisement (BGP units) covers the unit and
// selects the node.
//
// Coverage follows MetalLB's semantics and is the framework's (Advertisement.Covers,
// Advertisement.SelectsNode, Unit.Covering), so the snapshot, the bind plugin and herald diag
// apply the same rule; this plugin turns it into verdicts and reasons.
//
// When nothing covers the unit, PreFilter rejects it for every node as
// UnschedulableAndUnresolvable: no node can help, only a change of configuration.
package advertisement

import (
	"context"
	"fmt"
	"strings"

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
func (p *Plugin) PreFilter(_ context.Context, _ *framework.CycleState, unit *framework.Unit) *framework.Status {
	if len(unit.Covering()) == 0 {
		reason := ReasonNoL2Advertisement
		if unit.Mode == framework.ModeBGP {
			reason = ReasonNoBGPAdvertisement
		}
		return framework.NewStatus(framework.UnschedulableAndUnresolvable, reason).WithDetail("%s", explainNone(unit))
	}
	return nil
}

// Filter accepts the node when a covering advertisement selects it.
func (p *Plugin) Filter(_ context.Context, _ *framework.CycleState, unit *framework.Unit, node *framework.NodeInfo) *framework.Status {
	cov := unit.Covering()
	for _, a := range cov {
		if a.SelectsNode(node) {
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
		case !a.CoversPool(unit.Pool, unit.PoolLabels):
			parts = append(parts, fmt.Sprintf("%s: pool not in ipAddressPools %v nor matched by ipAddressPoolSelectors", a.Name, a.IPAddressPools))
		case !a.CoversServices(unit.Services):
			parts = append(parts, fmt.Sprintf("%s: no Service matches serviceSelectors", a.Name))
		}
	}
	head := fmt.Sprintf("pool %q: %d %sAdvertisement(s) in the cluster", unit.Pool, n, unit.Mode)
	if len(parts) == 0 {
		return head
	}
	return head + ", none covers it (" + strings.Join(parts, "; ") + ")"
}
