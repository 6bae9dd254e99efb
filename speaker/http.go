package speaker

import (
	"errors"
	"net/http"

	"github.com/herald-lb/herald/announcers"
	"github.com/herald-lb/herald/framework"

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
	announcementsTotal = metrics.NewCounterVec(&metrics.CounterOpts{
		Namespace:      "herald",
		Subsystem:      "speaker",
		Name:           "announcements_total",
		Help:           "Times this speaker started announcing an address, by mode (L2, BGP).",
		StabilityLevel: metrics.ALPHA,
	}, []string{"mode"})
	failoversTotal = metrics.NewCounterVec(&metrics.CounterOpts{
		Namespace:      "herald",
		Subsystem:      "speaker",
		Name:           "failovers_total",
		Help:           "Times this speaker took over an address another node announced, by mode (L2 only: in BGP every qualifying node advertises).",
		StabilityLevel: metrics.ALPHA,
	}, []string{"mode"})
	bgpSessionUp = metrics.NewGaugeVec(&metrics.GaugeOpts{
		Namespace:      "herald",
		Subsystem:      "speaker",
		Name:           "bgp_session_up",
		Help:           "1 when the BGP session with the peer (BGPPeer name) is established, 0 otherwise.",
		StabilityLevel: metrics.ALPHA,
	}, []string{"peer"})
	bgpSessionTransitions = metrics.NewCounterVec(&metrics.CounterOpts{
		Namespace:      "herald",
		Subsystem:      "speaker",
		Name:           "bgp_session_transitions_total",
		Help:           "BGP session state changes reported by the announcer, by peer and new state.",
		StabilityLevel: metrics.ALPHA,
	}, []string{"peer", "state"})
	bgpBFDUp = metrics.NewGaugeVec(&metrics.GaugeOpts{
		Namespace:      "herald",
		Subsystem:      "speaker",
		Name:           "bgp_bfd_up",
		Help:           "1 when the BFD session with the peer (BGPPeer name) is up, 0 otherwise.",
		StabilityLevel: metrics.ALPHA,
	}, []string{"peer"})
	announcerRestarts = metrics.NewGaugeVec(&metrics.GaugeOpts{
		Namespace:      "herald",
		Subsystem:      "speaker",
		Name:           "announcer_restarts",
		Help:           "Restarts of each announcer process since the speaker started, as its supervisor counts them.",
		StabilityLevel: metrics.ALPHA,
	}, []string{"announcer"})
)

func init() {
	legacyregistry.MustRegister(conflictsTotal, announcedGauge, announcementsTotal, failoversTotal,
		bgpSessionUp, bgpSessionTransitions, bgpBFDUp, announcerRestarts)
}

// observeAnnounce counts a unit this node started announcing (announce.Deps.OnAnnounce).
func observeAnnounce(mode framework.Mode, takeover bool) {
	announcementsTotal.WithLabelValues(string(mode)).Inc()
	if takeover {
		failoversTotal.WithLabelValues(string(mode)).Inc()
	}
}

// observeSession records a peer's session state.
func observeSession(peer string, state announcers.SessionState) {
	up := 0.0
	if state == announcers.SessionEstablished {
		up = 1
	}
	bgpSessionUp.WithLabelValues(peer).Set(up)
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
