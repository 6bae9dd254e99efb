package speaker

import (
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/client-go/tools/cache"

	metallbv1beta1 "github.com/herald-lb/herald/config/metallb/v1beta1"
	"github.com/herald-lb/herald/snapshot"
)

// stripUnread is the informers' transform: it drops what no Herald code reads before the
// object enters the cache, which is most of a large cluster's memory (managedFields, the
// last-applied annotation, node images and volumes).
func stripUnread(obj any) (any, error) {
	if _, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		return obj, nil
	}
	if m, err := meta.Accessor(obj); err == nil {
		m.SetManagedFields(nil)
		if a := m.GetAnnotations(); a != nil {
			if _, ok := a[corev1.LastAppliedConfigAnnotation]; ok {
				delete(a, corev1.LastAppliedConfigAnnotation)
				m.SetAnnotations(a)
			}
		}
	}
	switch o := obj.(type) {
	case *corev1.Node:
		o.Status.Images = nil
		o.Status.VolumesAttached = nil
		o.Status.VolumesInUse = nil
		o.Status.Addresses = nil
		o.Status.Capacity = nil
		o.Status.Allocatable = nil
		o.Status.DaemonEndpoints = corev1.NodeDaemonEndpoints{}
		o.Status.NodeInfo = corev1.NodeSystemInfo{}
		o.Spec.Taints = nil
		for i := range o.Status.Conditions {
			o.Status.Conditions[i].Message = ""
		}
	case *corev1.Service:
		o.Spec.Ports = nil
		o.Spec.Selector = nil
	case *discoveryv1.EndpointSlice:
		o.Ports = nil
		for i := range o.Endpoints {
			o.Endpoints[i].Addresses = nil
			o.Endpoints[i].TargetRef = nil
			o.Endpoints[i].Hints = nil
		}
	}
	return obj, nil
}

// feed returns event handlers that pass objects of one kind to the builder.
func feed[T any](set func(T), del func(T)) cache.ResourceEventHandler {
	return cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { call(obj, set) },
		UpdateFunc: func(_, obj any) { call(obj, set) },
		DeleteFunc: func(obj any) {
			if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				obj = d.Obj
			}
			call(obj, del)
		},
	}
}

func call[T any](obj any, fn func(T)) {
	if o, ok := obj.(T); ok {
		fn(o)
	}
}

// handlers are the builder's feeds, one per kind.
func serviceFeed(b *snapshot.Builder) cache.ResourceEventHandler {
	return feed(b.SetService, func(s *corev1.Service) { b.DeleteService(s.Namespace, s.Name) })
}

func endpointSliceFeed(b *snapshot.Builder) cache.ResourceEventHandler {
	return feed(b.SetEndpointSlice, func(es *discoveryv1.EndpointSlice) {
		b.DeleteEndpointSlice(es.Namespace, es.Name, es.Labels[discoveryv1.LabelServiceName])
	})
}

func nodeFeed(b *snapshot.Builder) cache.ResourceEventHandler {
	return feed(b.SetNode, func(n *corev1.Node) { b.DeleteNode(n.Name) })
}

func leaseFeed(b *snapshot.Builder) cache.ResourceEventHandler {
	return feed(b.SetLease, func(l *coordinationv1.Lease) { b.DeleteLease(l.Namespace, l.Name) })
}

func l2StatusFeed(b *snapshot.Builder) cache.ResourceEventHandler {
	return feed(b.SetL2Status, func(s *metallbv1beta1.ServiceL2Status) { b.DeleteL2Status(s.Namespace, s.Name) })
}

func poolFeed(b *snapshot.Builder) cache.ResourceEventHandler {
	return feed(b.SetPool, func(p *metallbv1beta1.IPAddressPool) { b.DeletePool(p.Name) })
}

func l2AdvertisementFeed(b *snapshot.Builder) cache.ResourceEventHandler {
	return feed(b.SetL2Advertisement, func(a *metallbv1beta1.L2Advertisement) { b.DeleteL2Advertisement(a.Namespace, a.Name) })
}

func bgpAdvertisementFeed(b *snapshot.Builder) cache.ResourceEventHandler {
	return feed(b.SetBGPAdvertisement, func(a *metallbv1beta1.BGPAdvertisement) { b.DeleteBGPAdvertisement(a.Namespace, a.Name) })
}

func communityFeed(b *snapshot.Builder) cache.ResourceEventHandler {
	return feed(b.SetCommunity, func(c *metallbv1beta1.Community) { b.DeleteCommunity(c.Namespace, c.Name) })
}

func bgpStatusFeed(b *snapshot.Builder) cache.ResourceEventHandler {
	return feed(b.SetBGPStatus, func(s *metallbv1beta1.ServiceBGPStatus) { b.DeleteBGPStatus(s.Namespace, s.Name) })
}

// pokeOn returns handlers that call poke for every added, updated or deleted object that
// matches.
func pokeOn(match func(any) bool, poke func()) cache.ResourceEventHandler {
	f := func(obj any) {
		if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
			obj = d.Obj
		}
		if match(obj) {
			poke()
		}
	}
	return cache.ResourceEventHandlerFuncs{AddFunc: f, UpdateFunc: func(_, obj any) { f(obj) }, DeleteFunc: f}
}
