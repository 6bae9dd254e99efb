package excludelb

import (
	"context"
	"testing"
	"time"

	"github.com/herald-lb/herald/framework"
)

func TestFilter(t *testing.T) {
	tests := []struct {
		name   string
		args   framework.PluginArgs
		labels map[string]string
		reject bool
	}{
		{name: "no label", labels: map[string]string{"zone": "a"}},
		{name: "label with value", labels: map[string]string{LabelExcludeLB: "true"}, reject: true},
		{name: "label with empty value still excludes", labels: map[string]string{LabelExcludeLB: ""}, reject: true},
		{name: "label ignored by args", args: &ExcludeLBArgs{IgnoreExcludeLB: true}, labels: map[string]string{LabelExcludeLB: "true"}},
		{name: "explicit default args", args: &ExcludeLBArgs{}, labels: map[string]string{LabelExcludeLB: "true"}, reject: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := New(tt.args, nil)
			if err != nil {
				t.Fatal(err)
			}
			node := &framework.NodeInfo{Name: "n", Labels: tt.labels}
			state := framework.NewCycleState(framework.NewSnapshot(time.Now(), []*framework.NodeInfo{node}))
			st := p.(framework.FilterPlugin).Filter(context.Background(), state, &framework.Unit{}, node)
			if !tt.reject {
				if !st.IsSuccess() {
					t.Fatalf("rejected: %s", st.Message())
				}
				return
			}
			if st.Code() != framework.Unschedulable || len(st.Reasons()) != 1 || st.Reasons()[0] != ReasonExcluded {
				t.Fatalf("got %v %q, want Unschedulable %q", st.Code(), st.Reasons(), ReasonExcluded)
			}
		})
	}
}
