//go:build integration

package plugins_test

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"

	mlbclient "github.com/herald-lb/herald/config/metallb/client/clientset/versioned"
	mlbinformers "github.com/herald-lb/herald/config/metallb/client/informers/externalversions"
	metallbv1beta1 "github.com/herald-lb/herald/config/metallb/v1beta1"
	"github.com/herald-lb/herald/framework"
	"github.com/herald-lb/herald/heartbeat"
	"github.com/herald-lb/herald/plugins"
	"github.com/herald-lb/herald/plugins/excludelb"
	"github.com/herald-lb/herald/plugins/interfaces"
	"github.com/herald-lb/herald/plugins/localendpoints"
	"github.com/herald-lb/herald/plugins/nodeready"
	"github.com/herald-lb/herald/snapshot"
	"github.com/herald-lb/herald/test/kubeapi"
)

func TestMain(m *testing.M) { os.Exit(kubeapi.Main(m)) }

// labTestLabel scopes a test's Nodes (cluster-wide objects) to that test's informers.
const labTestLabel = "herald.dev/test"

// cluster is one test's slice of the real API server: a namespace for its namespaced objects
// (which doubles as the speaker namespace), nodes labelled with that namespace, and a
// snapshot builder fed by informers limited to both.
type cluster struct {
	t       *testing.T
	ctx     context.Context
	ns      string
	kube    kubernetes.Interface
	mlb     mlbclient.Interface
	builder *snapshot.Builder
}

func newCluster(t *testing.T) *cluster {
	env := kubeapi.Env(t)
	env.InstallCRDs(t)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	c := &cluster{t: t, ctx: ctx, ns: env.Namespace(t), kube: env.Client(t), builder: snapshot.NewBuilder(nil)}
	var err error
	if c.mlb, err = mlbclient.NewForConfig(env.AdminConfig()); err != nil {
		t.Fatal(err)
	}
	nodes := informers.NewSharedInformerFactoryWithOptions(c.kube, 0, informers.WithTweakListOptions(func(o *metav1.ListOptions) {
		o.LabelSelector = labTestLabel + "=" + c.ns
	}))
	inNS := informers.NewSharedInformerFactoryWithOptions(c.kube, 0, informers.WithNamespace(c.ns))
	mlb := mlbinformers.NewSharedInformerFactoryWithOptions(c.mlb, 0, mlbinformers.WithNamespace(c.ns))
	m := mlb.Metallb().V1beta1()
	watched := []struct {
		kind snapshot.Kind
		inf  cache.SharedIndexInformer
	}{
		{snapshot.KindNode, nodes.Core().V1().Nodes().Informer()},
		{snapshot.KindLease, inNS.Coordination().V1().Leases().Informer()},
		{snapshot.KindService, inNS.Core().V1().Services().Informer()},
		{snapshot.KindEndpointSlice, inNS.Discovery().V1().EndpointSlices().Informer()},
		{snapshot.KindPool, m.IPAddressPools().Informer()},
		{snapshot.KindL2Advertisement, m.L2Advertisements().Informer()},
		{snapshot.KindBGPAdvertisement, m.BGPAdvertisements().Informer()},
		{snapshot.KindCommunity, m.Communities().Informer()},
		{snapshot.KindL2Status, m.ServiceL2Statuses().Informer()},
		{snapshot.KindBGPStatus, m.ServiceBGPStatuses().Informer()},
	}
	var synced []cache.InformerSynced
	for _, w := range watched {
		if _, err := w.inf.AddEventHandler(c.builder.Handler(w.kind, func(err error) { t.Error(err) })); err != nil {
			t.Fatal(err)
		}
		synced = append(synced, w.inf.HasSynced)
	}
	nodes.Start(ctx.Done())
	inNS.Start(ctx.Done())
	mlb.Start(ctx.Done())
	syncDeadline := time.Now().Add(30 * time.Second)
	for i, synced := range synced {
		for !synced() {
			if time.Now().After(syncDeadline) {
				t.Fatalf("informer %d of the snapshot sources did not sync in 30s", i)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	t.Cleanup(func() {
		cancel()
		nodes.Shutdown()
		inNS.Shutdown()
		mlb.Shutdown()
	})
	return c
}

func (c *cluster) nodeName(i int) string { return fmt.Sprintf("%s-node-%02d", c.ns, i) }

// addNode creates a Node with the Ready condition and a fresh heartbeat with the interfaces.
func (c *cluster) addNode(i int, ready corev1.ConditionStatus, cordoned bool, lbls map[string]string, itfs ...framework.Interface) {
	c.t.Helper()
	l := map[string]string{labTestLabel: c.ns}
	for k, v := range lbls {
		l[k] = v
	}
	n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: c.nodeName(i), Labels: l}, Spec: corev1.NodeSpec{Unschedulable: cordoned}}
	n, err := c.kube.CoreV1().Nodes().Create(c.ctx, n, metav1.CreateOptions{})
	if err != nil {
		c.t.Fatal(err)
	}
	c.t.Cleanup(func() { _ = c.kube.CoreV1().Nodes().Delete(context.Background(), n.Name, metav1.DeleteOptions{}) })
	c.setReady(n.Name, ready)
	if len(itfs) == 0 {
		itfs = []framework.Interface{{Name: "eth0", Up: true, Prefixes: []netip.Prefix{netip.MustParsePrefix("192.0.2.200/24")}}}
	}
	lease, err := heartbeat.Encode(heartbeat.Heartbeat{NodeName: n.Name, RenewTime: time.Now(), LeaseDuration: time.Hour, Interfaces: itfs}, c.ns)
	if err != nil {
		c.t.Fatal(err)
	}
	if _, err := c.kube.CoordinationV1().Leases(c.ns).Create(c.ctx, lease, metav1.CreateOptions{}); err != nil {
		c.t.Fatal(err)
	}
}

func (c *cluster) setReady(name string, ready corev1.ConditionStatus) {
	c.t.Helper()
	n, err := c.kube.CoreV1().Nodes().Get(c.ctx, name, metav1.GetOptions{})
	if err != nil {
		c.t.Fatal(err)
	}
	n.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeReady, Status: ready, Reason: "Test", LastHeartbeatTime: metav1.Now(), LastTransitionTime: metav1.Now()}}
	if _, err := c.kube.CoreV1().Nodes().UpdateStatus(c.ctx, n, metav1.UpdateOptions{}); err != nil {
		c.t.Fatal(err)
	}
}

