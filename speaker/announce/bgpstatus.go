package announce

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	metallbclient "github.com/herald-lb/herald/config/metallb/client/clientset/versioned/typed/metallb/v1beta1"
	metallblisters "github.com/herald-lb/herald/config/metallb/client/listers/metallb/v1beta1"
	metallbv1beta1 "github.com/herald-lb/herald/config/metallb/v1beta1"
	"github.com/herald-lb/herald/framework"
	"github.com/herald-lb/herald/owner"
)

// maxNameLength is the longest object name the API server accepts (a DNS subdomain).
const maxNameLength = 253

// BGPStatusName is the ServiceBGPStatus name of a Service advertised by node: one object per
// Service and node, as in MetalLB, named deterministically so each node only ever writes its
// own and a restarted speaker finds what it wrote. The objects live in the speaker's namespace,
// so the name carries the Service's namespace (see StatusName). Over-long names end in a hash.
func BGPStatusName(svc framework.ServiceKey, node string) string {
	name := "bgp-" + svc.Namespace + "." + svc.Name + "." + node
	if len(name) <= maxNameLength {
		return name
	}
	sum := sha256.Sum256([]byte(svc.Namespace + "/" + svc.Name + "/" + node))
	h := hex.EncodeToString(sum[:8])
	// The cut may end a DNS label with '.' or '-', which must be followed by an alphanumeric.
	return strings.TrimRight(name[:maxNameLength-len(h)-1], ".-") + "-" + h
}

// BGPStatusWriter writes this node's ServiceBGPStatus objects. A dual-stack Service has two
// BGP units (one per IP) and one object per node, so the writer keeps, per object, the peers
// each IP is advertised to: the object lists their union and is deleted with the last IP.
type BGPStatusWriter struct {
	node string
	// owner, when set, owns every object created (see package owner).
	owner *metav1.OwnerReference
	// namespace is the speaker's own, where every status object lives.
	namespace string
	client    metallbclient.MetallbV1beta1Interface
	lister    metallblisters.ServiceBGPStatusLister

	mu sync.Mutex
	// held is, per object key, the peers published for each IP.
	held map[string]map[netip.Addr][]string
	// written remembers the objects this process created or updated, by key, so a lagging
	// lister does not make it create twice or miss one to delete.
	written map[string]*metallbv1beta1.ServiceBGPStatus
}

// NewBGPStatusWriter returns a writer for node that keeps its objects in namespace.
func NewBGPStatusWriter(node, namespace string, client metallbclient.MetallbV1beta1Interface, lister metallblisters.ServiceBGPStatusLister) *BGPStatusWriter {
	return &BGPStatusWriter{node: node, namespace: namespace, client: client, lister: lister,
		held: map[string]map[netip.Addr][]string{}, written: map[string]*metallbv1beta1.ServiceBGPStatus{}}
}

var _ StatusWriter = (*BGPStatusWriter)(nil)

// Publish implements StatusWriter: the object names this node and the peers.
func (w *BGPStatusWriter) Publish(ctx context.Context, svc framework.ServiceKey, ip netip.Addr, peers []string) error {
	name := BGPStatusName(svc, w.node)
	key := w.namespace + "/" + name
	w.mu.Lock()
	if w.held[key] == nil {
		w.held[key] = map[netip.Addr][]string{}
	}
	w.held[key][ip] = slices.Clone(peers)
	want := w.unionLocked(key)
	w.mu.Unlock()
	cur, err := w.current(w.namespace, name, false)
	if err != nil {
		return err
	}
	c := w.client.ServiceBGPStatuses(w.namespace)
	if cur != nil && cur.Status.Node != w.node {
		// Not ours (written by hand or by another tool): replace it, since status.node is
		// immutable and this name belongs to this node.
		if err := w.delete(ctx, cur); err != nil {
			return err
		}
		cur = nil
	}
	if cur == nil {
		obj := &metallbv1beta1.ServiceBGPStatus{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: w.namespace,
			Labels: map[string]string{LabelNode: w.node, LabelServiceName: svc.Name, LabelServiceNamespace: svc.Namespace}}}
		owner.Set(obj, w.owner)
		created, err := c.Create(ctx, obj, metav1.CreateOptions{})
		if apierrors.IsAlreadyExists(err) {
			// The lister lags behind an object this node wrote before a restart.
			if cur, err = c.Get(ctx, name, metav1.GetOptions{}); err != nil {
				return fmt.Errorf("servicebgpstatus %s: %w", key, err)
			}
			return w.update(ctx, cur, svc, want)
		}
		if err != nil {
			return fmt.Errorf("servicebgpstatus %s: create: %w", key, err)
		}
		if err := w.update(ctx, created, svc, want); err != nil {
			// Do not leave an object without a node behind.
			_ = c.Delete(ctx, name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &created.UID}})
			w.forget(key)
			return err
		}
		return nil
	}
	return w.update(ctx, cur, svc, want)
}

