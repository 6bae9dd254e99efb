package sim

import (
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"
	"time"
)

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
