package speaker

import (
	"context"
	"fmt"
	"sync"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	coordinationclient "k8s.io/client-go/kubernetes/typed/coordination/v1"
	"k8s.io/klog/v2"

	"github.com/herald-lb/herald/framework"
	"github.com/herald-lb/herald/heartbeat"
	"github.com/herald-lb/herald/liveness"
	"github.com/herald-lb/herald/owner"
)

// heartbeater renews this node's heartbeat Lease on an interval and remembers how the
// renewals went, so the speaker can freeze (see frozen) while it cannot reach the API server.
type heartbeater struct {
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
	// renewed, when set, is called after every successful renewal.
	renewed func()

	mu sync.Mutex
	// owner, when set, is added to the Lease's owners (see package owner).
	owner    *metav1.OwnerReference
	draining bool
	// fastPath is the fast path's address, published for the others to join, and fastPathID
	// this process's ID on it (empty: none).
	fastPath, fastPathID string
	lease                *coordinationv1.Lease
	// renewals is how the renewals went (see liveness.Renewals); its Duration and Interval
	// are duration and interval.
	renewals liveness.Renewals
}

// run renews until ctx is done; it logs with ctx's logger.
func (h *heartbeater) run(ctx context.Context) {
	t := time.NewTicker(h.interval)
	defer t.Stop()
	for {
		if err := h.attempt(ctx); err != nil && ctx.Err() == nil {
			klog.FromContext(ctx).Error(err, "Heartbeat renewal failed; this node keeps what it announces and changes nothing until a renewal succeeds")
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

// attempt renews once, bounded by the lease duration (a renewal that hangs longer is of no
// use), and records the outcome for frozen.
func (h *heartbeater) attempt(ctx context.Context) error {
	h.mu.Lock()
	h.renewals.Duration, h.renewals.Interval = h.duration, h.interval
	h.renewals.Started(h.now())
	h.mu.Unlock()
	actx, cancel := context.WithTimeout(ctx, h.duration)
	defer cancel()
	err := h.renew(actx)
	h.mu.Lock()
	h.renewals.Finished(err)
	h.mu.Unlock()
	if err == nil && h.renewed != nil {
		h.renewed()
	}
	return err
}

// frozen says why this node must neither claim nor withdraw now ("" when it may), given the
// renew time of its own heartbeat as its snapshot shows it (seen); see liveness.Renewals.
func (h *heartbeater) frozen(seen time.Time) string {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.renewals.Duration, h.renewals.Interval = h.duration, h.interval
	return h.renewals.Frozen(h.now(), seen)
}

// settling reports whether this node is frozen only while it settles, and since when lapsed
// heartbeats count as alive in what it may claim; see liveness.Renewals.Settling.
func (h *heartbeater) settling(seen time.Time) (liveness.Doubt, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.renewals.Duration, h.renewals.Interval = h.duration, h.interval
	d, ok := h.renewals.Settling(h.now(), seen)
	d.Self = h.node
	return d, ok
}

// endSettle ends the settle now; see liveness.Renewals.EndSettle.
func (h *heartbeater) endSettle() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.renewals.EndSettle(h.now())
}

// settleAt is when frozen can next turn "" without a renewal: the end of the grace after an
// outage; zero when it is not waiting for one.
func (h *heartbeater) settleAt() time.Time {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.renewals.SettleAt()
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
		Interfaces: itfs, Announcers: anns, FastPath: h.fastPath, FastPathID: h.fastPathID}
	prev, own := h.lease, h.owner
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
		owner.Set(l, own)
		written, err = leases.Create(ctx, l, metav1.CreateOptions{})
		if err != nil {
			return fmt.Errorf("lease %s/%s: create: %w", h.namespace, l.Name, err)
		}
	} else {
		l := prev.DeepCopy()
		if err := heartbeat.EncodeInto(l, hb); err != nil {
			return err
		}
		owner.Set(l, own) // a Lease written before the speaker had an owner

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
	defer h.mu.Unlock()
	// The renew time as stored (microseconds), which is what the watch will deliver.
	stored := hb.RenewTime
	if written.Spec.RenewTime != nil {
		stored = written.Spec.RenewTime.Time
	}
	h.renewals.Duration, h.renewals.Interval = h.duration, h.interval
	h.renewals.Succeeded(hb.RenewTime, stored)
	h.lease = written
	return nil
}

// setFastPath publishes the fast path's address and this process's ID on it from the next
// renewal on.
func (h *heartbeater) setFastPath(addr, id string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.fastPath, h.fastPathID = addr, id
}

// setOwner makes ref an owner of the Lease from the next renewal on.
func (h *heartbeater) setOwner(ref *metav1.OwnerReference) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.owner = ref
}
