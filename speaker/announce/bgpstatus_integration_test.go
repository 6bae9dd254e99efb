//go:build integration

package announce

import (
	"context"
	"net/netip"
	"slices"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	metallbclient "github.com/herald-lb/herald/config/metallb/client/clientset/versioned"
	metallbinformers "github.com/herald-lb/herald/config/metallb/client/informers/externalversions"
	metallbv1beta1 "github.com/herald-lb/herald/config/metallb/v1beta1"
	"github.com/herald-lb/herald/framework"
	"github.com/herald-lb/herald/test/kubeapi"
)

// TestIntegrationBGPStatusWriter: on the real API server, each node writes its own
// ServiceBGPStatus per Service (status.node, service and peers, MetalLB's labels); a
// dual-stack Service's two IPs share the object, which lists the union of their peers and is
// deleted with the last IP; a node never deletes another node's object.
func TestIntegrationBGPStatusWriter(t *testing.T) {
	env := kubeapi.Env(t)
	env.InstallCRDs(t)
	// The Service's namespace, and the speakers' where the objects live (MetalLB's layout).
	ns, speakerNS := env.Namespace(t), env.Namespace(t)
	mlb, err := metallbclient.NewForConfig(env.AdminConfig())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	f := metallbinformers.NewSharedInformerFactoryWithOptions(mlb, 0, metallbinformers.WithNamespace(speakerNS))
	lister := f.Metallb().V1beta1().ServiceBGPStatuses().Lister()
	f.Start(ctx.Done())
	f.WaitForCacheSync(ctx.Done())

	a := NewBGPStatusWriter("node-a", speakerNS, mlb.MetallbV1beta1(), lister)
	b := NewBGPStatusWriter("node-b", speakerNS, mlb.MetallbV1beta1(), lister)
	svc := framework.ServiceKey{Namespace: ns, Name: "web"}
	v4, v6 := netip.MustParseAddr("203.0.113.10"), netip.MustParseAddr("2001:db8::10")
	api := mlb.MetallbV1beta1().ServiceBGPStatuses(speakerNS)
	get := func(node string) *metallbv1beta1.ServiceBGPStatus {
		t.Helper()
		obj, err := api.Get(ctx, BGPStatusName(svc, node), metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return nil
		}
		if err != nil {
			t.Fatal(err)
		}
		return obj
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}

	must(a.Publish(ctx, svc, v4, []string{"r1"}))
	must(b.Publish(ctx, svc, v4, []string{"r1"}))
	obj := get("node-a")
	if obj == nil || obj.Status.Node != "node-a" || obj.Status.ServiceName != "web" || obj.Status.ServiceNamespace != ns ||
		!slices.Equal(obj.Status.Peers, []string{"r1"}) || obj.Labels[LabelNode] != "node-a" || obj.Labels[LabelServiceName] != "web" ||
		obj.Labels[LabelServiceNamespace] != ns {
		t.Fatalf("node-a's object: %+v", obj)
	}
	if o := get("node-b"); o == nil || o.Status.Node != "node-b" {
		t.Fatalf("node-b's object: %+v", o)
	}

	must(a.Publish(ctx, svc, v6, []string{"r2"}))
	if o := get("node-a"); !slices.Equal(o.Status.Peers, []string{"r1", "r2"}) {
		t.Fatalf("dual-stack peers %v, want the union", o.Status.Peers)
	}
	must(a.Retract(ctx, svc, v4))
	if o := get("node-a"); o == nil || !slices.Equal(o.Status.Peers, []string{"r2"}) {
		t.Fatalf("after the IPv4 IP went: %+v, want the object kept with the IPv6 IP's peers", o)
	}
	must(a.Retract(ctx, svc, v6))
	if o := get("node-a"); o != nil {
		t.Fatalf("after the last IP went the object remains: %+v", o)
	}
	// node-a's writer never touches node-b's object, even once its lister has seen it.
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, err := lister.ServiceBGPStatuses(speakerNS).Get(BGPStatusName(svc, "node-b")); err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	must(a.Retract(ctx, svc, v4))
	if o := get("node-b"); o == nil {
		t.Fatal("node-a's Retract deleted node-b's object")
	}

	// Deleted behind node-b's back (the stale-status sweeper does so while node-b is frozen):
	// once its lister has seen the deletion, node-b's next Publish of the same peers creates
	// the object again.
	gone := get("node-b")
	must(api.Delete(ctx, gone.Name, metav1.DeleteOptions{}))
	deadline = time.Now().Add(5 * time.Second)
	for {
		if _, err := lister.ServiceBGPStatuses(speakerNS).Get(gone.Name); apierrors.IsNotFound(err) || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	must(b.Publish(ctx, svc, v4, []string{"r1"}))
	if o := get("node-b"); o == nil || o.UID == gone.UID || o.Status.Node != "node-b" || !slices.Equal(o.Status.Peers, []string{"r1"}) {
		t.Fatalf("node-b's object after it was deleted and published again: %+v", o)
	}
	must(b.Retract(ctx, svc, v4))
	if o := get("node-b"); o != nil {
		t.Fatalf("node-b's object remains after its Retract: %+v", o)
	}
}
