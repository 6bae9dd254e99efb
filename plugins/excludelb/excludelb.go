// Package excludelb is the ExcludeLB filter plugin: nodes labelled
// node.kubernetes.io/exclude-from-external-load-balancers (any value, as Kubernetes' own
// service controller treats it) may not announce, unless the args set ignoreExcludeLB, as
// MetalLB's speaker flag of that name does.
package excludelb

import (
	"context"
	"fmt"

	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/herald-lb/herald/framework"
)

// Name is the plugin's registry name.
const Name = "ExcludeLB"

// LabelExcludeLB is the well-known node label that keeps a node out of load balancers.
const LabelExcludeLB = "node.kubernetes.io/exclude-from-external-load-balancers"

// ReasonExcluded is the stable rejection reason.
const ReasonExcluded = "node(s) labelled exclude-from-external-load-balancers"

// ExcludeLBArgs are the plugin's args.
type ExcludeLBArgs struct {
	// IgnoreExcludeLB lets labelled nodes announce anyway.
	IgnoreExcludeLB bool `json:"ignoreExcludeLB,omitempty"`
}

// Default implements framework.PluginArgs; the zero value is the default.
func (a *ExcludeLBArgs) Default() {}

// Validate implements framework.PluginArgs; every value is valid.
func (a *ExcludeLBArgs) Validate(*field.Path) field.ErrorList { return nil }

// Plugin is the ExcludeLB filter.
type Plugin struct {
	ignore bool
}

var _ framework.FilterPlugin = (*Plugin)(nil)

// New is the plugin's framework.Factory: args are defaulted and valid (framework.Factory).
func New(args framework.PluginArgs, _ framework.Handle) (framework.Plugin, error) {
	a, ok := args.(*ExcludeLBArgs)
	if !ok {
		return nil, fmt.Errorf("want *ExcludeLBArgs, got %T", args)
	}
	return &Plugin{ignore: a.IgnoreExcludeLB}, nil
}

// NewArgs returns the plugin's empty args, for the configuration to decode into.
func NewArgs() framework.PluginArgs { return &ExcludeLBArgs{} }

// Name implements framework.Plugin.
func (p *Plugin) Name() string { return Name }

// Filter rejects labelled nodes (Unschedulable: removing the label lets the node back in).
func (p *Plugin) Filter(_ context.Context, _ *framework.CycleState, _ *framework.Unit, node *framework.NodeInfo) *framework.Status {
	if p.ignore {
		return nil
	}
	v, ok := node.Labels[LabelExcludeLB]
	if !ok {
		return nil
	}
	return framework.NewStatus(framework.Unschedulable, ReasonExcluded).WithDetail("label %s=%q", LabelExcludeLB, v)
}