func (w *BGPStatusWriter) update(ctx context.Context, cur *metallbv1beta1.ServiceBGPStatus, svc framework.ServiceKey, peers []string) error {
	st := metallbv1beta1.MetalLBServiceBGPStatus{Node: w.node, ServiceName: svc.Name, ServiceNamespace: svc.Namespace, Peers: peers}
	if cur.Status.Node == st.Node && cur.Status.ServiceName == st.ServiceName && cur.Status.ServiceNamespace == st.ServiceNamespace &&
		slices.Equal(cur.Status.Peers, peers) {
		return nil
	}
	obj := cur.DeepCopy()
	obj.Status = st
	c := w.client.ServiceBGPStatuses(obj.Namespace)
	updated, err := c.UpdateStatus(ctx, obj, metav1.UpdateOptions{})
	if apierrors.IsConflict(err) {
		// The copy was stale (the lister lags, or another worker of this speaker wrote it
		// just now): read it and try once more.
		var fresh *metallbv1beta1.ServiceBGPStatus
		if fresh, err = c.Get(ctx, obj.Name, metav1.GetOptions{}); err == nil {
			fresh.Status = st
			updated, err = c.UpdateStatus(ctx, fresh, metav1.UpdateOptions{})
		}
	}
	if apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
		// Deleted or changed behind this process's back: read it afresh on the retry.
		w.forget(obj.Namespace + "/" + obj.Name)
	}
	if err != nil {
		return fmt.Errorf("servicebgpstatus %s/%s: status: %w", obj.Namespace, obj.Name, err)
	}
	w.mu.Lock()
	w.written[obj.Namespace+"/"+obj.Name] = updated
	w.mu.Unlock()
	return nil
}

// current returns the object as this process last wrote it when that is newer than the
// lister's copy, the lister's copy otherwise, or nil. When the lister has none, what this
// process wrote is returned only if orWritten: Publish must create the object again when it
// was deleted behind this process's back (the stale-status sweeper deletes the objects of a
// node whose heartbeat lapsed, e.g. while it was frozen), and a lister that merely lags
// behind this process's create costs one AlreadyExists and a Get.
func (w *BGPStatusWriter) current(namespace, name string, orWritten bool) (*metallbv1beta1.ServiceBGPStatus, error) {
	cached, err := w.lister.ServiceBGPStatuses(namespace).Get(name)
	if apierrors.IsNotFound(err) {
		cached, err = nil, nil
	}
	if err != nil {
		return nil, err
	}
	w.mu.Lock()
	mine := w.written[namespace+"/"+name]
	w.mu.Unlock()
	if mine != nil && (cached == nil && orWritten || cached != nil && cached.UID == mine.UID) {
		return mine, nil
	}
	return cached, nil
}

// Retract implements StatusWriter: it drops ip from the object and deletes the object once no
// IP of the Service is advertised by this node.
func (w *BGPStatusWriter) Retract(ctx context.Context, svc framework.ServiceKey, ip netip.Addr) error {
	name := BGPStatusName(svc, w.node)
	key := w.namespace + "/" + name
	w.mu.Lock()
	delete(w.held[key], ip)
	left := len(w.held[key])
	peers := w.unionLocked(key)
	if left == 0 {
		delete(w.held, key)
	}
	w.mu.Unlock()
	cur, err := w.current(w.namespace, name, true)
	if err != nil || cur == nil {
		return err
	}
	if cur.Status.Node != "" && cur.Status.Node != w.node {
		return nil // only the node an object describes removes it
	}
	if left > 0 {
		return w.update(ctx, cur, svc, peers)
	}
	return w.delete(ctx, cur)
}

func (w *BGPStatusWriter) delete(ctx context.Context, obj *metallbv1beta1.ServiceBGPStatus) error {
	uid := obj.UID
	err := w.client.ServiceBGPStatuses(obj.Namespace).Delete(ctx, obj.Name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &uid}})
	if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
		return fmt.Errorf("servicebgpstatus %s/%s: delete: %w", obj.Namespace, obj.Name, err)
	}
	w.forgetUID(obj.Namespace+"/"+obj.Name, uid)
	return nil
}

func (w *BGPStatusWriter) forget(key string) {
	w.mu.Lock()
	delete(w.written, key)
	w.mu.Unlock()
}

func (w *BGPStatusWriter) forgetUID(key string, uid types.UID) {
	w.mu.Lock()
	if m := w.written[key]; m != nil && m.UID == uid {
		delete(w.written, key)
	}
	w.mu.Unlock()
}

func (w *BGPStatusWriter) unionLocked(key string) []string {
	var out []string
	for _, peers := range w.held[key] {
		out = append(out, peers...)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// WithOwner makes ref the owner of every object the writer creates from now on; call it
// before the writer is used.
func (w *BGPStatusWriter) WithOwner(ref *metav1.OwnerReference) *BGPStatusWriter {
	w.owner = ref
	return w
}
