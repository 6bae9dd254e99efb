package sim

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"

	"github.com/herald-lb/herald/liveness"
)

// world is one run: the true time, the API server, the speakers, the faults.
type world struct {
	cfg      Config
	plan     Plan
	epoch    time.Time
	t        time.Duration // true time since the start
	api      *apiServer
	nodes    []*corev1.Node
	services []*corev1.Service
	slices   []*discoveryv1.EndpointSlice
	speakers []*speaker
	// fast is each speaker's fast path to each other (by observer, then target), and rng
	// draws its detection delays.
	fast [][]fastLink
	rng  *rand.Rand
}

// fastLink is what one speaker's fast path says of another: up is the truth it is moving
// to, due when it will say so (pending until then).
type fastLink struct {
	up, pending bool
	due         time.Duration
}

// Result is what a run measured and every invariant it broke.
type Result struct {
	Plan Plan
	// WorstGap is the longest time an IP had no answer while a healthy candidate existed;
	// WorstDup the longest time two nodes or more answered one IP (excused or not).
	WorstGap, WorstDup         time.Duration
	WorstGapIP, WorstDupIP     netip.Addr
	WorstGapStart, WorstDupEnd time.Duration
	Violations                 []string
}

// Failed reports whether an invariant broke.
func (r *Result) Failed() bool { return len(r.Violations) > 0 }

// Report is the run's trace for a failure: the plan and the broken invariants.
func (r *Result) Report() string {
	var b strings.Builder
	b.WriteString(r.Plan.String())
	for _, v := range r.Violations {
		fmt.Fprintf(&b, "  violation: %s\n", v)
	}
	return b.String()
}

// RunSeeds simulates seeds first..first+n-1 on every CPU and returns their results in seed
// order. Each run is deterministic on its own; running them side by side changes nothing.
func RunSeeds(cfg Config, first uint64, n int) ([]*Result, error) {
	out := make([]*Result, n)
	errs := make([]error, n)
	var next atomic.Int64
	var wg sync.WaitGroup
	for range runtime.GOMAXPROCS(0) {
		wg.Go(func() {
			for i := int(next.Add(1)) - 1; i < n; i = int(next.Add(1)) - 1 {
				out[i], errs[i] = Run(cfg, first+uint64(i))
			}
		})
	}
	wg.Wait()
	return out, errors.Join(errs...)
}

// Run simulates one seed.
func Run(cfg Config, seed uint64) (*Result, error) {
	return RunPlan(cfg, NewPlan(cfg, seed))
}

// RunPlan simulates one plan.
func RunPlan(cfg Config, plan Plan) (*Result, error) {
	if cfg.IPs > 250 || cfg.Nodes < 1 {
		return nil, fmt.Errorf("a simulation has 1 node or more and 250 IPs at most, not %d nodes and %d IPs", cfg.Nodes, cfg.IPs)
	}
	w := &world{cfg: cfg, plan: plan, epoch: time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC),
		api: &apiServer{leases: map[string]*coordinationv1.Lease{}, statuses: map[netip.Addr]string{}}}
	w.nodes, w.services, w.slices = staticObjects(cfg)
	// A cluster that has been running: every node renewed once just before the start, so
	// every speaker's informer lists every heartbeat (a cold start of every speaker at once
	// is another scenario).
	for i := range cfg.Nodes {
		s := &speaker{w: w, idx: i, name: nodeName(i), offset: plan.Skew[i], delay: plan.Delay[i], warm: true, procID: processID(nodeName(i), 0)}
		w.speakers = append(w.speakers, s)
		if _, err := w.api.write(0, s.heartbeat(), namespace); err != nil {
			return nil, err
		}
	}
	for i, s := range w.speakers {
		if err := s.start(); err != nil {
			return nil, err
		}
		s.renewals.Succeeded(w.epoch.Add(s.offset), w.epoch.Add(s.offset))
		s.warm = true // running before the start
		s.nextRenew = plan.Phase[i]
	}
	w.startFastPath()
	c := newChecker(w)
	for ; w.t <= plan.Horizon; w.t += cfg.Step {
		if err := w.applyFaults(); err != nil {
			return nil, err
		}
		w.stepFastPath()
		for _, s := range w.speakers {
			if err := s.step(); err != nil {
				return nil, fmt.Errorf("seed %d at %s: %s: %w", plan.Seed, w.t, s.name, err)
			}
		}
		c.check()
	}
	c.final()
	return c.res, nil
}

