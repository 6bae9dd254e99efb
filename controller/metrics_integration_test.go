//go:build integration

package controller

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/component-base/metrics/testutil"
)

// scrape fetches url over HTTP and returns its status code and body.
func scrape(t *testing.T, url string) (int, string) {
	t.Helper()
	client := &http.Client{Timeout: 5 * time.Second}
	resp, err := client.Get(url)
	if err != nil {
		return 0, err.Error()
	}
	defer func() { _ = resp.Body.Close() }()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// sample is one series' value in a scraped exposition, found by its labels; absent is -1.
func sample(families map[string]*dto.MetricFamily, name string, labels map[string]string) float64 {
	f, ok := families[name]
	if !ok {
		return -1
	}
	for _, m := range f.GetMetric() {
		if !testutil.LabelsMatch(m, labels) {
			continue
		}
		switch {
		case m.Gauge != nil:
			return m.GetGauge().GetValue()
		case m.Counter != nil:
			return m.GetCounter().GetValue()
		}
	}
	return -1
}

func parseMetrics(t *testing.T, body string) map[string]*dto.MetricFamily {
	t.Helper()
	families, err := testutil.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		t.Fatalf("parsing /metrics: %v\n%s", err, body)
	}
	return families
}

func listen(t *testing.T) (net.Listener, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln, "http://" + ln.Addr().String()
}

