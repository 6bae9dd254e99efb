package snapshot

import (
	"net/netip"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"

	metallbv1beta1 "github.com/herald-lb/herald/config/metallb/v1beta1"
	"github.com/herald-lb/herald/framework"
)

// Services, their EndpointSlices and the status objects naming their announcers: a change
// invalidates the units of that Service's IPs only.

// SetService adds or updates a Service. Services that are not LoadBalancers with an ingress
// IP are dropped.
func (b *Builder) SetService(s *corev1.Service) {
	key := framework.ServiceKey{Namespace: s.Namespace, Name: s.Name}
	svc, err := serviceOf(s)
	b.mu.Lock()
	b.setErr("Service "+key.String(), err)
	ips := b.removeService(key)
	if svc != nil {
		b.services[key] = svc
		for _, ip := range svc.ips {
			b.byIP[ip] = insertSorted(b.byIP[ip], key)
			ips = append(ips, ip)
		}
	}
	b.invalidate(ips)
	b.done(Change{IPs: ips})
}

// DeleteService removes a Service.
func (b *Builder) DeleteService(namespace, name string) {
	key := framework.ServiceKey{Namespace: namespace, Name: name}
	b.mu.Lock()
	delete(b.errs, "Service "+key.String())
	ips := b.removeService(key)
	b.invalidate(ips)
	b.done(Change{IPs: ips})
}

func (b *Builder) removeService(key framework.ServiceKey) []netip.Addr {
	old, ok := b.services[key]
	if !ok {
		return nil
	}
	delete(b.services, key)
	delete(b.serviceInfos, key)
	for _, ip := range old.ips {
		keys := slices.DeleteFunc(b.byIP[ip], func(k framework.ServiceKey) bool { return k == key })
		if len(keys) == 0 {
			delete(b.byIP, ip)
		} else {
			b.byIP[ip] = keys
		}
	}
	return slices.Clone(old.ips)
}

func insertSorted(keys []framework.ServiceKey, key framework.ServiceKey) []framework.ServiceKey {
	i, found := slices.BinarySearchFunc(keys, key, compareKeys)
	if found {
		return keys
	}
	return slices.Insert(keys, i, key)
}

func compareKeys(a, b framework.ServiceKey) int {
	if c := strings.Compare(a.Namespace, b.Namespace); c != 0 {
		return c
	}
	return strings.Compare(a.Name, b.Name)
}

// serviceIPs returns the Service's IPs (none when it is unknown or not a LoadBalancer).
func (b *Builder) serviceIPs(key framework.ServiceKey) []netip.Addr {
	if s, ok := b.services[key]; ok {
		return slices.Clone(s.ips)
	}
	return nil
}

func (b *Builder) invalidate(ips []netip.Addr) {
	for _, ip := range ips {
		delete(b.units, ip)
	}
}

// SetEndpointSlice adds or updates an EndpointSlice (matched to its Service by the
// kubernetes.io/service-name label).
func (b *Builder) SetEndpointSlice(es *discoveryv1.EndpointSlice) {
	svcName := es.Labels[discoveryv1.LabelServiceName]
	if svcName == "" {
		return
	}
	key := framework.ServiceKey{Namespace: es.Namespace, Name: svcName}
	counts := ServingByNode(es)
	b.mu.Lock()
	b.endpoints[key] = setSlice(b.endpoints[key], es.Name, counts)
	delete(b.serviceInfos, key)
	ips := b.serviceIPs(key)
	b.invalidate(ips)
	b.done(Change{IPs: ips})
}

// DeleteEndpointSlice removes an EndpointSlice of the named Service.
func (b *Builder) DeleteEndpointSlice(namespace, name, serviceName string) {
	key := framework.ServiceKey{Namespace: namespace, Name: serviceName}
	b.mu.Lock()
	if rest := deleteSlice(b.endpoints[key], name); len(rest) > 0 {
		b.endpoints[key] = rest
	} else {
		delete(b.endpoints, key)
	}
	delete(b.serviceInfos, key)
	ips := b.serviceIPs(key)
	b.invalidate(ips)
	b.done(Change{IPs: ips})
}

// SetL2Status records a ServiceL2Status: its node announces its Service's IPs in L2.
func (b *Builder) SetL2Status(s *metallbv1beta1.ServiceL2Status) {
	b.setStatus(framework.ModeL2, s.Namespace, s.Name, s.Status.ServiceNamespace, s.Status.ServiceName, s.Status.Node)
}

// DeleteL2Status removes a ServiceL2Status.
func (b *Builder) DeleteL2Status(namespace, name string) {
	b.setStatus(framework.ModeL2, namespace, name, "", "", "")
}

// SetBGPStatus records a ServiceBGPStatus: its node advertises its Service's IPs over BGP.
func (b *Builder) SetBGPStatus(s *metallbv1beta1.ServiceBGPStatus) {
	b.setStatus(framework.ModeBGP, s.Namespace, s.Name, s.Status.ServiceNamespace, s.Status.ServiceName, s.Status.Node)
}

// DeleteBGPStatus removes a ServiceBGPStatus.
func (b *Builder) DeleteBGPStatus(namespace, name string) {
	b.setStatus(framework.ModeBGP, namespace, name, "", "", "")
}

// setStatus records (node != "") or forgets (node == "") one status object.
func (b *Builder) setStatus(mode framework.Mode, ns, name, svcNS, svcName, node string) {
	statuses := b.l2Status
	if mode == framework.ModeBGP {
		statuses = b.bgpStatus
	}
	objKey := ns + "/" + name
	idx := string(mode) + " " + objKey
	if svcNS == "" {
		svcNS = ns
	}
	b.mu.Lock()
	var ips []netip.Addr
	if old, ok := b.statusSvc[idx]; ok {
		delete(statuses[old], objKey)
		if len(statuses[old]) == 0 {
			delete(statuses, old)
		}
		delete(b.statusSvc, idx)
		ips = append(ips, b.serviceIPs(old)...)
	}
	if node != "" && svcName != "" {
		key := framework.ServiceKey{Namespace: svcNS, Name: svcName}
		if statuses[key] == nil {
			statuses[key] = map[string]string{}
		}
		statuses[key][objKey] = node
		b.statusSvc[idx] = key
		ips = append(ips, b.serviceIPs(key)...)
	}
	b.invalidate(ips)
	b.done(Change{IPs: ips})
}

// sliceCounts is one EndpointSlice's serving endpoints per node.
type sliceCounts struct {
	name   string
	counts map[string]int
}

// setSlice sets the named slice's counts.
func setSlice(list []sliceCounts, name string, counts map[string]int) []sliceCounts {
	return append(deleteSlice(list, name), sliceCounts{name: name, counts: counts})
}

// deleteSlice returns the list without the named slice, as a copy: the list is never
// modified in place.
func deleteSlice(list []sliceCounts, name string) []sliceCounts {
	out := make([]sliceCounts, 0, len(list)+1)
	for _, sc := range list {
		if sc.name != name {
			out = append(out, sc)
		}
	}
	return out
}
