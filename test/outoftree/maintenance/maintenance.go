// Package maintenance is an example out-of-tree Filter plugin: nodes carrying a maintenance
// label may not announce. It uses only the public framework API, as a plugin in another
// module would.
package maintenance

import (
	"context"
	"fmt"

	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/herald-lb/herald/framework"
)

// Name is the plugin's registry name.
const Name = "Maintenance"

// ReasonInMaintenance is the stable rejection reason.
const ReasonInMaintenance = "node(s) in maintenance"

// DefaultLabel marks nodes in maintenance when the args name no other label.
const DefaultLabel = "example.com/maintenance"

// MaintenanceArgs are the plugin's args.
type MaintenanceArgs struct {
	// Label marks a node in maintenance when its value is "true".
	Label string `json:"label,omitempty"`
}

// Default implements framework.PluginArgs.
func (a *MaintenanceArgs) Default() {
	if a.Label == "" {
		a.Label = DefaultLabel
	}
}

// Validate implements framework.PluginArgs.
func (a *MaintenanceArgs) Validate(path *field.Path) field.ErrorList {
	var errs field.ErrorList
	for _, msg := range validation.IsQualifiedName(a.Label) {
		errs = append(errs, field.Invalid(path.Child("label"), a.Label, msg))
	}
	return errs
}

// Plugin is the Maintenance filter.
type Plugin struct {
	label string
}

var _ framework.FilterPlugin = (*Plugin)(nil)

// New is the plugin's factory.
func New(args framework.PluginArgs, _ framework.Handle) (framework.Plugin, error) {
	a, ok := args.(*MaintenanceArgs)
	if !ok || a == nil {
		return nil, fmt.Errorf("want *MaintenanceArgs, got %T", args)
	}
	return &Plugin{label: a.Label}, nil
}

// NewArgs returns empty args to decode into.
func NewArgs() framework.PluginArgs { return &MaintenanceArgs{} }

// Name implements framework.Plugin.
func (p *Plugin) Name() string { return Name }

// Filter rejects nodes in maintenance; the node qualifies again when the label goes.
func (p *Plugin) Filter(_ context.Context, _ *framework.CycleState, _ *framework.Unit, node *framework.NodeInfo) *framework.Status {
	if node.Labels[p.label] == "true" {
		return framework.NewStatus(framework.Unschedulable, ReasonInMaintenance).WithDetail("label %s=true", p.label)
	}
	return nil
}
