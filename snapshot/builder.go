// Package snapshot builds the framework's inputs from API objects: one NodeInfo per Node (with
// its speaker's heartbeat from the speaker namespace's Leases) and one announcement Unit per
// load-balancer IP and mode (the Services sharing the IP, their serving endpoints per node,
// the IP's pool, the advertisements, the nodes announcing it now).
//
// The Builder is fed object by object (from informer events, see Watch) and keeps derived
// state so that a change costs in proportion to what it touches: a Node or Lease event rebuilds
// that node's NodeInfo only; a Service, EndpointSlice or status event invalidates the units of
// that Service's IPs only; only pool, advertisement and community changes (rare) invalidate
// every unit. Snapshot and Units return immutable values that cycles may share.
package snapshot

import (
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"

	metallbv1beta1 "github.com/herald-lb/herald/config/metallb/v1beta1"
	"github.com/herald-lb/herald/framework"
	"github.com/herald-lb/herald/heartbeat"
	"github.com/herald-lb/herald/ipam"
)

// Change tells the consumer (the speaker's work queue) which units to reconsider: every unit
// (All: nodes, heartbeats, pools or advertisements changed) or the units of IPs.
type Change struct {
	All bool
	IPs []netip.Addr
}

// Builder keeps the cluster state the snapshot is built from. It is safe for concurrent use.
type Builder struct {
	mu sync.Mutex

	nodes     map[string]*framework.NodeInfo // without Speaker
	speakers  map[string]*framework.SpeakerInfo
	leaseNode map[string]string // lease namespace/name → node
	// merged holds each node's NodeInfo with its heartbeat, rebuilt only when that node's
	// Node or Lease changes; nodeList is the snapshot's list, rebuilt from merged on demand.
	merged   map[string]*framework.NodeInfo
	nodeList []*framework.NodeInfo

	services map[framework.ServiceKey]*service
	// endpoints holds each Service's slices' serving counts per node. A slice list rather
	// than a map by slice name: most Services have one slice, and a map per Service is
	// megabytes in a large cluster.
	endpoints    map[framework.ServiceKey][]sliceCounts
	serviceInfos map[framework.ServiceKey]*framework.ServiceInfo
	byIP         map[netip.Addr][]framework.ServiceKey

	pools       map[string]*poolInfo // pool name → what units read of it
	l2          map[string]*framework.Advertisement
	bgpRaw      map[string]*metallbv1beta1.BGPAdvertisement
	bgp         map[string]*framework.Advertisement
	communities map[string]map[string]string // Community namespace/name → alias → value
	advLists    map[framework.Mode][]*framework.Advertisement

	l2Status  map[framework.ServiceKey]map[string]string // status namespace/name → node
	bgpStatus map[framework.ServiceKey]map[string]string
	statusSvc map[string]framework.ServiceKey // "L2|BGP " + status namespace/name → Service

	units map[netip.Addr][]*framework.Unit

	errs   map[string]error
	notify func(Change)
}

// NewBuilder returns an empty builder. notify, when not nil, is called after every change
// (outside the builder's lock) with what it affects.
func NewBuilder(notify func(Change)) *Builder {
	return &Builder{
		nodes: map[string]*framework.NodeInfo{}, merged: map[string]*framework.NodeInfo{}, speakers: map[string]*framework.SpeakerInfo{}, leaseNode: map[string]string{},
		services: map[framework.ServiceKey]*service{}, endpoints: map[framework.ServiceKey][]sliceCounts{},
		serviceInfos: map[framework.ServiceKey]*framework.ServiceInfo{}, byIP: map[netip.Addr][]framework.ServiceKey{},
		pools: map[string]*poolInfo{}, l2: map[string]*framework.Advertisement{},
		bgpRaw: map[string]*metallbv1beta1.BGPAdvertisement{}, bgp: map[string]*framework.Advertisement{},
		communities: map[string]map[string]string{},
		l2Status:    map[framework.ServiceKey]map[string]string{}, bgpStatus: map[framework.ServiceKey]map[string]string{},
		statusSvc: map[string]framework.ServiceKey{},
		units:     map[netip.Addr][]*framework.Unit{},
		errs:      map[string]error{},
		notify:    notify,
	}
}

