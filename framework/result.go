package framework

import (
	"sync"
)

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
	rec.state.snapshot, rec.state.summary = nil, nil
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
