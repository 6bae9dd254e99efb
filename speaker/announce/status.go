package announce

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
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

// Labels on the ServiceL2Status and ServiceBGPStatus objects, MetalLB's keys and values, so
// tools that select on them keep working.
const (
	LabelNode             = "metallb.io/node"
	LabelServiceName      = "metallb.io/service-name"
	LabelServiceNamespace = "metallb.io/service-namespace"
)

// StatusName is the ServiceL2Status name for a Service's address of ip's family: one object per
// Service and family, named deterministically so that a second writer collides instead of
// creating a duplicate. The objects live in the speaker's namespace, as MetalLB's do, so the
// name carries the Service's namespace; the dots cannot occur in a namespace or Service name,
// which keeps names of different Services apart.
func StatusName(svc framework.ServiceKey, ip netip.Addr) string {
	if ip.Is6() && !ip.Is4In6() {
		return "l2-" + svc.Namespace + "." + svc.Name + ".ipv6"
	}
	return "l2-" + svc.Namespace + "." + svc.Name
}

// L2StatusWriter writes this node's ServiceL2Status objects with the typed client, reading
// the current ones from the informer's lister.
type L2StatusWriter struct {
	node string
	// owner, when set, owns every object created (see package owner).
	owner *metav1.OwnerReference
	// namespace is the speaker's own, where every status object lives.
	namespace string
	client    metallbclient.MetallbV1beta1Interface
	lister    metallblisters.ServiceL2StatusLister

	mu sync.Mutex
	// written remembers the objects this node created, so Retract finds one the lister has
	// not seen yet.
	written map[string]types.UID
}

// NewL2StatusWriter returns a writer for node that keeps its objects in namespace.
func NewL2StatusWriter(node, namespace string, client metallbclient.MetallbV1beta1Interface, lister metallblisters.ServiceL2StatusLister) *L2StatusWriter {
	return &L2StatusWriter{node: node, namespace: namespace, client: client, lister: lister, written: map[string]types.UID{}}
}

var _ StatusWriter = (*L2StatusWriter)(nil)

// Publish implements StatusWriter. An object naming another node is deleted and a new one
// created, because other tools treat status.node as immutable.
func (w *L2StatusWriter) Publish(ctx context.Context, svc framework.ServiceKey, ip netip.Addr, interfaces []string) error {
	name := StatusName(svc, ip)
	cur, err := w.lister.ServiceL2Statuses(w.namespace).Get(name)
	switch {
	case apierrors.IsNotFound(err):
		cur = nil
	case err != nil:
		return err
	}
	if cur != nil && cur.Status.Node == w.node && !w.wrote(cur) {
		// The cache says the object is ours, but not one this process wrote: the cache may
		// lag behind a replacement by another node, so read the object itself.
		cur, err = w.client.ServiceL2Statuses(w.namespace).Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			cur, err = nil, nil
		}
		if err != nil {
			return fmt.Errorf("servicel2status %s/%s: %w", w.namespace, name, err)
		}
		if cur != nil && cur.Status.Node == w.node {
			w.remember(cur)
		}
	}
	for attempt := 0; attempt < 3; attempt++ {
		if cur != nil && cur.Status.Node == w.node {
			return w.updateInterfaces(ctx, cur, interfaces)
		}
		if cur != nil {
			if err := w.delete(ctx, cur); err != nil {
				return err
			}
		}
		created, err := w.create(ctx, svc, ip, interfaces)
		if err == nil {
			w.remember(created)
			return nil
		}
		if !apierrors.IsAlreadyExists(err) {
			return err
		}
		// The lister lags; read the object that is there and decide again.
		if cur, err = w.client.ServiceL2Statuses(w.namespace).Get(ctx, name, metav1.GetOptions{}); err != nil {
			return fmt.Errorf("servicel2status %s/%s: %w", w.namespace, name, err)
		}
	}
	return fmt.Errorf("servicel2status %s/%s: replaced concurrently, will retry", w.namespace, name)
}

func (w *L2StatusWriter) updateInterfaces(ctx context.Context, cur *metallbv1beta1.ServiceL2Status, interfaces []string) error {
	if slices.Equal(interfaceNames(cur.Status.Interfaces), interfaces) {
		return nil
	}
	obj := cur.DeepCopy()
	obj.Status.Interfaces = interfaceInfos(interfaces)
	if _, err := w.client.ServiceL2Statuses(obj.Namespace).UpdateStatus(ctx, obj, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("servicel2status %s/%s: status.interfaces: %w", obj.Namespace, obj.Name, err)
	}
	return nil
}

