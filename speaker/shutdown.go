package speaker

import (
	"context"
	"sync"
	"time"

	"k8s.io/klog/v2"

	"github.com/herald-lb/herald/framework"
	"github.com/herald-lb/herald/speaker/announce"
)

// shutdown hands the node's IPs over (when synced), stops the announcers (they drain) and
// the loops.
func (s *Speaker) shutdown(runCtx context.Context, stopRun context.CancelFunc, wg *sync.WaitGroup, srv httpServers, synced bool) error {
	logger := klog.FromContext(runCtx)
	timeout := s.o.Config.Draining.Timeout.Duration
	if synced {
		s.handOver(runCtx, timeout)
	}
	s.queue.ShutDown()
	s.expiry.stop()
	stopCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// With graceful restart, a stop is taken for a restart (a DaemonSet's rolling update
	// sends SIGTERM, then starts the next speaker): the BGP paths stay on the routers until
	// the next speaker re-sends them, or for the restart time. A node leaving for good is
	// labelled node.kubernetes.io/exclude-from-external-load-balancers first, which withdraws
	// its paths before the stop.
	gr := s.peers.GracefulRestart()
	err := s.mgr.StopKeeping(stopCtx, func(name string) bool { return gr && name == s.bgpAnnouncer() })
	if synced {
		for _, cur := range s.ledger.List() {
			if rerr := s.ledger.Retract(stopCtx, cur); rerr != nil {
				logger.Error(rerr, "removing status on shutdown", "ip", cur.IP)
			}
		}
		if ferr := s.l2Status.Flush(stopCtx); ferr != nil {
			logger.Error(ferr, "removing ServiceL2Status on shutdown")
		}
		if ferr := s.bgpStatus.Flush(stopCtx); ferr != nil {
			logger.Error(ferr, "removing ServiceBGPStatus on shutdown")
		}
	}
	s.leaveFastPath(runCtx)
	stopRun()
	srv.close(stopCtx)
	wg.Wait()
	logger.Info("Stopped")
	return err
}

// handOver marks the heartbeat draining and waits, at most timeout, until another node's
// status object names each Service this node announces.
func (s *Speaker) handOver(ctx context.Context, timeout time.Duration) {
	logger := klog.FromContext(ctx)
	start := time.Now()
	if err := s.hb.drain(ctx); err != nil {
		logger.Error(err, "Could not mark the heartbeat draining; withdrawing without hand-over")
		return
	}
	deadline := time.Now().Add(timeout)
	for {
		pending := s.pendingHandOver()
		if pending == 0 {
			logger.Info("Hand-over complete", "took", time.Since(start))
			return
		}
		if time.Now().After(deadline) {
			logger.Info("Hand-over timed out; withdrawing anyway", "pending", pending, "timeout", timeout)
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// pendingHandOver counts the Services this node announces that no other node has taken yet.
func (s *Speaker) pendingHandOver() int {
	n := 0
	for _, cur := range s.ledger.List() {
		if cur.Mode != framework.ModeL2 {
			// Every qualifying node advertises a BGP unit already: there is nothing to
			// hand over, and the announcer's drain withdraws the routes.
			continue
		}
		if len(s.builder.UnitsFor(cur.IP)) == 0 {
			continue // the Service is gone: nothing to hand over
		}
		for _, svc := range cur.Services {
			st, err := s.l2Lister(s.namespace(), announce.StatusName(svc, cur.IP))
			if err != nil || st.Status.Node == "" || st.Status.Node == s.o.NodeName {
				n++
			}
		}
	}
	return n
}
