package speaker

import (
	"errors"
	"net/http"

	"k8s.io/component-base/metrics"
	"k8s.io/component-base/metrics/legacyregistry"
)

var (
	conflictsTotal = metrics.NewCounterVec(&metrics.CounterOpts{
		Namespace:      "herald",
		Subsystem:      "speaker",
		Name:           "address_conflicts_total",
		Help:           "Foreign claims (another MAC answering ARP/NDP) on addresses this speaker announces, by announcer and foreign MAC.",
		StabilityLevel: metrics.ALPHA,
	}, []string{"announcer", "foreign_mac"})
	announcedGauge = metrics.NewGaugeVec(&metrics.GaugeOpts{
		Namespace:      "herald",
		Subsystem:      "speaker",
		Name:           "announced_addresses",
		Help:           "Addresses this speaker announces now, by mode.",
		StabilityLevel: metrics.ALPHA,
	}, []string{"mode"})
)

func init() {
	legacyregistry.MustRegister(conflictsTotal, announcedGauge)
}

// serveHTTP serves /metrics on the configured metrics address and /healthz and /readyz
// (ready once the informers synced) on the health address; an empty address serves nothing.
func (s *Speaker) serveHTTP() *http.Server {
	mux := http.NewServeMux()
	mux.Handle("/metrics", legacyregistry.Handler())
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok")) })
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		select {
		case <-s.synced:
			_, _ = w.Write([]byte("ok"))
		default:
			http.Error(w, "informers not synced", http.StatusServiceUnavailable)
		}
	})
	addr := s.o.Config.MetricsBindAddress
	if addr == "" {
		return nil
	}
	srv := &http.Server{Addr: addr, Handler: mux}
	go func() {
		if err := srv.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error(err, "metrics server stopped", "address", addr)
		}
	}()
	return srv
}
