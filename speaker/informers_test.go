package speaker

import (
	"reflect"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/tools/cache"

	"github.com/herald-lb/herald/snapshot"
)

func ptrTo[T any](v T) *T { return &v }

// fatMeta is metadata as a real cluster returns it: managed fields, owner references and
// annotations nobody in Herald reads.
func fatMeta(ns, name string, labels, annotations map[string]string) metav1.ObjectMeta {
	a := map[string]string{corev1.LastAppliedConfigAnnotation: `{"big":"json"}`, "team.example/owner": "blue"}
	for k, v := range annotations {
		a[k] = v
	}
	return metav1.ObjectMeta{Namespace: ns, Name: name, UID: types.UID("uid-" + ns + "-" + name), ResourceVersion: "42",
		Labels: labels, Annotations: a,
		ManagedFields:   []metav1.ManagedFieldsEntry{{Manager: "kubectl", Operation: metav1.ManagedFieldsOperationApply}},
		OwnerReferences: []metav1.OwnerReference{{APIVersion: "v1", Kind: "Service", Name: name, UID: "owner"}}}
}

func fatObjects() (svcs []*corev1.Service, slices []*discoveryv1.EndpointSlice, nodes []*corev1.Node) {
	class := "herald.dev/l2"
	for i, s := range []struct {
		name, ip string
		local    bool
		class    *string
	}{{"web", "192.0.2.10", true, nil}, {"db", "192.0.2.11", false, &class}, {"shared", "192.0.2.10", false, nil}} {
		svc := &corev1.Service{
			ObjectMeta: fatMeta("ns", s.name, map[string]string{"app": s.name}, map[string]string{snapshot.AnnotationAllocatedFromPool: "pool-a"}),
			Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer, ClusterIP: "198.19.0.1", ClusterIPs: []string{"198.19.0.1"},
				Ports: []corev1.ServicePort{{Port: 80}}, Selector: map[string]string{"app": s.name}, LoadBalancerClass: s.class,
				ExternalTrafficPolicy: corev1.ServiceExternalTrafficPolicyCluster},
			Status: corev1.ServiceStatus{
				LoadBalancer: corev1.LoadBalancerStatus{Ingress: []corev1.LoadBalancerIngress{{IP: s.ip, IPMode: ptrTo(corev1.LoadBalancerIPModeVIP)}}},
				Conditions:   []metav1.Condition{{Type: "herald.dev/AddressAllocated", Status: metav1.ConditionTrue, Message: "assigned"}},
			},
		}
		if s.local {
			svc.Spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyLocal
		}
		svcs = append(svcs, svc)
		t, f := true, false
		slices = append(slices, &discoveryv1.EndpointSlice{
			ObjectMeta:  fatMeta("ns", s.name+"-abc", map[string]string{discoveryv1.LabelServiceName: s.name, discoveryv1.LabelManagedBy: "x"}, nil),
			AddressType: discoveryv1.AddressTypeIPv4,
			Ports:       []discoveryv1.EndpointPort{{Port: ptrTo(int32(8080))}},
			Endpoints: []discoveryv1.Endpoint{
				{Addresses: []string{"10.0.0.1"}, NodeName: ptrTo("node-1"), Zone: ptrTo("z"), Conditions: discoveryv1.EndpointConditions{Ready: &t}},
				{Addresses: []string{"10.0.0.2"}, NodeName: ptrTo("node-2"), Conditions: discoveryv1.EndpointConditions{Ready: &f, Serving: &t, Terminating: &f}},
				{Addresses: []string{"10.0.0.3"}, NodeName: ptrTo("node-3"), Conditions: discoveryv1.EndpointConditions{Ready: &f, Serving: &t, Terminating: &t}},
				{Addresses: []string{"10.0.0.4"}, Conditions: discoveryv1.EndpointConditions{}},
			}[:1+i%4+1],
		})
	}
	for i, ready := range []corev1.ConditionStatus{corev1.ConditionTrue, corev1.ConditionFalse, corev1.ConditionUnknown} {
		nodes = append(nodes, &corev1.Node{
			ObjectMeta: fatMeta("", "node-"+string(rune('1'+i)), map[string]string{"zone": "a", "node.kubernetes.io/exclude-from-external-load-balancers": ""}, nil),
			Spec:       corev1.NodeSpec{Unschedulable: i == 2, Taints: []corev1.Taint{{Key: "k", Effect: corev1.TaintEffectNoSchedule}}},
			Status: corev1.NodeStatus{
				Conditions: []corev1.NodeCondition{
					{Type: corev1.NodeMemoryPressure, Status: corev1.ConditionFalse, Message: "fine"},
					{Type: corev1.NodeReady, Status: ready, Message: "kubelet is posting ready status", Reason: "KubeletReady"},
					{Type: corev1.NodeNetworkUnavailable, Status: corev1.ConditionStatus([]string{"False", "True", "False"}[i])},
				},
				Images:    []corev1.ContainerImage{{Names: []string{"registry.example/big:1"}, SizeBytes: 1 << 30}},
				Addresses: []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: "192.0.2.1"}},
			},
		})
	}
	return svcs, slices, nodes
}

