package framework_test

import (
	"context"
	"fmt"
	"net/netip"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/herald-lb/herald/framework"
	"github.com/herald-lb/herald/framework/examples/labelscore"
	"github.com/herald-lb/herald/framework/examples/nodename"
	"github.com/herald-lb/herald/framework/frameworktest"
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
	for _, a := range u.AnnouncingNodes {
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

func benchFramework(b *testing.B, parallelism int) *framework.Framework {
	reg := frameworktest.Registry(readyFilter{}, zoneFilter{}, spreadScore{}, stickyScore{})
	if err := reg.Register(nodename.Name, framework.Registration{Factory: nodename.New, NewArgs: nodename.NewArgs}); err != nil {
		b.Fatal(err)
	}
	if err := reg.Register(labelscore.Name, framework.Registration{Factory: labelscore.New, NewArgs: labelscore.NewArgs}); err != nil {
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
	f, err := framework.NewFramework(reg, spec, nil, framework.WithParallelism(parallelism))
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
		units[i] = &framework.Unit{IP: ip, Mode: mode, Pool: fmt.Sprintf("pool-%d", i%7), AnnouncingNodes: []string{fmt.Sprintf("node-%04d", i%benchNodes)}}
	}
	return framework.NewSnapshot(testTime, ns), units
}

// BenchmarkFullPass runs one scheduling cycle for each of 10,000 units over 1,000 nodes with
// three filters and three scores: one op is a full pass (10 million node evaluations).
//
//   - nodes-parallel: units one after another, each cycle spreading its nodes over GOMAXPROCS
//     workers (a speaker reacting to one change).
//   - units-parallel: GOMAXPROCS queue workers each running whole cycles with parallelism 1
//     (a speaker's resync of every unit).
func BenchmarkFullPass(b *testing.B) {
	framework.RegisterMetrics()
	snap, units := benchCluster()
	ctx := context.Background()
	procs := runtime.GOMAXPROCS(0)
	run := func(b *testing.B, f *framework.Framework, queueWorkers int) {
		var before, after runtime.MemStats
		b.ReportAllocs()
		cpuBefore := cpuTime(b)
		runtime.ReadMemStats(&before)
		for b.Loop() {
			var next atomic.Int64
			var wg sync.WaitGroup
			var failed atomic.Pointer[string]
			for w := 0; w < queueWorkers; w++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := int(next.Add(1)) - 1; i < len(units); i = int(next.Add(1)) - 1 {
						res := f.Schedule(ctx, snap, units[i])
						if res.Err != nil || len(res.Selected) == 0 {
							msg := fmt.Sprintf("unit %s: %v %v", units[i].Key(), res.Err, res.Selected)
							failed.Store(&msg)
						}
						res.Release()
					}
				}()
			}
			wg.Wait()
			if msg := failed.Load(); msg != nil {
				b.Fatal(*msg)
			}
		}
		runtime.ReadMemStats(&after)
		evals := float64(b.N) * benchUnits * benchNodes
		b.ReportMetric(float64(after.Mallocs-before.Mallocs)/evals, "allocs/node-eval")
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/evals, "ns/node-eval")
		// CPU time is the figure that survives a machine shared with other work: wall time
		// per pass is at best CPU time divided by the cores available.
		b.ReportMetric(float64(cpuTime(b)-cpuBefore)/float64(b.N)/1e9, "cpu-s/pass")
	}
	b.Run("nodes-parallel", func(b *testing.B) { run(b, benchFramework(b, procs), 1) })
	b.Run("units-parallel", func(b *testing.B) { run(b, benchFramework(b, 1), procs) })
}

// cpuTime is the process's user+system CPU time in nanoseconds.
func cpuTime(b *testing.B) int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}
