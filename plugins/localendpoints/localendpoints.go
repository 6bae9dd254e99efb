// Package localendpoints is the LocalEndpoints filter and score plugin, for Services with
// externalTrafficPolicy: Local, whose traffic is dropped by a node without a local endpoint.
//
// PreFilter: when no Service of the unit has a serving endpoint anywhere (for either traffic
// policy), nobody announces the IP: the unit is rejected. Otherwise, when no Service of the
// unit has the Local policy, the plugin skips the unit.
//
// Filter: a node qualifies when it has a serving endpoint (ready, or serving and not
// terminating) for every Local Service of the unit that has one anywhere. Services sharing an
// IP with the Local policy must select the same pods (MetalLB's sharing rule), so they agree
// in practice; a Local Service with no endpoint at all is left out so it cannot take the IP
// away from the Services sharing it that do have endpoints (its own traffic is dropped anyway).
//
// Score: the node's number of serving endpoints summed over those Local Services, scaled so
// the best node gets 100.
package localendpoints

import (
	"context"
	"strings"

	"github.com/herald-lb/herald/framework"
)

// Name is the plugin's registry name.
const Name = "LocalEndpoints"

// Stable rejection reasons.
const (
	// ReasonNoServingEndpoint rejects the whole unit.
	ReasonNoServingEndpoint = "no serving endpoint for the IP's Services"
	// ReasonNoLocalEndpoint rejects a node.
	ReasonNoLocalEndpoint = "node(s) have no local endpoint"
)

const stateKey framework.StateKey = Name

// localServices is the cycle state: the Local Services with a serving endpoint somewhere.
type localServices []*framework.ServiceInfo

func (l localServices) Clone() framework.StateData { return l }

// Plugin is the LocalEndpoints filter and score plugin.
type Plugin struct{}

var (
	_ framework.PreFilterPlugin = (*Plugin)(nil)
	_ framework.FilterPlugin    = (*Plugin)(nil)
	_ framework.ScorePlugin     = (*Plugin)(nil)
	_ framework.ScoreExtensions = (*Plugin)(nil)
)

// New is the plugin's framework.Factory; the plugin takes no args.
func New(framework.PluginArgs, framework.Handle) (framework.Plugin, error) { return &Plugin{}, nil }

// Name implements framework.Plugin.
func (p *Plugin) Name() string { return Name }

// PreFilter rejects a unit without any serving endpoint and skips one without a Local Service.
func (p *Plugin) PreFilter(_ context.Context, state *framework.CycleState, unit *framework.Unit) *framework.Status {
	anywhere := false
	var local localServices
	for _, s := range unit.Services {
		if total(s) == 0 {
			continue
		}
		anywhere = true
		if s.TrafficPolicyLocal {
			local = append(local, s)
		}
	}
	if !anywhere {
		names := make([]string, len(unit.Services))
		for i, s := range unit.Services {
			names[i] = s.Key.String()
		}
		return framework.NewStatus(framework.Unschedulable, ReasonNoServingEndpoint).
			WithDetail("no ready or serving endpoint in the EndpointSlices of %s", strings.Join(names, ", "))
	}
	if len(local) == 0 {
		return framework.NewStatus(framework.Skip)
	}
	state.Write(stateKey, local)
	return nil
}

func total(s *framework.ServiceInfo) int {
	n := 0
	for _, c := range s.ServingEndpoints {
		n += c
	}
	return n
}

func fromState(state *framework.CycleState, unit *framework.Unit) localServices {
	if d, err := state.Read(stateKey); err == nil {
		return d.(localServices)
	}
	var local localServices
	for _, s := range unit.Services {
		if s.TrafficPolicyLocal && total(s) > 0 {
			local = append(local, s)
		}
	}
	return local
}

// Filter rejects a node lacking a serving endpoint of one of the Local Services.
func (p *Plugin) Filter(_ context.Context, state *framework.CycleState, unit *framework.Unit, node *framework.NodeInfo) *framework.Status {
	for _, s := range fromState(state, unit) {
		if s.ServingEndpoints[node.Name] == 0 {
			return framework.NewStatus(framework.Unschedulable, ReasonNoLocalEndpoint).
				WithDetail("no serving endpoint of %s (externalTrafficPolicy: Local) on the node", s.Key)
		}
	}
	return nil
}

// Score counts the node's serving endpoints of the Local Services.
func (p *Plugin) Score(_ context.Context, state *framework.CycleState, unit *framework.Unit, node *framework.NodeInfo) (int64, *framework.Status) {
	var n int64
	for _, s := range fromState(state, unit) {
		n += int64(s.ServingEndpoints[node.Name])
	}
	return n, nil
}

// ScoreExtensions implements framework.ScorePlugin.
func (p *Plugin) ScoreExtensions() framework.ScoreExtensions { return p }

// NormalizeScore scales the counts so the highest becomes MaxNodeScore.
func (p *Plugin) NormalizeScore(_ context.Context, _ *framework.CycleState, _ *framework.Unit, scores framework.NodeScoreList) *framework.Status {
	return framework.DefaultNormalizeScore(scores)
}
