//go:build integration

package controller

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

type countingTransport struct {
	next http.RoundTripper
	n    *atomic.Int64
}

func (c countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	c.n.Add(1)
	return c.next.RoundTrip(r)
}

// BenchmarkIntegrationAllocate1000 measures 1,000 Services from creation to assigned status
// against the real API server, and counts the controller's API requests (watches included).
// Documentation ranges hold only 768 IPv4 addresses, so Services share addresses four at a
// time with distinct ports (each Service still goes through allocation, a status write, an
// annotation patch and an Event).
func BenchmarkIntegrationAllocate1000(b *testing.B) {
	const n = 1000
	for i := 0; i < b.N; i++ {
		f := newFixture(b)
		f.timeout = 3 * time.Minute
		f.pool("bench", []string{"198.51.100.0/24", "203.0.113.0/24"})
		var requests atomic.Int64
		cfg := f.env.AdminConfig()
		cfg.WrapTransport = func(rt http.RoundTripper) http.RoundTripper { return countingTransport{rt, &requests} }
		f.start("bench", cfg, func(o *Options) { o.KubeAPIQPS, o.KubeAPIBurst, o.Workers = 500, 1000, 8 })
		f.waitFor("leadership", func() (bool, string) { return f.leaseHolder() == "bench", f.leaseHolder() })
		startRequests := requests.Load()

		b.ResetTimer()
		start := time.Now()
		var wg sync.WaitGroup
		sem := make(chan struct{}, 16)
		for j := range n {
			wg.Add(1)
			sem <- struct{}{}
			go func() {
				defer wg.Done()
				defer func() { <-sem }()
				f.service(fmt.Sprintf("s%04d", j),
					annotate("metallb.io/allow-shared-ip", fmt.Sprintf("g%d", j/4)),
					ports(corev1.ProtocolTCP, int32(8000+j%4)))
			}()
		}
		wg.Wait()
		created := time.Since(start)
		f.waitFor(fmt.Sprintf("%d Services assigned", n), func() (bool, string) {
			list, err := f.client.CoreV1().Services(f.ns).List(context.Background(), metav1.ListOptions{})
			if err != nil {
				return false, err.Error()
			}
			done := 0
			for _, s := range list.Items {
				if len(s.Status.LoadBalancer.Ingress) > 0 {
					done++
				}
			}
			return done == n, fmt.Sprintf("%d of %d assigned", done, n)
		})
		elapsed := time.Since(start)
		b.StopTimer()
		b.ReportMetric(elapsed.Seconds(), "s/1000svc")
		b.ReportMetric(created.Seconds(), "s-creating/1000svc")
		b.ReportMetric(float64(requests.Load()-startRequests), "requests/1000svc")
	}
}
