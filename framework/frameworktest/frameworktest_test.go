package frameworktest_test

import (
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/herald-lb/herald/framework"
	"github.com/herald-lb/herald/framework/frameworktest"
)

// requiredArgs need a name: their defaults are invalid.
type requiredArgs struct{ Name string }

func (a *requiredArgs) Default() {}
func (a *requiredArgs) Validate(path *field.Path) field.ErrorList {
	if a.Name == "" {
		return field.ErrorList{field.Required(path.Child("name"), "")}
	}
	return nil
}

func TestRunRejectsAndScores(t *testing.T) {
	snap := frameworktest.Snapshot(frameworktest.Node("a").Obj(), frameworktest.Node("b").Obj(), frameworktest.Node("c").Obj())
	unit := frameworktest.L2Unit("192.0.2.10").Obj()

	filter := &frameworktest.Filter{PluginName: "F", Fn: frameworktest.RejectNodes(framework.Unschedulable, "no", "b")}
	out := frameworktest.Run(t, frameworktest.Registration(filter), nil, snap, unit)
	if rej := out.Rejection("b"); rej == nil || rej.Plugin != "F" || rej.Reasons[0] != "no" || rej.Detail != "detail for b" {
		t.Errorf("b's rejection = %+v", rej)
	}
	if out.Rejection("a") != nil || out.FeasibleCount != 2 || len(out.Selected) != 1 {
		t.Errorf("outcome %+v", out.Diagnosis)
	}

	score := &frameworktest.Score{PluginName: "S", Fn: frameworktest.ScoreByName(map[string]int64{"a": 3, "c": 9})}
	out = frameworktest.Run(t, frameworktest.Registration(score), nil, snap, unit)
	if out.Score("a") != 3 || out.Score("b") != 0 || strings.Join(out.Selected, ",") != "c" {
		t.Errorf("scores %d %d, selected %v", out.Score("a"), out.Score("b"), out.Selected)
	}
}

func TestCycleErrors(t *testing.T) {
	snap := frameworktest.Snapshot(frameworktest.Node("a").Obj())
	unit := frameworktest.BGPUnit("192.0.2.10").Obj()
	filter := &frameworktest.Filter{PluginName: "F", Fn: func(*framework.NodeInfo) *framework.Status {
		return framework.NewStatus(framework.Error, "broken")
	}}
	withArgs := frameworktest.Registration(filter)
	withArgs.NewArgs = func() framework.PluginArgs { return &requiredArgs{} }
	for name, tc := range map[string]struct {
		reg  framework.Registration
		args framework.PluginArgs
		want string
	}{
		"defaults fail Validate": {withArgs, nil, "args.name: Required value"},
		"an Error status aborts": {withArgs, &requiredArgs{Name: "x"}, `plugin "F" at Filter for node "a": broken`},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := frameworktest.Cycle(tc.reg, tc.args, snap, unit); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err %v, want %q", err, tc.want)
			}
		})
	}
}

func TestBindRecordsTheSelection(t *testing.T) {
	bind := &frameworktest.Bind{PluginName: "B"}
	snap := frameworktest.Snapshot(frameworktest.Node("a").Obj(), frameworktest.Node("b").NoHeartbeat().Obj())
	frameworktest.Run(t, frameworktest.Registration(bind), nil, snap, frameworktest.BGPUnit("192.0.2.10").Obj())
	if calls := bind.Calls(); len(calls) != 1 || strings.Join(calls[0], ",") != "a,b" {
		t.Errorf("Bind calls %v", calls)
	}
}
