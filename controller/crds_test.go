package controller

import (
	"testing"

	"k8s.io/client-go/informers"
	k8sfake "k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/tools/record"

	metallbfake "github.com/herald-lb/herald/config/metallb/client/clientset/versioned/fake"
	metallbinformers "github.com/herald-lb/herald/config/metallb/client/informers/externalversions"
)

// The CRD check must cover exactly the metallb.io informers watch registers: a kind it missed
// would hang cache sync silently on a partial CRD install. Asking the factory for a listed
// resource must find the informer watch made (no new one), and the counts must match.
func TestInformerResourcesCoverTheInformers(t *testing.T) {
	kube, mlb := k8sfake.NewClientset(), metallbfake.NewSimpleClientset()
	c := newController(kube, mlb, DefaultOptions(), record.NewFakeRecorder(10))
	defer c.queue.ShutDown()
	kubeFactory := informers.NewSharedInformerFactory(kube, 0)
	poolFactory := metallbinformers.NewSharedInformerFactory(mlb, 0)
	if err := c.watch(kubeFactory, poolFactory); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	defer func() {
		close(stop)
		poolFactory.Shutdown()
	}()
	poolFactory.Start(stop)
	registered := len(poolFactory.WaitForCacheSync(stop))
	for _, r := range informerResources {
		if _, err := poolFactory.ForResource(r); err != nil {
			t.Fatalf("%s: %v", r, err)
		}
	}
	poolFactory.Start(stop)
	after := len(poolFactory.WaitForCacheSync(stop))
	if registered != len(informerResources) || after != registered {
		t.Fatalf("watch registers %d metallb.io informers, informerResources lists %d, and asking for those made %d in all: the lists differ",
			registered, len(informerResources), after)
	}
}