// TestIntegrationControllerMetrics runs a leader and a standby against the real API server,
// makes the leader allocate, refuse (exhausted pool) and report an overlapping pool, and reads
// the figures from the leader's /metrics over HTTP.
func TestIntegrationControllerMetrics(t *testing.T) {
	f := newFixture(t)
	leaderLn, leaderURL := listen(t)
	f.start("metrics-leader", nil, func(o *Options) { o.listener = leaderLn })
	f.waitFor("metrics-leader to hold the Lease", func() (bool, string) {
		h := f.leaseHolder()
		return h == "metrics-leader", "holder " + h
	})
	f.waitFor("/readyz 200 on the leader after its first sync", func() (bool, string) {
		code, body := scrape(t, leaderURL+"/readyz")
		return code == http.StatusOK, fmt.Sprintf("%d %s", code, body)
	})
	// A standby is ready as soon as its informers synced: it has nothing else to do.
	standbyLn, standbyURL := listen(t)
	f.start("metrics-standby", nil, func(o *Options) { o.listener = standbyLn })
	f.waitFor("/readyz 200 on the standby", func() (bool, string) {
		code, body := scrape(t, standbyURL+"/readyz")
		return code == http.StatusOK, fmt.Sprintf("%d %s", code, body)
	})
	if code, body := scrape(t, leaderURL+"/healthz"); code != http.StatusOK {
		t.Errorf("leader /healthz = %d %s", code, body)
	}

	pool := map[string]string{"pool": "metrics-pool", "family": "IPv4"}
	exhausted := map[string]string{"reason": "PoolExhausted"}
	_, body := scrape(t, leaderURL+"/metrics")
	before := parseMetrics(t, body)
	baseAlloc := max(0, sample(before, "herald_controller_allocations_total", map[string]string{"pool": "metrics-pool"}))
	baseFail := max(0, sample(before, "herald_controller_allocation_failures_total", exhausted))

	f.pool("metrics-pool", []string{"192.0.2.20/31"})
	time.Sleep(1100 * time.Millisecond) // creationTimestamp has one-second resolution
	f.pool("metrics-overlap", []string{"192.0.2.21/32"})
	f.service("first")
	f.service("second")
	f.waitAnyIP(f.ns, "first")
	f.waitAnyIP(f.ns, "second")
	f.service("third")
	f.waitRefused(f.ns, "third", "PoolExhausted", `pool "metrics-pool" is exhausted: 2 of 2 addresses in use`)

	want := []struct {
		name   string
		labels map[string]string
		value  float64
	}{
		{"herald_controller_leader", nil, 1},
		{"herald_controller_allocations_total", map[string]string{"pool": "metrics-pool"}, baseAlloc + 2},
		{"herald_controller_allocation_failures_total", exhausted, baseFail + 1},
		{"herald_controller_services_pending", exhausted, 1},
		{"herald_controller_pool_size_addresses", pool, 2},
		{"herald_controller_pool_used_addresses", pool, 2},
		{"herald_controller_pool_free_addresses", pool, 0},
		{"herald_controller_unusable_pools", map[string]string{"reason": "PoolOverlap"}, 1},
	}
	f.waitFor("the leader's /metrics to show the allocations, the refusal and the overlap", func() (bool, string) {
		code, body := scrape(t, leaderURL+"/metrics")
		if code != http.StatusOK {
			return false, fmt.Sprintf("/metrics %d", code)
		}
		got := parseMetrics(t, body)
		var wrong []string
		for _, w := range want {
			if v := sample(got, w.name, w.labels); v != w.value {
				wrong = append(wrong, fmt.Sprintf("%s%v = %v, want %v", w.name, w.labels, v, w.value))
			}
		}
		return len(wrong) == 0, strings.Join(wrong, "; ")
	})
	if code, body := scrape(t, leaderURL+"/readyz"); code != http.StatusOK {
		t.Errorf("leader /readyz after allocating = %d %s", code, body)
	}

	// Freeing an address lets the pending Service in: the gauges follow.
	if err := f.client.CoreV1().Services(f.ns).Delete(context.Background(), "first", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	f.waitAnyIP(f.ns, "third")
	f.waitFor("pending back to 0 and the pool full again", func() (bool, string) {
		got := parseMetrics(t, func() string { _, b := scrape(t, leaderURL+"/metrics"); return b }())
		p := sample(got, "herald_controller_services_pending", exhausted)
		used := sample(got, "herald_controller_pool_used_addresses", pool)
		allocs := sample(got, "herald_controller_allocations_total", map[string]string{"pool": "metrics-pool"})
		return p == 0 && used == 2 && allocs == baseAlloc+3, fmt.Sprintf("pending %v used %v allocations %v", p, used, allocs)
	})
}

// TestIntegrationControllerReadyzFollowsSync runs a controller as a service account that may
// not list anything: it stays unready (and healthy) with "informers not synced" until RBAC
// lets it list, then leads, finishes its first sync and reports ready.
func TestIntegrationControllerReadyzFollowsSync(t *testing.T) {
	f := newFixture(t)
	f.timeout = time.Minute // the reflectors retry a forbidden list with backoff
	cfg := f.env.ServiceAccountConfig(t, f.ns, "no-rights-yet")
	ln, url := listen(t)
	f.start("readyz", cfg, func(o *Options) { o.listener = ln })
	f.waitFor("the metrics server", func() (bool, string) {
		code, body := scrape(t, url+"/healthz")
		return code == http.StatusOK, fmt.Sprintf("%d %s", code, body)
	})
	// Health is served before the CRD check, which says "starting" while it runs.
	f.waitFor("/readyz past the CRD check", func() (bool, string) {
		code, body := scrape(t, url+"/readyz")
		return !strings.Contains(body, "starting"), fmt.Sprintf("%d %s", code, body)
	})
	for range 5 {
		if code, body := scrape(t, url+"/readyz"); code != http.StatusServiceUnavailable || !strings.Contains(body, "informers not synced") {
			t.Fatalf("/readyz without list rights = %d %q, want 503 informers not synced", code, body)
		}
		time.Sleep(200 * time.Millisecond)
	}
	binding := &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: f.ns + "-readyz"},
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: "cluster-admin"},
		Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Namespace: f.ns, Name: "no-rights-yet"}},
	}
	if _, err := f.client.RbacV1().ClusterRoleBindings().Create(context.Background(), binding, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = f.client.RbacV1().ClusterRoleBindings().Delete(context.Background(), binding.Name, metav1.DeleteOptions{})
	})
	f.waitFor("/readyz 200 once the controller may list, leads and has synced", func() (bool, string) {
		code, body := scrape(t, url+"/readyz")
		return code == http.StatusOK && f.leaseHolder() == "readyz", fmt.Sprintf("%d %s, holder %q", code, body, f.leaseHolder())
	})
}
