package framework

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// Extension point names, as they appear in metrics, errors and the diagnosis.
const (
	PointPreFilter      = "PreFilter"
	PointFilter         = "Filter"
	PointScore          = "Score"
	PointNormalizeScore = "NormalizeScore"
	PointBind           = "Bind"
)

// chunkSize is how many nodes a worker claims at a time: large enough that claiming costs
// nothing next to the plugin calls, small enough to balance uneven plugins across workers.
const chunkSize = 64

// Framework is one profile's plugins, instantiated and ready to run cycles. It is safe for
// concurrent use: each cycle has its own CycleState and buffers.
type Framework struct {
	profile     string
	preFilters  []PreFilterPlugin
	filters     []FilterPlugin
	scores      []weightedScore
	binds       []BindPlugin
	parallelism int
	metrics     *recorder
	// Names and weights in profile order, shared read-only by every cycle's record.
	filterNames []string
	scoreNames  []string
	weights     []int64
}

type weightedScore struct {
	plugin ScorePlugin
	ext    ScoreExtensions
	weight int64
}

// Option changes how NewFramework builds a Framework.
type Option func(*Framework)

// withParallelism sets how many goroutines evaluate nodes in one cycle (default GOMAXPROCS).
// The result does not depend on it, which the tests prove with it (export_test.go).
func withParallelism(n int) Option {
	return func(f *Framework) {
		if n > 0 {
			f.parallelism = n
		}
	}
}

// argsFor returns the args a plugin's factory gets: the profile's, or the plugin's defaults
// when the profile has none; validated either way. Configuration loading validates them
// first with field paths; this is the backstop for callers that build a ProfileSpec by hand,
// so no factory ever sees args that failed their own Validate.
func argsFor(reg Registration, spec ProfileSpec, name string) (PluginArgs, error) {
	if reg.NewArgs == nil {
		return spec.Args[name], nil
	}
	args := spec.Args[name]
	if args == nil {
		args = reg.NewArgs()
		args.Default()
	}
	path := field.NewPath("profiles").Key(spec.Name).Child("pluginConfig").Key(name).Child("args")
	if errs := args.Validate(path); len(errs) > 0 {
		return nil, fmt.Errorf("profile %q: plugin %q: invalid args: %w", spec.Name, name, errs.ToAggregate())
	}
	return args, nil
}

// NewFramework instantiates the profile's plugins from the registry. A plugin listed at
// several extension points (a filter that also scores) is instantiated once. It fails when a
// plugin is unknown, does not implement an extension point it is listed at, has a weight out
// of 1..100, or its factory fails.
func NewFramework(registry Registry, spec ProfileSpec, h Handle, opts ...Option) (*Framework, error) {
	if h == nil {
		h = NewHandle(logr.Discard())
	}
	f := &Framework{profile: spec.Name, parallelism: runtime.GOMAXPROCS(0)}
	for _, o := range opts {
		o(f)
	}
	instances := map[string]Plugin{}
	get := func(name string) (Plugin, error) {
		if p, ok := instances[name]; ok {
			return p, nil
		}
		reg, ok := registry[name]
		if !ok {
			return nil, fmt.Errorf("profile %q: plugin %q is not registered (known: %v)", spec.Name, name, registry.Names())
		}
		args, err := argsFor(reg, spec, name)
		if err != nil {
			return nil, err
		}
		p, err := reg.Factory(args, h)
		if err != nil {
			return nil, fmt.Errorf("profile %q: plugin %q: %w", spec.Name, name, err)
		}
		if p == nil {
			return nil, fmt.Errorf("profile %q: plugin %q: factory returned nil", spec.Name, name)
		}
		instances[name] = p
		return p, nil
	}
	notAt := func(name, point string) error {
		return fmt.Errorf("profile %q: plugin %q does not implement %s", spec.Name, name, point)
	}
	for _, name := range spec.PreFilter {
		p, err := get(name)
		if err != nil {
			return nil, err
		}
		pf, ok := p.(PreFilterPlugin)
		if !ok {
			return nil, notAt(name, PointPreFilter)
		}
		f.preFilters = append(f.preFilters, pf)
	}
	for _, name := range spec.Filter {
		p, err := get(name)
		if err != nil {
			return nil, err
		}
		fp, ok := p.(FilterPlugin)
		if !ok {
			return nil, notAt(name, PointFilter)
		}
		f.filters = append(f.filters, fp)
	}
	for _, wp := range spec.Score {
		p, err := get(wp.Name)
		if err != nil {
			return nil, err
		}
		sp, ok := p.(ScorePlugin)
		if !ok {
			return nil, notAt(wp.Name, PointScore)
		}
		if wp.Weight < 1 || wp.Weight > 100 {
			return nil, fmt.Errorf("profile %q: score plugin %q: weight %d is not in 1..100", spec.Name, wp.Name, wp.Weight)
		}
		f.scores = append(f.scores, weightedScore{plugin: sp, ext: sp.ScoreExtensions(), weight: wp.Weight})
	}
	for _, name := range spec.Bind {
		p, err := get(name)
		if err != nil {
			return nil, err
		}
		bp, ok := p.(BindPlugin)
		if !ok {
			return nil, notAt(name, PointBind)
		}
		f.binds = append(f.binds, bp)
	}
	for _, p := range f.filters {
		f.filterNames = append(f.filterNames, p.Name())
	}
	for _, s := range f.scores {
		f.scoreNames = append(f.scoreNames, s.plugin.Name())
		f.weights = append(f.weights, s.weight)
	}
	f.metrics = newRecorder(f)
	return f, nil
}

