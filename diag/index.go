package diag

import (
	"net/netip"
	"sort"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"

	"github.com/herald-lb/herald/controller"
	"github.com/herald-lb/herald/framework"
	"github.com/herald-lb/herald/heartbeat"
	"github.com/herald-lb/herald/ipam"
	"github.com/herald-lb/herald/plugins/excludelb"
	"github.com/herald-lb/herald/snapshot"
)

// Labels Herald's chart puts on its pods.
const (
	LabelName          = "app.kubernetes.io/name"
	LabelComponent     = "app.kubernetes.io/component"
	NameHerald         = "herald"
	ComponentSpeaker   = "speaker"
	ComponentControl   = "controller"
	controllerLease    = "herald-controller"
	heartbeatFresh     = "fresh"
	heartbeatStale     = "stale"
	heartbeatMissing   = "missing"
	diagSharingKey     = "herald-diag"
	kindService        = "Service"
	kindNode           = "Node"
	kindPool           = "IPAddressPool"
	kindPod            = "Pod"
	kindL2Status       = "ServiceL2Status"
	kindBGPPeer        = "BGPPeer"
	kindCRD            = "CustomResourceDefinition"
	conditionAllocated = controller.ConditionAddressAllocated
)

// svcKey names a Service.
type svcKey struct{ ns, name string }

func (k svcKey) String() string { return k.ns + "/" + k.name }

// announcer is one node announcing a Service, from a status object.
type announcer struct {
	mode   framework.Mode
	node   string
	status ObjectRef
}

// poolInfo is one pool with its computed usage.
type poolInfo struct {
	name    string
	labels  map[string]string
	stats   ipam.PoolStats
	problem *ipam.Error
	advs    []string
}

// index is the Cluster arranged for the checks: every map is keyed so a check finds what it
// needs without scanning, and every list is sorted so findings come out in a stable order.
type index struct {
	*Cluster
	nodes      []*corev1.Node
	nodeByName map[string]*corev1.Node
	heartbeats map[string]*heartbeat.Heartbeat
	hbErrors   []hbError
	// speakerOn is the speaker pod per node (a ready one when there are several).
	speakerOn   map[string]*corev1.Pod
	speakers    []*corev1.Pod
	controllers []*corev1.Pod
	// leaderFresh: the controller's leader-election Lease was renewed within its duration.
	leaderFresh bool

	services []*corev1.Service // type LoadBalancer, sorted
	serving  map[svcKey]map[string]int
	slices   map[svcKey]int

	pools     []*poolInfo
	poolByIP  map[netip.Addr]string
	svcPool   map[svcKey]string
	svcNoPool map[svcKey][]netip.Addr
	alloc     *ipam.Allocator

	l2Advs, bgpAdvs []*framework.Advertisement
	advErrors       map[string]error // "L2/ns/name" → conversion error

	announcers map[svcKey][]announcer
}

type hbError struct {
	lease ObjectRef
	err   error
}

func newIndex(c *Cluster) *index {
	x := &index{
		Cluster: c, nodeByName: map[string]*corev1.Node{}, heartbeats: map[string]*heartbeat.Heartbeat{},
		speakerOn: map[string]*corev1.Pod{}, serving: map[svcKey]map[string]int{}, slices: map[svcKey]int{},
		poolByIP: map[netip.Addr]string{}, svcPool: map[svcKey]string{}, svcNoPool: map[svcKey][]netip.Addr{},
		advErrors: map[string]error{}, announcers: map[svcKey][]announcer{},
	}
	x.indexNodes()
	x.indexLeases()
	x.indexPods()
	x.indexServices()
	x.indexPools()
	x.indexAdvertisements()
	x.indexStatuses()
	return x
}

func (x *index) indexNodes() {
	for i := range x.Nodes {
		n := &x.Nodes[i]
		x.nodes = append(x.nodes, n)
		x.nodeByName[n.Name] = n
	}
	sort.Slice(x.nodes, func(i, j int) bool { return x.nodes[i].Name < x.nodes[j].Name })
}

