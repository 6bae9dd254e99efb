package diag

import (
	"net/netip"
	"slices"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/herald-lb/herald/framework"
	"github.com/herald-lb/herald/ipam"
	"github.com/herald-lb/herald/speaker/announce"
)

// reasonAddressConflict is speaker.ReasonAddressConflict, the speakers' Event reason for a
// foreign MAC answering for an announced address (a constant here so diag does not link the
// speaker).
const reasonAddressConflict = "AddressConflict"

func svcRef(s *corev1.Service) ObjectRef {
	return ObjectRef{Kind: kindService, Namespace: s.Namespace, Name: s.Name}
}

func isLocal(s *corev1.Service) bool {
	return s.Spec.ExternalTrafficPolicy == corev1.ServiceExternalTrafficPolicyLocal
}

// pendingFixes says what to do for the controller's refusal reasons that need more than
// reading the message.
var pendingFixes = map[ipam.Reason]string{
	ipam.ReasonPoolExhausted:       "add addresses to the pool, add a pool, or free addresses by deleting unused LoadBalancer Services",
	ipam.ReasonNoPools:             "create an IPAddressPool in Herald's namespace",
	ipam.ReasonNoAutoAssignPool:    "request a pool with the metallb.universe.tf/address-pool annotation, or set autoAssign: true on a pool",
	ipam.ReasonUnknownPool:         "fix the metallb.universe.tf/address-pool annotation or create the pool",
	ipam.ReasonNotInPool:           "request an address inside a pool (metallb.io/loadBalancerIPs), or extend a pool",
	ipam.ReasonIPInUse:             "request another address, or give both Services the same metallb.universe.tf/allow-shared-ip key",
	ipam.ReasonSharingKeyMismatch:  "give every Service sharing the address the same metallb.universe.tf/allow-shared-ip value",
	ipam.ReasonTrafficPolicyMix:    "give every Service sharing the address the same externalTrafficPolicy",
	ipam.ReasonSelectorMismatch:    "with externalTrafficPolicy Local, Services sharing an address need the same pod selector",
	ipam.ReasonPortConflict:        "Services sharing an address must use different ports/protocols",
	ipam.ReasonNamespaceNotAllowed: "use a pool whose spec.serviceAllocation allows the namespace",
	ipam.ReasonServiceNotAllowed:   "use a pool whose spec.serviceAllocation.serviceSelectors match the Service's labels",
}

// pendingReason returns the controller's reason for not allocating, and what to do.
func (x *index) pendingReason(s *corev1.Service) (reason, fix string) {
	for _, c := range s.Status.Conditions {
		if c.Type == conditionAllocated && c.Status == "False" {
			fix = pendingFixes[ipam.Reason(c.Reason)]
			if fix == "" {
				fix = "fix what the message names (kubectl describe service " + s.Name + " -n " + s.Namespace + ")"
			}
			return c.Reason + ": " + c.Message, fix
		}
	}
	if ev := x.latestEvent(keyOf(s), ""); ev != nil {
		return ev.Reason + ": " + ev.Message, "kubectl describe service " + s.Name + " -n " + s.Namespace
	}
	return "the controller has not handled it (no " + conditionAllocated + " condition)",
		"check the controller is running and owns the Service's class (herald controller --load-balancer-class / --handle-no-class)"
}

// latestEvent returns the newest Warning Event on the Service with the reason ("" for any).
func (x *index) latestEvent(k svcKey, reason string) *corev1.Event {
	return x.latestEventOn(kindService, k, reason)
}

// latestEventOn returns the newest Warning Event on the object with the reason ("" for any).
func (x *index) latestEventOn(kind string, k svcKey, reason string) *corev1.Event {
	var best *corev1.Event
	for i := range x.Events {
		e := &x.Events[i]
		io := e.InvolvedObject
		if io.Kind != kind || io.Namespace != k.ns || io.Name != k.name || e.Type != corev1.EventTypeWarning {
			continue
		}
		if reason != "" && e.Reason != reason {
			continue
		}
		if best == nil || eventTime(e).After(eventTime(best)) {
			best = e
		}
	}
	return best
}

func eventTime(e *corev1.Event) time.Time {
	switch {
	case !e.LastTimestamp.IsZero():
		return e.LastTimestamp.Time
	case !e.EventTime.IsZero():
		return e.EventTime.Time
	}
	return e.CreationTimestamp.Time
}

