package controller

import (
	"context"
	"fmt"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8sfake "k8s.io/client-go/kubernetes/fake"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/component-base/metrics/legacyregistry"
	"k8s.io/component-base/metrics/testutil"

	metallbfake "github.com/herald-lb/herald/config/metallb/client/clientset/versioned/fake"
	metallblisters "github.com/herald-lb/herald/config/metallb/client/listers/metallb/v1beta1"
	metallbv1beta1 "github.com/herald-lb/herald/config/metallb/v1beta1"
	"github.com/herald-lb/herald/ipam"
)

// series returns every series of a metric family in the legacy registry as label-set string
// → value, so a test can see series that must have gone away.
func series(t *testing.T, name string) map[string]float64 {
	t.Helper()
	families, err := legacyregistry.DefaultGatherer.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			key := ""
			for _, l := range m.GetLabel() {
				key += l.GetName() + "=" + l.GetValue() + ","
			}
			switch {
			case m.Gauge != nil:
				out[key] = m.GetGauge().GetValue()
			case m.Counter != nil:
				out[key] = m.GetCounter().GetValue()
			}
		}
	}
	return out
}

// testController is a controller on fake clients with listers over plain indexers: the
// decision and metric logic of syncService without an API server (the integration test runs
// the real thing).
type testController struct {
	*controller
	services cache.Indexer
}

func newTestController(t *testing.T, pools ...*metallbv1beta1.IPAddressPool) *testController {
	t.Helper()
	registerMetrics()
	opts := DefaultOptions()
	opts.Namespace = "herald-system"
	poolIdx := cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{cache.NamespaceIndex: cache.MetaNamespaceIndexFunc})
	mlb := metallbfake.NewSimpleClientset()
	for _, p := range pools {
		p.Namespace = opts.Namespace
		if err := poolIdx.Add(p); err != nil {
			t.Fatal(err)
		}
		if _, err := mlb.MetallbV1beta1().IPAddressPools(p.Namespace).Create(context.Background(), p, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	c := newController(k8sfake.NewClientset(), mlb, opts, record.NewFakeRecorder(1000))
	svcIdx := cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{cache.NamespaceIndex: cache.MetaNamespaceIndexFunc})
	c.services = corelisters.NewServiceLister(svcIdx)
	c.namespaces = corelisters.NewNamespaceLister(cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{}))
	c.pools = metallblisters.NewIPAddressPoolLister(poolIdx)
	t.Cleanup(func() {
		c.queue.ShutDown()
		c.usage.reset()
	})
	return &testController{controller: c, services: svcIdx}
}

// addService puts a LoadBalancer Service in the fake API and the lister.
func (tc *testController) addService(t *testing.T, name string, families ...corev1.IPFamily) string {
	t.Helper()
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name, CreationTimestamp: metav1.Now()},
		Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer, IPFamilies: families,
			Ports: []corev1.ServicePort{{Protocol: corev1.ProtocolTCP, Port: 80}}},
	}
	if len(families) > 1 {
		p := corev1.IPFamilyPolicyRequireDualStack
		svc.Spec.IPFamilyPolicy = &p
	}
	created, err := tc.client.CoreV1().Services("default").Create(context.Background(), svc, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := tc.services.Add(created); err != nil {
		t.Fatal(err)
	}
	return "default/" + name
}

func (tc *testController) sync(t *testing.T, key string) {
	t.Helper()
	if err := tc.syncService(context.Background(), key); err != nil {
		t.Fatalf("syncService(%s): %v", key, err)
	}
	// The lister sees what was written, as the informer would.
	ns, name, _ := cache.SplitMetaNamespaceKey(key)
	if s, err := tc.client.CoreV1().Services(ns).Get(context.Background(), name, metav1.GetOptions{}); err == nil {
		_ = tc.services.Update(s)
	}
}

func counter(t *testing.T, name string, label string) float64 {
	t.Helper()
	return series(t, name)[label]
}

