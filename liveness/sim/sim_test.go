package sim

import (
	"flag"
	"fmt"
	"testing"
	"time"
)

var (
	seed  = flag.Uint64("sim.seed", 0, "replay this seed only (with -sim.skew for the skew set)")
	seeds = flag.Int("sim.seeds", 100, "how many seeds TestSimulation runs (TestSimulationClockSkew: two fifths of it)")
	bench = flag.Int("sim.bench", 10000, "how many seeds of each set BenchmarkSimulation runs")
	skew  = flag.Bool("sim.skew", false, "with -sim.seed: replay a seed of the clock-skew set")
	stall = flag.Bool("sim.stall", false, "with -sim.seed: replay a seed of the stall set")
	outg  = flag.Bool("sim.outage", false, "with -sim.seed: replay a seed of the outage set")
	fast  = flag.Bool("sim.fastpath", false, "with -sim.seed: replay a seed of the fast-path set")
	hold  = flag.Bool("sim.hold", false, "with -sim.seed: replay a seed of the fast path's hold set")
)

// skewConfig is DefaultConfig with every node's clock up to a minute off.
func skewConfig() Config {
	cfg := DefaultConfig()
	cfg.MaxSkew = time.Minute
	return cfg
}

// runSeeds runs seeds first..first+n-1 and fails the test with a replayable trace for each
// seed that broke an invariant (at most a few, so a systematic bug does not flood the log).
func runSeeds(t *testing.T, name string, cfg Config, first uint64, n int, replay string) {
	t.Helper()
	results, err := RunSeeds(cfg, first, n)
	if err != nil {
		t.Fatal(err)
	}
	failed := 0
	var worstGap, worstDup time.Duration
	for _, res := range results {
		worstGap, worstDup = max(worstGap, res.WorstGap), max(worstDup, res.WorstDup)
		if !res.Failed() {
			continue
		}
		failed++
		if failed <= 3 {
			t.Errorf("%s: %s  replay: go test ./liveness/sim -run '%s' -sim.seed %d%s -v", name, res.Report(), t.Name(), res.Plan.Seed, replay)
		}
	}
	if failed > 0 {
		t.Errorf("%s: %d of %d seeds broke an invariant", name, failed, n)
	}
	t.Logf("%s: %d seeds, worst unanswered window %s, worst two-answer window %s", name, n, worstGap, worstDup)
}

// TestSimulation runs a few hundred seeds of crashes, restarts, API partitions of one node and
// write latency on 20 nodes.
func TestSimulation(t *testing.T) {
	if *seed != 0 && !*skew && !*stall && !*outg && !*fast {
		runSeeds(t, "replay", DefaultConfig(), *seed, 1, "")
		return
	}
	if *seed != 0 {
		return
	}
	n := *seeds
	if testing.Short() {
		n = 20
	}
	runSeeds(t, "faults", DefaultConfig(), 1, n, "")
}

// TestSimulationClockSkew runs seeds where every node's clock is off by up to a minute: skew
// must change no decision.
func TestSimulationClockSkew(t *testing.T) {
	if *seed != 0 && *skew {
		runSeeds(t, "replay", skewConfig(), *seed, 1, " -sim.skew")
		return
	}
	if *seed != 0 {
		return
	}
	n := *seeds * 2 / 5
	if testing.Short() {
		n = 10
	}
	runSeeds(t, "skew", skewConfig(), 1, n, " -sim.skew")
}

// TestSimulationFastPath runs the faults set with the fast path on and cuts of one node's
// fast path among the faults: after a crash or a cut an IP is answered again within the fast
// path's budget (0.9 s and two steps), and a cut node's IPs are answered by one node.
func TestSimulationFastPath(t *testing.T) {
	if *seed != 0 && *fast {
		runSeeds(t, "replay", FastPathConfig(), *seed, 1, " -sim.fastpath")
		return
	}
	if *seed != 0 {
		return
	}
	n := *seeds
	if testing.Short() {
		n = 20
	}
	runSeeds(t, "fastpath", FastPathConfig(), 1, n, " -sim.fastpath")
}

