package framework

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// Extension point names, as they appear in metrics, errors and the diagnosis.
const (
	PointPreFilter      = "PreFilter"
	PointFilter         = "Filter"
	PointScore          = "Score"
	PointNormalizeScore = "NormalizeScore"
	PointBind           = "Bind"
)

// Schedule runs PreFilter, Filter, Score, NormalizeScore and selection for the unit over the
// snapshot, without binding; herald explain uses it directly. It never returns nil.
func (f *Framework) Schedule(ctx context.Context, snapshot *Snapshot, unit *Unit) *Result {
	start := time.Now()
	res := f.schedule(ctx, snapshot, unit, nil)
	f.metrics.observeCycle(unit.Mode, res, time.Since(start))
	return res
}

// CycleOption prepares a cycle's state before its first plugin runs: how the caller of
// RunCycle passes a bind plugin what only the caller knows.
type CycleOption func(*CycleState)

// WithStateData stores data under key in the cycle's state before the cycle starts.
func WithStateData(key StateKey, data StateData) CycleOption {
	return func(s *CycleState) { s.Write(key, data) }
}

// RunCycle schedules the unit and, when the cycle succeeds, binds the selection; the speaker
// runs every unit through it. The cycle's duration metric covers scheduling, as Schedule's
// does; Bind is measured per plugin. The bind plugins read the cycle's summary lazily through
// CycleState.Summary.
func (f *Framework) RunCycle(ctx context.Context, snapshot *Snapshot, unit *Unit, opts ...CycleOption) *Result {
	start := time.Now()
	res := f.schedule(ctx, snapshot, unit, opts)
	f.metrics.observeCycle(unit.Mode, res, time.Since(start))
	if res.Err != nil {
		return res
	}
	res.state.SetSummary(func() string { return res.Diagnosis().Summary })
	st := f.Bind(ctx, res.state, unit, res.Selected)
	res.BindStatus = st
	res.rec.bind = &pluginStatus{plugin: st.Plugin(), status: st}
	if st.Code() == Error || st.IsRejected() {
		res.Err = fmt.Errorf("unit %s: bind: %w", unit.Key(), st.AsError())
		res.rec.err = res.Err
	}
	return res
}

// Bind runs the bind plugins in order; the first that does not return Skip handles the unit
// and its status (with the plugin's name) is returned. When none handles it the result is a
// Skip status.
func (f *Framework) Bind(ctx context.Context, state *CycleState, unit *Unit, selected []string) *Status {
	for i, p := range f.binds {
		st := f.callBind(ctx, i, p, state, unit, selected)
		if st.IsSkip() {
			continue
		}
		if st == nil {
			return NewStatus(Success).WithPlugin(p.Name())
		}
		// Copy before naming the plugin: a plugin may return a shared status value.
		named := *st
		return named.WithPlugin(p.Name())
	}
	return NewStatus(Skip, "no bind plugin handled the unit")
}

func (f *Framework) schedule(ctx context.Context, snapshot *Snapshot, unit *Unit, opts []CycleOption) *Result {
	nodes := snapshot.Nodes()
	rec := f.newRecord(snapshot, unit)
	state := rec.state
	for _, o := range opts {
		o(state)
	}
	res := &Result{state: state, rec: rec}
	abort := func(err error) *Result {
		rec.err = fmt.Errorf("unit %s: %w", unit.Key(), err)
		res.Err = rec.err
		return res
	}
	sample := f.metrics.sampleCycle()

	skipFilter := rec.skipFilter
	for i, p := range f.preFilters {
		st := f.callPreFilter(ctx, i, p, state, unit, sample)
		switch code := st.Code(); {
		case code == Success:
		case code == Skip:
			rec.preFilter = append(rec.preFilter, pluginStatus{p.Name(), st})
			f.markSkipped(p.Name(), skipFilter, rec.skipScore)
		case st.IsRejected():
			ps := pluginStatus{p.Name(), st}
			rec.preFilter = append(rec.preFilter, ps)
			rec.rejected = &ps
			return res
		default:
			return abort(pluginError(p.Name(), PointPreFilter, "", st))
		}
	}
	if err := ctx.Err(); err != nil {
		return abort(fmt.Errorf("cycle cancelled: %w", err))
	}

	if err := f.runNodes(ctx, state, unit, rec, skipFilter, sample); err != nil {
		return abort(err)
	}
	rec.selected = selectNodes(rec.selected[:0], unit, nodes, rec.feasible, rec.totals)
	if len(rec.selected) > 0 {
		res.Selected = make([]string, len(rec.selected))
		for i, j := range rec.selected {
			res.Selected[i] = nodes[rec.feasible[j]].Name
		}
	}
	return res
}

