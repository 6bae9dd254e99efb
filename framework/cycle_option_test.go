package framework_test

import (
	"context"
	"testing"

	"github.com/herald-lb/herald/framework"
	"github.com/herald-lb/herald/framework/frameworktest"
)

type flag struct{}

func (flag) Clone() framework.StateData { return flag{} }

// seeingBind records what Bind finds in the cycle's state.
type seeingBind struct {
	sawFlag bool
	summary string
}

func (b *seeingBind) Name() string { return "Seeing" }
func (b *seeingBind) Bind(_ context.Context, s *framework.CycleState, _ *framework.Unit, _ []string) *framework.Status {
	_, err := s.Read("test/flag")
	b.sawFlag = err == nil
	b.summary = s.Summary()
	return nil
}

// TestRunCycleHandsBindTheCallersDataAndTheSummary: what the caller puts in the state with a
// CycleOption reaches Bind, and Bind reads the cycle's own one-line summary.
func TestRunCycleHandsBindTheCallersDataAndTheSummary(t *testing.T) {
	for _, withFlag := range []bool{false, true} {
		bind := &seeingBind{}
		reject := &frameworktest.Filter{PluginName: "Reject", Fn: frameworktest.RejectNodes(framework.Unschedulable, "node(s) rejected", "node-01")}
		f, err := framework.NewFramework(frameworktest.Registry(bind, reject), framework.ProfileSpec{Name: "p", Filter: []string{"Reject"}, Bind: []string{"Seeing"}}, nil)
		if err != nil {
			t.Fatal(err)
		}
		var opts []framework.CycleOption
		if withFlag {
			opts = append(opts, framework.WithStateData("test/flag", flag{}))
		}
		res := f.RunCycle(context.Background(), framework.NewSnapshot(testTime, nodes(3)), unit("192.0.2.10", framework.ModeL2), opts...)
		if res.Err != nil {
			t.Fatal(res.Err)
		}
		if bind.sawFlag != withFlag {
			t.Errorf("with the option %v: Bind saw the caller's data: %v", withFlag, bind.sawFlag)
		}
		if want := res.Diagnosis().Summary; bind.summary != want || want == "" {
			t.Errorf("Bind's summary %q, want the cycle's %q", bind.summary, want)
		}
		res.Release()
	}
}