// Result is the outcome of one cycle.
type Result struct {
	// Selected are the nodes that announce the unit, in name order: at most one in L2, every
	// feasible node in BGP. Empty when no node qualifies or the cycle failed.
	Selected []string
	// Err is set when the cycle was aborted (an Error status, a panic, an out-of-range score,
	// a cancelled context) or binding failed. A speaker keeps its last decision then.
	Err error
	// BindStatus is what the bind plugin that handled the unit returned; nil before Bind.
	BindStatus *Status

	state *CycleState
	rec   *cycleRecord
}

// CycleState is the cycle's state, for Bind.
func (r *Result) CycleState() *CycleState { return r.state }

// Release hands the result's buffers back for reuse by later cycles. It is optional (without
// it the garbage collector reclaims them) and pays off for callers running many cycles, such
// as a speaker's resync. After Release the CycleState and Diagnosis must not be used
// (Diagnosis returns nil); Selected, Err and BindStatus stay valid.
func (r *Result) Release() {
	rec := r.rec
	if rec == nil {
		return
	}
	r.rec, r.state = nil, nil
	clear(rec.rejectStatus) // drop references to statuses and nodes
	for i := range rec.ws {
		rec.ws[i].err = nil
	}
	clear(rec.state.storage)
	rec.state.snapshot = nil
	clear(rec.preFilter)
	rec.unit, rec.nodes, rec.preFilter, rec.rejected, rec.err, rec.bind = nil, nil, rec.preFilter[:0], nil, nil, nil
	recordPool.Put(rec)
}

var recordPool = sync.Pool{New: func() any { return &cycleRecord{state: NewCycleState(nil)} }}

// newRecord returns a record (from the pool when one is free) set up for a cycle.
func (f *Framework) newRecord(snapshot *Snapshot, unit *Unit) *cycleRecord {
	rec := recordPool.Get().(*cycleRecord)
	nodes := snapshot.Nodes()
	rec.profile, rec.unit, rec.nodes = f.profile, unit, nodes
	rec.state.snapshot = snapshot
	rec.filterName, rec.scoreNames, rec.weights = f.filterNames, f.scoreNames, f.weights
	rec.skipFilter = resize(rec.skipFilter, len(f.filters))
	clear(rec.skipFilter)
	rec.skipScore = resize(rec.skipScore, len(f.scores))
	clear(rec.skipScore)
	rec.filterRan, rec.scored = false, false
	rec.feasible, rec.selected = rec.feasible[:0], rec.selected[:0]
	return rec
}

// resize returns s with length n, reallocating only when its capacity is too small. The
// contents are not cleared.
func resize[T any](s []T, n int) []T {
	if cap(s) < n {
		return make([]T, n)
	}
	return s[:n]
}

// cycleRecord keeps what the cycle saw in compact form; Diagnosis expands it on demand, so a
// speaker that only needs the selection pays for no per-node objects.
type cycleRecord struct {
	profile string
	unit    *Unit
	nodes   []*NodeInfo
	// preFilter holds the non-Success PreFilter verdicts (Skip or rejection), in order.
	preFilter []pluginStatus
	// rejected is set when a PreFilter rejected the unit for every node.
	rejected *pluginStatus
	// rejectBy is, per node, the index of the filter that rejected it, or -1.
	rejectBy     []int16
	rejectStatus []*Status
	// filterRan reports whether the Filter stage ran at all.
	filterRan bool
	feasible  []int32
	// scoreNames, weights and filterName are the framework's, shared by every cycle;
	// skipScore marks score plugins a PreFilter skipped.
	scoreNames []string
	weights    []int64
	skipScore  []bool
	filterName []string
	// raw and norm are [score plugin][feasible node] raw and normalized scores.
	raw    []int64
	norm   []int64
	totals []int64
	scored bool
	// selected holds indices into feasible.
	selected []int32
	// err is the cycle's error; bind the verdict of the bind plugin that handled the unit.
	err  error
	bind *pluginStatus

	// Buffers reused across cycles through recordPool (see Result.Release).
	state      *CycleState
	skipFilter []bool
	nodeRaw    []int64
	ws         []worker
	counts     []int32
}