// TestSimulationHold runs seeds where, with the fast path on, one node at a time loses the
// API server or writes its Lease slowly (up to 5 s): the fast path holds it alive, and no IP
// may move.
func TestSimulationHold(t *testing.T) { runStillSet(t, "hold", HoldConfig(), *hold) }

// TestSimulationStall runs seeds where one node's Lease watch stalls for 30 to 60 s while its
// writes succeed: no IP may move.
func TestSimulationStall(t *testing.T) { runStillSet(t, "stall", StallConfig(), *stall) }

// TestSimulationOutage runs seeds where the API server is down for every node at once and one
// node's writes are slow when it comes back: no IP may move.
func TestSimulationOutage(t *testing.T) { runStillSet(t, "outage", OutageConfig(), *outg) }

// runStillSet runs a fifth of -sim.seeds seeds of a long set (4 with -short), or replays
// -sim.seed when replay (the set's -sim.<name> flag) is set.
func runStillSet(t *testing.T, name string, cfg Config, replay bool) {
	flagArg := " -sim." + name
	if *seed != 0 {
		if replay {
			runSeeds(t, "replay", cfg, *seed, 1, flagArg)
		}
		return
	}
	n := *seeds / 5
	if testing.Short() {
		n = 4
	}
	runSeeds(t, name, cfg, 1, n, flagArg)
}

// The same seed gives the same run: the simulation is deterministic.
func TestDeterministic(t *testing.T) {
	cfg := DefaultConfig()
	a, err := Run(cfg, 42)
	if err != nil {
		t.Fatal(err)
	}
	b, err := Run(cfg, 42)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(a) != fmt.Sprint(b) {
		t.Fatalf("seed 42 ran twice differently:\n%v\n%v", a, b)
	}
}

// BenchmarkSimulation runs -sim.bench seeds of each set (10,000 by default: `make bench
// BENCH=Simulation PKG=./liveness/sim/`) and reports the worst windows over all of them: how
// long an IP went unanswered (worst-gap-ms) and how long two nodes answered one IP
// (worst-dup-ms), with the seeds that had them, and how many seeds broke an invariant.
func BenchmarkSimulation(b *testing.B) {
	for _, set := range []struct {
		name string
		cfg  Config
	}{{"faults", DefaultConfig()}, {"skew", skewConfig()}, {"stall", StallConfig()}, {"outage", OutageConfig()}, {"fastpath", FastPathConfig()}, {"hold", HoldConfig()}} {
		b.Run(set.name, func(b *testing.B) {
			for range b.N {
				results, err := RunSeeds(set.cfg, 1, *bench)
				if err != nil {
					b.Fatal(err)
				}
				var gap, dup *Result
				failed := 0
				for _, r := range results {
					if gap == nil || r.WorstGap > gap.WorstGap {
						gap = r
					}
					if dup == nil || r.WorstDup > dup.WorstDup {
						dup = r
					}
					if r.Failed() {
						failed++
					}
				}
				b.ReportMetric(float64(gap.WorstGap.Milliseconds()), "worst-gap-ms")
				b.ReportMetric(float64(dup.WorstDup.Milliseconds()), "worst-dup-ms")
				b.ReportMetric(float64(failed), "failed-seeds")
				b.Logf("%s: %d seeds; worst unanswered window %s (%s from %s, seed %d); worst two-answer window %s (%s until %s, seed %d); %d broke an invariant",
					set.name, *bench, gap.WorstGap, gap.WorstGapIP, gap.WorstGapStart, gap.Plan.Seed, dup.WorstDup, dup.WorstDupIP, dup.WorstDupEnd, dup.Plan.Seed, failed)
			}
		})
	}
}
