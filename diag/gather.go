package diag

import (
	"context"
	"time"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apiextensionsclient "k8s.io/apiextensions-apiserver/pkg/client/clientset/clientset"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	metallbclient "github.com/herald-lb/herald/config/metallb/client/clientset/versioned"
	metallbv1beta1 "github.com/herald-lb/herald/config/metallb/v1beta1"
	metallbv1beta2 "github.com/herald-lb/herald/config/metallb/v1beta2"
)

// Group is the API group of the resources Herald reads.
const Group = "metallb.io"

// RequiredCRDs are the metallb.io resources Herald reads or writes, with the version it uses.
var RequiredCRDs = []struct{ Resource, Version string }{
	{"ipaddresspools", "v1beta1"},
	{"l2advertisements", "v1beta1"},
	{"bgpadvertisements", "v1beta1"},
	{"bgppeers", "v1beta2"},
	{"bfdprofiles", "v1beta1"},
	{"communities", "v1beta1"},
	{"servicel2statuses", "v1beta1"},
	{"servicebgpstatuses", "v1beta1"},
}

// Options say where Herald runs and which Services it owns.
type Options struct {
	// Namespace holds Herald's pods, heartbeat Leases and status objects.
	Namespace string
	// ConfigNamespace holds the metallb.io configuration Herald reads; empty means Namespace.
	ConfigNamespace string
	// LoadBalancerClass and HandleNoClass mirror the controller's flags.
	LoadBalancerClass string
	HandleNoClass     bool
}

// Clients are what Gather reads with. CRDs may be nil: the CRD objects are then not read and
// only discovery says whether a resource is served.
type Clients struct {
	Kube    kubernetes.Interface
	MetalLB metallbclient.Interface
	CRDs    apiextensionsclient.Interface
}

// Gather lists every object the checks read. A list that fails is recorded in
// Cluster.Errors and the rest goes on, so a user without access to one resource still gets
// every other check.
func Gather(ctx context.Context, cl Clients, o Options) *Cluster {
	c := &Cluster{Namespace: o.Namespace, ConfigNamespace: o.ConfigNamespace, LoadBalancerClass: o.LoadBalancerClass, HandleNoClass: o.HandleNoClass, Now: time.Now()}
	if c.ConfigNamespace == "" {
		c.ConfigNamespace = c.Namespace
	}
	c.CRDs = gatherCRDs(ctx, cl)
	all := metav1.ListOptions{}
	core, ns := cl.Kube.CoreV1(), o.Namespace
	ok := func(resource string, err error) bool {
		if err != nil {
			c.Errors = append(c.Errors, GatherError{Resource: resource, Err: err})
		}
		return err == nil
	}
	if l, err := core.Nodes().List(ctx, all); ok("nodes", err) {
		c.Nodes = l.Items
	}
	if l, err := core.Pods("").List(ctx, all); ok("pods", err) {
		c.Pods = l.Items
	}
	if l, err := cl.Kube.AppsV1().DaemonSets("").List(ctx, all); ok("daemonsets.apps", err) {
		c.DaemonSets = l.Items
	}
	if l, err := cl.Kube.AppsV1().Deployments("").List(ctx, all); ok("deployments.apps", err) {
		c.Deployments = l.Items
	}
	if l, err := cl.Kube.CoordinationV1().Leases(ns).List(ctx, all); ok("leases.coordination.k8s.io", err) {
		c.Leases = l.Items
	}
	if l, err := core.Services("").List(ctx, all); ok("services", err) {
		c.Services = l.Items
	}
	if l, err := cl.Kube.DiscoveryV1().EndpointSlices("").List(ctx, all); ok("endpointslices.discovery.k8s.io", err) {
		c.EndpointSlices = l.Items
	}
	// Lease and the advertisements: the speakers' InvalidConfiguration Events.
	for _, kind := range []string{"Service", "BGPPeer", "L2Advertisement", "BGPAdvertisement", "Lease"} {
		sel := metav1.ListOptions{FieldSelector: "involvedObject.kind=" + kind + ",type=Warning"}
		if l, err := core.Events("").List(ctx, sel); ok("events", err) {
			c.Events = append(c.Events, l.Items...)
		}
	}
	gatherMetalLB(ctx, cl.MetalLB, c)
	return c
}