func (x *index) indexLeases() {
	for i := range x.Leases {
		l := &x.Leases[i]
		if l.Namespace != x.Namespace {
			continue
		}
		if l.Name == controllerLease {
			x.leaderFresh = leaseFresh(l, x)
			continue
		}
		if !heartbeat.IsHeartbeat(l) {
			continue
		}
		hb, err := heartbeat.Decode(l)
		if err != nil {
			x.hbErrors = append(x.hbErrors, hbError{lease: ObjectRef{Kind: "Lease", Namespace: l.Namespace, Name: l.Name}, err: err})
		}
		if hb != nil {
			x.heartbeats[hb.NodeName] = hb
		}
	}
}

func leaseFresh(l *coordinationv1.Lease, x *index) bool {
	if l.Spec.RenewTime == nil || l.Spec.LeaseDurationSeconds == nil {
		return false
	}
	hb := framework.SpeakerInfo{RenewTime: l.Spec.RenewTime.Time, LeaseDuration: secondsDuration(*l.Spec.LeaseDurationSeconds)}
	return hb.AliveAt(x.Now)
}

// isHerald reports whether the pod is one of Herald's of the component.
func (x *index) isHerald(p *corev1.Pod, component string) bool {
	return p.Namespace == x.Namespace && p.Labels[LabelName] == NameHerald && p.Labels[LabelComponent] == component
}

