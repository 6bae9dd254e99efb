package framework_test

import (
	"context"
	"fmt"
	"net/netip"
	"runtime"
	"testing"

	"github.com/herald-lb/herald/framework"
	"github.com/herald-lb/herald/framework/examples/labelscore"
	"github.com/herald-lb/herald/framework/examples/nodename"
)

// Benchmark plugins: cheap, allocation-free, and rejecting a share of the nodes so every
// stage does real work.

type readyFilter struct{}

var notReadyStatus = framework.NewStatus(framework.Unschedulable, "node(s) not ready")

func (readyFilter) Name() string { return "BenchReady" }
func (readyFilter) Filter(_ context.Context, _ *framework.CycleState, _ *framework.Unit, n *framework.NodeInfo) *framework.Status {
	if n.Ready != framework.ConditionTrue {
		return notReadyStatus
	}
	return nil
}

type zoneFilter struct{}

var noZoneStatus = framework.NewStatus(framework.UnschedulableAndUnresolvable, "node(s) have no zone")

func (zoneFilter) Name() string { return "BenchZone" }
func (zoneFilter) Filter(_ context.Context, _ *framework.CycleState, _ *framework.Unit, n *framework.NodeInfo) *framework.Status {
	if _, ok := n.Labels["zone"]; !ok {
		return noZoneStatus
	}
	return nil
}

// spreadScore scores by the tie-break hash, as a rendezvous-hash spread plugin would.
type spreadScore struct{}

func (spreadScore) Name() string { return "BenchSpread" }
func (spreadScore) Score(_ context.Context, _ *framework.CycleState, u *framework.Unit, n *framework.NodeInfo) (int64, *framework.Status) {
	return int64(framework.TieBreakHash(n.Name, u.Pool) % 101), nil
}
func (spreadScore) ScoreExtensions() framework.ScoreExtensions { return nil }

type stickyScore struct{}

func (stickyScore) Name() string { return "BenchSticky" }
func (stickyScore) Score(_ context.Context, _ *framework.CycleState, u *framework.Unit, n *framework.NodeInfo) (int64, *framework.Status) {
	for _, a := range u.Announcers {
		if a == n.Name {
			return 100, nil
		}
	}
	return 0, nil
}
func (stickyScore) ScoreExtensions() framework.ScoreExtensions { return nil }

const (
	benchUnits = 10000
	benchNodes = 1000
)

func benchFramework(b *testing.B) *framework.Framework {
	reg := registryOf(readyFilter{}, zoneFilter{}, spreadScore{}, stickyScore{})
	if err := reg.Register(nodename.Name, nodename.Registration()); err != nil {
		b.Fatal(err)
	}
	if err := reg.Register(labelscore.Name, labelscore.Registration()); err != nil {
		b.Fatal(err)
	}
	spec := framework.ProfileSpec{
		Name:   "bench",
		Filter: []string{"BenchReady", "BenchZone", nodename.Name},
		Score: []framework.WeightedPlugin{
			{Name: labelscore.Name, Weight: 2}, {Name: "BenchSpread", Weight: 1}, {Name: "BenchSticky", Weight: 5},
		},
		Args: map[string]framework.PluginArgs{nodename.Name: &nodename.NodeNameArgs{Excluded: []string{"node-0007", "node-0500"}}},
	}
	f, err := framework.NewFramework(reg, spec, nil)
	if err != nil {
		b.Fatal(err)
	}
	return f
}

func benchCluster() (*framework.Snapshot, []*framework.Unit) {
	ns := make([]*framework.NodeInfo, benchNodes)
	for i := range ns {
		ns[i] = &framework.NodeInfo{
			Name:   fmt.Sprintf("node-%04d", i),
			Labels: map[string]string{"herald.dev/score": fmt.Sprint(i % 10)},
			Ready:  framework.ConditionTrue,
		}
		if i%10 != 9 {
			ns[i].Labels["zone"] = fmt.Sprint(i % 3)
		}
		if i%20 == 3 {
			ns[i].Ready = framework.ConditionFalse
		}
	}
	units := make([]*framework.Unit, benchUnits)
	for i := range units {
		mode := framework.ModeL2
		if i%10 == 0 {
			mode = framework.ModeBGP
		}
		ip := netip.AddrFrom4([4]byte{198, 51, 100 + byte(i/256%2), byte(i % 256)})
		if i >= 512 {
			ip = netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 14: byte(i >> 8), 15: byte(i)})
		}
		units[i] = &framework.Unit{IP: ip, Mode: mode, Pool: fmt.Sprintf("pool-%d", i%7), Announcers: []string{fmt.Sprintf("node-%04d", i%benchNodes)}}
	}
	return framework.NewSnapshot(testTime, ns), units
}

// BenchmarkFullPass runs one scheduling cycle for each of 10,000 units over 1,000 nodes with
// three filters and three scores: one op is a full pass (10 million node evaluations).
func BenchmarkFullPass(b *testing.B) {
	framework.RegisterMetrics()
	f := benchFramework(b)
	snap, units := benchCluster()
	ctx := context.Background()
	var before, after runtime.MemStats
	b.ReportAllocs()
	b.ResetTimer()
	runtime.ReadMemStats(&before)
	for b.Loop() {
		for _, u := range units {
			if res := f.Schedule(ctx, snap, u); res.Err != nil || len(res.Selected) == 0 {
				b.Fatalf("unit %s: %v %v", u.Key(), res.Err, res.Selected)
			}
		}
	}
	runtime.ReadMemStats(&after)
	evals := float64(b.N) * benchUnits * benchNodes
	b.ReportMetric(float64(after.Mallocs-before.Mallocs)/evals, "allocs/node-eval")
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/evals, "ns/node-eval")
}