func (b *Builder) done(c Change) {
	b.mu.Unlock()
	if b.notify != nil && (c.All || len(c.IPs) > 0) {
		b.notify(c)
	}
}

func (b *Builder) setErr(key string, err error) {
	if err != nil {
		b.errs[key] = err
	} else {
		delete(b.errs, key)
	}
}

// Errors returns the current conversion problems (bad selectors, bad heartbeats, bad ingress
// IPs), one per object, sorted. Each affected only its own object.
func (b *Builder) Errors() []error {
	b.mu.Lock()
	defer b.mu.Unlock()
	keys := make([]string, 0, len(b.errs))
	for k := range b.errs {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make([]error, len(keys))
	for i, k := range keys {
		out[i] = b.errs[k]
	}
	return out
}

// Problem is a conversion problem of one object: what Errors returns, with the object named.
type Problem struct {
	// Kind is the object's kind (Service, Lease, L2Advertisement, BGPAdvertisement).
	Kind, Namespace, Name string
	Err                   error
}

// Problems returns the current conversion problems with the object each belongs to, sorted
// like Errors, so the speaker can report each on its object.
func (b *Builder) Problems() []Problem {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make([]Problem, 0, len(b.errs))
	for k, err := range b.errs {
		kind, id, _ := strings.Cut(k, " ")
		ns, name, found := strings.Cut(id, "/")
		if !found {
			ns, name = "", id
		}
		out = append(out, Problem{Kind: kind, Namespace: ns, Name: name, Err: err})
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		return a.Kind+" "+a.Namespace+"/"+a.Name < b.Kind+" "+b.Namespace+"/"+b.Name
	})
	return out
}

// --- nodes and heartbeats ---

// SetNode adds or updates a Node.
func (b *Builder) SetNode(n *corev1.Node) {
	b.mu.Lock()
	b.nodes[n.Name] = NodeInfo(n)
	b.remerge(n.Name)
	b.done(Change{All: true})
}

// DeleteNode removes a Node.
func (b *Builder) DeleteNode(name string) {
	b.mu.Lock()
	delete(b.nodes, name)
	b.remerge(name)
	b.done(Change{All: true})
}

// SetLease adds or updates a Lease; Leases that are not speaker heartbeats are ignored. A
// heartbeat with malformed interfaces keeps its liveness (see heartbeat.Decode); the problem
// is reported by Errors.
func (b *Builder) SetLease(l *coordinationv1.Lease) {
	if !heartbeat.IsHeartbeat(l) {
		return
	}
	key := "Lease " + l.Namespace + "/" + l.Name
	hb, err := heartbeat.Decode(l)
	b.mu.Lock()
	b.setErr(key, err)
	if old, ok := b.leaseNode[l.Namespace+"/"+l.Name]; ok && (hb == nil || old != hb.NodeName) {
		delete(b.speakers, old)
		delete(b.leaseNode, l.Namespace+"/"+l.Name)
		b.remerge(old)
	}
	change := Change{All: true}
	if hb != nil {
		info := hb.SpeakerInfo()
		if renewalOnly(b.speakers[hb.NodeName], info, time.Now()) {
			change.All = false
		}
		b.speakers[hb.NodeName] = info
		b.leaseNode[l.Namespace+"/"+l.Name] = hb.NodeName
		b.remerge(hb.NodeName)
	}
	b.done(change)
}