func (x *index) indexPods() {
	for i := range x.Pods {
		p := &x.Pods[i]
		switch {
		case x.isHerald(p, ComponentSpeaker):
			x.speakers = append(x.speakers, p)
			if cur := x.speakerOn[p.Spec.NodeName]; p.Spec.NodeName != "" && (cur == nil || (!podReady(cur) && podReady(p))) {
				x.speakerOn[p.Spec.NodeName] = p
			}
		case x.isHerald(p, ComponentControl):
			x.controllers = append(x.controllers, p)
		}
	}
	byName := func(ps []*corev1.Pod) {
		sort.Slice(ps, func(i, j int) bool { return ps[i].Name < ps[j].Name })
	}
	byName(x.speakers)
	byName(x.controllers)
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// owns mirrors the controller's ownership rule.
func (x *index) owns(s *corev1.Service) bool {
	if s.Spec.LoadBalancerClass == nil || *s.Spec.LoadBalancerClass == "" {
		return x.HandleNoClass
	}
	return *s.Spec.LoadBalancerClass == x.LoadBalancerClass
}

func (x *index) indexServices() {
	for i := range x.Services {
		s := &x.Services[i]
		if s.Spec.Type == corev1.ServiceTypeLoadBalancer {
			x.services = append(x.services, s)
		}
	}
	sort.Slice(x.services, func(i, j int) bool { return keyOf(x.services[i]).String() < keyOf(x.services[j]).String() })
	for i := range x.EndpointSlices {
		es := &x.EndpointSlices[i]
		name := es.Labels["kubernetes.io/service-name"]
		if name == "" {
			continue
		}
		k := svcKey{es.Namespace, name}
		x.slices[k]++
		if x.serving[k] == nil {
			x.serving[k] = map[string]int{}
		}
		for node, n := range snapshot.ServingByNode(es) {
			x.serving[k][node] += n
		}
	}
}

func keyOf(s *corev1.Service) svcKey { return svcKey{s.Namespace, s.Name} }

// servingTotal counts the Service's serving endpoints on every node.
func (x *index) servingTotal(k svcKey) int {
	n := 0
	for _, c := range x.serving[k] {
		n += c
	}
	return n
}

// ingressIPs returns the Service's parsed ingress IPs, deduplicated.
func ingressIPs(s *corev1.Service) []netip.Addr {
	var out []netip.Addr
	for _, ing := range s.Status.LoadBalancer.Ingress {
		ip, err := netip.ParseAddr(ing.IP)
		if err != nil {
			continue
		}
		ip = ip.Unmap()
		if !containsAddr(out, ip) {
			out = append(out, ip)
		}
	}
	return out
}

func containsAddr(s []netip.Addr, ip netip.Addr) bool {
	for _, x := range s {
		if x == ip {
			return true
		}
	}
	return false
}

// indexPools computes usage with the controller's own allocator: the pools are loaded
// without their serviceAllocation restrictions (usage counts what is held, not what would be
// allowed) and every owned Service's addresses are restored under one sharing key, so a
// shared IP counts once.
func (x *index) indexPools() {
	x.alloc = ipam.New()
	var specs []ipam.Pool
	labelsOf := map[string]map[string]string{}
	for i := range x.Cluster.Pools {
		p := &x.Cluster.Pools[i]
		if p.Namespace != x.ConfigNamespace {
			continue
		}
		labelsOf[p.Name] = p.Labels
		specs = append(specs, ipam.Pool{
			Name: p.Name, Created: p.CreationTimestamp.Time, Addresses: p.Spec.Addresses,
			AutoAssign: p.Spec.AutoAssign == nil || *p.Spec.AutoAssign, AvoidBuggyIPs: p.Spec.AvoidBuggyIPs,
		})
	}
	problems, _ := x.alloc.SetPools(specs)
	byName := map[string]*ipam.Error{}
	for _, e := range problems {
		byName[e.Pool] = e
	}
	for _, s := range x.services {
		if !x.owns(s) {
			continue
		}
		ips := ingressIPs(s)
		if len(ips) == 0 {
			continue
		}
		res, err := x.alloc.Restore(restoreRequest(keyOf(s), ips), ips)
		if err != nil || res.Pool == "" {
			x.svcNoPool[keyOf(s)] = ips
			continue
		}
		x.svcPool[keyOf(s)] = res.Pool
		for _, ip := range ips {
			x.poolByIP[ip] = res.Pool
		}
	}
	for _, st := range x.alloc.Stats() {
		x.pools = append(x.pools, &poolInfo{name: st.Name, labels: labelsOf[st.Name], stats: st, problem: byName[st.Name]})
	}
}

// restoreRequest is the allocator request that holds exactly ips for the Service.
func restoreRequest(k svcKey, ips []netip.Addr) ipam.Service {
	req := ipam.Service{Key: ipam.ServiceKey{Namespace: k.ns, Name: k.name}, SharingKey: diagSharingKey, FamilyPolicy: ipam.SingleStack}
	for _, ip := range ips {
		f := ipam.IPv4
		if ip.Is6() {
			f = ipam.IPv6
		}
		req.Families = append(req.Families, f)
	}
	if len(ips) > 1 {
		req.FamilyPolicy = ipam.PreferDualStack
	}
	return req
}

// poolOf returns the usable pool holding ip, for a Service Herald does not own: it places
// the address in a scratch allocation and takes it back.
func (x *index) poolOf(ip netip.Addr) string {
	if p, ok := x.poolByIP[ip]; ok {
		return p
	}
	k := svcKey{"\x00diag", ip.String()}
	res, err := x.alloc.Restore(restoreRequest(k, []netip.Addr{ip}), []netip.Addr{ip})
	if err != nil {
		return ""
	}
	// Restore keeps an address outside every pool (with Pool ""), as the controller does.
	x.alloc.Release(ipam.ServiceKey{Namespace: k.ns, Name: k.name})
	return res.Pool
}

func (x *index) indexAdvertisements() {
	for i := range x.L2Advertisements {
		a := &x.L2Advertisements[i]
		if a.Namespace != x.ConfigNamespace {
			continue
		}
		adv, err := snapshot.L2Advertisement(a)
		if err != nil {
			x.advErrors["L2/"+a.Name] = err
		}
		x.l2Advs = append(x.l2Advs, adv)
	}
	for i := range x.BGPAdvertisements {
		a := &x.BGPAdvertisements[i]
		if a.Namespace != x.ConfigNamespace {
			continue
		}
		adv, err := snapshot.BGPAdvertisement(a, nil)
		if err != nil {
			x.advErrors["BGP/"+a.Name] = err
		}
		x.bgpAdvs = append(x.bgpAdvs, adv)
	}
	sortAdvs := func(a []*framework.Advertisement) {
		sort.Slice(a, func(i, j int) bool { return a[i].Name < a[j].Name })
	}
	sortAdvs(x.l2Advs)
	sortAdvs(x.bgpAdvs)
	for _, p := range x.pools {
		for _, a := range x.advertisements() {
			if coversPool(a, p) {
				p.advs = append(p.advs, string(a.Mode)+"/"+a.Name)
			}
		}
	}
}

// advertisements returns the L2 then the BGP advertisements.
func (x *index) advertisements() []*framework.Advertisement {
	return append(append([]*framework.Advertisement(nil), x.l2Advs...), x.bgpAdvs...)
}

func (x *index) indexStatuses() {
	for i := range x.L2Statuses {
		s := &x.L2Statuses[i]
		k := svcKey{s.Status.ServiceNamespace, s.Status.ServiceName}
		if k.ns == "" {
			k.ns = s.Namespace
		}
		x.announcers[k] = append(x.announcers[k], announcer{mode: framework.ModeL2, node: s.Status.Node, status: ObjectRef{Kind: kindL2Status, Namespace: s.Namespace, Name: s.Name}})
	}
	for i := range x.BGPStatuses {
		s := &x.BGPStatuses[i]
		k := svcKey{s.Status.ServiceNamespace, s.Status.ServiceName}
		if k.ns == "" {
			k.ns = s.Namespace
		}
		x.announcers[k] = append(x.announcers[k], announcer{mode: framework.ModeBGP, node: s.Status.Node, status: ObjectRef{Kind: "ServiceBGPStatus", Namespace: s.Namespace, Name: s.Name}})
	}
	for k, as := range x.announcers {
		sort.Slice(as, func(i, j int) bool {
			if as[i].mode != as[j].mode {
				return as[i].mode < as[j].mode
			}
			return as[i].node < as[j].node
		})
		x.announcers[k] = as
	}
}

// nodeReady returns the node's Ready condition status ("" when absent).
func nodeReady(n *corev1.Node) string {
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return string(c.Status)
		}
	}
	return ""
}

