package controller

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"

	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/component-base/metrics/legacyregistry"
	"k8s.io/klog/v2"
)

// leaseHealthTimeout is how long past its lease duration a leader may go without renewing
// before /healthz fails (kube-controller-manager's value), so a leader stuck renewing is
// restarted by its liveness probe.
const leaseHealthTimeout = 20 * time.Second

// readiness tracks what /readyz reports: a replica is ready once its informers have synced;
// while it leads it is ready only after its first full sync (pools loaded, allocations rebuilt
// from status, every Service seen once), so a rolling update waits for the new leader.
type readiness struct {
	mu      sync.Mutex
	leading bool
	// initial holds the keys of the first full sync not processed yet; nil when done.
	initial map[string]struct{}
	synced  bool
	// rebuildErr is the last failed rebuild of this leadership, retried meanwhile.
	rebuildErr error
	// gaveUpErr is why this replica released the Lease, until it campaigns again.
	gaveUpErr error
}

func (r *readiness) startLeading() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.leading, r.synced, r.initial = true, false, nil
	r.rebuildErr, r.gaveUpErr = nil, nil
}

// rebuildFailed records a failed rebuild attempt, to be retried.
func (r *readiness) rebuildFailed(err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.rebuildErr = err
}

// gaveUp records that the replica released the Lease because it could not lead.
func (r *readiness) gaveUp(err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.gaveUpErr = err
}

// campaignAgain clears gaveUp: the replica is an ordinary standby again.
func (r *readiness) campaignAgain() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.gaveUpErr = nil
}

// stopLeading reports whether the replica was leading.
func (r *readiness) stopLeading() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	was := r.leading
	r.leading, r.initial = false, nil
	return was
}

// expect starts the first full sync with the keys queued by rebuild.
func (r *readiness) expect(keys []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.initial = make(map[string]struct{}, len(keys))
	for _, k := range keys {
		r.initial[k] = struct{}{}
	}
	r.synced = len(r.initial) == 0
}

// processed marks a key as handled once, successfully or not: a Service that keeps failing
// is reported by its condition and the metrics, not by keeping the leader unready.
func (r *readiness) processed(key string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.initial == nil {
		return
	}
	delete(r.initial, key)
	if len(r.initial) == 0 {
		r.synced = true
	}
}

func (r *readiness) leaderReady() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.gaveUpErr != nil {
		return fmt.Errorf("released the leader Lease, cannot lead: %w", r.gaveUpErr)
	}
	if r.leading && !r.synced {
		if r.initial == nil && r.rebuildErr != nil {
			return fmt.Errorf("leader: rebuilding allocations from Service status, last attempt failed (retrying): %w", r.rebuildErr)
		}
		if r.initial == nil {
			return errors.New("leader: rebuilding allocations from Service status")
		}
		return fmt.Errorf("leader: first full sync in progress, %d Services to go", len(r.initial))
	}
	return nil
}

// ready reports why the replica is not ready, or nil.
func (c *controller) ready() error {
	if !c.watching.Load() {
		return errors.New("starting: checking that the metallb.io CRDs are served")
	}
	for _, synced := range c.synced {
		if !synced() {
			return errors.New("informers not synced")
		}
	}
	return c.readiness.leaderReady()
}

// serveHTTP listens on opts.MetricsBindAddress (or the test's listener) and serves /metrics
// (the legacy registry: the controller's metrics and the Go runtime's), /healthz (the process
// runs and, while leading, renews its Lease) and /readyz. It fails at once when the address
// cannot be bound, so a misconfigured port is an error at start rather than a missing scrape.
// A nil server means metrics are disabled.
func (c *controller) serveHTTP(ctx context.Context, election *leaderelection.HealthzAdaptor) (*http.Server, error) {
	ln := c.opts.listener
	if ln == nil {
		if c.opts.MetricsBindAddress == "" {
			return nil, nil
		}
		var err error
		if ln, err = net.Listen("tcp", c.opts.MetricsBindAddress); err != nil {
			return nil, fmt.Errorf("--metrics-bind-address: %w", err)
		}
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", legacyregistry.Handler())
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		if err := election.Check(r); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		_, _ = w.Write([]byte("ok"))
	})
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		if err := c.ready(); err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ok"))
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	logger := klog.FromContext(ctx)
	logger.Info("Serving metrics and health", "address", ln.Addr().String())
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			logger.Error(err, "Metrics server stopped", "address", ln.Addr().String())
		}
	}()
	return srv, nil
}
