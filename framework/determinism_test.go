package framework_test

import (
	"context"
	"fmt"
	"net/netip"
	"reflect"
	"testing"
	"time"

	"github.com/herald-lb/herald/framework"
	"github.com/herald-lb/herald/framework/examples/labelscore"
	"github.com/herald-lb/herald/framework/examples/nodename"
	"github.com/herald-lb/herald/framework/frameworktest"
)

// buildCluster builds a snapshot and units from scratch; calling it twice gives equal but
// independent values (no shared pointers), as two speakers would build them.
func buildCluster(n int) (*framework.Snapshot, []*framework.Unit) {
	ns := make([]*framework.NodeInfo, n)
	for i := range ns {
		ns[i] = &framework.NodeInfo{
			Name:   fmt.Sprintf("node-%04d", (i*7919)%n), // out of order on purpose
			Labels: map[string]string{"herald.dev/score": fmt.Sprint((i * 31) % 17), "zone": fmt.Sprint(i % 3)},
			Ready:  framework.ConditionTrue,
			Speaker: &framework.SpeakerInfo{
				RenewTime: time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC), LeaseDuration: 15 * time.Second,
			},
		}
		if i%5 == 0 {
			ns[i].Ready = framework.ConditionFalse
		}
	}
	var units []*framework.Unit
	for i := 1; i <= 40; i++ {
		mode := framework.ModeL2
		if i%4 == 0 {
			mode = framework.ModeBGP
		}
		units = append(units, &framework.Unit{IP: netip.MustParseAddr(fmt.Sprintf("198.51.100.%d", i)), Mode: mode})
	}
	return framework.NewSnapshot(testTime, ns), units
}

func deterministicFramework(t testing.TB, parallelism int) *framework.Framework {
	t.Helper()
	reg := framework.Registry{}
	for name, r := range map[string]framework.Registration{nodename.Name: framework.Registration{Factory: nodename.New, NewArgs: nodename.NewArgs}, labelscore.Name: framework.Registration{Factory: labelscore.New, NewArgs: labelscore.NewArgs}} {
		if err := reg.Register(name, r); err != nil {
			t.Fatal(err)
		}
	}
	ready := &frameworktest.Filter{PluginName: "Ready", Fn: func(n *framework.NodeInfo) *framework.Status {
		if n.Ready != framework.ConditionTrue {
			return framework.NewStatus(framework.Unschedulable, "node(s) not ready")
		}
		return nil
	}}
	zone := &frameworktest.Score{PluginName: "Zone", Fn: func(n *framework.NodeInfo) (int64, *framework.Status) {
		if n.Labels["zone"] == "1" {
			return 100, nil
		}
		return 0, nil
	}}
	if err := reg.Merge(frameworktest.Registry(ready, zone)); err != nil {
		t.Fatal(err)
	}
	spec := framework.ProfileSpec{
		Name:   "default",
		Filter: []string{"Ready", nodename.Name},
		Score:  []framework.WeightedPlugin{{Name: labelscore.Name, Weight: 2}, {Name: "Zone", Weight: 1}},
		Args: map[string]framework.PluginArgs{
			nodename.Name: &nodename.NodeNameArgs{Excluded: []string{"node-0003", "node-0100"}},
		},
	}
	f, err := framework.NewFramework(reg, spec, nil, framework.WithParallelism(parallelism))
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func TestEqualSnapshotsGiveEqualResults(t *testing.T) {
	for _, n := range []int{1, 13, 1500} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			snapA, unitsA := buildCluster(n)
			snapB, unitsB := buildCluster(n)
			fa := deterministicFramework(t, 1)
			fb := deterministicFramework(t, 8)
			for i := range unitsA {
				// Run each side twice: the second run of A also checks that a framework
				// carries nothing over between cycles.
				a := fa.Schedule(context.Background(), snapA, unitsA[i])
				fa.Schedule(context.Background(), snapA, unitsA[(i+1)%len(unitsA)])
				a2 := fa.Schedule(context.Background(), snapA, unitsA[i])
				b := fb.Schedule(context.Background(), snapB, unitsB[i])
				if a.Err != nil || b.Err != nil {
					t.Fatalf("errors: %v / %v", a.Err, b.Err)
				}
				if !reflect.DeepEqual(a.Selected, b.Selected) || !reflect.DeepEqual(a.Selected, a2.Selected) {
					t.Fatalf("unit %s: Selected %v / %v / %v", unitsA[i].Key(), a.Selected, a2.Selected, b.Selected)
				}
				da, db := a.Diagnosis(), b.Diagnosis()
				if !reflect.DeepEqual(da, db) || !reflect.DeepEqual(da, a2.Diagnosis()) {
					t.Fatalf("unit %s: diagnoses differ:\n%s\n%s", unitsA[i].Key(), da.Summary, db.Summary)
				}
				if n > 1 && len(da.Selected) == 0 {
					t.Fatalf("unit %s selected nothing: %s", unitsA[i].Key(), da.Summary)
				}
			}
		})
	}
}

// Cycles of one framework may run concurrently (a speaker's queue workers) and reuse each
// other's released buffers; neither may change any answer.
func TestConcurrentCyclesWithRelease(t *testing.T) {
	snap, units := buildCluster(300)
	f := deterministicFramework(t, 2)
	want := make([]*framework.Diagnosis, len(units))
	for i, u := range units {
		res := f.Schedule(context.Background(), snap, u)
		want[i] = res.Diagnosis()
		res.Release()
		if res.Diagnosis() != nil {
			t.Fatal("Diagnosis after Release is not nil")
		}
	}
	errs := make(chan error, 4)
	for w := 0; w < 4; w++ {
		go func() {
			for round := 0; round < 5; round++ {
				for i, u := range units {
					res := f.Schedule(context.Background(), snap, u)
					if d := res.Diagnosis(); !reflect.DeepEqual(d, want[i]) {
						errs <- fmt.Errorf("unit %s: %s, want %s", u.Key(), d.Summary, want[i].Summary)
						return
					}
					res.Release()
				}
			}
			errs <- nil
		}()
	}
	for w := 0; w < 4; w++ {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
}