func excluded(n *corev1.Node) bool {
	_, ok := n.Labels[excludelb.LabelExcludeLB]
	return ok
}

// heartbeatState is "fresh", "stale" or "missing" for the node.
func (x *index) heartbeatState(node string) string {
	hb := x.heartbeats[node]
	switch {
	case hb == nil:
		return heartbeatMissing
	case hb.SpeakerInfo().AliveAt(x.Now):
		return heartbeatFresh
	}
	return heartbeatStale
}

// canAnnounce says why the node cannot announce ("" when it can): the reasons the speakers'
// own filters would give, in the same order.
func (x *index) cannotAnnounce(n *corev1.Node) string {
	switch {
	case nodeReady(n) != string(corev1.ConditionTrue):
		return "NotReady"
	case x.heartbeatState(n.Name) != heartbeatFresh:
		return "no live speaker"
	case x.heartbeats[n.Name].Draining:
		return "speaker draining"
	case excluded(n):
		return "excluded"
	}
	return ""
}

// upInterfaces returns the names of the node's up interfaces from its heartbeat.
func (x *index) upInterfaces(node string) []string {
	hb := x.heartbeats[node]
	if hb == nil {
		return nil
	}
	var out []string
	for _, itf := range hb.Interfaces {
		if itf.Up {
			out = append(out, itf.Name)
		}
	}
	sort.Strings(out)
	return out
}