func feedBuilder(svcs []*corev1.Service, slices []*discoveryv1.EndpointSlice, nodes []*corev1.Node, tf func(any) any) *snapshot.Builder {
	b := snapshot.NewBuilder(nil)
	for _, n := range nodes {
		b.SetNode(tf(n.DeepCopy()).(*corev1.Node))
	}
	for _, s := range svcs {
		b.SetService(tf(s.DeepCopy()).(*corev1.Service))
	}
	for _, es := range slices {
		b.SetEndpointSlice(tf(es.DeepCopy()).(*discoveryv1.EndpointSlice))
	}
	return b
}

// What the informers drop must be nothing the snapshot reads: the builder fed stripped
// objects derives exactly what it derives from the objects as the API server sends them.
func TestStripUnreadKeepsEverythingTheSnapshotReads(t *testing.T) {
	svcs, slices, nodes := fatObjects()
	strip := func(o any) any {
		out, err := stripUnread(o)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	full := feedBuilder(svcs, slices, nodes, func(o any) any { return o })
	slim := feedBuilder(svcs, slices, nodes, strip)
	at := time.Now()
	if got, want := slim.Snapshot(at).Nodes(), full.Snapshot(at).Nodes(); !reflect.DeepEqual(got, want) {
		t.Errorf("nodes from stripped objects differ:\n got %+v\nwant %+v", got, want)
	}
	gotUnits, wantUnits := slim.Units(), full.Units()
	if len(wantUnits) == 0 {
		t.Fatal("no units: the fixture is wrong")
	}
	if !reflect.DeepEqual(gotUnits, wantUnits) {
		t.Errorf("units from stripped objects differ:\n got %+v\nwant %+v", gotUnits, wantUnits)
	}
}

func TestStripUnreadDropsWhatIsNotRead(t *testing.T) {
	svcs, slices, nodes := fatObjects()
	for _, obj := range []any{svcs[0], slices[0], nodes[0]} {
		out, err := stripUnread(obj)
		if err != nil {
			t.Fatal(err)
		}
		m := out.(metav1.Object)
		if len(m.GetManagedFields()) > 0 || len(m.GetOwnerReferences()) > 0 {
			t.Errorf("%T kept managed fields or owner references", out)
		}
		if _, ok := m.GetAnnotations()["team.example/owner"]; ok {
			t.Errorf("%T kept an annotation nothing reads", out)
		}
		if m.GetName() == "" || m.GetResourceVersion() == "" || m.GetUID() == "" {
			t.Errorf("%T lost its identity: %+v", out, m)
		}
	}
	s, _ := stripUnread(svcs[0])
	if svc := s.(*corev1.Service); svc.Spec.Ports != nil || svc.Status.Conditions != nil || svc.Spec.ClusterIPs != nil {
		t.Errorf("Service kept unread spec/status fields: %+v", svc)
	}
	n, _ := stripUnread(nodes[0])
	if node := n.(*corev1.Node); node.Status.Images != nil || len(node.Status.Conditions) != 2 || node.Status.Conditions[0].Message != "" {
		t.Errorf("Node kept unread fields: %+v", node.Status)
	}
	es, _ := stripUnread(slices[0])
	if e := es.(*discoveryv1.EndpointSlice); e.Endpoints[0].Addresses != nil || e.Ports != nil || len(e.Labels) != 1 {
		t.Errorf("EndpointSlice kept unread fields: %+v", e)
	}
}

func TestWithoutIndexesDropsTheNamespaceIndex(t *testing.T) {
	f := informers.NewSharedInformerFactory(nil, 0)
	withoutIndexes(f)
	for name, inf := range map[string]cache.SharedIndexInformer{
		"Services": f.Core().V1().Services().Informer(), "Nodes": f.Core().V1().Nodes().Informer(),
		"EndpointSlices": f.Discovery().V1().EndpointSlices().Informer(),
	} {
		if got := inf.GetIndexer().GetIndexers(); len(got) != 0 {
			t.Errorf("%s informer has indexes %v", name, got)
		}
	}
	// The factory's own informers carry the namespace index: the test would notice if
	// withoutIndexes stopped taking effect.
	if got := informers.NewSharedInformerFactory(nil, 0).Core().V1().Services().Informer().GetIndexer().GetIndexers(); len(got) == 0 {
		t.Fatal("the default Services informer has no index; this test no longer checks anything")
	}
}
