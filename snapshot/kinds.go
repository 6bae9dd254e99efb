package snapshot

import (
	"fmt"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/client-go/tools/cache"

	metallbv1beta1 "github.com/herald-lb/herald/config/metallb/v1beta1"
)

// Kind is one kind of object the builder follows. Kinds is the one list of them: the
// speaker's informers and `herald explain`'s one-time lists both go through Set and Delete,
// so the two cannot follow different sets of objects.
type Kind int

// The kinds the builder follows.
const (
	KindNode Kind = iota
	KindLease
	KindService
	KindEndpointSlice
	KindPool
	KindL2Advertisement
	KindBGPAdvertisement
	KindCommunity
	KindL2Status
	KindBGPStatus
)

// Kinds is every kind the builder follows.
var Kinds = []Kind{KindNode, KindLease, KindService, KindEndpointSlice, KindPool, KindL2Advertisement,
	KindBGPAdvertisement, KindCommunity, KindL2Status, KindBGPStatus}

var kindNames = map[Kind]string{
	KindNode: "nodes", KindLease: "leases", KindService: "services", KindEndpointSlice: "endpointslices",
	KindPool: "ipaddresspools.metallb.io", KindL2Advertisement: "l2advertisements.metallb.io",
	KindBGPAdvertisement: "bgpadvertisements.metallb.io", KindCommunity: "communities.metallb.io",
	KindL2Status: "servicel2statuses.metallb.io", KindBGPStatus: "servicebgpstatuses.metallb.io",
}

// String is the kind's resource name, as kubectl spells it.
func (k Kind) String() string {
	if n, ok := kindNames[k]; ok {
		return n
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

// Set adds or updates an object of kind k. An object of another type is an error: it would
// otherwise be dropped without a word.
func (b *Builder) Set(k Kind, obj any) error {
	switch o := obj.(type) {
	case *corev1.Node:
		return b.want(k, KindNode, obj, func() { b.SetNode(o) })
	case *coordinationv1.Lease:
		return b.want(k, KindLease, obj, func() { b.SetLease(o) })
	case *corev1.Service:
		return b.want(k, KindService, obj, func() { b.SetService(o) })
	case *discoveryv1.EndpointSlice:
		return b.want(k, KindEndpointSlice, obj, func() { b.SetEndpointSlice(o) })
	case *metallbv1beta1.IPAddressPool:
		return b.want(k, KindPool, obj, func() { b.SetPool(o) })
	case *metallbv1beta1.L2Advertisement:
		return b.want(k, KindL2Advertisement, obj, func() { b.SetL2Advertisement(o) })
	case *metallbv1beta1.BGPAdvertisement:
		return b.want(k, KindBGPAdvertisement, obj, func() { b.SetBGPAdvertisement(o) })
	case *metallbv1beta1.Community:
		return b.want(k, KindCommunity, obj, func() { b.SetCommunity(o) })
	case *metallbv1beta1.ServiceL2Status:
		return b.want(k, KindL2Status, obj, func() { b.SetL2Status(o) })
	case *metallbv1beta1.ServiceBGPStatus:
		return b.want(k, KindBGPStatus, obj, func() { b.SetBGPStatus(o) })
	}
	return fmt.Errorf("snapshot: %T is not one of %s", obj, k)
}

// Delete removes an object of kind k.
func (b *Builder) Delete(k Kind, obj any) error {
	switch o := obj.(type) {
	case *corev1.Node:
		return b.want(k, KindNode, obj, func() { b.DeleteNode(o.Name) })
	case *coordinationv1.Lease:
		return b.want(k, KindLease, obj, func() { b.DeleteLease(o.Namespace, o.Name) })
	case *corev1.Service:
		return b.want(k, KindService, obj, func() { b.DeleteService(o.Namespace, o.Name) })
	case *discoveryv1.EndpointSlice:
		return b.want(k, KindEndpointSlice, obj, func() {
			b.DeleteEndpointSlice(o.Namespace, o.Name, o.Labels[discoveryv1.LabelServiceName])
		})
	case *metallbv1beta1.IPAddressPool:
		return b.want(k, KindPool, obj, func() { b.DeletePool(o.Name) })
	case *metallbv1beta1.L2Advertisement:
		return b.want(k, KindL2Advertisement, obj, func() { b.DeleteL2Advertisement(o.Namespace, o.Name) })
	case *metallbv1beta1.BGPAdvertisement:
		return b.want(k, KindBGPAdvertisement, obj, func() { b.DeleteBGPAdvertisement(o.Namespace, o.Name) })
	case *metallbv1beta1.Community:
		return b.want(k, KindCommunity, obj, func() { b.DeleteCommunity(o.Namespace, o.Name) })
	case *metallbv1beta1.ServiceL2Status:
		return b.want(k, KindL2Status, obj, func() { b.DeleteL2Status(o.Namespace, o.Name) })
	case *metallbv1beta1.ServiceBGPStatus:
		return b.want(k, KindBGPStatus, obj, func() { b.DeleteBGPStatus(o.Namespace, o.Name) })
	}
	return fmt.Errorf("snapshot: %T is not one of %s", obj, k)
}

func (b *Builder) want(k, is Kind, obj any, apply func()) error {
	if k != is {
		return fmt.Errorf("snapshot: %T is one of %s, not %s", obj, is, k)
	}
	apply()
	return nil
}

// Handler returns informer event handlers that keep the builder's objects of kind k up to
// date; onError receives an object of the wrong type (a wiring mistake).
func (b *Builder) Handler(k Kind, onError func(error)) cache.ResourceEventHandler {
	report := func(err error) {
		if err != nil && onError != nil {
			onError(err)
		}
	}
	return cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { report(b.Set(k, obj)) },
		UpdateFunc: func(_, obj any) { report(b.Set(k, obj)) },
		DeleteFunc: func(obj any) {
			if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				obj = d.Obj
			}
			report(b.Delete(k, obj))
		},
	}
}
