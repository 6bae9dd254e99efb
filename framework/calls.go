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

// timedFilter and timedScore run one call of a sampled cycle and record its duration; the
// caller counts the verdict and recovers panics (see evalNode).
func (f *Framework) timedFilter(ctx context.Context, w *worker, k int, p FilterPlugin, state *CycleState, unit *Unit, node *NodeInfo) *Status {
	start := time.Now()
	st := p.Filter(ctx, state, unit, node)
	w.samples = append(w.samples, durationSample{slot: f.metrics.filterSlot(k), code: st.Code(), d: time.Since(start)})
	return st
}

func (f *Framework) timedScore(ctx context.Context, w *worker, k int, p ScorePlugin, state *CycleState, unit *Unit, node *NodeInfo) (int64, *Status) {
	start := time.Now()
	sc, st := p.Score(ctx, state, unit, node)
	w.samples = append(w.samples, durationSample{slot: f.metrics.scoreSlot(k), code: st.Code(), d: time.Since(start)})
	return sc, st
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
