package speaker

import (
	"context"
	"errors"
	"hash/fnv"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/klog/v2"

	metallbclient "github.com/herald-lb/herald/config/metallb/client/clientset/versioned/typed/metallb/v1beta1"
	metallblisters "github.com/herald-lb/herald/config/metallb/client/listers/metallb/v1beta1"
	"github.com/herald-lb/herald/framework"
)

// staleSweeper deletes the ServiceL2Status and ServiceBGPStatus objects of nodes whose speaker
// heartbeat lapsed. Status objects are written by the node they describe, so a node that dies
// cannot remove its own; exactly one live speaker does it for the cluster: the live node that
// ranks first by a stable hash of its name (sweeperOf), which every speaker computes alike
// from the same heartbeats. Objects are deleted by identity (namespace, name and UID as
// read), wherever they live. Nodes that never had a Herald heartbeat are left alone: their
// objects are not Herald's (MetalLB's speakers write the same kinds).
type staleSweeper struct {
	self     string
	client   metallbclient.MetallbV1beta1Interface
	l2       metallblisters.ServiceL2StatusLister
	bgp      metallblisters.ServiceBGPStatusLister
	snapshot func(time.Time) *framework.Snapshot
	// mayAct is false while this speaker is frozen (its own view of the heartbeats may be
	// stale: after an API outage every heartbeat looks lapsed) or draining.
	mayAct  func() bool
	trigger chan struct{}
}

// poke asks for a sweep; it never blocks.
func (w *staleSweeper) poke() {
	if w == nil {
		return
	}
	select {
	case w.trigger <- struct{}{}:
	default:
	}
}

// run sweeps on every poke until ctx is done; it logs with ctx's logger.
func (w *staleSweeper) run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-w.trigger:
		}
		if err := w.sweep(ctx); err != nil && ctx.Err() == nil {
			klog.FromContext(ctx).Error(err, "Deleting stale status objects; retrying")
			time.AfterFunc(time.Second, w.poke)
		}
	}
}

// sweeperOf is the live node that removes the stale status objects: the one whose name hashes
// lowest (names break ties). Empty when no node is live.
func sweeperOf(nodes []*framework.NodeInfo, t time.Time) string {
	best, bestHash := "", uint64(0)
	for _, n := range nodes {
		if !n.Speaker.AliveAt(t) {
			continue
		}
		h := fnv.New64a()
		_, _ = h.Write([]byte(n.Name))
		v := h.Sum64()
		if best == "" || v < bestHash || v == bestHash && n.Name < best {
			best, bestHash = n.Name, v
		}
	}
	return best
}

// lapsed returns whether node had a Herald heartbeat that is no longer valid at t, or is not
// a node of the cluster any more.
func lapsed(nodes map[string]*framework.NodeInfo, node string, t time.Time) bool {
	n, ok := nodes[node]
	if !ok {
		return true
	}
	return n.Speaker != nil && !n.Speaker.AliveAt(t)
}

// sweep deletes the status objects of lapsed nodes when this node is the sweeper.
func (w *staleSweeper) sweep(ctx context.Context) error {
	if !w.mayAct() {
		return nil
	}
	snap := w.snapshot(time.Now())
	if sweeperOf(snap.Nodes(), snap.Time) != w.self {
		return nil
	}
	nodes := map[string]*framework.NodeInfo{}
	for _, n := range snap.Nodes() {
		nodes[n.Name] = n
	}
	var errs []error
	l2, err := w.l2.List(labels.Everything())
	if err != nil {
		return err
	}
	for _, o := range l2 {
		if o.Status.Node != "" && lapsed(nodes, o.Status.Node, snap.Time) {
			errs = append(errs, w.remove(ctx, "ServiceL2Status", o.Namespace, o.Name, o.UID, o.Status.Node,
				w.client.ServiceL2Statuses(o.Namespace).Delete))
		}
	}
	bgp, err := w.bgp.List(labels.Everything())
	if err != nil {
		return err
	}
	for _, o := range bgp {
		if o.Status.Node != "" && lapsed(nodes, o.Status.Node, snap.Time) {
			errs = append(errs, w.remove(ctx, "ServiceBGPStatus", o.Namespace, o.Name, o.UID, o.Status.Node,
				w.client.ServiceBGPStatuses(o.Namespace).Delete))
		}
	}
	return errors.Join(errs...)
}

// remove deletes one object if it is still the one read (UID precondition): an object that a
// restarted speaker recreated meanwhile is not touched.
func (w *staleSweeper) remove(ctx context.Context, kind, namespace, name string, uid types.UID, node string,
	del func(context.Context, string, metav1.DeleteOptions) error) error {
	logger := klog.FromContext(ctx)
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	err := del(cctx, name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &uid}})
	switch {
	case apierrors.IsNotFound(err) || apierrors.IsConflict(err):
		// Logged too: a second party acting on the same object shows in the logs even when
		// the API server turned it away.
		logger.Info("The status object of a node whose speaker is not alive was already gone or replaced", "kind", kind, "namespace", namespace, "name", name, "node", node)
		return nil
	case err != nil:
		return err
	}
	logger.Info("Deleted the status object of a node whose speaker is not alive", "kind", kind, "namespace", namespace, "name", name, "node", node)
	return nil
}
