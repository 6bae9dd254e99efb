package snapshot

import (
	"fmt"
	"net/netip"
	"slices"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/validation/field"

	metallbv1beta1 "github.com/herald-lb/herald/config/metallb/v1beta1"
	"github.com/herald-lb/herald/framework"
)

// AnnotationAllocatedFromPool names the IPAddressPool a Service's IPs came from (written by
// the controller, as MetalLB's does). The speaker does not read it: anyone who may edit the
// Service may set it, so an IP's pool is derived from the IP and the pools instead.
const AnnotationAllocatedFromPool = "metallb.io/ip-allocated-from-pool"

// Default BGP aggregation lengths, as in MetalLB: announce each IP as a host route.
const (
	defaultAggregationLength   = 32
	defaultAggregationLengthV6 = 128
)

// NodeInfo converts a Node (without its heartbeat).
func NodeInfo(n *corev1.Node) *framework.NodeInfo {
	info := &framework.NodeInfo{Name: n.Name, Labels: n.Labels, Unschedulable: n.Spec.Unschedulable}
	for _, c := range n.Status.Conditions {
		switch c.Type {
		case corev1.NodeReady:
			info.Ready = framework.ConditionStatus(c.Status)
		case corev1.NodeNetworkUnavailable:
			info.NetworkUnavailable = c.Status == corev1.ConditionTrue
		}
	}
	return info
}

// service is what the builder keeps of a LoadBalancer Service.
type service struct {
	key    framework.ServiceKey
	ips    []netip.Addr
	class  string
	labels map[string]string
	local  bool
}

// serviceOf converts a Service; it returns nil for Services that are not of type
// LoadBalancer or have no ingress IP yet. Unparsable ingress IPs are skipped and reported.
func serviceOf(s *corev1.Service) (*service, error) {
	if s.Spec.Type != corev1.ServiceTypeLoadBalancer {
		return nil, nil
	}
	out := &service{
		key:    framework.ServiceKey{Namespace: s.Namespace, Name: s.Name},
		labels: s.Labels,
		local:  s.Spec.ExternalTrafficPolicy == corev1.ServiceExternalTrafficPolicyLocal,
	}
	if s.Spec.LoadBalancerClass != nil {
		out.class = *s.Spec.LoadBalancerClass
	}
	var err error
	for i, ing := range s.Status.LoadBalancer.Ingress {
		if ing.IP == "" {
			continue
		}
		ip, perr := netip.ParseAddr(ing.IP)
		if perr != nil {
			err = fmt.Errorf("service %s: %s: %w", out.key, field.NewPath("status", "loadBalancer", "ingress").Index(i).Child("ip"), perr)
			continue
		}
		ip = ip.Unmap()
		if !slices.Contains(out.ips, ip) {
			out.ips = append(out.ips, ip)
		}
	}
	if len(out.ips) == 0 {
		return nil, err
	}
	return out, err
}

// ServingByNode counts an EndpointSlice's endpoints that can take traffic, per node name:
// ready, or serving and not terminating. Unset conditions read as the API documents: Ready
// and Serving unknown count as true, Terminating unknown as false. Endpoints without a node
// count under "" (they exist, but are local to no node).
func ServingByNode(es *discoveryv1.EndpointSlice) map[string]int {
	out := map[string]int{}
	for _, ep := range es.Endpoints {
		c := ep.Conditions
		ready := c.Ready == nil || *c.Ready
		serving := ready
		if c.Serving != nil {
			serving = *c.Serving
		}
		terminating := c.Terminating != nil && *c.Terminating
		if !ready && (!serving || terminating) {
			continue
		}
		node := ""
		if ep.NodeName != nil {
			node = *ep.NodeName
		}
		out[node]++
	}
	return out
}

// selectors converts label selectors; an invalid one selects nothing and is reported, so a
// typo never widens an advertisement.
func selectors(sels []metav1.LabelSelector, path *field.Path) ([]labels.Selector, field.ErrorList) {
	var errs field.ErrorList
	out := make([]labels.Selector, 0, len(sels))
	for i := range sels {
		s, err := metav1.LabelSelectorAsSelector(&sels[i])
		if err != nil {
			errs = append(errs, field.Invalid(path.Index(i), sels[i].String(), err.Error()))
			s = labels.Nothing()
		}
		out = append(out, s)
	}
	return out, errs
}

// L2Advertisement converts an L2Advertisement. Invalid selectors select nothing; the errors
// are returned with their field paths.
func L2Advertisement(a *metallbv1beta1.L2Advertisement) (*framework.Advertisement, error) {
	spec := field.NewPath("spec")
	pools, errs := selectors(a.Spec.IPAddressPoolSelectors, spec.Child("ipAddressPoolSelectors"))
	nodes, nerrs := selectors(a.Spec.NodeSelectors, spec.Child("nodeSelectors"))
	errs = append(errs, nerrs...)
	out := &framework.Advertisement{
		Name: a.Name, Mode: framework.ModeL2,
		IPAddressPools: a.Spec.IPAddressPools, IPAddressPoolSelectors: pools,
		NodeSelectors: nodes, Interfaces: a.Spec.Interfaces,
	}
	return out, wrap("L2Advertisement", a.Namespace, a.Name, errs)
}

// BGPAdvertisement converts a BGPAdvertisement, resolving community aliases with aliases
// (name to value, from the Community resources); values that are no alias are kept as they
// are.
func BGPAdvertisement(a *metallbv1beta1.BGPAdvertisement, aliases map[string]string) (*framework.Advertisement, error) {
	spec := field.NewPath("spec")
	pools, errs := selectors(a.Spec.IPAddressPoolSelectors, spec.Child("ipAddressPoolSelectors"))
	nodes, nerrs := selectors(a.Spec.NodeSelectors, spec.Child("nodeSelectors"))
	errs = append(errs, nerrs...)
	attrs := &framework.BGPRouteAttributes{
		AggregationLength:   defaultAggregationLength,
		AggregationLengthV6: defaultAggregationLengthV6,
		LocalPref:           a.Spec.LocalPref,
		Peers:               a.Spec.Peers,
	}
	if a.Spec.AggregationLength != nil {
		attrs.AggregationLength = *a.Spec.AggregationLength
	}
	if a.Spec.AggregationLengthV6 != nil {
		attrs.AggregationLengthV6 = *a.Spec.AggregationLengthV6
	}
	for _, c := range a.Spec.Communities {
		if v, ok := aliases[c]; ok {
			c = v
		}
		attrs.Communities = append(attrs.Communities, c)
	}
	out := &framework.Advertisement{
		Name: a.Name, Mode: framework.ModeBGP,
		IPAddressPools: a.Spec.IPAddressPools, IPAddressPoolSelectors: pools,
		NodeSelectors: nodes, BGP: attrs,
	}
	return out, wrap("BGPAdvertisement", a.Namespace, a.Name, errs)
}

func wrap(kind, ns, name string, errs field.ErrorList) error {
	if len(errs) == 0 {
		return nil
	}
	return fmt.Errorf("%s %s/%s: %w", kind, ns, name, errs.ToAggregate())
}
