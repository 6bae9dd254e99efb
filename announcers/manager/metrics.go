package manager

import (
	"sync"
	"time"

	"k8s.io/component-base/metrics"
	"k8s.io/component-base/metrics/legacyregistry"
)

// Labels are the announcer's name from the configuration (a handful per speaker), the RPC and
// its result: never an address or a Service.
var (
	restartsTotal = metrics.NewCounterVec(&metrics.CounterOpts{
		Namespace:      "herald",
		Subsystem:      "announcer",
		Name:           "restarts_total",
		Help:           "Starts of an announcer process after its first one (crash, failed health check or failed start), by announcer.",
		StabilityLevel: metrics.ALPHA,
	}, []string{"announcer"})

	upGauge = metrics.NewGaugeVec(&metrics.GaugeOpts{
		Namespace:      "herald",
		Subsystem:      "announcer",
		Name:           "up",
		Help:           "1 while the announcer's process runs and has been handed its configuration and desired set, 0 otherwise, by announcer.",
		StabilityLevel: metrics.ALPHA,
	}, []string{"announcer"})

	rpcDuration = metrics.NewHistogramVec(&metrics.HistogramOpts{
		Namespace: "herald",
		Subsystem: "announcer",
		Name:      "rpc_duration_seconds",
		Help:      "Duration of the desired-state calls to an announcer over go-plugin gRPC, by announcer, method (Apply, SetDesired) and result (ok, error).",
		// 100µs .. ~6.5s: a small delta is well under a millisecond, 10,000 addresses a few
		// tens of milliseconds, and a hung announcer is bounded by the caller's context.
		Buckets:        metrics.ExponentialBuckets(0.0001, 2, 17),
		StabilityLevel: metrics.ALPHA,
	}, []string{"announcer", "method", "result"})

	registerOnce sync.Once
)

// registerMetrics adds the manager's metrics to the legacy registry, which the speaker serves
// on its metrics address. Until then the metrics are no-ops.
func registerMetrics() {
	registerOnce.Do(func() {
		legacyregistry.MustRegister(restartsTotal, upGauge, rpcDuration)
	})
}

// RPC names in the method label.
const (
	methodApply      = "Apply"
	methodSetDesired = "SetDesired"
)

// observeRPC records one call's duration from start.
func observeRPC(announcer, method string, start time.Time, err error) {
	result := "ok"
	if err != nil {
		result = "error"
	}
	rpcDuration.WithLabelValues(announcer, method, result).Observe(time.Since(start).Seconds())
}