func checkServices(x *index) []Finding {
	var out []Finding
	for _, s := range x.services {
		if x.owns(s) {
			out = append(out, x.checkService(s)...)
		}
	}
	return out
}

func (x *index) checkService(s *corev1.Service) []Finding {
	k, obj := keyOf(s), svcRef(s)
	ips := ingressIPs(s)
	if len(ips) == 0 {
		reason, fix := x.pendingReason(s)
		return []Finding{finding("service.pending", Critical, obj, fix, "Service %s has no external IP: %s", k, reason)}
	}
	var out []Finding
	if _, outside := x.svcNoPool[k]; outside {
		out = append(out, finding("service.ip-outside-pools", Warning, obj,
			"add the address to a pool; to give the Service another address, request one (metallb.io/loadBalancerIPs, metallb.io/address-pool) or remove the address from its status: the controller keeps it until then",
			"Service %s holds %s, which is in no usable pool in namespace %s", k, addrList(ips), x.ConfigNamespace))
	}
	total := x.servingTotal(k)
	noEndpoints := total == 0 && (len(s.Spec.Selector) > 0 || x.slices[k] > 0)
	switch {
	case isLocal(s) && total == 0:
		out = append(out, finding("service.etp-local-no-endpoints", Critical, obj,
			"make a backend pod ready (kubectl get endpointslices -n "+s.Namespace+" -l kubernetes.io/service-name="+s.Name+"), fix the selector, or use externalTrafficPolicy: Cluster",
			"Service %s has externalTrafficPolicy Local and no serving endpoint on any node: no node announces %s", k, addrList(ips)))
	case noEndpoints:
		out = append(out, finding("service.no-endpoints", Warning, obj,
			"make a backend pod ready or fix the Service's selector",
			"Service %s has no serving endpoint: %s answers but connections fail", k, addrList(ips)))
	}
	if !(isLocal(s) && total == 0) {
		out = append(out, x.announced(s, ips)...)
	}
	out = append(out, x.serviceEvents(s)...)
	return out
}

// announced reports an L2-advertised Service no node announces, and one announced in L2
// from more nodes than it has address families (two nodes answering ARP for one IP).
func (x *index) announced(s *corev1.Service, ips []netip.Addr) []Finding {
	k, obj := keyOf(s), svcRef(s)
	var l2Nodes []string
	var any bool
	for _, a := range x.announcers[k] {
		any = true
		if a.mode == framework.ModeL2 && !slices.Contains(l2Nodes, a.node) {
			l2Nodes = append(l2Nodes, a.node)
		}
	}
	var out []Finding
	pool := x.poolInfo(x.svcPool[k])
	if !any && pool != nil && x.covered(pool, framework.ModeL2) && !x.covered(pool, framework.ModeBGP) {
		out = append(out, finding("service.not-announced", Critical, obj,
			"herald explain "+k.String()+" shows which filter rejects every node",
			"no node announces %s of Service %s (no ServiceL2Status names it): the address is unreachable", addrList(ips), k))
	}
	if len(l2Nodes) > familyCount(ips) {
		out = append(out, finding("service.multiple-announcers", Critical, obj,
			"delete the stale ServiceL2Status objects and check for a second load-balancer implementation (see conflict.* findings)",
			"Service %s is announced in L2 by %d nodes (%s): clients see the address move between MACs", k, len(l2Nodes), strings.Join(l2Nodes, ", ")))
	}
	return out
}

func familyCount(ips []netip.Addr) int {
	var v4, v6 int
	for _, ip := range ips {
		if ip.Is4() {
			v4 = 1
		} else {
			v6 = 1
		}
	}
	return v4 + v6
}

func (x *index) poolInfo(name string) *poolInfo {
	for _, p := range x.pools {
		if p.name == name {
			return p
		}
	}
	return nil
}

func (x *index) covered(p *poolInfo, mode framework.Mode) bool {
	for _, a := range p.advs {
		if strings.HasPrefix(a, string(mode)+"/") {
			return true
		}
	}
	return false
}

