// Package nodepreference is the NodePreference score plugin: soft, weighted preferences for
// nodes by label, summed like kube-scheduler's preferred node affinity. A node scores the sum
// of the weights of the preferences whose selector it matches; the sums are scaled so the best
// node gets 100. With no preferences every node scores 0 and the plugin changes nothing.
package nodepreference

import (
	"context"
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/herald-lb/herald/framework"
)

// Name is the plugin's registry name.
const Name = "NodePreference"

// Preference is one weighted label selector.
type Preference struct {
	// Weight is added to the score of a matching node, 1..100.
	Weight int32 `json:"weight"`
	// Selector picks the preferred nodes by label; an empty selector matches every node.
	Selector metav1.LabelSelector `json:"selector"`
}

// NodePreferenceArgs are the plugin's args.
type NodePreferenceArgs struct {
	Preferences []Preference `json:"preferences,omitempty"`
}

// Default implements framework.PluginArgs; nothing to default.
func (a *NodePreferenceArgs) Default() {}

// Validate implements framework.PluginArgs: weights in 1..100, selectors well-formed.
func (a *NodePreferenceArgs) Validate(path *field.Path) field.ErrorList {
	var errs field.ErrorList
	for i, p := range a.Preferences {
		pp := path.Child("preferences").Index(i)
		if p.Weight < 1 || p.Weight > 100 {
			errs = append(errs, field.Invalid(pp.Child("weight"), p.Weight, "must be in 1..100"))
		}
		if _, err := metav1.LabelSelectorAsSelector(&p.Selector); err != nil {
			errs = append(errs, field.Invalid(pp.Child("selector"), p.Selector.String(), err.Error()))
		}
	}
	return errs
}

type weighted struct {
	weight   int64
	selector labels.Selector
}

// Plugin is the NodePreference score plugin.
type Plugin struct {
	prefs []weighted
}

var (
	_ framework.ScorePlugin     = (*Plugin)(nil)
	_ framework.ScoreExtensions = (*Plugin)(nil)
)

// New is the plugin's framework.Factory: args are defaulted and valid (framework.Factory).
func New(args framework.PluginArgs, _ framework.Handle) (framework.Plugin, error) {
	a, ok := args.(*NodePreferenceArgs)
	if !ok {
		return nil, fmt.Errorf("want *NodePreferenceArgs, got %T", args)
	}
	p := &Plugin{}
	for _, pref := range a.Preferences {
		sel, err := metav1.LabelSelectorAsSelector(&pref.Selector)
		if err != nil {
			return nil, err
		}
		p.prefs = append(p.prefs, weighted{weight: int64(pref.Weight), selector: sel})
	}
	return p, nil
}

// NewArgs returns the plugin's empty args, for the configuration to decode into.
func NewArgs() framework.PluginArgs { return &NodePreferenceArgs{} }

// Name implements framework.Plugin.
func (p *Plugin) Name() string { return Name }

// Score sums the weights of the preferences the node matches.
func (p *Plugin) Score(_ context.Context, _ *framework.CycleState, _ *framework.Unit, node *framework.NodeInfo) (int64, *framework.Status) {
	var sum int64
	set := labels.Set(node.Labels)
	for _, pref := range p.prefs {
		if pref.selector.Matches(set) {
			sum += pref.weight
		}
	}
	return sum, nil
}

// ScoreExtensions implements framework.ScorePlugin.
func (p *Plugin) ScoreExtensions() framework.ScoreExtensions { return p }

// NormalizeScore scales the sums so the highest becomes MaxNodeScore.
func (p *Plugin) NormalizeScore(_ context.Context, _ *framework.CycleState, _ *framework.Unit, scores framework.NodeScoreList) *framework.Status {
	return framework.DefaultNormalizeScore(scores)
}