func TestMetricsFollowAllocationsAndFailures(t *testing.T) {
	// Two IPv4 addresses and two IPv6 ones.
	pool := &metallbv1beta1.IPAddressPool{
		ObjectMeta: metav1.ObjectMeta{Name: "metrics-unit", CreationTimestamp: metav1.NewTime(time.Unix(1, 0))},
		Spec:       metallbv1beta1.IPAddressPoolSpec{Addresses: []string{"192.0.2.10/31", "2001:db8::10/127"}},
	}
	tc := newTestController(t, pool)
	tc.syncPools(context.Background())

	const (
		allocated = "herald_controller_allocations_total"
		failures  = "herald_controller_allocation_failures_total"
		pending   = "herald_controller_services_pending"
	)
	allocBefore := counter(t, allocated, "pool=metrics-unit,")
	exhaustedBefore := counter(t, failures, "reason=PoolExhausted,")

	wantPool := func(step string, v4used, v6used float64) {
		t.Helper()
		want := map[string]map[string]float64{
			"herald_controller_pool_size_addresses": {"family=IPv4,pool=metrics-unit,": 2, "family=IPv6,pool=metrics-unit,": 2},
			"herald_controller_pool_used_addresses": {"family=IPv4,pool=metrics-unit,": v4used, "family=IPv6,pool=metrics-unit,": v6used},
			"herald_controller_pool_free_addresses": {"family=IPv4,pool=metrics-unit,": 2 - v4used, "family=IPv6,pool=metrics-unit,": 2 - v6used},
		}
		for name, series1 := range want {
			got := series(t, name)
			for k, v := range series1 {
				if got[k] != v {
					t.Errorf("%s: %s{%s} = %v, want %v", step, name, k, got[k], v)
				}
			}
		}
	}
	wantPool("no Service", 0, 0)

	a := tc.addService(t, "a", corev1.IPv4Protocol, corev1.IPv6Protocol)
	b := tc.addService(t, "b")
	c := tc.addService(t, "c")
	tc.sync(t, a)
	tc.sync(t, b)
	wantPool("a dual-stack, b IPv4", 2, 1)
	if got := counter(t, allocated, "pool=metrics-unit,") - allocBefore; got != 2 {
		t.Errorf("allocations_total grew by %v after two allocations, want 2", got)
	}

	// c finds the IPv4 half exhausted.
	tc.sync(t, c)
	if got := counter(t, failures, "reason=PoolExhausted,") - exhaustedBefore; got != 1 {
		t.Errorf("allocation_failures_total{reason=PoolExhausted} grew by %v, want 1", got)
	}
	if got := counter(t, pending, "reason=PoolExhausted,"); got != 1 {
		t.Errorf("services_pending{reason=PoolExhausted} = %v, want 1", got)
	}
	// The same refusal again is not a new failure.
	tc.sync(t, c)
	if got := counter(t, failures, "reason=PoolExhausted,") - exhaustedBefore; got != 1 {
		t.Errorf("a re-check with the same refusal counted again: grew by %v, want 1", got)
	}
	// Re-syncing an allocated Service is not a new allocation.
	tc.sync(t, a)
	if got := counter(t, allocated, "pool=metrics-unit,") - allocBefore; got != 2 {
		t.Errorf("a resync counted as an allocation: grew by %v, want 2", got)
	}

	// b goes away: its address is free, c gets it and is no longer pending.
	if err := tc.services.Delete(&corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "b"}}); err != nil {
		t.Fatal(err)
	}
	tc.sync(t, b)
	wantPool("b deleted", 1, 1)
	tc.sync(t, c)
	wantPool("c allocated", 2, 1)
	if got := counter(t, pending, "reason=PoolExhausted,"); got != 0 {
		t.Errorf("services_pending{reason=PoolExhausted} = %v after c was allocated, want 0", got)
	}
	if got := counter(t, allocated, "pool=metrics-unit,") - allocBefore; got != 3 {
		t.Errorf("allocations_total grew by %v after three allocations, want 3", got)
	}

	// Losing the lead withdraws the leader-only figures.
	tc.usage.reset()
	if got := series(t, "herald_controller_pool_size_addresses"); len(got) != 0 {
		t.Errorf("pool series after reset: %v", got)
	}
}

