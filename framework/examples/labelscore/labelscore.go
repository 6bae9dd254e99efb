// Package labelscore is a minimal example Score plugin with NormalizeScore: a node scores the
// integer value of one of its labels, and the scores are rescaled so the best node gets 100.
// It exists to exercise scoring, normalization and weights in the framework.
package labelscore

import (
	"context"
	"fmt"
	"strconv"

	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/herald-lb/herald/framework"
)

// Name is the plugin's registry name.
const Name = "LabelScore"

// DefaultLabel is the label read when the args name none.
const DefaultLabel = "herald.dev/score"

// LabelScoreArgs are the plugin's args.
type LabelScoreArgs struct {
	// Label holds a non-negative integer; nodes without it, or with another value, score 0.
	Label string `json:"label,omitempty"`
}

// Default implements framework.PluginArgs.
func (a *LabelScoreArgs) Default() {
	if a.Label == "" {
		a.Label = DefaultLabel
	}
}

// Validate implements framework.PluginArgs: the label must be a valid label key.
func (a *LabelScoreArgs) Validate(path *field.Path) field.ErrorList {
	var errs field.ErrorList
	for _, msg := range validation.IsQualifiedName(a.Label) {
		errs = append(errs, field.Invalid(path.Child("label"), a.Label, msg))
	}
	return errs
}

// Plugin is the LabelScore score plugin.
type Plugin struct {
	label string
}

var (
	_ framework.ScorePlugin     = (*Plugin)(nil)
	_ framework.ScoreExtensions = (*Plugin)(nil)
)

// New is the plugin's framework.Factory.
func New(args framework.PluginArgs, _ framework.Handle) (framework.Plugin, error) {
	// Args are never nil here: the framework defaults and validates them first.
	a, ok := args.(*LabelScoreArgs)
	if !ok || a == nil {
		return nil, fmt.Errorf("want *LabelScoreArgs, got %T", args)
	}
	return &Plugin{label: a.Label}, nil
}

// NewArgs returns the plugin's empty args, for the configuration to decode into.
func NewArgs() framework.PluginArgs { return &LabelScoreArgs{} }

// Name implements framework.Plugin.
func (p *Plugin) Name() string { return Name }

// Score returns the label's value (0 when absent or not a non-negative integer).
func (p *Plugin) Score(_ context.Context, _ *framework.CycleState, _ *framework.Unit, node *framework.NodeInfo) (int64, *framework.Status) {
	v, err := strconv.ParseInt(node.Labels[p.label], 10, 64)
	if err != nil || v < 0 {
		return 0, nil
	}
	return v, nil
}

// ScoreExtensions implements framework.ScorePlugin.
func (p *Plugin) ScoreExtensions() framework.ScoreExtensions { return p }

// NormalizeScore rescales so the highest value becomes MaxNodeScore.
func (p *Plugin) NormalizeScore(_ context.Context, _ *framework.CycleState, _ *framework.Unit, scores framework.NodeScoreList) *framework.Status {
	return framework.DefaultNormalizeScore(scores)
}
