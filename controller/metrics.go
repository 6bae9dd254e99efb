package controller

import (
	"sync"

	"k8s.io/component-base/metrics"
	"k8s.io/component-base/metrics/legacyregistry"

	"github.com/herald-lb/herald/ipam"
)

// Labels are pool names (configuration objects, few), IP families and ipam refusal reasons
// (stable constants): never a Service or an address.
var (
	allocationsTotal = metrics.NewCounterVec(&metrics.CounterOpts{
		Namespace:      "herald",
		Subsystem:      "controller",
		Name:           "allocations_total",
		Help:           "Services given new load-balancer addresses (written to status.loadBalancer.ingress), by pool.",
		StabilityLevel: metrics.ALPHA,
	}, []string{"pool"})

	allocationFailuresTotal = metrics.NewCounterVec(&metrics.CounterOpts{
		Namespace:      "herald",
		Subsystem:      "controller",
		Name:           "allocation_failures_total",
		Help:           "Refusals written to a Service (a new or changed refusal; re-checks that end with the same refusal are not counted), by reason (the herald.dev/AddressAllocated condition's reason).",
		StabilityLevel: metrics.ALPHA,
	}, []string{"reason"})

	servicesPending = metrics.NewGaugeVec(&metrics.GaugeOpts{
		Namespace:      "herald",
		Subsystem:      "controller",
		Name:           "services_pending",
		Help:           "LoadBalancer Services Herald owns that have no address because the allocator refused them, by reason. Maintained by the leader only.",
		StabilityLevel: metrics.ALPHA,
	}, []string{"reason"})

	poolSize = metrics.NewGaugeVec(&metrics.GaugeOpts{
		Namespace:      "herald",
		Subsystem:      "controller",
		Name:           "pool_size_addresses",
		Help:           "Addresses in a usable IPAddressPool (after avoidBuggyIPs), by pool and family; saturates at 2^64 for huge IPv6 pools. Maintained by the leader only.",
		StabilityLevel: metrics.ALPHA,
	}, []string{"pool", "family"})

	poolUsed = metrics.NewGaugeVec(&metrics.GaugeOpts{
		Namespace:      "herald",
		Subsystem:      "controller",
		Name:           "pool_used_addresses",
		Help:           "Addresses of a usable IPAddressPool assigned to Services (a shared address counts once), by pool and family. Maintained by the leader only.",
		StabilityLevel: metrics.ALPHA,
	}, []string{"pool", "family"})

	poolFree = metrics.NewGaugeVec(&metrics.GaugeOpts{
		Namespace:      "herald",
		Subsystem:      "controller",
		Name:           "pool_free_addresses",
		Help:           "Addresses of a usable IPAddressPool not assigned, by pool and family. Maintained by the leader only.",
		StabilityLevel: metrics.ALPHA,
	}, []string{"pool", "family"})

	unusablePools = metrics.NewGaugeVec(&metrics.GaugeOpts{
		Namespace:      "herald",
		Subsystem:      "controller",
		Name:           "unusable_pools",
		Help:           "IPAddressPools not used for allocation, by reason: PoolOverlap (a conflict: overlaps an earlier pool, which keeps working) or InvalidPool. Maintained by the leader only.",
		StabilityLevel: metrics.ALPHA,
	}, []string{"reason"})

	leaderGauge = metrics.NewGauge(&metrics.GaugeOpts{
		Namespace:      "herald",
		Subsystem:      "controller",
		Name:           "leader",
		Help:           "1 while this replica holds the leader-election Lease and allocates, 0 otherwise.",
		StabilityLevel: metrics.ALPHA,
	})

	rebuildFailuresTotal = metrics.NewCounter(&metrics.CounterOpts{
		Namespace:      "herald",
		Subsystem:      "controller",
		Name:           "rebuild_failures_total",
		Help:           "Failed attempts of a new leader to rebuild its allocations from Service status (each is retried with backoff; a leader that fails for its renew deadline releases the Lease).",
		StabilityLevel: metrics.ALPHA,
	})

	writeRetriesTotal = metrics.NewCounterVec(&metrics.CounterOpts{
		Namespace:      "herald",
		Subsystem:      "controller",
		Name:           "write_retries_total",
		Help:           "Writes to the API server retried after a transient failure (5xx, timeout, lost connection) or a conflict, by resource.",
		StabilityLevel: metrics.ALPHA,
	}, []string{"resource"})

	registerOnce sync.Once
)

