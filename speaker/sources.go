package speaker

import (
	"context"
	"fmt"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"

	metallbclient "github.com/herald-lb/herald/config/metallb/client/clientset/versioned"
	metallbinformers "github.com/herald-lb/herald/config/metallb/client/informers/externalversions"
	"github.com/herald-lb/herald/heartbeat"
	"github.com/herald-lb/herald/snapshot"
)

// factories are the speaker's informer factories, one per scope the objects live in.
type factories struct {
	// core is cluster-wide Services, EndpointSlices and Nodes; leases the heartbeat Leases
	// in Herald's namespace; status Herald's status objects there; config the metallb.io
	// configuration in the configuration namespace.
	core, leases informers.SharedInformerFactory
	status       metallbinformers.SharedInformerFactory
	config       metallbinformers.SharedInformerFactory
}

// lister lists, once, the objects the factories watch: `herald explain` schedules from them
// what a speaker would from its informers.
type lister struct {
	kube                       kubernetes.Interface
	mlb                        metallbclient.Interface
	namespace, configNamespace string
}

// source is where the speaker's informer of one snapshot kind comes from, and how explain
// lists the same objects.
type source struct {
	kind     snapshot.Kind
	informer func(factories) cache.SharedIndexInformer
	list     func(context.Context, lister) (runtime.Object, error)
}

var all = metav1.ListOptions{}

// heartbeatSelector selects the heartbeat Leases among the Leases of Herald's namespace.
func heartbeatSelector() string {
	return labels.SelectorFromSet(labels.Set{heartbeat.LabelHeartbeat: heartbeat.LabelValueSpeaker}).String()
}

// sources is the one list of what the snapshot follows, in snapshot.Kinds order (a test
// holds the two together).
var sources = []source{
	{snapshot.KindNode,
		func(f factories) cache.SharedIndexInformer { return f.core.Core().V1().Nodes().Informer() },
		func(ctx context.Context, l lister) (runtime.Object, error) {
			return l.kube.CoreV1().Nodes().List(ctx, all)
		}},
	{snapshot.KindLease,
		func(f factories) cache.SharedIndexInformer { return f.leases.Coordination().V1().Leases().Informer() },
		func(ctx context.Context, l lister) (runtime.Object, error) {
			return l.kube.CoordinationV1().Leases(l.namespace).List(ctx, metav1.ListOptions{LabelSelector: heartbeatSelector()})
		}},
	{snapshot.KindService,
		func(f factories) cache.SharedIndexInformer { return f.core.Core().V1().Services().Informer() },
		func(ctx context.Context, l lister) (runtime.Object, error) {
			return l.kube.CoreV1().Services("").List(ctx, all)
		}},
	{snapshot.KindEndpointSlice,
		func(f factories) cache.SharedIndexInformer {
			return f.core.Discovery().V1().EndpointSlices().Informer()
		},
		func(ctx context.Context, l lister) (runtime.Object, error) {
			return l.kube.DiscoveryV1().EndpointSlices("").List(ctx, all)
		}},
	{snapshot.KindPool,
		func(f factories) cache.SharedIndexInformer {
			return f.config.Metallb().V1beta1().IPAddressPools().Informer()
		},
		func(ctx context.Context, l lister) (runtime.Object, error) {
			return l.mlb.MetallbV1beta1().IPAddressPools(l.configNamespace).List(ctx, all)
		}},
	{snapshot.KindL2Advertisement,
		func(f factories) cache.SharedIndexInformer {
			return f.config.Metallb().V1beta1().L2Advertisements().Informer()
		},
		func(ctx context.Context, l lister) (runtime.Object, error) {
			return l.mlb.MetallbV1beta1().L2Advertisements(l.configNamespace).List(ctx, all)
		}},
	{snapshot.KindBGPAdvertisement,
		func(f factories) cache.SharedIndexInformer {
			return f.config.Metallb().V1beta1().BGPAdvertisements().Informer()
		},
		func(ctx context.Context, l lister) (runtime.Object, error) {
			return l.mlb.MetallbV1beta1().BGPAdvertisements(l.configNamespace).List(ctx, all)
		}},
	{snapshot.KindCommunity,
		func(f factories) cache.SharedIndexInformer {
			return f.config.Metallb().V1beta1().Communities().Informer()
		},
		func(ctx context.Context, l lister) (runtime.Object, error) {
			return l.mlb.MetallbV1beta1().Communities(l.configNamespace).List(ctx, all)
		}},
	{snapshot.KindL2Status,
		func(f factories) cache.SharedIndexInformer {
			return f.status.Metallb().V1beta1().ServiceL2Statuses().Informer()
		},
		func(ctx context.Context, l lister) (runtime.Object, error) {
			return l.mlb.MetallbV1beta1().ServiceL2Statuses(l.namespace).List(ctx, all)
		}},
	{snapshot.KindBGPStatus,
		func(f factories) cache.SharedIndexInformer {
			return f.status.Metallb().V1beta1().ServiceBGPStatuses().Informer()
		},
		func(ctx context.Context, l lister) (runtime.Object, error) {
			return l.mlb.MetallbV1beta1().ServiceBGPStatuses(l.namespace).List(ctx, all)
		}},
}

// ListBuilder lists, once, every object the speakers read and returns a builder holding them:
// `herald explain` schedules from it exactly what a speaker would from its informers.
// namespace is Herald's own (heartbeat Leases, status objects), configNamespace the one the
// metallb.io configuration is read from.
func ListBuilder(ctx context.Context, client kubernetes.Interface, mlb metallbclient.Interface, namespace, configNamespace string) (*snapshot.Builder, error) {
	l := lister{kube: client, mlb: mlb, namespace: namespace, configNamespace: configNamespace}
	b := snapshot.NewBuilder(nil)
	for _, src := range sources {
		list, err := src.list(ctx, l)
		if err != nil {
			return nil, fmt.Errorf("listing %s: %w", src.kind, err)
		}
		items, err := meta.ExtractList(list)
		if err != nil {
			return nil, fmt.Errorf("listing %s: %w", src.kind, err)
		}
		for _, it := range items {
			if err := b.Set(src.kind, it); err != nil {
				return nil, err
			}
		}
	}
	return b, nil
}