func (c *cluster) addPoolAndAdvertisement(interfaces ...string) {
	c.t.Helper()
	pool := &metallbv1beta1.IPAddressPool{ObjectMeta: metav1.ObjectMeta{Name: "pool", Namespace: c.ns},
		Spec: metallbv1beta1.IPAddressPoolSpec{Addresses: []string{"192.0.2.0/24"}}}
	if _, err := c.mlb.MetallbV1beta1().IPAddressPools(c.ns).Create(c.ctx, pool, metav1.CreateOptions{}); err != nil {
		c.t.Fatal(err)
	}
	adv := &metallbv1beta1.L2Advertisement{ObjectMeta: metav1.ObjectMeta{Name: "l2", Namespace: c.ns},
		Spec: metallbv1beta1.L2AdvertisementSpec{IPAddressPools: []string{"pool"}, Interfaces: interfaces}}
	if _, err := c.mlb.MetallbV1beta1().L2Advertisements(c.ns).Create(c.ctx, adv, metav1.CreateOptions{}); err != nil {
		c.t.Fatal(err)
	}
}

// addService creates a LoadBalancer Service with the IP in its status and an EndpointSlice
// with one ready endpoint on each of the nodes.
func (c *cluster) addService(name, ip string, local bool, endpointNodes ...string) {
	c.t.Helper()
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: c.ns, Annotations: map[string]string{snapshot.AnnotationAllocatedFromPool: "pool"}},
		Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer, Ports: []corev1.ServicePort{{Port: 80}},
			ExternalTrafficPolicy: corev1.ServiceExternalTrafficPolicyCluster},
	}
	if local {
		svc.Spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyLocal
	}
	svc, err := c.kube.CoreV1().Services(c.ns).Create(c.ctx, svc, metav1.CreateOptions{})
	if err != nil {
		c.t.Fatal(err)
	}
	svc.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{{IP: ip}}
	if _, err := c.kube.CoreV1().Services(c.ns).UpdateStatus(c.ctx, svc, metav1.UpdateOptions{}); err != nil {
		c.t.Fatal(err)
	}
	es := &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Name: name + "-eps", Namespace: c.ns, Labels: map[string]string{discoveryv1.LabelServiceName: name}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Endpoints:   endpointsOn(endpointNodes, true),
	}
	if _, err := c.kube.DiscoveryV1().EndpointSlices(c.ns).Create(c.ctx, es, metav1.CreateOptions{}); err != nil {
		c.t.Fatal(err)
	}
}

