package snapshot

import (
	"fmt"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/tools/cache"

	mlbinformers "github.com/herald-lb/herald/config/metallb/client/informers/externalversions"
	metallbv1beta1 "github.com/herald-lb/herald/config/metallb/v1beta1"
)

// Sources are the informers the builder follows. A nil informer is not watched (a speaker in
// a pure-L2 cluster may leave out BGP resources, for example).
type Sources struct {
	Nodes, Services, EndpointSlices cache.SharedIndexInformer
	// Leases should be limited to the speaker namespace.
	Leases                                                  cache.SharedIndexInformer
	Pools, L2Advertisements, BGPAdvertisements, Communities cache.SharedIndexInformer
	L2Statuses, BGPStatuses                                 cache.SharedIndexInformer
}

// SourcesFrom takes the informers from the factories: kube for cluster-wide core objects,
// speakerNS for Leases (a factory limited to the speaker namespace), metallb for metallb.io
// resources. Call it before starting the factories.
func SourcesFrom(kube, speakerNS informers.SharedInformerFactory, metallb mlbinformers.SharedInformerFactory) Sources {
	m := metallb.Metallb().V1beta1()
	return Sources{
		Nodes:             kube.Core().V1().Nodes().Informer(),
		Services:          kube.Core().V1().Services().Informer(),
		EndpointSlices:    kube.Discovery().V1().EndpointSlices().Informer(),
		Leases:            speakerNS.Coordination().V1().Leases().Informer(),
		Pools:             m.IPAddressPools().Informer(),
		L2Advertisements:  m.L2Advertisements().Informer(),
		BGPAdvertisements: m.BGPAdvertisements().Informer(),
		Communities:       m.Communities().Informer(),
		L2Statuses:        m.ServiceL2Statuses().Informer(),
		BGPStatuses:       m.ServiceBGPStatuses().Informer(),
	}
}

// HasSynced returns a function reporting whether every source has synced; no decision may be
// taken before that.
func (s Sources) HasSynced() []cache.InformerSynced {
	var out []cache.InformerSynced
	for _, inf := range s.all() {
		if inf != nil {
			out = append(out, inf.HasSynced)
		}
	}
	return out
}

func (s Sources) all() []cache.SharedIndexInformer {
	return []cache.SharedIndexInformer{s.Nodes, s.Services, s.EndpointSlices, s.Leases, s.Pools,
		s.L2Advertisements, s.BGPAdvertisements, s.Communities, s.L2Statuses, s.BGPStatuses}
}

// Watch feeds the builder from the sources' events.
func (b *Builder) Watch(s Sources) error {
	type binding struct {
		inf    cache.SharedIndexInformer
		set    func(obj any)
		delete func(obj any)
	}
	bindings := []binding{
		{s.Nodes, typed(b.SetNode), typed(func(n *corev1.Node) { b.DeleteNode(n.Name) })},
		{s.Services, typed(b.SetService), typed(func(o *corev1.Service) { b.DeleteService(o.Namespace, o.Name) })},
		{s.EndpointSlices, typed(b.SetEndpointSlice), typed(func(o *discoveryv1.EndpointSlice) {
			b.DeleteEndpointSlice(o.Namespace, o.Name, o.Labels[discoveryv1.LabelServiceName])
		})},
		{s.Leases, typed(b.SetLease), typed(func(o *coordinationv1.Lease) { b.DeleteLease(o.Namespace, o.Name) })},
		{s.Pools, typed(b.SetPool), typed(func(o *metallbv1beta1.IPAddressPool) { b.DeletePool(o.Name) })},
		{s.L2Advertisements, typed(b.SetL2Advertisement), typed(func(o *metallbv1beta1.L2Advertisement) { b.DeleteL2Advertisement(o.Namespace, o.Name) })},
		{s.BGPAdvertisements, typed(b.SetBGPAdvertisement), typed(func(o *metallbv1beta1.BGPAdvertisement) { b.DeleteBGPAdvertisement(o.Namespace, o.Name) })},
		{s.Communities, typed(b.SetCommunity), typed(func(o *metallbv1beta1.Community) { b.DeleteCommunity(o.Namespace, o.Name) })},
		{s.L2Statuses, typed(b.SetL2Status), typed(func(o *metallbv1beta1.ServiceL2Status) { b.DeleteL2Status(o.Namespace, o.Name) })},
		{s.BGPStatuses, typed(b.SetBGPStatus), typed(func(o *metallbv1beta1.ServiceBGPStatus) { b.DeleteBGPStatus(o.Namespace, o.Name) })},
	}
	for _, bd := range bindings {
		if bd.inf == nil {
			continue
		}
		set, del := bd.set, bd.delete
		_, err := bd.inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
			AddFunc:    func(obj any) { set(obj) },
			UpdateFunc: func(_, obj any) { set(obj) },
			DeleteFunc: func(obj any) {
				if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
					obj = t.Obj
				}
				del(obj)
			},
		})
		if err != nil {
			return fmt.Errorf("snapshot: watching: %w", err)
		}
	}
	return nil
}

// typed adapts a handler of *T to informer objects; objects of other types are ignored.
func typed[T any](fn func(*T)) func(any) {
	return func(obj any) {
		if o, ok := obj.(*T); ok {
			fn(o)
		}
	}
}
