// Package nodename is a minimal example Filter plugin: it rejects the nodes its args list. It
// exists to exercise the framework (args decoding, validation, Filter verdicts in the
// diagnosis); operators wanting to keep nodes out use node selectors or labels instead.
package nodename

import (
	"context"
	"fmt"

	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/herald-lb/herald/framework"
)

// Name is the plugin's registry name.
const Name = "NodeName"

// ReasonExcluded is the stable rejection reason.
const ReasonExcluded = "node(s) excluded by name"

// NodeNameArgs are the plugin's args.
type NodeNameArgs struct {
	// Excluded are the names of nodes that may not announce.
	Excluded []string `json:"excluded,omitempty"`
}

// Default implements framework.PluginArgs; nothing to default.
func (a *NodeNameArgs) Default() {}

// Validate implements framework.PluginArgs: names must be non-empty and unique.
func (a *NodeNameArgs) Validate(path *field.Path) field.ErrorList {
	var errs field.ErrorList
	seen := map[string]bool{}
	for i, n := range a.Excluded {
		p := path.Child("excluded").Index(i)
		switch {
		case n == "":
			errs = append(errs, field.Required(p, "node name must not be empty"))
		case seen[n]:
			errs = append(errs, field.Duplicate(p, n))
		}
		seen[n] = true
	}
	return errs
}

// Plugin is the NodeName filter.
type Plugin struct {
	excluded map[string]bool
}

var _ framework.FilterPlugin = (*Plugin)(nil)

// New is the plugin's framework.Factory.
func New(args framework.PluginArgs, _ framework.Handle) (framework.Plugin, error) {
	// Args are never nil here: the framework defaults and validates them first.
	a, ok := args.(*NodeNameArgs)
	if !ok || a == nil {
		return nil, fmt.Errorf("want *NodeNameArgs, got %T", args)
	}
	p := &Plugin{excluded: map[string]bool{}}
	for _, n := range a.Excluded {
		p.excluded[n] = true
	}
	return p, nil
}

// NewArgs returns the plugin's empty args, for the configuration to decode into.
func NewArgs() framework.PluginArgs { return &NodeNameArgs{} }

// Name implements framework.Plugin.
func (p *Plugin) Name() string { return Name }

// Filter rejects excluded nodes; nothing about the node can change that.
func (p *Plugin) Filter(_ context.Context, _ *framework.CycleState, _ *framework.Unit, node *framework.NodeInfo) *framework.Status {
	if p.excluded[node.Name] {
		return framework.NewStatus(framework.UnschedulableAndUnresolvable, ReasonExcluded).WithDetail("node %s is listed in NodeNameArgs.excluded", node.Name)
	}
	return nil
}
