// Package sticky is the Sticky score plugin: the nodes announcing the unit now (as published
// in ServiceL2Status / ServiceBGPStatus) score 100, every other node 0. Its weight in the
// profile decides how strongly the current announcer is kept: small, it only settles near-ties
// of the other scores, so a node that joins takes over few IPs and a node that comes back after
// a failure does not pull every IP back at once.
package sticky

import (
	"context"
	"slices"

	"github.com/herald-lb/herald/framework"
)

// Name is the plugin's registry name.
const Name = "Sticky"

// Plugin is the Sticky score plugin.
type Plugin struct{}

var _ framework.ScorePlugin = (*Plugin)(nil)

// New is the plugin's framework.Factory; the plugin takes no args (its strength is its
// weight in the profile).
func New(framework.PluginArgs, framework.Handle) (framework.Plugin, error) { return &Plugin{}, nil }

// Name implements framework.Plugin.
func (p *Plugin) Name() string { return Name }

// Score is MaxNodeScore for a current announcer and MinNodeScore otherwise.
func (p *Plugin) Score(_ context.Context, _ *framework.CycleState, unit *framework.Unit, node *framework.NodeInfo) (int64, *framework.Status) {
	if slices.Contains(unit.AnnouncingNodes, node.Name) {
		return framework.MaxNodeScore, nil
	}
	return framework.MinNodeScore, nil
}

// ScoreExtensions implements framework.ScorePlugin; scores are already in range.
func (p *Plugin) ScoreExtensions() framework.ScoreExtensions { return nil }
