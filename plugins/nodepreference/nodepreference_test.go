package nodepreference

import (
	"context"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/herald-lb/herald/framework"
)

func TestScore(t *testing.T) {
	nodes := []*framework.NodeInfo{
		{Name: "a", Labels: map[string]string{"zone": "a", "tier": "edge"}},
		{Name: "b", Labels: map[string]string{"zone": "b", "tier": "edge"}},
		{Name: "c", Labels: map[string]string{"zone": "c"}},
	}
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
			pl, err := New(&NodePreferenceArgs{Preferences: tt.prefs}, nil)
			if err != nil {
				t.Fatal(err)
			}
			p := pl.(*Plugin)
			state := framework.NewCycleState(framework.NewSnapshot(time.Now(), nodes))
			var list framework.NodeScoreList
			for _, n := range nodes {
				s, st := p.Score(context.Background(), state, nil, n)
				if !st.IsSuccess() {
					t.Fatal(st.Message())
				}
				list = append(list, framework.NodeScore{Name: n.Name, Score: s})
			}
			if st := p.NormalizeScore(context.Background(), state, nil, list); !st.IsSuccess() {
				t.Fatal(st.Message())
			}
			for _, s := range list {
				if s.Score != tt.want[s.Name] {
					t.Errorf("node %s: score %d, want %d", s.Name, s.Score, tt.want[s.Name])
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
	if _, err := New(args, nil); err == nil || !strings.Contains(err.Error(), "weight") {
		t.Fatalf("New accepted invalid args: %v", err)
	}
}
