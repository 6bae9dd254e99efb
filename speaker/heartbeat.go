package speaker

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/go-logr/logr"
	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	coordinationclient "k8s.io/client-go/kubernetes/typed/coordination/v1"

	"github.com/herald-lb/herald/framework"
	"github.com/herald-lb/herald/heartbeat"
)

// heartbeater renews this node's heartbeat Lease on an interval and remembers when the last
// renewal succeeded: a speaker whose heartbeat is not current stops claiming new IPs, because
// the others may already consider it dead.
type heartbeater struct {
	log        logr.Logger
	client     coordinationclient.LeasesGetter
	namespace  string
	node       string
	holder     string
	duration   time.Duration
	interval   time.Duration
	interfaces func() ([]framework.Interface, error)
	// announcers is the node's announcer health (nil: not reported).
	announcers func() map[framework.AnnouncerKind]framework.AnnouncerHealth
	now        func() time.Time
	// renewNow, when signalled, renews before the next tick: announcer health changed, and
	// the others should see it now rather than up to an interval later. Only a change writes
	// early, so steady state costs no more writes than the renewals.
	renewNow chan struct{}

	mu        sync.Mutex
	draining  bool
	lastRenew time.Time
	lease     *coordinationv1.Lease
}

// run renews until ctx is done.
func (h *heartbeater) run(ctx context.Context) {
	t := time.NewTicker(h.interval)
	defer t.Stop()
	for {
		if err := h.renew(ctx); err != nil && ctx.Err() == nil {
			h.log.Error(err, "heartbeat renewal failed; not claiming new IPs until it succeeds")
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-h.renewNow:
			t.Reset(h.interval)
		}
	}
}

// poke asks run to renew now; pokes while one is pending merge.
func (h *heartbeater) poke() {
	select {
	case h.renewNow <- struct{}{}:
	default:
	}
}

// current reports whether the last successful renewal is still valid.
func (h *heartbeater) current() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return !h.lastRenew.IsZero() && h.now().Sub(h.lastRenew) < h.duration
}

// isDraining reports whether the speaker announced it is draining.
func (h *heartbeater) isDraining() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.draining
}

// drain marks the Lease draining and renews at once so the others see it now.
func (h *heartbeater) drain(ctx context.Context) error {
	h.mu.Lock()
	h.draining = true
	h.mu.Unlock()
	return h.renew(ctx)
}

// renew writes the heartbeat: an update of the Lease it last wrote, or a create.
func (h *heartbeater) renew(ctx context.Context) error {
	itfs, err := h.interfaces()
	if err != nil {
		return err
	}
	var anns map[framework.AnnouncerKind]framework.AnnouncerHealth
	if h.announcers != nil {
		anns = h.announcers()
	}
	h.mu.Lock()
	hb := heartbeat.Heartbeat{NodeName: h.node, Holder: h.holder, RenewTime: h.now(), LeaseDuration: h.duration, Draining: h.draining,
		Interfaces: itfs, Announcers: anns}
	prev := h.lease
	h.mu.Unlock()
	leases := h.client.Leases(h.namespace)
	var written *coordinationv1.Lease
	if prev == nil {
		prev, err = leases.Get(ctx, heartbeat.LeaseName(h.node), metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			prev, err = nil, nil
		}
		if err != nil {
			return fmt.Errorf("lease %s/%s: %w", h.namespace, heartbeat.LeaseName(h.node), err)
		}
	}
	if prev == nil {
		l, err := heartbeat.Encode(hb, h.namespace)
		if err != nil {
			return err
		}
		written, err = leases.Create(ctx, l, metav1.CreateOptions{})
		if err != nil {
			return fmt.Errorf("lease %s/%s: create: %w", h.namespace, l.Name, err)
		}
	} else {
		l := prev.DeepCopy()
		if err := heartbeat.EncodeInto(l, hb); err != nil {
			return err
		}
		written, err = leases.Update(ctx, l, metav1.UpdateOptions{})
		if err != nil {
			if apierrors.IsConflict(err) || apierrors.IsNotFound(err) {
				h.mu.Lock()
				h.lease = nil // read it again next time
				h.mu.Unlock()
			}
			return fmt.Errorf("lease %s/%s: renew: %w", h.namespace, l.Name, err)
		}
	}
	h.mu.Lock()
	h.lease = written
	h.lastRenew = hb.RenewTime
	h.mu.Unlock()
	return nil
}