// applyFaults crashes and restarts speakers on schedule; the other faults are read where they
// act (partitioned, stalled, latency).
func (w *world) applyFaults() error {
	for _, f := range w.plan.Faults {
		if f.Kind != Crash {
			continue
		}
		s := w.speakers[f.Node]
		switch {
		case w.t == f.At && s.up:
			s.crash()
			for j := range w.fast {
				w.fast[f.Node][j] = fastLink{} // a new process joins afresh
			}
		case f.Dur != 0 && w.t == f.end() && !s.up:
			if err := s.start(); err != nil {
				return err
			}
		}
	}
	return nil
}

// active reports whether a fault of the kind on the node is in force now.
func (w *world) active(kind Kind, node int) (Fault, bool) {
	for _, f := range w.plan.Faults {
		if f.Kind == kind && f.Node == node && w.t >= f.At && w.t < f.end() {
			return f, true
		}
	}
	return Fault{}, false
}

func (w *world) partitioned(node int) bool {
	_, ok := w.active(Partition, node)
	return ok || w.outage()
}

// outage reports whether the API server is down for every node now.
func (w *world) outage() bool {
	for _, f := range w.plan.Faults {
		if f.Kind == Outage && w.t >= f.At && w.t < f.end() {
			return true
		}
	}
	return false
}

func (w *world) stalled(node int) bool { _, ok := w.active(Stall, node); return ok }

func (w *world) cut(node int) bool { _, ok := w.active(Cut, node); return ok }

// startFastPath gives every running speaker a fast path that reaches every other.
func (w *world) startFastPath() {
	if w.cfg.FastDetect == 0 {
		return
	}
	w.rng = rand.New(rand.NewPCG(w.plan.Seed, 0xfa57))
	for i, s := range w.speakers {
		w.fast = append(w.fast, make([]fastLink, len(w.speakers)))
		s.fast = map[string]liveness.Reach{}
		for j, o := range w.speakers {
			if i != j {
				w.fast[i][j].up = true
				s.fast[o.name] = liveness.Reach{Reachable: true, Since: s.now(), ID: o.procID}
			}
		}
	}
}

// stepFastPath moves each speaker's fast path towards the truth: a speaker reaches another
// when both run and neither is cut. A change reaches its view after a delay drawn in
// [FastDetect/3, FastDetect] (a loss) or [FastJoin/3, FastJoin] (a return); a restarted
// speaker learns of the running ones when it joins, and never hears of the others (memberlist
// tells a joining node of live members only).
func (w *world) stepFastPath() {
	if w.cfg.FastDetect == 0 {
		return
	}
	for i, s := range w.speakers {
		if !s.up {
			continue
		}
		for j, o := range w.speakers {
			if i == j {
				continue
			}
			l := &w.fast[i][j]
			if up := o.up && !w.cut(i) && !w.cut(j); up != l.up {
				within := w.cfg.FastDetect
				if up {
					within = w.cfg.FastJoin
				}
				l.up, l.pending, l.due = up, true, w.t+within/3+time.Duration(w.rng.Int64N(int64(within*2/3)+1))
			}
			if !l.pending || w.t < l.due {
				continue
			}
			l.pending = false
			if _, known := s.fast[o.name]; known || l.up {
				s.fast[o.name] = liveness.Reach{Reachable: l.up, Since: s.now(), ID: o.procID}
				s.dirty = true
			}
		}
		w.joinFailed(i, s)
	}
}

// joinFailed marks, when a restarted speaker's first joins have had their time (FastJoin),
// the nodes it could not join as unreachable (fastpath.Detector.Join).
func (w *world) joinFailed(i int, s *speaker) {
	if s.joinDue == 0 || w.t < s.joinDue {
		return
	}
	s.joinDue = 0
	for j, o := range w.speakers {
		if _, known := s.fast[o.name]; i == j || known || w.fast[i][j].up {
			continue
		}
		s.fast[o.name] = liveness.Reach{Since: s.now()}
		s.dirty = true
	}
}

// latency is how long a Lease write of the node takes now.
func (w *world) latency(node int) time.Duration {
	lat := w.cfg.Step
	if f, ok := w.active(Latency, node); ok {
		lat = max(lat, f.Latency)
	}
	for _, f := range w.plan.Faults {
		if f.Kind == APILatency && w.t >= f.At && w.t < f.end() {
			lat = max(lat, f.Latency)
		}
		if f.Kind == Outage && f.Node == node && w.t >= f.end() && w.t < f.end()+w.cfg.LeaseDuration {
			lat = max(lat, f.Latency)
		}
	}
	return lat
}
