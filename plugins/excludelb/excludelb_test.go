package excludelb

import (
	"testing"

	"github.com/herald-lb/herald/framework"
	"github.com/herald-lb/herald/framework/frameworktest"
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
			node := frameworktest.Node("n")
			for k, v := range tt.labels {
				node.Label(k, v)
			}
			out := frameworktest.Run(t, framework.Registration{Factory: New, NewArgs: NewArgs}, tt.args, frameworktest.Snapshot(node.Obj()), frameworktest.L2Unit("192.0.2.10").Obj())
			rej := out.Rejection("n")
			if !tt.reject {
				if rej != nil {
					t.Fatalf("rejected: %+v", rej)
				}
				return
			}
			if rej == nil || rej.Code != framework.Unschedulable.String() || len(rej.Reasons) != 1 || rej.Reasons[0] != ReasonExcluded {
				t.Fatalf("got %+v, want Unschedulable %q", rej, ReasonExcluded)
			}
		})
	}
}
