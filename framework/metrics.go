package framework

import (
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"k8s.io/component-base/metrics"
	"k8s.io/component-base/metrics/legacyregistry"
)

// Metric labels are low-cardinality by design: plugin, extension point, status code, mode and
// result. Never a Service, a node or an IP.
var (
	pluginDuration = metrics.NewHistogramVec(&metrics.HistogramOpts{
		Namespace:      "herald",
		Subsystem:      "framework",
		Name:           "plugin_execution_duration_seconds",
		Help:           "Duration of one plugin call, by plugin, extension point and status code. Filter and Score calls are sampled (one cycle in " + strconv.Itoa(sampleEvery) + ").",
		Buckets:        metrics.ExponentialBuckets(0.000001, 2, 20),
		StabilityLevel: metrics.ALPHA,
	}, []string{"plugin", "extension_point", "status"})

	pluginVerdicts = metrics.NewCounterVec(&metrics.CounterOpts{
		Namespace:      "herald",
		Subsystem:      "framework",
		Name:           "plugin_verdicts_total",
		Help:           "Plugin call outcomes, by plugin, extension point and status code.",
		StabilityLevel: metrics.ALPHA,
	}, []string{"plugin", "extension_point", "status"})

	cycleDuration = metrics.NewHistogramVec(&metrics.HistogramOpts{
		Namespace:      "herald",
		Subsystem:      "framework",
		Name:           "cycle_duration_seconds",
		Help:           "Duration of one scheduling cycle, by mode (L2, BGP) and result (selected, unschedulable, error).",
		Buckets:        metrics.ExponentialBuckets(0.00001, 2, 20),
		StabilityLevel: metrics.ALPHA,
	}, []string{"mode", "result"})

	registerOnce sync.Once
)

// RegisterMetrics registers the framework's metrics in the legacy registry that the speaker's
// /metrics endpoint serves. It is idempotent. Until it is called the metrics are no-ops.
func RegisterMetrics() {
	registerOnce.Do(func() {
		legacyregistry.MustRegister(pluginDuration, pluginVerdicts, cycleDuration)
	})
}

// Cycle results as the cycle_duration_seconds "result" label.
const (
	CycleSelected      = "selected"
	CycleUnschedulable = "unschedulable"
	CycleError         = "error"
)

// sampleEvery: per-call durations of Filter and Score are measured in one cycle out of this
// many. A counter, not randomness, picks the cycle; metrics never influence decisions.
const sampleEvery = 64

const numCodes = int(Error) + 1

type metricSlot struct {
	plugin, point string
}

type durationSample struct {
	slot int
	code Code
	d    time.Duration
}

// recorder feeds the framework's metrics. Slots number (plugin, extension point) pairs:
// pre-filters, filters, scores, normalizers, binds.
type recorder struct {
	slots                                     []metricSlot
	filterBase, scoreBase, normBase, bindBase int
	cycles                                    atomic.Uint64
}

func newRecorder(f *Framework) *recorder {
	r := &recorder{}
	for _, p := range f.preFilters {
		r.slots = append(r.slots, metricSlot{p.Name(), PointPreFilter})
	}
	r.filterBase = len(r.slots)
	for _, p := range f.filters {
		r.slots = append(r.slots, metricSlot{p.Name(), PointFilter})
	}
	r.scoreBase = len(r.slots)
	for _, s := range f.scores {
		r.slots = append(r.slots, metricSlot{s.plugin.Name(), PointScore})
	}
	r.normBase = len(r.slots)
	for _, s := range f.scores {
		r.slots = append(r.slots, metricSlot{s.plugin.Name(), PointNormalizeScore})
	}
	r.bindBase = len(r.slots)
	for _, p := range f.binds {
		r.slots = append(r.slots, metricSlot{p.Name(), PointBind})
	}
	return r
}

func (r *recorder) preFilterSlot(k int) int { return k }
func (r *recorder) filterSlot(k int) int    { return r.filterBase + k }
func (r *recorder) scoreSlot(k int) int     { return r.scoreBase + k }
func (r *recorder) normalizeSlot(k int) int { return r.normBase + k }
func (r *recorder) bindSlot(k int) int      { return r.bindBase + k }

func (r *recorder) sampleCycle() bool {
	return (r.cycles.Add(1)-1)%sampleEvery == 0
}

// observeOne records a single call made outside the worker pool.
func (r *recorder) observeOne(slot int, code Code, start time.Time, sample bool) {
	s := r.slots[slot]
	pluginVerdicts.WithLabelValues(s.plugin, s.point, code.String()).Inc()
	if sample {
		pluginDuration.WithLabelValues(s.plugin, s.point, code.String()).Observe(time.Since(start).Seconds())
	}
}

// addVerdicts folds the workers' per-call counts and samples of one stage into the metrics,
// once per cycle, so the hot path touches no shared counter.
func (r *recorder) addVerdicts(base int, ws []worker) {
	if len(ws) == 0 {
		return
	}
	n := len(ws[0].counts) / numCodes
	for k := 0; k < n; k++ {
		for c := 0; c < numCodes; c++ {
			var sum int32
			for i := range ws {
				sum += ws[i].counts[k*numCodes+c]
			}
			if sum > 0 {
				s := r.slots[base+k]
				pluginVerdicts.WithLabelValues(s.plugin, s.point, Code(c).String()).Add(float64(sum))
			}
		}
	}
	for i := range ws {
		for _, smp := range ws[i].samples {
			s := r.slots[smp.slot]
			pluginDuration.WithLabelValues(s.plugin, s.point, smp.code.String()).Observe(smp.d.Seconds())
		}
	}
}

func (r *recorder) observeCycle(mode Mode, res *Result, d time.Duration) {
	result := CycleSelected
	switch {
	case res.Err != nil:
		result = CycleError
	case len(res.Selected) == 0:
		result = CycleUnschedulable
	}
	cycleDuration.WithLabelValues(string(mode), result).Observe(d.Seconds())
}