// registerMetrics adds the controller's metrics to the legacy registry served on
// --metrics-bind-address. It is idempotent, so several controllers in one test process share
// the metrics.
func registerMetrics() {
	registerOnce.Do(func() {
		legacyregistry.MustRegister(allocationsTotal, allocationFailuresTotal, servicesPending,
			poolSize, poolUsed, poolFree, unusablePools, leaderGauge, rebuildFailuresTotal, writeRetriesTotal)
	})
}

// poolReasons are the pool problems, always exported (0 when none) so an alert on a conflict
// has a series to watch from the start.
var poolReasons = []ipam.Reason{ipam.ReasonPoolOverlap, ipam.ReasonInvalidPool}

type poolFamily struct{ pool, family string }

// poolFigures is a series' size, used and free as last exported.
type poolFigures [3]float64

// usageMetrics is the leader's view of pools and pending Services as gauges. It remembers
// which series it set, and their values, so that a deleted pool's series go away and
// unchanged ones cost no label lookup. Callers serialise (c.mu).
type usageMetrics struct {
	series   map[poolFamily]poolFigures
	pending  map[string]ipam.Reason
	byReason map[ipam.Reason]int
}

func newUsageMetrics() *usageMetrics {
	return &usageMetrics{series: map[poolFamily]poolFigures{}, pending: map[string]ipam.Reason{}, byReason: map[ipam.Reason]int{}}
}

// setPools exports the usage of every usable pool, per family it has addresses of.
func (u *usageMetrics) setPools(stats []ipam.PoolStats) {
	seen := make(map[poolFamily]poolFigures, len(u.series))
	for _, s := range stats {
		if !s.Usable {
			continue
		}
		for _, f := range []struct {
			family     ipam.Family
			size, used uint64
		}{{ipam.IPv4, s.SizeIPv4, s.UsedIPv4}, {ipam.IPv6, s.SizeIPv6, s.UsedIPv6}} {
			if f.size == 0 {
				continue
			}
			k := poolFamily{s.Name, string(f.family)}
			v := poolFigures{float64(f.size), float64(f.used), float64(f.size - f.used)}
			seen[k] = v
			if old, ok := u.series[k]; ok && old == v {
				continue
			}
			poolSize.WithLabelValues(k.pool, k.family).Set(v[0])
			poolUsed.WithLabelValues(k.pool, k.family).Set(v[1])
			poolFree.WithLabelValues(k.pool, k.family).Set(v[2])
		}
	}
	for k := range u.series {
		if _, ok := seen[k]; !ok {
			poolSize.DeleteLabelValues(k.pool, k.family)
			poolUsed.DeleteLabelValues(k.pool, k.family)
			poolFree.DeleteLabelValues(k.pool, k.family)
		}
	}
	u.series = seen
}

// setProblems exports how many pools are unusable, by reason.
func (u *usageMetrics) setProblems(problems map[string]*ipam.Error) {
	counts := map[ipam.Reason]int{}
	for _, p := range problems {
		counts[p.Reason]++
	}
	for _, r := range poolReasons {
		unusablePools.WithLabelValues(string(r)).Set(float64(counts[r]))
	}
}

// setPending records that the Service key is refused for reason, or, with reason "", that it
// is not pending (allocated, deleted, or not ours).
func (u *usageMetrics) setPending(key string, reason ipam.Reason) {
	old, had := u.pending[key]
	if had && old == reason {
		return
	}
	if had {
		u.byReason[old]--
		servicesPending.WithLabelValues(string(old)).Set(float64(u.byReason[old]))
		delete(u.pending, key)
	}
	if reason != "" {
		u.pending[key] = reason
		u.byReason[reason]++
		servicesPending.WithLabelValues(string(reason)).Set(float64(u.byReason[reason]))
	}
}

// reset removes what a leader exported, when it stops leading: a standby does not maintain
// the figures, and stale ones would contradict the new leader's.
func (u *usageMetrics) reset() {
	u.setPools(nil)
	u.pending = map[string]ipam.Reason{}
	u.byReason = map[ipam.Reason]int{}
	servicesPending.Reset()
	unusablePools.Reset()
}
