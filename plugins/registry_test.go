package plugins_test

import (
	"context"
	"time"

	"testing"

	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/herald-lb/herald/framework"
	"github.com/herald-lb/herald/plugins"
)

func TestDefaultProfileBuilds(t *testing.T) {
	reg := plugins.NewInTreeRegistry()
	spec := plugins.DefaultProfile()
	spec.Args = map[string]framework.PluginArgs{}
	for _, name := range reg.Names() {
		if reg[name].NewArgs == nil {
			continue
		}
		a := reg[name].NewArgs()
		a.Default()
		if errs := a.Validate(field.NewPath("args")); len(errs) > 0 {
			t.Errorf("plugin %s: defaulted args invalid: %v", name, errs)
		}
		spec.Args[name] = a
	}
	if _, err := framework.NewFramework(reg, spec, nil); err != nil {
		t.Fatalf("default profile with defaulted args: %v", err)
	}
	if _, err := framework.NewFramework(reg, plugins.DefaultProfile(), nil); err != nil {
		t.Fatalf("default profile without args: %v", err)
	}
}

// TestSeed001Summary runs the default profile over the seed 001 cluster: 13 nodes, 4 of them
// NotReady and cordoned (their speakers dead too). No such node may be selected and the
// summary counts them once each as not ready.
func TestSeed001Summary(t *testing.T) {
	fw, err := framework.NewFramework(plugins.NewInTreeRegistry(), plugins.DefaultProfile(), nil)
	if err != nil {
		t.Fatal(err)
	}
	var nodes []*framework.NodeInfo
	bad := map[string]bool{}
	for i := 0; i < 13; i++ {
		n := healthyNode(i)
		if i%3 == 0 && len(bad) < 4 {
			n.Ready = framework.ConditionUnknown
			n.Unschedulable = true
			n.Speaker.RenewTime = benchTime.Add(-time.Hour)
			bad[n.Name] = true
		}
		nodes = append(nodes, n)
	}
	snap := framework.NewSnapshot(benchTime, nodes)
	for _, u := range testUnits(200) {
		res := fw.Schedule(context.Background(), snap, u)
		if res.Err != nil || len(res.Selected) != 1 || bad[res.Selected[0]] {
			t.Fatalf("unit %s: selected %v (err %v)", u.Key(), res.Selected, res.Err)
		}
		d := res.Diagnosis()
		want := "9/13 nodes can announce " + u.IP.String() + ": 4 node(s) not ready; selected " + res.Selected[0]
		if d.Summary != want {
			t.Fatalf("summary %q, want %q", d.Summary, want)
		}
	}
}