// markSkipped turns a PreFilter's Skip into skipping the same plugin's Filter and Score.
func (f *Framework) markSkipped(name string, skipFilter, skipScore []bool) {
	for i, p := range f.filters {
		if p.Name() == name {
			skipFilter[i] = true
		}
	}
	for i, s := range f.scores {
		if s.plugin.Name() == name {
			skipScore[i] = true
		}
	}
}

var errCancelled = errors.New("cycle cancelled")

// scoreListPool recycles the NodeScoreList buffers handed to NormalizeScore; the normalized
// values are copied out, so the buffers never escape a cycle.
var scoreListPool = sync.Pool{New: func() any { return new([]NodeScore) }}

// runNodes evaluates every node: its filters in order until one rejects it, then, when it is
// feasible, every score plugin. Filtering and scoring in one pass over a node is equivalent to
// two stages because filters and scores of one node depend on nothing about other nodes (only
// NormalizeScore sees all nodes, and it runs after), and it halves the goroutine handoffs.
func (f *Framework) runNodes(ctx context.Context, state *CycleState, unit *Unit, rec *cycleRecord, skip []bool, sample bool) error {
	nodes := rec.nodes
	n, ns := len(nodes), len(f.scores)
	rec.filterRan = true
	rec.rejectBy = resize(rec.rejectBy, n)
	rec.rejectStatus = resize(rec.rejectStatus, n)
	rec.nodeRaw = resize(rec.nodeRaw, n*ns)
	raw := rec.nodeRaw
	nf := len(f.filters)
	ws := rec.workers(f.workerCount(n), nf+ns)
	done := ctx.Done()
	forEach(ws, n, func(w *worker, i int) {
		rec.rejectBy[i] = -1
		if contextDone(done) {
			w.fail(i, fmt.Errorf("%w: %w", errCancelled, ctx.Err()))
			return
		}
		f.evalNode(ctx, w, state, unit, rec, skip, raw, i, sample)
	})
	f.metrics.addVerdicts(f.metrics.filterBase, ws)
	if err := firstError(ws); err != nil {
		return err
	}
	rec.feasible = rec.feasible[:0]
	for i, by := range rec.rejectBy {
		if by < 0 {
			rec.feasible = append(rec.feasible, int32(i))
		}
	}
	return f.normalize(ctx, state, unit, rec, raw, sample)
}

// evalNode runs the filters of node i until one rejects it, then every score. One deferred
// recover covers all the node's calls (a defer per call would cost more than most plugins);
// slot tells it which call was running.
func (f *Framework) evalNode(ctx context.Context, w *worker, state *CycleState, unit *Unit, rec *cycleRecord, skip []bool, raw []int64, i int, sample bool) {
	node := rec.nodes[i]
	nf, ns := len(f.filters), len(f.scores)
	slot := -1 // filters 0..nf-1, then scores
	defer func() {
		if r := recover(); r != nil {
			name, point := "", PointFilter
			if slot < nf {
				name = f.filterNames[slot]
			} else {
				name, point = f.scoreNames[slot-nf], PointScore
			}
			w.counts[slot*numCodes+int(Error)]++
			w.fail(i, pluginError(name, point, node.Name, panicStatus(name, point, r)))
		}
	}()
	for k, p := range f.filters {
		if skip[k] {
			continue
		}
		slot = k
		var st *Status
		if sample {
			st = f.timedFilter(ctx, w, k, p, state, unit, node)
		} else {
			st = p.Filter(ctx, state, unit, node)
		}
		code := st.Code()
		w.counts[k*numCodes+int(code)]++
		switch code {
		case Success:
			continue
		case Unschedulable, UnschedulableAndUnresolvable:
			rec.rejectBy[i] = int16(k)
			rec.rejectStatus[i] = st
		default:
			w.fail(i, pluginError(p.Name(), PointFilter, node.Name, st))
		}
		return
	}
	for k := range f.scores {
		if rec.skipScore[k] {
			continue
		}
		slot = nf + k
		p := f.scores[k].plugin
		var sc int64
		var st *Status
		if sample {
			sc, st = f.timedScore(ctx, w, k, p, state, unit, node)
		} else {
			sc, st = p.Score(ctx, state, unit, node)
		}
		code := st.Code()
		w.counts[slot*numCodes+int(code)]++
		if code != Success {
			w.fail(i, pluginError(p.Name(), PointScore, node.Name, st))
			return
		}
		raw[i*ns+k] = sc
	}
}