type pluginStatus struct {
	plugin string
	status *Status
}

// Schedule runs PreFilter, Filter, Score, NormalizeScore and selection for the unit over the
// snapshot, without binding; herald explain uses it directly. It never returns nil.
func (f *Framework) Schedule(ctx context.Context, snapshot *Snapshot, unit *Unit) *Result {
	start := time.Now()
	res := f.schedule(ctx, snapshot, unit)
	f.metrics.observeCycle(unit.Mode, res, time.Since(start))
	return res
}

// RunCycle schedules the unit and, when the cycle succeeds, binds the selection.
func (f *Framework) RunCycle(ctx context.Context, snapshot *Snapshot, unit *Unit) *Result {
	start := time.Now()
	res := f.schedule(ctx, snapshot, unit)
	if res.Err == nil {
		st := f.Bind(ctx, res.state, unit, res.Selected)
		res.BindStatus = st
		res.rec.bind = &pluginStatus{plugin: st.Plugin(), status: st}
		if st.Code() == Error || st.IsRejected() {
			res.Err = fmt.Errorf("unit %s: bind: %w", unit.Key(), st.AsError())
			res.rec.err = res.Err
		}
	}
	f.metrics.observeCycle(unit.Mode, res, time.Since(start))
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

func (f *Framework) schedule(ctx context.Context, snapshot *Snapshot, unit *Unit) *Result {
	nodes := snapshot.Nodes()
	rec := f.newRecord(snapshot, unit)
	state := rec.state
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

// worker is one goroutine's share of a stage: its verdict counts, sampled durations, and the
// first error it met (by node index, so the cycle's error does not depend on scheduling).
type worker struct {
	counts  []int32
	samples []durationSample
	errIdx  int
	err     error
}

func (w *worker) fail(i int, err error) {
	if w.err == nil || i < w.errIdx {
		w.err, w.errIdx = err, i
	}
}

// workers returns p workers with zeroed counters for the given number of plugin slots,
// reusing the record's buffers.
func (rec *cycleRecord) workers(p, plugins int) []worker {
	rec.ws = resize(rec.ws, p)
	// Each worker's counters get their own cache lines: they change on every plugin call,
	// and sharing a line between cores would serialize the workers.
	const pad = 16
	stride := plugins*numCodes + pad
	rec.counts = resize(rec.counts, p*stride)
	clear(rec.counts)
	for i := range rec.ws {
		w := &rec.ws[i]
		w.counts = rec.counts[i*stride : i*stride+plugins*numCodes]
		w.samples = w.samples[:0]
		w.err, w.errIdx = nil, 0
	}
	return rec.ws
}

func (f *Framework) workerCount(n int) int {
	p := min(f.parallelism, (n+chunkSize-1)/chunkSize)
	return max(p, 1)
}

// firstError returns the error of the lowest node index among the workers.
func firstError(ws []worker) error {
	var err error
	idx := 0
	for i := range ws {
		if ws[i].err != nil && (err == nil || ws[i].errIdx < idx) {
			err, idx = ws[i].err, ws[i].errIdx
		}
	}
	return err
}

// forEach calls fn for every index in [0, n) on a bounded number of goroutines. Workers claim
// chunks of indices; results are written by index, so the outcome is independent of timing.
func forEach(ws []worker, n int, fn func(w *worker, i int)) {
	if len(ws) == 1 {
		for i := 0; i < n; i++ {
			fn(&ws[0], i)
		}
		return
	}
	var next atomic.Int64
	run := func(w *worker) {
		for {
			start := int(next.Add(chunkSize)) - chunkSize
			if start >= n {
				return
			}
			end := min(start+chunkSize, n)
			for i := start; i < end; i++ {
				fn(w, i)
			}
		}
	}
	var wg sync.WaitGroup
	for k := 1; k < len(ws); k++ {
		wg.Add(1)
		go func(w *worker) {
			defer wg.Done()
			run(w)
		}(&ws[k])
	}
	run(&ws[0])
	wg.Wait()
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