// renewalOnly reports whether next differs from prev only by a later renewal of a heartbeat
// that was alive at now. Such a renewal changes no decision, so it must not re-run every unit:
// with 1,000 speakers renewing every few seconds that would keep a core busy for nothing. The
// speaker's expiry timer still re-runs every unit when a heartbeat lapses.
func renewalOnly(prev, next *framework.SpeakerInfo, now time.Time) bool {
	return prev != nil && prev.AliveAt(now) &&
		prev.Draining == next.Draining && prev.LeaseDuration == next.LeaseDuration &&
		!next.RenewTime.Before(prev.RenewTime) &&
		slices.EqualFunc(prev.Interfaces, next.Interfaces, equalInterface) &&
		maps.Equal(prev.Announcers, next.Announcers) && (prev.Announcers == nil) == (next.Announcers == nil)
}

func equalInterface(a, b framework.Interface) bool {
	return a.Name == b.Name && a.Up == b.Up && a.MAC == b.MAC && slices.Equal(a.Prefixes, b.Prefixes)
}

// DeleteLease removes a Lease.
func (b *Builder) DeleteLease(namespace, name string) {
	b.mu.Lock()
	delete(b.errs, "Lease "+namespace+"/"+name)
	if node, ok := b.leaseNode[namespace+"/"+name]; ok {
		delete(b.speakers, node)
		delete(b.leaseNode, namespace+"/"+name)
		b.remerge(node)
	}
	b.done(Change{All: true})
}

// Snapshot returns an immutable snapshot of the nodes taken at `at` (the time plugins compare
// heartbeats with).
func (b *Builder) Snapshot(at time.Time) *framework.Snapshot {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.nodeList == nil {
		b.nodeList = make([]*framework.NodeInfo, 0, len(b.merged))
		for _, n := range b.merged {
			b.nodeList = append(b.nodeList, n)
		}
		// Sorted here once, so NewSnapshot's sort meets sorted input on every later call.
		slices.SortFunc(b.nodeList, func(x, y *framework.NodeInfo) int { return strings.Compare(x.Name, y.Name) })
	}
	return framework.NewSnapshot(at, b.nodeList)
}

// remerge rebuilds one node's NodeInfo from its Node and heartbeat; NodeInfos handed out
// earlier are never modified.
func (b *Builder) remerge(name string) {
	b.nodeList = nil
	n, ok := b.nodes[name]
	if !ok {
		delete(b.merged, name)
		return
	}
	info := *n
	info.Speaker = b.speakers[name]
	b.merged[name] = &info
}

// --- Services, endpoints, statuses ---

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

// --- pools, advertisements, communities ---

// SetPool adds or updates an IPAddressPool: its addresses (an IP's pool is the pool that
// contains it) and its labels (advertisements select on them). Every pool fed to the builder
// must come from the one configuration namespace: pools are keyed by name.
func (b *Builder) SetPool(p *metallbv1beta1.IPAddressPool) {
	addrs, err := ipam.ParseAddressSet(p.Spec.Addresses)
	if err != nil {
		err = fmt.Errorf("IPAddressPool %s/%s: %w", p.Namespace, p.Name, err)
	}
	b.mu.Lock()
	b.setErr("IPAddressPool "+p.Name, err)
	b.pools[p.Name] = &poolInfo{name: p.Name, created: p.CreationTimestamp.Time, labels: p.Labels, addresses: addrs}
	b.invalidateAll()
	b.done(Change{All: true})
}

// DeletePool removes an IPAddressPool.
func (b *Builder) DeletePool(name string) {
	b.mu.Lock()
	delete(b.errs, "IPAddressPool "+name)
	delete(b.pools, name)
	b.invalidateAll()
	b.done(Change{All: true})
}

// poolInfo is what the builder keeps of an IPAddressPool.
type poolInfo struct {
	name      string
	created   time.Time
	labels    map[string]string
	addresses ipam.AddressSet
}

// poolOf returns the pool that contains ip: derived from the address and the pools, never from
// the Service's metallb.io/ip-allocated-from-pool annotation, which any user who may edit the
// Service can set to another pool's name (and so pick that pool's advertisements, interfaces
// and BGP peers). Where pools overlap, the earliest created wins (then the name), as in the
// controller's allocator. nil when no pool contains ip.
func (b *Builder) poolOf(ip netip.Addr) *poolInfo {
	var best *poolInfo
	for _, p := range b.pools {
		if !p.addresses.Contains(ip) {
			continue
		}
		if best == nil || p.created.Before(best.created) || (p.created.Equal(best.created) && p.name < best.name) {
			best = p
		}
	}
	return best
}

