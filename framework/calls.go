package framework

import (
	"context"
	"fmt"
	"runtime/debug"
	"time"
)

// The call wrappers below run one plugin call each. Third-party plugins run in our process, so
// a panic is recovered into an Error status that names the plugin and the extension point
// (the cycle then aborts and the speaker keeps its last decision). Calls are timed only in
// sampled cycles: two clock reads per call would cost more than most plugins.

func panicStatus(plugin, point string, r any) *Status {
	return AsStatus(fmt.Errorf("panic in plugin %q at %s: %v\n%s", plugin, point, r, debug.Stack())).WithPlugin(plugin)
}

func (f *Framework) callPreFilter(ctx context.Context, k int, p PreFilterPlugin, state *CycleState, unit *Unit, sample bool) (st *Status) {
	var start time.Time
	if sample {
		start = time.Now()
	}
	defer func() {
		if r := recover(); r != nil {
			st = panicStatus(p.Name(), PointPreFilter, r)
		}
		f.metrics.observeOne(f.metrics.preFilterSlot(k), st.Code(), start, sample)
	}()
	return p.PreFilter(ctx, state, unit)
}

func (f *Framework) callFilter(ctx context.Context, w *worker, k int, p FilterPlugin, state *CycleState, unit *Unit, node *NodeInfo, sample bool) *Status {
	if !sample {
		st := safeFilter(ctx, p, state, unit, node)
		w.counts[k*numCodes+int(st.Code())]++
		return st
	}
	start := time.Now()
	st := safeFilter(ctx, p, state, unit, node)
	w.counts[k*numCodes+int(st.Code())]++
	w.samples = append(w.samples, durationSample{slot: f.metrics.filterSlot(k), code: st.Code(), d: time.Since(start)})
	return st
}

func safeFilter(ctx context.Context, p FilterPlugin, state *CycleState, unit *Unit, node *NodeInfo) (st *Status) {
	defer func() {
		if r := recover(); r != nil {
			st = panicStatus(p.Name(), PointFilter, r)
		}
	}()
	return p.Filter(ctx, state, unit, node)
}

// callScore runs score plugin k; slot is its verdict counter in the worker.
func (f *Framework) callScore(ctx context.Context, w *worker, slot, k int, state *CycleState, unit *Unit, node *NodeInfo, sample bool) (int64, *Status) {
	p := f.scores[k].plugin
	if !sample {
		s, st := safeScore(ctx, p, state, unit, node)
		w.counts[slot*numCodes+int(st.Code())]++
		return s, st
	}
	start := time.Now()
	s, st := safeScore(ctx, p, state, unit, node)
	w.counts[slot*numCodes+int(st.Code())]++
	w.samples = append(w.samples, durationSample{slot: f.metrics.scoreSlot(k), code: st.Code(), d: time.Since(start)})
	return s, st
}

func safeScore(ctx context.Context, p ScorePlugin, state *CycleState, unit *Unit, node *NodeInfo) (score int64, st *Status) {
	defer func() {
		if r := recover(); r != nil {
			score, st = 0, panicStatus(p.Name(), PointScore, r)
		}
	}()
	return p.Score(ctx, state, unit, node)
}

func (f *Framework) callNormalize(ctx context.Context, k int, state *CycleState, unit *Unit, list NodeScoreList, sample bool) (st *Status) {
	s := f.scores[k]
	var start time.Time
	if sample {
		start = time.Now()
	}
	defer func() {
		if r := recover(); r != nil {
			st = panicStatus(s.plugin.Name(), PointNormalizeScore, r)
		}
		f.metrics.observeOne(f.metrics.normalizeSlot(k), st.Code(), start, sample)
	}()
	return s.ext.NormalizeScore(ctx, state, unit, list)
}

func (f *Framework) callBind(ctx context.Context, k int, p BindPlugin, state *CycleState, unit *Unit, selected []string) (st *Status) {
	// Bind runs once per cycle and does I/O, so it is always timed.
	start := time.Now()
	defer func() {
		if r := recover(); r != nil {
			st = panicStatus(p.Name(), PointBind, r)
		}
		f.metrics.observeOne(f.metrics.bindSlot(k), st.Code(), start, true)
	}()
	return p.Bind(ctx, state, unit, selected)
}