// serviceEvents reports the speakers' Warning Events: a foreign claim on the address, and
// failures to announce.
func (x *index) serviceEvents(s *corev1.Service) []Finding {
	k, obj := keyOf(s), svcRef(s)
	var out []Finding
	if ev := x.latestEvent(k, reasonAddressConflict); ev != nil {
		out = append(out, finding("service.address-conflict", Critical, obj,
			"find the device with that MAC (arp -n / switch MAC table) and stop it claiming the address, or move the Service to a free address; Herald does not fight it",
			"%s (Event %s, %s)", ev.Message, ev.Name, eventTime(ev).UTC().Format(time.RFC3339)))
	}
	if ev := x.latestEvent(k, announce.ReasonAnnounceFailed); ev != nil {
		out = append(out, finding("service.announce-failed", Warning, obj,
			"kubectl -n "+x.Namespace+" logs the speaker on the node named in the message",
			"%s (Event %s, %s)", ev.Message, ev.Name, eventTime(ev).UTC().Format(time.RFC3339)))
	}
	return out
}

func addrList(ips []netip.Addr) string {
	s := make([]string, len(ips))
	for i, ip := range ips {
		s[i] = ip.String()
	}
	return strings.Join(s, ", ")
}

// checkL2Statuses reports ServiceL2Status objects that name a node which cannot announce, or
// that contradict the Service's endpoints, or that outlived their Service.
func checkL2Statuses(x *index) []Finding {
	svcs := map[svcKey]*corev1.Service{}
	for _, s := range x.services {
		svcs[keyOf(s)] = s
	}
	sts := make([]int, len(x.L2Statuses))
	for i := range sts {
		sts[i] = i
	}
	sort.Slice(sts, func(i, j int) bool {
		a, b := &x.L2Statuses[sts[i]], &x.L2Statuses[sts[j]]
		return a.Namespace+"/"+a.Name < b.Namespace+"/"+b.Name
	})
	var out []Finding
	for _, i := range sts {
		st := &x.L2Statuses[i]
		obj := ObjectRef{Kind: kindL2Status, Namespace: st.Namespace, Name: st.Name}
		k := svcKey{st.Status.ServiceNamespace, st.Status.ServiceName}
		s := svcs[k]
		if s == nil || len(ingressIPs(s)) == 0 {
			out = append(out, finding("l2status.orphan", Warning, obj,
				"kubectl -n "+st.Namespace+" delete servicel2status "+st.Name+" (the speaker that wrote it is gone or lost track)",
				"ServiceL2Status %s/%s names Service %s, which is not a LoadBalancer Service with an address", st.Namespace, st.Name, k))
			continue
		}
		out = append(out, x.l2StatusNode(st.Status.Node, k, obj)...)
		if isLocal(s) && x.serving[k][st.Status.Node] == 0 {
			out = append(out, finding("l2status.no-local-endpoint", Critical, obj,
				"herald explain "+k.String()+"; the speaker on "+st.Status.Node+" should withdraw (check its logs), and the endpoints' nodeName",
				"Service %s has externalTrafficPolicy Local but is announced from node %s, which has no serving endpoint of it: traffic to it is dropped", k, st.Status.Node))
		}
	}
	return out
}

// l2StatusNode reports a status naming a node that does not exist, is NotReady, or has no
// live speaker: the address is answered (or was last answered) from a dead node.
func (x *index) l2StatusNode(node string, k svcKey, obj ObjectRef) []Finding {
	n := x.nodeByName[node]
	switch {
	case n == nil:
		return []Finding{finding("l2status.node-not-ready", Critical, obj,
			"delete the stale ServiceL2Status; a live speaker takes the address over",
			"Service %s is announced from node %q, which does not exist", k, node)}
	case nodeReady(n) != string(corev1.ConditionTrue):
		return []Finding{finding("l2status.node-not-ready", Critical, obj,
			"check the node (kubectl describe node "+node+"); if its speaker still answers ARP/NDP, stop it; a live speaker takes the address over",
			"Service %s is announced from node %s, which is NotReady", k, node)}
	case x.heartbeatState(node) != heartbeatFresh:
		return []Finding{finding("l2status.speaker-dead", Critical, obj,
			"check the speaker on node "+node+"; other speakers take over once its heartbeat expires",
			"Service %s is announced from node %s, whose speaker heartbeat is %s", k, node, x.heartbeatState(node))}
	}
	return nil
}
