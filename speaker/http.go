package speaker

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/herald-lb/herald/announcers"
	"github.com/herald-lb/herald/framework"

	"k8s.io/component-base/metrics"
	"k8s.io/component-base/metrics/legacyregistry"
	"k8s.io/klog/v2"
)

var (
	conflictsTotal = metrics.NewCounterVec(&metrics.CounterOpts{
		Namespace:      "herald",
		Subsystem:      "speaker",
		Name:           "address_conflicts_total",
		Help:           "Foreign claims (another MAC answering ARP/NDP) on addresses this speaker announces, by announcer. The foreign MAC is in the AddressConflict Event and the log.",
		StabilityLevel: metrics.ALPHA,
		// No label from the wire: a neighbour spraying forged MACs would otherwise make one
		// series per MAC without bound.
	}, []string{"announcer"})
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
)

func init() {
	legacyregistry.MustRegister(conflictsTotal, announcedGauge, announcementsTotal, failoversTotal,
		bgpSessionUp, bgpSessionTransitions, bgpBFDUp)
}

// announceMetrics counts the units this node starts announcing (announce.Observer).
type announceMetrics struct{}

// Announced implements announce.Observer.
func (announceMetrics) Announced(mode framework.Mode, takeover bool) {
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

// httpServers are the speaker's listeners: /metrics (with /healthz and /readyz too, so probes
// written for MetalLB's port keep working) on metricsBindAddress, and /healthz and /readyz
// alone on healthBindAddress. Both listen before the speaker starts, so a taken port is a
// startup error rather than a log line nobody reads.
type httpServers struct {
	servers []*http.Server
	// addrs are the listeners' addresses, in the order of the fields, for tests.
	addrs []string
}

// listenHTTP opens the configured addresses (an empty one is not served) and serves them; a
// server that stops is logged with ctx's logger.
func (s *Speaker) listenHTTP(ctx context.Context) (httpServers, error) {
	logger := klog.FromContext(ctx)
	health := http.NewServeMux()
	health.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok")) })
	// Ready once the informers synced and every configured announcer's kind is a candidate:
	// a node whose announcer was refused or crash-loops is not ready, and a rolling update
	// waits for a restarted speaker to answer before it restarts the next.
	// A frozen speaker (cut off from the API server, see heartbeater.frozen) is not ready
	// either: it keeps its announcements but takes part in no decision.
	health.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		ok, msg := s.ready.ready()
		if why := s.frozen(); why != "" {
			if ok {
				ok, msg = false, "frozen: "+why
			} else {
				msg += "\nfrozen: " + why
			}
		}
		if !ok {
			http.Error(w, msg, http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ok"))
	})
	withMetrics := http.NewServeMux()
	withMetrics.Handle("/metrics", legacyregistry.Handler())
	withMetrics.Handle("/", health)

	var srvs httpServers
	for _, l := range []struct {
		field, addr string
		h           http.Handler
	}{
		{"metricsBindAddress", s.o.Config.MetricsBindAddress, withMetrics},
		{"healthBindAddress", s.o.Config.HealthBindAddress, health},
	} {
		if l.addr == "" {
			continue
		}
		ln, err := net.Listen("tcp", l.addr)
		if err != nil {
			srvs.close(context.Background())
			return httpServers{}, fmt.Errorf("%s %q: %w", l.field, l.addr, err)
		}
		srv := &http.Server{Handler: l.h, ReadHeaderTimeout: 10 * time.Second}
		go func(field string) {
			if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				logger.Error(err, "HTTP server stopped", "field", field, "address", ln.Addr().String())
			}
		}(l.field)
		srvs.servers = append(srvs.servers, srv)
		srvs.addrs = append(srvs.addrs, ln.Addr().String())
	}
	return srvs, nil
}

func (hs httpServers) close(ctx context.Context) {
	for _, srv := range hs.servers {
		_ = srv.Shutdown(ctx)
	}
}