// normalize runs NormalizeScore per plugin over the feasible nodes' raw scores, checks the
// range, and sums the weighted scores.
func (f *Framework) normalize(ctx context.Context, state *CycleState, unit *Unit, rec *cycleRecord, raw []int64, sample bool) error {
	ns, nf := len(f.scores), len(rec.feasible)
	rec.totals = resize(rec.totals, nf)
	clear(rec.totals)
	if nf == 0 || ns == 0 {
		return nil
	}
	rec.scored = true
	rec.raw = resize(rec.raw, ns*nf)
	rec.norm = resize(rec.norm, ns*nf)
	buf := scoreListPool.Get().(*[]NodeScore)
	defer scoreListPool.Put(buf)
	if cap(*buf) < nf {
		*buf = make([]NodeScore, nf)
	}
	list := NodeScoreList((*buf)[:nf])
	nodes := rec.nodes
	for k, s := range f.scores {
		if rec.skipScore[k] {
			continue
		}
		name := s.plugin.Name()
		if s.ext == nil {
			// Without NormalizeScore the raw scores are final: no list to build.
			for j, i := range rec.feasible {
				v := raw[int(i)*ns+k]
				if v < MinNodeScore || v > MaxNodeScore {
					return fmt.Errorf("plugin %q: score %d for node %q is outside %d..%d", name, v, nodes[i].Name, MinNodeScore, MaxNodeScore)
				}
				rec.raw[k*nf+j], rec.norm[k*nf+j] = v, v
				rec.totals[j] += v * s.weight
			}
			continue
		}
		for j, i := range rec.feasible {
			v := raw[int(i)*ns+k]
			list[j] = NodeScore{Name: nodes[i].Name, Score: v}
			rec.raw[k*nf+j] = v
		}
		if st := f.callNormalize(ctx, k, state, unit, list, sample); !st.IsSuccess() {
			return pluginError(name, PointNormalizeScore, "", st)
		}
		for j := range list {
			node := nodes[rec.feasible[j]].Name
			if list[j].Name != node {
				return fmt.Errorf("plugin %q: %s reordered the scores (position %d is %q, want %q)", name, PointNormalizeScore, j, list[j].Name, node)
			}
			sc := list[j].Score
			if sc < MinNodeScore || sc > MaxNodeScore {
				return fmt.Errorf("plugin %q: score %d for node %q is outside %d..%d", name, sc, node, MinNodeScore, MaxNodeScore)
			}
			rec.norm[k*nf+j] = sc
			rec.totals[j] += sc * s.weight
		}
	}
	return nil
}

// pluginError turns a plugin's non-success status into the cycle's error.
func pluginError(plugin, point, node string, st *Status) error {
	where := fmt.Sprintf("plugin %q at %s", plugin, point)
	if node != "" {
		where += fmt.Sprintf(" for node %q", node)
	}
	switch st.Code() {
	case Error:
		if err := st.Err(); err != nil {
			return fmt.Errorf("%s: %w", where, err)
		}
		return fmt.Errorf("%s: %s", where, st.Message())
	default:
		return fmt.Errorf("%s: status %s is not allowed here: %s", where, st.Code(), st.Message())
	}
}

// selectNodes picks the selection among feasible nodes (indices into feasible). BGP selects
// every feasible node. L2 selects the node with the highest total score; among equal totals
// the node with the highest TieBreakHash wins, so every speaker picks the same node and
// different IPs spread over different nodes.
func selectNodes(dst []int32, unit *Unit, nodes []*NodeInfo, feasible []int32, totals []int64) []int32 {
	if len(feasible) == 0 {
		return dst
	}
	if unit.Mode == ModeBGP {
		for j := range feasible {
			dst = append(dst, int32(j))
		}
		return dst
	}
	ip := ""
	best, bestHash := 0, uint64(0)
	hashed := false
	for j := 1; j < len(feasible); j++ {
		switch {
		case totals[j] > totals[best]:
			best, hashed = j, false
		case totals[j] == totals[best]:
			if ip == "" {
				ip = unit.IP.String()
			}
			if !hashed {
				bestHash, hashed = TieBreakHash(nodes[feasible[best]].Name, ip), true
			}
			if h := TieBreakHash(nodes[feasible[j]].Name, ip); h > bestHash {
				best, bestHash = j, h
			}
		}
	}
	return append(dst, int32(best))
}