// SetL2Advertisement adds or updates an L2Advertisement.
func (b *Builder) SetL2Advertisement(a *metallbv1beta1.L2Advertisement) {
	adv, err := L2Advertisement(a)
	b.mu.Lock()
	key := a.Namespace + "/" + a.Name
	b.setErr("L2Advertisement "+key, err)
	b.l2[key] = adv
	b.invalidateAll()
	b.done(Change{All: true})
}

// DeleteL2Advertisement removes an L2Advertisement.
func (b *Builder) DeleteL2Advertisement(namespace, name string) {
	b.mu.Lock()
	key := namespace + "/" + name
	delete(b.errs, "L2Advertisement "+key)
	delete(b.l2, key)
	b.invalidateAll()
	b.done(Change{All: true})
}

// SetBGPAdvertisement adds or updates a BGPAdvertisement.
func (b *Builder) SetBGPAdvertisement(a *metallbv1beta1.BGPAdvertisement) {
	b.mu.Lock()
	b.bgpRaw[a.Namespace+"/"+a.Name] = a
	b.convertBGP(a.Namespace + "/" + a.Name)
	b.invalidateAll()
	b.done(Change{All: true})
}

// DeleteBGPAdvertisement removes a BGPAdvertisement.
func (b *Builder) DeleteBGPAdvertisement(namespace, name string) {
	b.mu.Lock()
	key := namespace + "/" + name
	delete(b.bgpRaw, key)
	delete(b.bgp, key)
	delete(b.errs, "BGPAdvertisement "+key)
	b.invalidateAll()
	b.done(Change{All: true})
}

// SetCommunity adds or updates a Community (aliases used by BGPAdvertisements).
func (b *Builder) SetCommunity(c *metallbv1beta1.Community) {
	aliases := map[string]string{}
	for _, a := range c.Spec.Communities {
		aliases[a.Name] = a.Value
	}
	b.mu.Lock()
	b.communities[c.Namespace+"/"+c.Name] = aliases
	b.reconvertBGP()
	b.done(Change{All: true})
}

// DeleteCommunity removes a Community.
func (b *Builder) DeleteCommunity(namespace, name string) {
	b.mu.Lock()
	delete(b.communities, namespace+"/"+name)
	b.reconvertBGP()
	b.done(Change{All: true})
}

func (b *Builder) reconvertBGP() {
	for key := range b.bgpRaw {
		b.convertBGP(key)
	}
	b.invalidateAll()
}

// convertBGP converts one BGPAdvertisement with the aliases of its namespace's Communities.
func (b *Builder) convertBGP(key string) {
	a := b.bgpRaw[key]
	aliases := map[string]string{}
	for ck, m := range b.communities {
		if strings.HasPrefix(ck, a.Namespace+"/") {
			for k, v := range m {
				aliases[k] = v
			}
		}
	}
	adv, err := BGPAdvertisement(a, aliases)
	b.setErr("BGPAdvertisement "+key, err)
	b.bgp[key] = adv
}

func (b *Builder) invalidateAll() {
	clear(b.units)
	b.advLists = nil
}

// --- units ---

// RenewTime is the renew time of the node's heartbeat as the builder has seen it (zero when it
// has seen none): the speaker checks that its watch caught up with its own renewals.
func (b *Builder) RenewTime(node string) time.Time {
	b.mu.Lock()
	defer b.mu.Unlock()
	if si := b.speakers[node]; si != nil {
		return si.RenewTime
	}
	return time.Time{}
}

// Units returns every unit, ordered by IP then mode.
func (b *Builder) Units() []*framework.Unit {
	b.mu.Lock()
	defer b.mu.Unlock()
	ips := make([]netip.Addr, 0, len(b.byIP))
	for ip := range b.byIP {
		ips = append(ips, ip)
	}
	slices.SortFunc(ips, netip.Addr.Compare)
	var out []*framework.Unit
	for _, ip := range ips {
		out = append(out, b.unitsFor(ip)...)
	}
	return out
}

