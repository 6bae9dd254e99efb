package nodepreference

import (
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/herald-lb/herald/framework"
	"github.com/herald-lb/herald/framework/frameworktest"
)

func TestScore(t *testing.T) {
	snap := frameworktest.Snapshot(
		frameworktest.Node("a").Label("zone", "a").Label("tier", "edge").Obj(),
		frameworktest.Node("b").Label("zone", "b").Label("tier", "edge").Obj(),
		frameworktest.Node("c").Label("zone", "c").Obj(),
	)
	tests := []struct {
		name  string
		prefs []Preference
		want  map[string]int64
	}{
		{name: "no preferences", want: map[string]int64{"a": 0, "b": 0, "c": 0}},
		{name: "weights summed then scaled", prefs: []Preference{
			{Weight: 30, Selector: metav1.LabelSelector{MatchLabels: map[string]string{"tier": "edge"}}},
			{Weight: 10, Selector: metav1.LabelSelector{MatchLabels: map[string]string{"zone": "a"}}},
		}, want: map[string]int64{"a": 100, "b": 75, "c": 0}},
		{name: "expressions", prefs: []Preference{
			{Weight: 5, Selector: metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "tier", Operator: metav1.LabelSelectorOpDoesNotExist}}}},
		}, want: map[string]int64{"a": 0, "b": 0, "c": 100}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := frameworktest.Run(t, framework.Registration{Factory: New, NewArgs: NewArgs}, &NodePreferenceArgs{Preferences: tt.prefs}, snap, frameworktest.L2Unit("192.0.2.10").Obj())
			for node, want := range tt.want {
				if got := out.Score(node); got != want {
					t.Errorf("node %s: score %d, want %d", node, got, want)
				}
			}
		})
	}
}

func TestValidate(t *testing.T) {
	args := &NodePreferenceArgs{Preferences: []Preference{
		{Weight: 0, Selector: metav1.LabelSelector{}},
		{Weight: 10, Selector: metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "x", Operator: "Near"}}}},
		{Weight: 101},
		{Weight: 100},
	}}
	errs := args.Validate(field.NewPath("profiles[0]", "pluginConfig[2]", "args"))
	want := []string{
		"profiles[0].pluginConfig[2].args.preferences[0].weight",
		"profiles[0].pluginConfig[2].args.preferences[1].selector",
		"profiles[0].pluginConfig[2].args.preferences[2].weight",
	}
	if len(errs) != len(want) {
		t.Fatalf("got %d errors, want %d: %v", len(errs), len(want), errs)
	}
	for i, w := range want {
		if errs[i].Field != w {
			t.Errorf("error %d on %q, want %q", i, errs[i].Field, w)
		}
	}
	// The factory relies on valid args: the framework refuses these before calling it.
	reg := framework.Registration{Factory: New, NewArgs: NewArgs}
	if _, err := frameworktest.Cycle(reg, args, frameworktest.Snapshot(), frameworktest.L2Unit("192.0.2.10").Obj()); err == nil || !strings.Contains(err.Error(), "weight") {
		t.Fatalf("invalid args accepted: %v", err)
	}
}
