package speaker

import (
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	coreinformers "k8s.io/client-go/informers/core/v1"
	discoveryinformers "k8s.io/client-go/informers/discovery/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
)

// stripUnread is the informers' transform: it keeps only what Herald reads before an object
// enters the cache. Services, EndpointSlices and Nodes, the kinds that number in the
// thousands, are rebuilt from an allowlist of the fields the snapshot reads (see
// snapshot.NodeInfo, serviceOf and ServingByNode), so a field some other tool adds costs
// nothing here; the rest lose managedFields, the last-applied annotation and owner references.
func stripUnread(obj any) (any, error) {
	switch o := obj.(type) {
	case cache.DeletedFinalStateUnknown:
		return obj, nil
	case *corev1.Service:
		return slimService(o), nil
	case *discoveryv1.EndpointSlice:
		return slimEndpointSlice(o), nil
	case *corev1.Node:
		return slimNode(o), nil
	}
	if m, err := meta.Accessor(obj); err == nil {
		m.SetManagedFields(nil)
		m.SetOwnerReferences(nil)
		if a := m.GetAnnotations(); a != nil {
			if _, ok := a[corev1.LastAppliedConfigAnnotation]; ok {
				delete(a, corev1.LastAppliedConfigAnnotation)
				m.SetAnnotations(a)
			}
		}
	}
	return obj, nil
}

// slimMeta keeps an object's identity, its labels (selectors match them) and the named
// annotations.
func slimMeta(m *metav1.ObjectMeta, annotations ...string) metav1.ObjectMeta {
	out := metav1.ObjectMeta{Name: m.Name, Namespace: m.Namespace, UID: m.UID, ResourceVersion: m.ResourceVersion,
		Generation: m.Generation, Labels: m.Labels, DeletionTimestamp: m.DeletionTimestamp}
	for _, k := range annotations {
		if v, ok := m.Annotations[k]; ok {
			if out.Annotations == nil {
				out.Annotations = make(map[string]string, len(annotations))
			}
			out.Annotations[k] = v
		}
	}
	return out
}

func slimService(s *corev1.Service) *corev1.Service {
	out := &corev1.Service{
		ObjectMeta: slimMeta(&s.ObjectMeta),
		Spec: corev1.ServiceSpec{Type: s.Spec.Type, ExternalTrafficPolicy: s.Spec.ExternalTrafficPolicy,
			LoadBalancerClass: s.Spec.LoadBalancerClass},
	}
	if n := len(s.Status.LoadBalancer.Ingress); n > 0 {
		out.Status.LoadBalancer.Ingress = make([]corev1.LoadBalancerIngress, n)
		for i, ing := range s.Status.LoadBalancer.Ingress {
			out.Status.LoadBalancer.Ingress[i] = corev1.LoadBalancerIngress{IP: ing.IP}
		}
	}
	return out
}

func slimEndpointSlice(es *discoveryv1.EndpointSlice) *discoveryv1.EndpointSlice {
	meta := slimMeta(&es.ObjectMeta)
	// Only the Service name label is read; the slice's other labels stay out of the cache.
	meta.Labels = nil
	if name, ok := es.Labels[discoveryv1.LabelServiceName]; ok {
		meta.Labels = map[string]string{discoveryv1.LabelServiceName: name}
	}
	out := &discoveryv1.EndpointSlice{ObjectMeta: meta, AddressType: es.AddressType}
	if len(es.Endpoints) > 0 {
		out.Endpoints = make([]discoveryv1.Endpoint, len(es.Endpoints))
		for i, ep := range es.Endpoints {
			out.Endpoints[i] = discoveryv1.Endpoint{NodeName: ep.NodeName, Conditions: ep.Conditions}
		}
	}
	return out
}

func slimNode(n *corev1.Node) *corev1.Node {
	out := &corev1.Node{ObjectMeta: slimMeta(&n.ObjectMeta), Spec: corev1.NodeSpec{Unschedulable: n.Spec.Unschedulable}}
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady || c.Type == corev1.NodeNetworkUnavailable {
			out.Status.Conditions = append(out.Status.Conditions, corev1.NodeCondition{Type: c.Type, Status: c.Status})
		}
	}
	return out
}

// withoutIndexes registers the factory's informers for the kinds that number in the
// thousands without the namespace index the factory adds by default: the speaker never lists
// by namespace, and the index is a set of every object's key (megabytes at 10,000 Services).
func withoutIndexes(f informers.SharedInformerFactory) {
	none := cache.Indexers{}
	f.InformerFor(&corev1.Service{}, func(c kubernetes.Interface, resync time.Duration) cache.SharedIndexInformer {
		return coreinformers.NewServiceInformer(c, metav1.NamespaceAll, resync, none)
	})
	f.InformerFor(&corev1.Node{}, func(c kubernetes.Interface, resync time.Duration) cache.SharedIndexInformer {
		return coreinformers.NewNodeInformer(c, resync, none)
	})
	f.InformerFor(&discoveryv1.EndpointSlice{}, func(c kubernetes.Interface, resync time.Duration) cache.SharedIndexInformer {
		return discoveryinformers.NewEndpointSliceInformer(c, metav1.NamespaceAll, resync, none)
	})
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