// gatherMetalLB lists the configuration kinds in every namespace: the objects in the
// configuration namespace are Herald's configuration, the others are recorded as ignored.
func gatherMetalLB(ctx context.Context, mlb metallbclient.Interface, c *Cluster) {
	all, ns := metav1.ListOptions{}, c.ConfigNamespace
	m, m2 := mlb.MetallbV1beta1(), mlb.MetallbV1beta2()
	ok := func(resource string, err error) bool {
		if err != nil {
			c.Errors = append(c.Errors, GatherError{Resource: resource + "." + Group, Err: err})
		}
		return err == nil
	}
	ignore := func(kind string, o metav1.Object) bool {
		if o.GetNamespace() == ns {
			return false
		}
		c.Ignored = append(c.Ignored, ObjectRef{Kind: kind, Namespace: o.GetNamespace(), Name: o.GetName()})
		return true
	}
	if l, err := m.IPAddressPools("").List(ctx, all); ok("ipaddresspools", err) {
		c.Pools = keep(l.Items, func(o *metallbv1beta1.IPAddressPool) bool { return !ignore(kindPool, o) })
	}
	if l, err := m.L2Advertisements("").List(ctx, all); ok("l2advertisements", err) {
		c.L2Advertisements = keep(l.Items, func(o *metallbv1beta1.L2Advertisement) bool { return !ignore("L2Advertisement", o) })
	}
	if l, err := m.BGPAdvertisements("").List(ctx, all); ok("bgpadvertisements", err) {
		c.BGPAdvertisements = keep(l.Items, func(o *metallbv1beta1.BGPAdvertisement) bool { return !ignore("BGPAdvertisement", o) })
	}
	if l, err := m2.BGPPeers("").List(ctx, all); ok("bgppeers", err) {
		c.BGPPeers = keep(l.Items, func(o *metallbv1beta2.BGPPeer) bool { return !ignore(kindBGPPeer, o) })
	}
	if l, err := m.BFDProfiles("").List(ctx, all); ok("bfdprofiles", err) {
		c.BFDProfiles = keep(l.Items, func(o *metallbv1beta1.BFDProfile) bool { return !ignore("BFDProfile", o) })
	}
	if l, err := m.Communities("").List(ctx, all); ok("communities", err) {
		keep(l.Items, func(o *metallbv1beta1.Community) bool { return !ignore("Community", o) })
	}
	// Status objects live in the speakers' namespace (MetalLB's place); older Herald
	// versions wrote them beside their Service, so every namespace is listed.
	if l, err := m.ServiceL2Statuses("").List(ctx, all); ok("servicel2statuses", err) {
		c.L2Statuses = l.Items
	}
	if l, err := m.ServiceBGPStatuses("").List(ctx, all); ok("servicebgpstatuses", err) {
		c.BGPStatuses = l.Items
	}
}

// keep returns the items for which pred holds.
func keep[T any](items []T, pred func(*T) bool) []T {
	out := items[:0:0]
	for i := range items {
		if pred(&items[i]) {
			out = append(out, items[i])
		}
	}
	return out
}

// gatherCRDs asks discovery which resources are served and, when it may, reads each CRD.
func gatherCRDs(ctx context.Context, cl Clients) []CRDState {
	served := map[string]bool{}
	for _, v := range []string{"v1beta1", "v1beta2"} {
		l, err := cl.Kube.Discovery().ServerResourcesForGroupVersion(Group + "/" + v)
		if err != nil {
			continue // not served at all
		}
		for _, r := range l.APIResources {
			served[r.Name+"/"+v] = true
		}
	}
	out := make([]CRDState, 0, len(RequiredCRDs))
	for _, r := range RequiredCRDs {
		st := CRDState{Name: r.Resource + "." + Group, Version: r.Version, Served: served[r.Resource+"/"+r.Version]}
		// Without access to the CRD objects, a served resource is installed and established.
		st.Installed, st.Established = st.Served, st.Served
		if cl.CRDs != nil {
			crd, err := cl.CRDs.ApiextensionsV1().CustomResourceDefinitions().Get(ctx, st.Name, metav1.GetOptions{})
			switch {
			case apierrors.IsNotFound(err):
				st.Installed, st.Established = false, false
			case err == nil:
				st.Installed, st.Established = true, established(crd)
			}
		}
		out = append(out, st)
	}
	return out
}

func established(crd *apiextensionsv1.CustomResourceDefinition) bool {
	for _, c := range crd.Status.Conditions {
		if c.Type == apiextensionsv1.Established {
			return c.Status == apiextensionsv1.ConditionTrue
		}
	}
	return false
}
