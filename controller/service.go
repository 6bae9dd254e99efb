package controller

import (
	"net/netip"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"github.com/herald-lb/herald/ipam"
)

// Annotations Herald reads and writes, in MetalLB's two spellings; the metallb.io one wins
// when both are set.
const (
	annotationIPs           = "metallb.io/loadBalancerIPs"
	annotationIPsLegacy     = "metallb.universe.tf/loadBalancerIPs"
	annotationPool          = "metallb.io/address-pool"
	annotationPoolLegacy    = "metallb.universe.tf/address-pool"
	annotationSharing       = "metallb.io/allow-shared-ip"
	annotationSharingLegacy = "metallb.universe.tf/allow-shared-ip"
	// AnnotationAllocatedFromPool is written on every Service Herald gives addresses to.
	AnnotationAllocatedFromPool = "metallb.io/ip-allocated-from-pool"
)

func annotation(svc *corev1.Service, names ...string) string {
	for _, n := range names {
		if v, ok := svc.Annotations[n]; ok {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// owns reports whether the controller is responsible for svc: a LoadBalancer Service with
// Herald's class, or with no class when configured to handle those.
func (o *Options) owns(svc *corev1.Service) bool {
	if svc.Spec.Type != corev1.ServiceTypeLoadBalancer {
		return false
	}
	if svc.Spec.LoadBalancerClass == nil {
		return o.HandleNoClass
	}
	return *svc.Spec.LoadBalancerClass == o.LoadBalancerClass
}

// toIPAM converts a Service (and its namespace's labels) into the allocator's request.
func toIPAM(svc *corev1.Service, nsLabels map[string]string) ipam.Service {
	out := ipam.Service{
		Key:             ipam.ServiceKey{Namespace: svc.Namespace, Name: svc.Name},
		Labels:          svc.Labels,
		NamespaceLabels: nsLabels,
		Selector:        svc.Spec.Selector,
		SharingKey:      annotation(svc, annotationSharing, annotationSharingLegacy),
		RequestedPool:   annotation(svc, annotationPool, annotationPoolLegacy),
		TrafficPolicy:   ipam.TrafficCluster,
	}
	if svc.Spec.ExternalTrafficPolicy == corev1.ServiceExternalTrafficPolicyLocal {
		out.TrafficPolicy = ipam.TrafficLocal
	}
	for _, p := range svc.Spec.Ports {
		proto := p.Protocol
		if proto == "" {
			proto = corev1.ProtocolTCP
		}
		out.Ports = append(out.Ports, ipam.Port{Protocol: string(proto), Port: p.Port})
	}
	if ips := annotation(svc, annotationIPs, annotationIPsLegacy); ips != "" {
		for _, s := range strings.Split(ips, ",") {
			if s = strings.TrimSpace(s); s != "" {
				out.RequestedIPs = append(out.RequestedIPs, s)
			}
		}
	} else if svc.Spec.LoadBalancerIP != "" {
		out.RequestedIPs = []string{svc.Spec.LoadBalancerIP}
	}
	for _, f := range svc.Spec.IPFamilies {
		out.Families = append(out.Families, ipam.Family(f))
	}
	if svc.Spec.IPFamilyPolicy != nil {
		out.FamilyPolicy = ipam.FamilyPolicy(*svc.Spec.IPFamilyPolicy)
	}
	return out
}

// statusIPs returns the addresses in the Service's status that parse.
func statusIPs(svc *corev1.Service) []netip.Addr {
	var ips []netip.Addr
	for _, ing := range svc.Status.LoadBalancer.Ingress {
		if ip, err := netip.ParseAddr(ing.IP); err == nil {
			ips = append(ips, ip.Unmap())
		}
	}
	return ips
}

func ingressFor(ips []netip.Addr) []corev1.LoadBalancerIngress {
	out := make([]corev1.LoadBalancerIngress, len(ips))
	for i, ip := range ips {
		out[i] = corev1.LoadBalancerIngress{IP: ip.String()}
	}
	return out
}

func sameIngress(a, b []corev1.LoadBalancerIngress) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].IP != b[i].IP || a[i].Hostname != "" || b[i].Hostname != "" || len(a[i].Ports) != len(b[i].Ports) {
			return false
		}
	}
	return true
}