func TestUsageMetricsPoolsAndProblems(t *testing.T) {
	registerMetrics()
	a := ipam.New()
	problems, _ := a.SetPools([]ipam.Pool{
		{Name: "first", Created: time.Unix(1, 0), Addresses: []string{"198.51.100.0/30"}, AutoAssign: true},
		{Name: "overlapping", Created: time.Unix(2, 0), Addresses: []string{"198.51.100.2/32"}, AutoAssign: true},
		{Name: "second", Created: time.Unix(3, 0), Addresses: []string{"203.0.113.0/29"}, AutoAssign: true},
	})
	u := newUsageMetrics()
	t.Cleanup(u.reset)
	byName := map[string]*ipam.Error{"broken": {Reason: ipam.ReasonInvalidPool}}
	for _, p := range problems {
		byName[p.Pool] = p
	}
	u.setProblems(byName)
	u.setPools(a.Stats())
	got := series(t, "herald_controller_unusable_pools")
	if got["reason=PoolOverlap,"] != 1 || got["reason=InvalidPool,"] != 1 {
		t.Errorf("unusable_pools = %v, want one PoolOverlap and one InvalidPool", got)
	}
	sizes := series(t, "herald_controller_pool_size_addresses")
	want := map[string]float64{"family=IPv4,pool=first,": 4, "family=IPv4,pool=second,": 8}
	if len(sizes) != len(want) {
		t.Errorf("pool_size_addresses = %v, want %v (no unusable pool, no empty family)", sizes, want)
	}
	for k, v := range want {
		if sizes[k] != v {
			t.Errorf("pool_size_addresses{%s} = %v, want %v", k, sizes[k], v)
		}
	}

	// A pool removed from the configuration loses its series.
	_, _ = a.SetPools([]ipam.Pool{{Name: "second", Created: time.Unix(3, 0), Addresses: []string{"203.0.113.0/29"}, AutoAssign: true}})
	u.setProblems(nil)
	u.setPools(a.Stats())
	sizes = series(t, "herald_controller_pool_size_addresses")
	if _, ok := sizes["family=IPv4,pool=first,"]; ok || len(sizes) != 1 {
		t.Errorf("after removing pool first: pool_size_addresses = %v", sizes)
	}
	if got := series(t, "herald_controller_unusable_pools"); got["reason=PoolOverlap,"] != 0 {
		t.Errorf("unusable_pools after the overlap went away = %v", got)
	}
}

func TestPendingCountsByReason(t *testing.T) {
	registerMetrics()
	u := newUsageMetrics()
	t.Cleanup(u.reset)
	for _, step := range []struct {
		key    string
		reason ipam.Reason
		want   map[ipam.Reason]float64
	}{
		{"ns/a", ipam.ReasonPoolExhausted, map[ipam.Reason]float64{ipam.ReasonPoolExhausted: 1}},
		{"ns/b", ipam.ReasonPoolExhausted, map[ipam.Reason]float64{ipam.ReasonPoolExhausted: 2}},
		{"ns/b", ipam.ReasonPoolExhausted, map[ipam.Reason]float64{ipam.ReasonPoolExhausted: 2}},
		{"ns/a", ipam.ReasonIPInUse, map[ipam.Reason]float64{ipam.ReasonPoolExhausted: 1, ipam.ReasonIPInUse: 1}},
		{"ns/b", "", map[ipam.Reason]float64{ipam.ReasonPoolExhausted: 0, ipam.ReasonIPInUse: 1}},
		{"ns/c", "", map[ipam.Reason]float64{ipam.ReasonPoolExhausted: 0, ipam.ReasonIPInUse: 1}},
	} {
		u.setPending(step.key, step.reason)
		for r, v := range step.want {
			got, err := testutil.GetGaugeMetricValue(servicesPending.WithLabelValues(string(r)))
			if err != nil || got != v {
				t.Errorf("after %s→%q: services_pending{reason=%s} = %v (%v), want %v", step.key, step.reason, r, got, err, v)
			}
		}
	}
}

// BenchmarkSyncMetrics100Pools is what every Service sync adds for the gauges: the allocator's
// stats and the pool series, with 100 pools of both families.
func BenchmarkSyncMetrics100Pools(b *testing.B) {
	registerMetrics()
	a := ipam.New()
	var specs []ipam.Pool
	for i := range 100 {
		specs = append(specs, ipam.Pool{Name: fmt.Sprintf("p%03d", i), Created: time.Unix(int64(i), 0), AutoAssign: true,
			Addresses: []string{fmt.Sprintf("198.51.100.%d/32", i), fmt.Sprintf("2001:db8:%x::/120", i)}})
	}
	if problems, _ := a.SetPools(specs); len(problems) > 0 {
		b.Fatal(problems[0])
	}
	u := newUsageMetrics()
	b.Cleanup(u.reset)
	for b.Loop() {
		u.setPending("ns/svc", "")
		u.setPools(a.Stats())
	}
}
