package controller

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/herald-lb/herald/owner"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
	"k8s.io/client-go/util/retry"
	"k8s.io/klog/v2"
)

// campaign runs leader election and leads while elected. A leader that cannot rebuild its
// state (lead fails) releases the Lease, so a standby takes over at once, and campaigns again
// after LeaseDuration, which leaves the standbys time to take the Lease first.
func (c *controller) campaign(ctx context.Context, election *leaderelection.HealthzAdaptor) error {
	for {
		gaveUp, err := c.electOnce(ctx, election)
		if err != nil {
			return err
		}
		if ctx.Err() != nil {
			return nil
		}
		if !gaveUp {
			return ErrLostLeadership
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(c.opts.LeaseDuration):
		}
		c.readiness.campaignAgain()
	}
}

// electOnce campaigns until this replica has led and stopped, or ctx is done. gaveUp reports
// that it stopped leading because lead failed and it released the Lease.
func (c *controller) electOnce(ctx context.Context, election *leaderelection.HealthzAdaptor) (gaveUp bool, err error) {
	logger := klog.FromContext(ctx)
	// The elector gets its own context so that on shutdown the Lease is released only after
	// the leader's workers have stopped (leadMu): releasing first would let a standby allocate
	// while a write of ours is still in flight.
	electCtx, cancelElect := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelElect()
	var leadMu sync.Mutex
	stop := context.AfterFunc(ctx, func() {
		leadMu.Lock()
		defer leadMu.Unlock()
		cancelElect()
	})
	defer stop()

	lock := &resourcelock.LeaseLock{
		LeaseMeta:  metav1.ObjectMeta{Namespace: c.opts.Namespace, Name: c.opts.LeaseName},
		Client:     c.client.CoordinationV1(),
		LockConfig: resourcelock.ResourceLockConfig{Identity: c.opts.Identity},
	}
	elector, err := leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
		Lock:            lock,
		Name:            c.opts.LeaseName,
		LeaseDuration:   c.opts.LeaseDuration,
		RenewDeadline:   c.opts.RenewDeadline,
		RetryPeriod:     c.opts.RetryPeriod,
		ReleaseOnCancel: true,
		WatchDog:        election,
		Callbacks: leaderelection.LeaderCallbacks{
			OnStartedLeading: func(leaseCtx context.Context) {
				leadMu.Lock()
				defer leadMu.Unlock()
				workCtx, cancel := context.WithCancel(leaseCtx)
				defer cancel()
				defer context.AfterFunc(ctx, cancel)()
				logger.Info("Leading: allocating addresses", "identity", c.opts.Identity)
				c.ownLease(workCtx)
				c.readiness.startLeading()
				leaderGauge.Set(1)
				defer c.stopLeading()
				if err := c.lead(workCtx); err != nil {
					// Holding the Lease while allocating nothing would stall every
					// Service: hand it to a standby (the elector releases it on cancel).
					logger.Error(err, "Cannot lead: releasing the Lease", "identity", c.opts.Identity)
					c.readiness.gaveUp(err)
					gaveUp = true
					cancelElect()
				}
			},
			OnStoppedLeading: func() {
				logger.Info("Stopped leading", "identity", c.opts.Identity)
				c.stopLeading()
			},
		},
	})
	if err != nil {
		return false, fmt.Errorf("leader election: %w", err)
	}
	elector.Run(electCtx)
	// Wait for a lead() still winding down after a lost Lease.
	leadMu.Lock()
	defer leadMu.Unlock()
	return gaveUp, nil
}

// stopLeading withdraws what only a leader reports. A replica that never led has nothing to
// withdraw (client-go calls OnStoppedLeading on every exit).
func (c *controller) stopLeading() {
	if !c.readiness.stopLeading() {
		return
	}
	leaderGauge.Set(0)
	c.mu.Lock()
	c.usage.reset()
	c.mu.Unlock()
}

// ownLease makes the controller's ServiceAccount an owner of the election Lease (see package
// owner), so it goes with the installation; best effort, since leading does not need it.
func (c *controller) ownLease(ctx context.Context) {
	logger := klog.FromContext(ctx)
	ref, err := owner.ServiceAccount(ctx, c.client, c.opts.Namespace)
	if err != nil || ref == nil {
		if err != nil {
			logger.Error(err, "The election Lease will not be garbage-collected with the ServiceAccount")
		}
		return
	}
	leases := c.client.CoordinationV1().Leases(c.opts.Namespace)
	err = retry.RetryOnConflict(retry.DefaultRetry, func() error {
		l, err := leases.Get(ctx, c.opts.LeaseName, metav1.GetOptions{})
		if err != nil || !owner.Set(l, ref) {
			return err
		}
		_, err = leases.Update(ctx, l, metav1.UpdateOptions{})
		return err
	})
	if err != nil {
		logger.Error(err, "Could not make the ServiceAccount own the election Lease", "lease", c.opts.LeaseName)
	}
}