func (w *L2StatusWriter) create(ctx context.Context, svc framework.ServiceKey, ip netip.Addr, interfaces []string) (*metallbv1beta1.ServiceL2Status, error) {
	obj := &metallbv1beta1.ServiceL2Status{
		ObjectMeta: metav1.ObjectMeta{
			Name:      StatusName(svc, ip),
			Namespace: w.namespace,
			Labels:    map[string]string{LabelNode: w.node, LabelServiceName: svc.Name, LabelServiceNamespace: svc.Namespace},
		},
	}
	owner.Set(obj, w.owner)
	c := w.client.ServiceL2Statuses(w.namespace)
	created, err := c.Create(ctx, obj, metav1.CreateOptions{})
	if err != nil {
		return nil, err
	}
	created.Status = metallbv1beta1.MetalLBServiceL2Status{Node: w.node, ServiceName: svc.Name, ServiceNamespace: svc.Namespace, Interfaces: interfaceInfos(interfaces)}
	updated, err := c.UpdateStatus(ctx, created, metav1.UpdateOptions{})
	if err != nil {
		// Do not leave an object without a node behind.
		_ = c.Delete(ctx, created.Name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &created.UID}})
		return nil, fmt.Errorf("servicel2status %s/%s: status: %w", w.namespace, created.Name, err)
	}
	return updated, nil
}

// delete removes the object if it is still the one read (UID precondition), so a replacement
// another node just created survives.
func (w *L2StatusWriter) delete(ctx context.Context, obj *metallbv1beta1.ServiceL2Status) error {
	uid := obj.UID
	err := w.client.ServiceL2Statuses(obj.Namespace).Delete(ctx, obj.Name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &uid}})
	if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
		return fmt.Errorf("servicel2status %s/%s: delete: %w", obj.Namespace, obj.Name, err)
	}
	w.mu.Lock()
	if w.written[obj.Namespace+"/"+obj.Name] == uid {
		delete(w.written, obj.Namespace+"/"+obj.Name)
	}
	w.mu.Unlock()
	return nil
}

func (w *L2StatusWriter) wrote(obj *metallbv1beta1.ServiceL2Status) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.written[obj.Namespace+"/"+obj.Name] == obj.UID
}

func (w *L2StatusWriter) remember(obj *metallbv1beta1.ServiceL2Status) {
	w.mu.Lock()
	w.written[obj.Namespace+"/"+obj.Name] = obj.UID
	w.mu.Unlock()
}

// Retract implements StatusWriter: it deletes the object only when it names this node.
func (w *L2StatusWriter) Retract(ctx context.Context, svc framework.ServiceKey, ip netip.Addr) error {
	name := StatusName(svc, ip)
	cur, err := w.lister.ServiceL2Statuses(w.namespace).Get(name)
	if err != nil && !apierrors.IsNotFound(err) {
		return err
	}
	if cur != nil && cur.Status.Node == w.node {
		return w.delete(ctx, cur)
	}
	w.mu.Lock()
	uid, mine := w.written[w.namespace+"/"+name]
	if mine && cur != nil && cur.UID != uid {
		// Another node replaced the object this node wrote: nothing of ours is left to
		// delete, so forget it (the map stays bounded by the objects this node holds).
		delete(w.written, w.namespace+"/"+name)
		mine = false
	}
	w.mu.Unlock()
	if mine {
		return w.delete(ctx, &metallbv1beta1.ServiceL2Status{ObjectMeta: metav1.ObjectMeta{Namespace: w.namespace, Name: name, UID: uid}})
	}
	return nil
}

func interfaceInfos(names []string) []metallbv1beta1.InterfaceInfo {
	out := make([]metallbv1beta1.InterfaceInfo, len(names))
	for i, n := range names {
		out[i].Name = n
	}
	return out
}

func interfaceNames(infos []metallbv1beta1.InterfaceInfo) []string {
	out := make([]string, len(infos))
	for i, in := range infos {
		out[i] = in.Name
	}
	return out
}

// WithOwner makes ref the owner of every object the writer creates from now on; call it
// before the writer is used.
func (w *L2StatusWriter) WithOwner(ref *metav1.OwnerReference) *L2StatusWriter {
	w.owner = ref
	return w
}