func endpointsOn(nodes []string, ready bool) []discoveryv1.Endpoint {
	var eps []discoveryv1.Endpoint
	for i, n := range nodes {
		eps = append(eps, discoveryv1.Endpoint{
			Addresses:  []string{fmt.Sprintf("198.51.100.%d", i+1)},
			NodeName:   &n,
			Conditions: discoveryv1.EndpointConditions{Ready: &ready, Serving: &ready, Terminating: ptr(!ready)},
		})
	}
	return eps
}

func ptr[T any](v T) *T { return &v }

func (c *cluster) setEndpoints(service string, ready bool, nodes ...string) {
	c.t.Helper()
	es, err := c.kube.DiscoveryV1().EndpointSlices(c.ns).Get(c.ctx, service+"-eps", metav1.GetOptions{})
	if err != nil {
		c.t.Fatal(err)
	}
	es.Endpoints = endpointsOn(nodes, ready)
	if _, err := c.kube.DiscoveryV1().EndpointSlices(c.ns).Update(c.ctx, es, metav1.UpdateOptions{}); err != nil {
		c.t.Fatal(err)
	}
}

// schedule runs a cycle of the profile for the IP's L2 unit, once the builder's view passes
// ready (the informers deliver asynchronously), and returns the diagnosis.
func (c *cluster) schedule(fw *framework.Framework, ip string, ready func(*framework.Diagnosis) bool) *framework.Diagnosis {
	c.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	var last *framework.Diagnosis
	for time.Now().Before(deadline) {
		for _, u := range c.builder.UnitsFor(netip.MustParseAddr(ip)) {
			if u.Mode != framework.ModeL2 {
				continue
			}
			res := fw.Schedule(c.ctx, c.builder.Snapshot(time.Now()), u)
			if res.Err != nil {
				c.t.Fatalf("cycle for %s: %v", ip, res.Err)
			}
			last = res.Diagnosis()
			if ready(last) {
				return last
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	if last == nil {
		c.t.Fatalf("no unit for %s appeared (builder: %s, errors %v)", ip, c.builder, c.builder.Errors())
	}
	c.t.Fatalf("%s: condition not reached; last: %s", ip, last.Summary)
	return nil
}

func newFramework(t *testing.T, args map[string]framework.PluginArgs) *framework.Framework {
	spec := plugins.DefaultProfile()
	spec.Args = args
	fw, err := framework.NewFramework(plugins.NewInTreeRegistry(), spec, nil)
	if err != nil {
		t.Fatal(err)
	}
	return fw
}

// unitRejected reports whether a PreFilter rejected the whole unit (for example before the
// informers delivered the EndpointSlice).
func unitRejected(d *framework.Diagnosis) bool {
	for _, v := range d.PreFilter {
		if v.Code != framework.Skip.String() {
			return true
		}
	}
	return false
}

func rejectionOf(d *framework.Diagnosis, node string) *framework.Verdict {
	for _, n := range d.Nodes {
		if n.Name == node {
			return n.Rejection
		}
	}
	return nil
}

// TestIntegrationSeed001NotReadyNodes is the seed 001 cluster: 13 nodes, 4 of them NotReady
// and cordoned. No IP may go to one of them, the summary says so, and when the announcing
// node goes NotReady the IP moves.
func TestIntegrationSeed001NotReadyNodes(t *testing.T) {
	c := newCluster(t)
	bad := map[string]bool{}
	for i := 0; i < 13; i++ {
		if i%3 == 1 && len(bad) < 4 {
			c.addNode(i, corev1.ConditionFalse, true, nil)
			bad[c.nodeName(i)] = true
			continue
		}
		c.addNode(i, corev1.ConditionTrue, false, nil)
	}
	c.addPoolAndAdvertisement()
	var ips []string
	for i := 0; i < 12; i++ {
		ip := fmt.Sprintf("192.0.2.%d", 10+i)
		ips = append(ips, ip)
		c.addService(fmt.Sprintf("svc-%d", i), ip, false, c.nodeName(0))
	}
	fw := newFramework(t, nil)
	used := map[string]bool{}
	for _, ip := range ips {
		d := c.schedule(fw, ip, func(d *framework.Diagnosis) bool { return d.NodeCount == 13 && d.FeasibleCount == 9 })
		if len(d.Selected) != 1 || bad[d.Selected[0]] {
			t.Fatalf("%s: selected %v", ip, d.Selected)
		}
		used[d.Selected[0]] = true
		want := fmt.Sprintf("9/13 nodes can announce %s: 4 %s; selected %s", ip, nodeready.ReasonNotReady, d.Selected[0])
		if d.Summary != want {
			t.Fatalf("summary %q, want %q", d.Summary, want)
		}
		t.Log(d.Summary)
	}
	if len(used) < 3 {
		t.Errorf("12 IPs went to only %d node(s): not spread", len(used))
	}

	// The announcing node of the first IP goes NotReady: the IP moves to another good node.
	first := c.schedule(fw, ips[0], func(*framework.Diagnosis) bool { return true }).Selected[0]
	c.setReady(first, corev1.ConditionUnknown)
	d := c.schedule(fw, ips[0], func(d *framework.Diagnosis) bool { return d.FeasibleCount == 8 })
	if len(d.Selected) != 1 || d.Selected[0] == first || bad[d.Selected[0]] {
		t.Fatalf("after %s went NotReady: selected %v", first, d.Selected)
	}
	if !strings.Contains(d.Summary, "5 "+nodeready.ReasonNotReady) {
		t.Fatalf("summary %q", d.Summary)
	}
}

// TestIntegrationLocalEndpoints: with externalTrafficPolicy Local only endpoint nodes may
// announce, the IP follows the endpoint, and with no serving endpoint nobody announces.
func TestIntegrationLocalEndpoints(t *testing.T) {
	c := newCluster(t)
	for i := 0; i < 5; i++ {
		c.addNode(i, corev1.ConditionTrue, false, nil)
	}
	c.addPoolAndAdvertisement()
	ip := "192.0.2.50"
	c.addService("dns", ip, true, c.nodeName(3))
	fw := newFramework(t, nil)

	d := c.schedule(fw, ip, func(d *framework.Diagnosis) bool { return d.NodeCount == 5 && d.FeasibleCount == 1 })
	if !slices.Equal(d.Selected, []string{c.nodeName(3)}) {
		t.Fatalf("selected %v, want the endpoint node %s (%s)", d.Selected, c.nodeName(3), d.Summary)
	}
	if r := rejectionOf(d, c.nodeName(0)); r == nil || r.Reasons[0] != localendpoints.ReasonNoLocalEndpoint {
		t.Fatalf("node without endpoint: %+v", r)
	}

	// The endpoint moves to node 1: so does the IP.
	c.setEndpoints("dns", true, c.nodeName(1))
	d = c.schedule(fw, ip, func(d *framework.Diagnosis) bool {
		return len(d.Selected) == 1 && d.Selected[0] != c.nodeName(3)
	})
	if !slices.Equal(d.Selected, []string{c.nodeName(1)}) || d.FeasibleCount != 1 {
		t.Fatalf("after the endpoint moved: %s", d.Summary)
	}

	// The only endpoint terminates: nobody announces, and the diagnosis says why.
	c.setEndpoints("dns", false, c.nodeName(1))
	d = c.schedule(fw, ip, func(d *framework.Diagnosis) bool { return len(d.Selected) == 0 })
	if len(d.PreFilter) != 1 || d.PreFilter[0].Reasons[0] != localendpoints.ReasonNoServingEndpoint {
		t.Fatalf("no serving endpoint: %+v (%s)", d.PreFilter, d.Summary)
	}
	if want := "0/5 nodes can announce " + ip + ": 5 " + localendpoints.ReasonNoServingEndpoint; d.Summary != want {
		t.Fatalf("summary %q, want %q", d.Summary, want)
	}
}

// TestIntegrationExcludeLB: labelled nodes never announce, unless ignoreExcludeLB.
func TestIntegrationExcludeLB(t *testing.T) {
	c := newCluster(t)
	excluded := map[string]string{excludelb.LabelExcludeLB: "true"}
	c.addNode(0, corev1.ConditionTrue, false, excluded)
	c.addNode(1, corev1.ConditionTrue, false, excluded)
	c.addNode(2, corev1.ConditionTrue, false, nil)
	c.addPoolAndAdvertisement()
	var ips []string
	for i := 0; i < 10; i++ {
		ips = append(ips, fmt.Sprintf("192.0.2.%d", 60+i))
		c.addService(fmt.Sprintf("svc-%d", i), ips[i], false, c.nodeName(2))
	}
	strict := newFramework(t, nil)
	ignoring := newFramework(t, map[string]framework.PluginArgs{excludelb.Name: &excludelb.ExcludeLBArgs{IgnoreExcludeLB: true}})
	fromExcluded := 0
	for _, ip := range ips {
		d := c.schedule(strict, ip, func(d *framework.Diagnosis) bool { return d.NodeCount == 3 && !unitRejected(d) })
		if !slices.Equal(d.Selected, []string{c.nodeName(2)}) || d.FeasibleCount != 1 {
			t.Fatalf("%s with the label honoured: %s", ip, d.Summary)
		}
		if r := rejectionOf(d, c.nodeName(0)); r == nil || r.Plugin != excludelb.Name || r.Reasons[0] != excludelb.ReasonExcluded {
			t.Fatalf("labelled node: %+v", r)
		}
		d = c.schedule(ignoring, ip, func(d *framework.Diagnosis) bool { return d.NodeCount == 3 && !unitRejected(d) })
		if d.FeasibleCount != 3 {
			t.Fatalf("%s with ignoreExcludeLB: %s", ip, d.Summary)
		}
		if d.Selected[0] != c.nodeName(2) {
			fromExcluded++
		}
	}
	if fromExcluded == 0 {
		t.Error("with ignoreExcludeLB no IP of 10 went to a labelled node")
	}
}

// TestIntegrationInterfaces: an advertisement with interfaces [eth1] never picks a node
// without an eth1 (as its heartbeat publishes), nor one whose eth1 is down.
func TestIntegrationInterfaces(t *testing.T) {
	c := newCluster(t)
	eth0 := framework.Interface{Name: "eth0", Up: true, Prefixes: []netip.Prefix{netip.MustParsePrefix("192.0.2.201/24")}}
	eth1 := framework.Interface{Name: "eth1", Up: true, Prefixes: []netip.Prefix{netip.MustParsePrefix("192.0.2.202/24")}}
	eth1Down := eth1
	eth1Down.Up = false
	c.addNode(0, corev1.ConditionTrue, false, nil, eth0, eth1)
	c.addNode(1, corev1.ConditionTrue, false, nil, eth0)
	c.addNode(2, corev1.ConditionTrue, false, nil, eth0, eth1)
	c.addNode(3, corev1.ConditionTrue, false, nil, eth0, eth1Down)
	c.addPoolAndAdvertisement("eth1")
	with := map[string]bool{c.nodeName(0): true, c.nodeName(2): true}
	fw := newFramework(t, nil)
	for i := 0; i < 16; i++ {
		ip := fmt.Sprintf("192.0.2.%d", 100+i)
		c.addService(fmt.Sprintf("svc-%d", i), ip, false, c.nodeName(1))
		d := c.schedule(fw, ip, func(d *framework.Diagnosis) bool { return d.NodeCount == 4 && !unitRejected(d) })
		if len(d.Selected) != 1 || !with[d.Selected[0]] || d.FeasibleCount != 2 {
			t.Fatalf("%s: %s", ip, d.Summary)
		}
		for _, n := range []string{c.nodeName(1), c.nodeName(3)} {
			if r := rejectionOf(d, n); r == nil || r.Reasons[0] != interfaces.ReasonNoAllowedInterface {
				t.Fatalf("%s: node %s: %+v", ip, n, r)
			}
		}
		unit := c.builder.UnitsFor(netip.MustParseAddr(ip))[0]
		if got := chosenInterfaces(t, unit, c.builder.Snapshot(time.Now()), d.Selected[0]); !slices.Equal(got, []string{"eth1"}) {
			t.Fatalf("%s: announce on %v, want [eth1]", ip, got)
		}
	}
}

// chosenInterfaces runs the Interfaces plugin's PreFilter (default args) and returns the
// interfaces its recorded choice names for the node: what the bind plugin announces on.
func chosenInterfaces(t *testing.T, unit *framework.Unit, snap *framework.Snapshot, node string) []string {
	t.Helper()
	args := interfaces.NewArgs()
	args.Default()
	p, err := interfaces.New(args, nil)
	if err != nil {
		t.Fatal(err)
	}
	state := framework.NewCycleState(snap)
	if st := p.(framework.PreFilterPlugin).PreFilter(context.Background(), state, unit); !st.IsSuccess() {
		t.Fatalf("Interfaces PreFilter: %v", st.AsError())
	}
	got, ok := framework.ChosenInterfaces(state, unit, snap.Node(node))
	if !ok {
		t.Fatal("the Interfaces PreFilter recorded no choice")
	}
	return got
}