// UnitsFor returns the units of one IP: one per mode with a covering advertisement (L2 before
// BGP), or, when no advertisement covers the IP, an L2 unit whose cycle explains why nothing
// announces it. None when no Service uses the IP.
func (b *Builder) UnitsFor(ip netip.Addr) []*framework.Unit {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.unitsFor(ip.Unmap())
}

func (b *Builder) unitsFor(ip netip.Addr) []*framework.Unit {
	if us, ok := b.units[ip]; ok {
		return us
	}
	keys := b.byIP[ip]
	if len(keys) == 0 {
		return nil
	}
	base := framework.Unit{IP: ip}
	for _, k := range keys {
		base.Services = append(base.Services, b.serviceInfo(k))
	}
	base.Class = b.services[keys[0]].class
	if p := b.poolOf(ip); p != nil {
		base.Pool, base.PoolLabels = p.name, p.labels
	}
	lists := b.advertisementLists()
	var us []*framework.Unit
	for _, mode := range []framework.Mode{framework.ModeL2, framework.ModeBGP} {
		u := base
		u.Mode = mode
		u.Advertisements = lists[mode]
		// Coverage is resolved once here, with the unit: every cycle and plugin reads it.
		u.ResolveCoverage()
		if len(u.Covering()) == 0 {
			continue
		}
		u.Announcers = b.announcers(mode, keys)
		us = append(us, &u)
	}
	if len(us) == 0 {
		u := base
		u.Mode = framework.ModeL2
		u.Advertisements = lists[framework.ModeL2]
		u.Announcers = b.announcers(framework.ModeL2, keys)
		u.ResolveCoverage()
		us = append(us, &u)
	}
	b.units[ip] = us
	return us
}

func (b *Builder) serviceInfo(k framework.ServiceKey) *framework.ServiceInfo {
	if si, ok := b.serviceInfos[k]; ok {
		return si
	}
	svc := b.services[k]
	slices := b.endpoints[k]
	var serving map[string]int
	if len(slices) == 1 {
		// Shared, not copied: counts maps are replaced, never modified.
		serving = slices[0].counts
	} else {
		serving = map[string]int{}
		for _, sc := range slices {
			for node, n := range sc.counts {
				serving[node] += n
			}
		}
	}
	si := &framework.ServiceInfo{Key: k, Labels: svc.labels, TrafficPolicyLocal: svc.local, ServingEndpoints: serving}
	b.serviceInfos[k] = si
	return si
}

func (b *Builder) advertisementLists() map[framework.Mode][]*framework.Advertisement {
	if b.advLists != nil {
		return b.advLists
	}
	b.advLists = map[framework.Mode][]*framework.Advertisement{
		framework.ModeL2:  sortedAdvs(b.l2),
		framework.ModeBGP: sortedAdvs(b.bgp),
	}
	return b.advLists
}

func sortedAdvs(m map[string]*framework.Advertisement) []*framework.Advertisement {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make([]*framework.Advertisement, len(keys))
	for i, k := range keys {
		out[i] = m[k]
	}
	return out
}

func (b *Builder) announcers(mode framework.Mode, keys []framework.ServiceKey) []string {
	statuses := b.l2Status
	if mode == framework.ModeBGP {
		statuses = b.bgpStatus
	}
	var out []string
	for _, k := range keys {
		for _, node := range statuses[k] {
			out = append(out, node)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// String summarizes the builder's contents, for logs.
func (b *Builder) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return fmt.Sprintf("%d nodes, %d heartbeats, %d LoadBalancer Services on %d IPs, %d pools, %d L2 and %d BGP advertisements",
		len(b.nodes), len(b.speakers), len(b.services), len(b.byIP), len(b.pools), len(b.l2), len(b.bgp))
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
