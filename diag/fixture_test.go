package diag

import (
	"net/netip"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	metallbv1beta1 "github.com/herald-lb/herald/config/metallb/v1beta1"
	"github.com/herald-lb/herald/framework"
	"github.com/herald-lb/herald/heartbeat"
)

const ns = "herald-system"

var now = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// healthy returns a cluster with no problem: two Ready nodes with speakers and heartbeats, a
// controller, a pool of four addresses covered by an L2Advertisement, and one Service with an
// address, a serving endpoint and a ServiceL2Status.
func healthy() *Cluster {
	c := &Cluster{Namespace: ns, Now: now, LoadBalancerClass: "herald.dev/herald", HandleNoClass: true}
	for _, r := range RequiredCRDs {
		c.CRDs = append(c.CRDs, CRDState{Name: r.Resource + "." + Group, Version: r.Version, Installed: true, Established: true, Served: true})
	}
	for _, n := range []string{"n1", "n2"} {
		c.Nodes = append(c.Nodes, node(n, corev1.ConditionTrue))
		c.Leases = append(c.Leases, lease(n, now.Add(-time.Second), "eth0"))
		c.Pods = append(c.Pods, pod("speaker-"+n, ComponentSpeaker, n, true))
	}
	c.Pods = append(c.Pods, pod("controller-0", ComponentControl, "n1", true))
	c.Pools = []metallbv1beta1.IPAddressPool{pool("default", "192.0.2.10-192.0.2.13")}
	c.L2Advertisements = []metallbv1beta1.L2Advertisement{{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "l2"},
		Spec:       metallbv1beta1.L2AdvertisementSpec{IPAddressPools: []string{"default"}, Interfaces: []string{"eth0"}},
	}}
	c.Services = []corev1.Service{service("web", "192.0.2.10")}
	c.EndpointSlices = []discoveryv1.EndpointSlice{slice("web", "n1")}
	c.L2Statuses = []metallbv1beta1.ServiceL2Status{l2Status("web", "n1")}
	return c
}

func node(name string, ready corev1.ConditionStatus) corev1.Node {
	return corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"kubernetes.io/hostname": name}},
		Status:     corev1.NodeStatus{Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: ready}}},
	}
}

func lease(node string, renewed time.Time, itfs ...string) coordinationv1.Lease {
	var is []framework.Interface
	for _, name := range itfs {
		is = append(is, framework.Interface{Name: name, Up: true, Prefixes: []netip.Prefix{netip.MustParsePrefix("192.0.2.1/24")}})
	}
	l, err := heartbeat.Encode(heartbeat.Heartbeat{NodeName: node, RenewTime: renewed, LeaseDuration: 15 * time.Second, Interfaces: is}, ns)
	if err != nil {
		panic(err)
	}
	return *l
}

func pod(name, component, node string, ready bool) corev1.Pod {
	status := corev1.ConditionFalse
	if ready {
		status = corev1.ConditionTrue
	}
	return corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: map[string]string{LabelName: NameHerald, LabelComponent: component}},
		Spec:       corev1.PodSpec{NodeName: node, Containers: []corev1.Container{{Name: component, Image: "herald"}}},
		Status: corev1.PodStatus{
			Phase:             corev1.PodRunning,
			Conditions:        []corev1.PodCondition{{Type: corev1.PodReady, Status: status}},
			ContainerStatuses: []corev1.ContainerStatus{{Name: component, Ready: ready}},
		},
	}
}

func pool(name string, addrs ...string) metallbv1beta1.IPAddressPool {
	return metallbv1beta1.IPAddressPool{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, CreationTimestamp: metav1.NewTime(now.Add(-time.Hour))},
		Spec:       metallbv1beta1.IPAddressPoolSpec{Addresses: addrs},
	}
}

func service(name string, ips ...string) corev1.Service {
	s := corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name},
		Spec: corev1.ServiceSpec{
			Type: corev1.ServiceTypeLoadBalancer, Selector: map[string]string{"app": name},
			ExternalTrafficPolicy: corev1.ServiceExternalTrafficPolicyCluster,
		},
	}
	for _, ip := range ips {
		s.Status.LoadBalancer.Ingress = append(s.Status.LoadBalancer.Ingress, corev1.LoadBalancerIngress{IP: ip})
	}
	return s
}

func slice(svc string, nodes ...string) discoveryv1.EndpointSlice {
	es := discoveryv1.EndpointSlice{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: svc + "-x", Labels: map[string]string{"kubernetes.io/service-name": svc}}}
	for _, n := range nodes {
		n := n
		es.Endpoints = append(es.Endpoints, discoveryv1.Endpoint{Addresses: []string{"10.0.0.1"}, NodeName: &n})
	}
	return es
}

func l2Status(svc, node string) metallbv1beta1.ServiceL2Status {
	return metallbv1beta1.ServiceL2Status{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "l2-" + svc},
		Status:     metallbv1beta1.MetalLBServiceL2Status{Node: node, ServiceName: svc, ServiceNamespace: "default"},
	}
}

func kubeVIPSpec(env ...corev1.EnvVar) corev1.PodTemplateSpec {
	return corev1.PodTemplateSpec{Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "kube-vip", Image: "ghcr.io/kube-vip/kube-vip:v0.8.0", Env: env}}}}
}

func daemonSet(namespace, name string, tmpl corev1.PodTemplateSpec) appsv1.DaemonSet {
	return appsv1.DaemonSet{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name}, Spec: appsv1.DaemonSetSpec{Template: tmpl}}
}

// nodeByName returns a pointer into c.Nodes.
func (c *Cluster) node(name string) *corev1.Node {
	for i := range c.Nodes {
		if c.Nodes[i].Name == name {
			return &c.Nodes[i]
		}
	}
	panic(name)
}

func (c *Cluster) pod(name string) *corev1.Pod {
	for i := range c.Pods {
		if c.Pods[i].Name == name {
			return &c.Pods[i]
		}
	}
	panic(name)
}

func (c *Cluster) removePod(name string) {
	for i := range c.Pods {
		if c.Pods[i].Name == name {
			c.Pods = append(c.Pods[:i], c.Pods[i+1:]...)
			return
		}
	}
	panic(name)
}

func (c *Cluster) removeLease(node string) {
	for i := range c.Leases {
		if c.Leases[i].Name == heartbeat.LeaseName(node) {
			c.Leases = append(c.Leases[:i], c.Leases[i+1:]...)
			return
		}
	}
	panic(node)
}
