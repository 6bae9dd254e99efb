package sim

import (
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"net/netip"
	"runtime"
	"slices"
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

// checker keeps, per IP, how long it has had no answer and how long two answers, and checks
// the invariants after every step:
//
//	(a) an IP with a healthy candidate (a running node outside any partition or stall window,
//	    and past the grace after one) is unanswered no longer than the failover budget: the
//	    lease duration plus the slowest watch plus two steps; with the fast path, after a
//	    crash or a cut, its detection time plus two steps (see budgetFrom);
//	(b) two nodes answer one IP only while one of them is partitioned or stalled, or within
//	    the grace after that ended, in the first fast budget of a cut or the grace after it
//	    (never for the rest of a cut: its node must withdraw), or for at most a
//	    make-before-break hand-over (the slowest Lease write plus the slowest watch plus two
//	    steps);
//	(c) at the end every IP has exactly one answer.
type checker struct {
	w              *world
	res            *Result
	gapSince       map[netip.Addr]time.Duration
	dupSince       map[netip.Addr]time.Duration
	dupReported    map[netip.Addr]bool
	budget, handov time.Duration
	grace          time.Duration
	// fastBudget is the failover budget after a crash or a cut with the fast path on (zero
	// without it), cutGrace how long after a cut ends its node may still answer with another.
	fastBudget, cutGrace time.Duration
	// still is, with Config.Still, who answered each IP when the first fault began.
	still map[netip.Addr][]int
}

func newChecker(w *world) *checker {
	cfg := w.cfg
	return &checker{w: w, res: &Result{Plan: w.plan},
		gapSince: map[netip.Addr]time.Duration{}, dupSince: map[netip.Addr]time.Duration{},
		dupReported: map[netip.Addr]bool{},
		budget:      cfg.LeaseDuration + cfg.WatchDelay + 2*cfg.Step,
		handov:      cfg.MaxLatency + cfg.WatchDelay + 2*cfg.Step,
		// After a partition or stall ends: a renewal that hung runs out (a lease duration),
		// the next one goes through, the others' watches deliver it, and a frozen node's
		// grace (two lease durations) passes.
		grace: 3*cfg.LeaseDuration + cfg.RenewInterval + cfg.MaxLatency + cfg.WatchDelay + 2*cfg.Step,
		// After a cut ends the fast paths find each other again (FastJoin), then the node is
		// on the larger side and claims back what it wins while the others let go.
		cutGrace:   cfg.FastJoin + cfg.FastDetect + 2*cfg.Step,
		fastBudget: fastBudget(cfg),
	}
}

func fastBudget(cfg Config) time.Duration {
	if cfg.FastDetect == 0 {
		return 0
	}
	return cfg.FastDetect + 2*cfg.Step
}

// troubled reports whether the node is in a partition, stall or cut, or within the grace
// after one.
func (c *checker) troubled(node int) bool { return c.trouble(node, true) }

// excused reports whether the node may answer an IP with another now: as troubled, but of a
// cut only its first fastBudget (the others find it gone, it finds itself on the smaller
// side, in their own time) and the grace after it: in between, the cut node answers nothing.
func (c *checker) excused(node int) bool { return c.trouble(node, false) }

func (c *checker) trouble(node int, wholeCut bool) bool {
	t := c.w.t
	for _, f := range c.w.plan.Faults {
		if (f.Kind == Partition || f.Kind == Stall) && f.Node == node && t >= f.At && t < f.end()+c.grace {
			return true
		}
		if f.Kind == Outage && t >= f.At && t < f.end()+c.grace {
			return true
		}
		if f.Kind == Cut && f.Node == node && (t >= f.At && t < f.At+c.fastBudget || t >= f.end() && t < f.end()+c.cutGrace ||
			wholeCut && t >= f.At && t < f.end()) {
			return true
		}
	}
	return false
}

// healthy reports whether the node is a candidate every speaker should see alive: running
// for a lease duration at least, and not troubled.
func (c *checker) healthy(node int) bool {
	s := c.w.speakers[node]
	if !s.up || c.troubled(node) {
		return false
	}
	for _, f := range c.w.plan.Faults {
		if f.Kind == Crash && f.Node == node && f.Dur != 0 && c.w.t >= f.end() && c.w.t < f.end()+c.grace {
			return false
		}
	}
	return true
}

// lastFailure is when the latest crash, partition or stall began (0: none yet).
func (c *checker) lastFailure() time.Duration {
	var last time.Duration
	for _, f := range c.w.plan.Faults {
		if f.Kind != Latency && f.At <= c.w.t {
			last = max(last, f.At)
		}
	}
	return last
}

// budgetFrom is the failover budget for a gap that counts from from: the fast path's when it
// runs and every failure that began in the lease budget before from, or since, was a crash or
// a cut (the fast path finds those); the lease's otherwise.
func (c *checker) budgetFrom(from time.Duration) time.Duration {
	if c.fastBudget == 0 {
		return c.budget
	}
	for _, f := range c.w.plan.Faults {
		if f.Kind != Crash && f.Kind != Cut && f.At <= c.w.t && f.end()+c.budget > from-c.budget {
			return c.budget
		}
	}
	return c.fastBudget
}

func (c *checker) answerers(ip netip.Addr) []int {
	var out []int
	for i, s := range c.w.speakers {
		if s.up && s.announced[ip] {
			out = append(out, i)
		}
	}
	return out
}

func (c *checker) check() {
	anyHealthy := false
	for i := range c.w.speakers {
		if c.healthy(i) {
			anyHealthy = true
			break
		}
	}
	for i := range c.w.cfg.IPs {
		ip := serviceIP(i)
		ans := c.answerers(ip)
		c.checkGap(ip, len(ans) == 0 && anyHealthy)
		c.checkDup(ip, ans)
	}
	c.checkStill()
}

// checkStill, with Config.Still, requires every IP to keep, from when the first fault begins
// to the end, exactly the one answer it had then: (d) a stalled watch withdraws nothing, and
// slow writes move nothing.
func (c *checker) checkStill() {
	if !c.w.cfg.Still || len(c.w.plan.Faults) == 0 || c.w.t < c.w.plan.Faults[0].At {
		return
	}
	if c.still == nil {
		c.still = map[netip.Addr][]int{}
		for i := range c.w.cfg.IPs {
			ip := serviceIP(i)
			ans := c.answerers(ip)
			c.still[ip] = ans
			if len(ans) != 1 {
				c.violate("(d) %s answered by %s when the first fault began, want exactly one", ip, names(ans))
			}
		}
		return
	}
	for i := range c.w.cfg.IPs {
		ip := serviceIP(i)
		if ans := c.answerers(ip); !slices.Equal(ans, c.still[ip]) {
			c.violate("(d) %s answered by %s, not by %s as when the first fault began: a stall or slow writes moved it; %s", ip, names(ans), names(c.still[ip]), c.choices(ip))
			c.still[ip] = ans // once per change
		}
	}
}

func (c *checker) checkGap(ip netip.Addr, gap bool) {
	t := c.w.t
	since, open := c.gapSince[ip]
	switch {
	case gap && !open:
		c.gapSince[ip] = t
	case gap:
		if d := t - since; d > c.res.WorstGap {
			c.res.WorstGap, c.res.WorstGapIP, c.res.WorstGapStart = d, ip, since
		}
		// The budget runs from the latest failure: a node that failed meanwhile may be the
		// next choice for the IP until its own heartbeat lapses (a cascade of failures).
		from := max(since, c.lastFailure())
		if budget := c.budgetFrom(from); t-from == budget+c.w.cfg.Step {
			c.violate("(a) %s unanswered since %s, longer than the failover budget %s after the last failure (at %s), while a healthy node could answer; %s", ip, since, budget, from, c.choices(ip))
		}
	default:
		delete(c.gapSince, ip)
	}
}

func (c *checker) checkDup(ip netip.Addr, ans []int) {
	t := c.w.t
	since, open := c.dupSince[ip]
	if len(ans) < 2 {
		delete(c.dupSince, ip)
		delete(c.dupReported, ip)
		return
	}
	if !open {
		c.dupSince[ip], since = t, t
	}
	if d := t - since; d > c.res.WorstDup {
		c.res.WorstDup, c.res.WorstDupIP, c.res.WorstDupEnd = d, ip, t
	}
	for _, n := range ans {
		if c.excused(n) {
			return // excused: one of them is cut off, or just back
		}
	}
	if t-since > c.handov && !c.dupReported[ip] {
		c.violate("(b) %s answered by %s since %s, longer than a hand-over (%s), with none of them partitioned, stalled or just cut", ip, names(ans), since, c.handov)
		c.dupReported[ip] = true // once per window
	}
}

// choices says whom the running speakers chose for ip in their last pass, and the state of
// each chosen node, for a trace.
func (c *checker) choices(ip netip.Addr) string {
	votes := map[string][]string{}
	for _, s := range c.w.speakers {
		if s.up {
			w := s.winner[ip]
			if w == "" {
				w = "nobody"
			}
			votes[w] = append(votes[w], s.name)
		}
	}
	var parts []string
	for _, w := range slices.Sorted(maps.Keys(votes)) {
		state := ""
		for _, s := range c.w.speakers {
			if s.name == w {
				switch {
				case !s.up:
					state = " (down)"
				case s.frozen:
					state = " (frozen: " + s.why + ")"
				}
			}
		}
		parts = append(parts, fmt.Sprintf("%d chose %s%s", len(votes[w]), w, state))
	}
	return strings.Join(parts, ", ")
}

func (c *checker) final() {
	for i := range c.w.cfg.IPs {
		ip := serviceIP(i)
		if ans := c.answerers(ip); len(ans) != 1 {
			c.violate("(c) %s answered by %d nodes at the end (%s), want exactly one", ip, len(ans), names(ans))
		}
	}
}

func (c *checker) violate(format string, args ...any) {
	const maxViolations = 20
	if len(c.res.Violations) < maxViolations {
		c.res.Violations = append(c.res.Violations, fmt.Sprintf("at %s: ", c.w.t)+fmt.Sprintf(format, args...))
	}
}

func names(idx []int) string {
	var out []string
	for _, i := range idx {
		out = append(out, nodeName(i))
	}
	return "[" + strings.Join(out, " ") + "]"
}
