// Package ipam allocates load-balancer addresses to Services from address pools, with
// MetalLB's semantics (pools, requested IPs and pools, dual-stack, IP sharing), and explains
// every refusal with a typed *Error naming the rule and the other object involved.
//
// It is pure logic with no Kubernetes client: the controller converts Services, Namespaces and
// IPAddressPools into the small input types of this package. An Allocator is not safe for
// concurrent use; the controller serialises calls.
package ipam

import (
	"fmt"
	"net/netip"
	"sort"
	"strings"

	"k8s.io/apimachinery/pkg/labels"
)

// ServiceKey identifies a Service.
type ServiceKey struct {
	Namespace, Name string
}

func (k ServiceKey) String() string { return k.Namespace + "/" + k.Name }

func (k ServiceKey) less(o ServiceKey) bool {
	if k.Namespace != o.Namespace {
		return k.Namespace < o.Namespace
	}
	return k.Name < o.Name
}

// Family is an IP family, spelled as in a Service's spec.ipFamilies.
type Family string

// IP families.
const (
	IPv4 Family = "IPv4"
	IPv6 Family = "IPv6"
)

func familyOf(ip netip.Addr) Family {
	if ip.Is4() {
		return IPv4
	}
	return IPv6
}

func (f Family) index() int {
	if f == IPv6 {
		return 1
	}
	return 0
}

// FamilyPolicy is a Service's spec.ipFamilyPolicy.
type FamilyPolicy string

// IP family policies.
const (
	SingleStack      FamilyPolicy = "SingleStack"
	PreferDualStack  FamilyPolicy = "PreferDualStack"
	RequireDualStack FamilyPolicy = "RequireDualStack"
)

// TrafficPolicy is a Service's spec.externalTrafficPolicy.
type TrafficPolicy string

// External traffic policies; the empty value means Cluster.
const (
	TrafficCluster TrafficPolicy = "Cluster"
	TrafficLocal   TrafficPolicy = "Local"
)

// Port is one port of a Service, the unit that Services sharing an IP must not both use.
type Port struct {
	Protocol string
	Port     int32
}

func (p Port) String() string { return fmt.Sprintf("%s/%d", p.Protocol, p.Port) }

// Service is what the allocator needs to know about a LoadBalancer Service.
type Service struct {
	Key             ServiceKey
	Labels          map[string]string
	NamespaceLabels map[string]string
	Ports           []Port
	TrafficPolicy   TrafficPolicy
	// Selector is the Service's pod selector; Services sharing an IP with traffic policy Local
	// must have the same one, or traffic would reach nodes without a local endpoint.
	Selector map[string]string
	// SharingKey is the allow-shared-ip annotation; empty means the IP is not shared.
	SharingKey string
	// RequestedIPs are the addresses asked for (loadBalancerIPs annotations or
	// spec.loadBalancerIP), unparsed: the allocator validates them.
	RequestedIPs []string
	// RequestedPool is the address-pool annotation.
	RequestedPool string
	// Families is spec.ipFamilies (empty means [IPv4]); FamilyPolicy is spec.ipFamilyPolicy
	// (empty means SingleStack).
	Families     []Family
	FamilyPolicy FamilyPolicy
}

// Assignment is the addresses held by a Service and the pool they come from.
type Assignment struct {
	IPs  []netip.Addr
	Pool string
}

// allocation is a Service's assignment together with what sharing is checked against.
type allocation struct {
	svc      Service
	selector string
	ips      []netip.Addr
	pool     string
}

func (a *allocation) trafficPolicy() TrafficPolicy {
	if a.svc.TrafficPolicy == "" {
		return TrafficCluster
	}
	return a.svc.TrafficPolicy
}

// ipUse records the Services holding one address.
type ipUse struct {
	pool       string
	sharingKey string
	holders    map[ServiceKey]*allocation
	ports      map[Port]ServiceKey
}

// firstHolder returns the holder with the smallest key, so messages are deterministic.
func (u *ipUse) firstHolder() *allocation {
	var best *allocation
	for k, a := range u.holders {
		if best == nil || k.less(best.svc.Key) {
			best = a
		}
	}
	return best
}

// Allocator tracks pools and the addresses assigned to Services.
type Allocator struct {
	pools    map[string]*pool
	problems map[string]*Error
	// autoOrder is the auto-assign pools in the order automatic allocation tries them.
	autoOrder []*pool
	allocs    map[ServiceKey]*allocation
	ips       map[netip.Addr]*ipUse
	byKey     map[string]map[netip.Addr]struct{}
}

// New returns an Allocator with no pools.
func New() *Allocator {
	return &Allocator{
		pools:    map[string]*pool{},
		problems: map[string]*Error{},
		allocs:   map[ServiceKey]*allocation{},
		ips:      map[netip.Addr]*ipUse{},
		byKey:    map[string]map[netip.Addr]struct{}{},
	}
}

// SetPools replaces the pool configuration. Invalid pools, and pools overlapping an earlier
// pool (by Created, then Name), are not used and are returned as problems, one *Error per
// pool; the earlier pool keeps working. Services whose addresses are no longer in a usable
// pool lose them and are returned in released, so the caller can allocate them again.
func (a *Allocator) SetPools(specs []Pool) (problems []*Error, released []ServiceKey) {
	ordered := append([]Pool(nil), specs...)
	sort.SliceStable(ordered, func(i, j int) bool {
		if !ordered[i].Created.Equal(ordered[j].Created) {
			return ordered[i].Created.Before(ordered[j].Created)
		}
		return ordered[i].Name < ordered[j].Name
	})
	a.pools = map[string]*pool{}
	a.problems = map[string]*Error{}
	var accepted []*pool
	for _, spec := range ordered {
		if e := a.admitPool(spec, accepted); e != nil {
			a.problems[spec.Name] = e
			problems = append(problems, e)
			continue
		}
		p, _ := parsePool(spec)
		accepted = append(accepted, p)
		a.pools[spec.Name] = p
	}
	a.autoOrder = nil
	for _, p := range accepted {
		if p.spec.AutoAssign {
			a.autoOrder = append(a.autoOrder, p)
		}
	}
	sortForAutoAssign(a.autoOrder)
	return problems, a.revalidate()
}

// admitPool returns why spec cannot be used next to the already accepted pools, or nil.
func (a *Allocator) admitPool(spec Pool, accepted []*pool) *Error {
	if _, dup := a.pools[spec.Name]; dup {
		return &Error{Reason: ReasonInvalidPool, Pool: spec.Name, Message: fmt.Sprintf("pool %q is defined twice", spec.Name)}
	}
	p, err := parsePool(spec)
	if err != nil {
		return &Error{Reason: ReasonInvalidPool, Pool: spec.Name, Message: err.Error()}
	}
	for _, earlier := range accepted {
		for _, r := range p.ranges {
			for _, o := range earlier.ranges {
				if r.overlaps(o) {
					return &Error{
						Reason: ReasonPoolOverlap, Pool: spec.Name, OtherPool: earlier.spec.Name,
						Message: fmt.Sprintf("pool %q (%s) overlaps pool %q (%s), which was created earlier; pool %q is not used", spec.Name, r, earlier.spec.Name, o, spec.Name),
					}
				}
			}
		}
	}
	return nil
}

// revalidate recounts pool usage after a configuration change and releases Services whose
// addresses left every usable pool.
func (a *Allocator) revalidate() []ServiceKey {
	stale := map[ServiceKey]bool{}
	for ip, use := range a.ips {
		p := a.pools[use.pool]
		if p == nil || !p.contains(ip) || (p.spec.AvoidBuggyIPs && isBuggy(ip)) {
			for k := range use.holders {
				stale[k] = true
			}
		}
	}
	var released []ServiceKey
	for k := range stale {
		a.release(k)
		released = append(released, k)
	}
	sort.Slice(released, func(i, j int) bool { return released[i].less(released[j]) })
	for ip, use := range a.ips {
		a.pools[use.pool].used[familyIndex(ip)]++
	}
	return released
}

// Assign gives svc its addresses: the ones it already holds if they still satisfy its request,
// else the requested IPs, else addresses from the requested pool, else from the first pool (by
// priority) that allows it. On refusal it returns an *Error and svc holds nothing.
func (a *Allocator) Assign(svc Service) (Assignment, error) {
	prev := a.allocs[svc.Key]
	a.release(svc.Key)
	if err := validateFamilies(svc); err != nil {
		return Assignment{}, err
	}
	if prev != nil && a.keepable(svc, prev.ips) == nil {
		if res, err := a.place(svc, prev.ips); err == nil {
			return res, nil
		}
	}
	if len(svc.RequestedIPs) > 0 {
		return a.assignRequested(svc)
	}
	return a.allocateFromPools(svc)
}

// Restore re-establishes an assignment read back from a Service's status, as on a controller
// restart. It never picks other addresses: if ips no longer satisfy svc, it returns the reason
// and svc holds nothing, to be handled by Assign once every other Service is restored.
func (a *Allocator) Restore(svc Service, ips []netip.Addr) (Assignment, error) {
	a.release(svc.Key)
	if err := validateFamilies(svc); err != nil {
		return Assignment{}, err
	}
	if err := a.keepable(svc, ips); err != nil {
		return Assignment{}, err
	}
	return a.place(svc, ips)
}

// Release frees the addresses of the Service, reporting whether it held any.
func (a *Allocator) Release(key ServiceKey) bool {
	return a.release(key)
}

// Lookup returns the Service's current assignment.
func (a *Allocator) Lookup(key ServiceKey) (Assignment, bool) {
	al := a.allocs[key]
	if al == nil {
		return Assignment{}, false
	}
	return Assignment{IPs: append([]netip.Addr(nil), al.ips...), Pool: al.pool}, true
}

// Holders returns the Services holding ip, sorted.
func (a *Allocator) Holders(ip netip.Addr) []ServiceKey {
	use := a.ips[ip]
	if use == nil {
		return nil
	}
	keys := make([]ServiceKey, 0, len(use.holders))
	for k := range use.holders {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i].less(keys[j]) })
	return keys
}

// Stats returns the usage of every configured pool, usable or not, sorted by name.
func (a *Allocator) Stats() []PoolStats {
	out := make([]PoolStats, 0, len(a.pools)+len(a.problems))
	for _, p := range a.pools {
		out = append(out, p.stats())
	}
	for name, e := range a.problems {
		out = append(out, PoolStats{Name: name, Problem: e.Message})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// families returns the Service's ipFamilies, defaulted.
func families(svc Service) []Family {
	if len(svc.Families) == 0 {
		return []Family{IPv4}
	}
	return svc.Families
}

func validateFamilies(svc Service) *Error {
	fams := families(svc)
	for i, f := range fams {
		if f != IPv4 && f != IPv6 {
			return refuse(ReasonInvalidService, "spec.ipFamilies[%d]: %q is not IPv4 or IPv6", i, f)
		}
	}
	if len(fams) > 2 || (len(fams) == 2 && fams[0] == fams[1]) {
		return refuse(ReasonInvalidService, "spec.ipFamilies %v is not one family or two different ones", fams)
	}
	if svc.FamilyPolicy == RequireDualStack && len(fams) != 2 {
		return refuse(ReasonInvalidService, "spec.ipFamilyPolicy RequireDualStack needs two spec.ipFamilies, has %v", fams)
	}
	return nil
}

// wantedFamilies returns the families to allocate: both for a dual-stack policy with two
// ipFamilies, else the first.
func wantedFamilies(svc Service) []Family {
	fams := families(svc)
	if len(fams) == 2 && (svc.FamilyPolicy == PreferDualStack || svc.FamilyPolicy == RequireDualStack) {
		return fams
	}
	return fams[:1]
}

// keepable reports why ips (held or restored) no longer satisfy svc's request, or nil.
func (a *Allocator) keepable(svc Service, ips []netip.Addr) *Error {
	if len(ips) == 0 {
		return refuse(ReasonInvalidService, "no addresses to keep")
	}
	if len(svc.RequestedIPs) > 0 {
		want, err := parseRequested(svc)
		if err != nil {
			return err
		}
		if !sameAddrs(want, ips) {
			return refuse(ReasonInvalidService, "the requested addresses changed")
		}
	}
	allowed := families(svc)
	seen := map[Family]bool{}
	for _, ip := range ips {
		f := familyOf(ip)
		if !containsFamily(allowed, f) || seen[f] {
			return refuse(ReasonWrongFamily, "%s is %s but the Service's ipFamilies is %v", ip, f, allowed)
		}
		seen[f] = true
	}
	if svc.FamilyPolicy == RequireDualStack && len(ips) < 2 {
		return refuse(ReasonMissingFamily, "ipFamilyPolicy RequireDualStack needs an address of each family")
	}
	return nil
}

func containsFamily(fams []Family, f Family) bool {
	for _, x := range fams {
		if x == f {
			return true
		}
	}
	return false
}

func sameAddrs(a, b []netip.Addr) bool {
	if len(a) != len(b) {
		return false
	}
	for _, x := range a {
		found := false
		for _, y := range b {
			found = found || x == y
		}
		if !found {
			return false
		}
	}
	return true
}

// parseRequested parses and checks the requested IPs against the Service's families.
func parseRequested(svc Service) ([]netip.Addr, *Error) {
	allowed := families(svc)
	var ips []netip.Addr
	byFamily := map[Family]netip.Addr{}
	for _, s := range svc.RequestedIPs {
		ip, err := netip.ParseAddr(strings.TrimSpace(s))
		if err != nil || ip.Zone() != "" {
			e := refuse(ReasonInvalidIP, "%s is not a valid IP", strings.TrimSpace(s))
			e.IP = s
			return nil, e
		}
		ip = ip.Unmap()
		f := familyOf(ip)
		if !containsFamily(allowed, f) {
			e := refuse(ReasonWrongFamily, "%s is %s but the Service's ipFamilies is %v", ip, f, allowed)
			e.IP = ip.String()
			return nil, e
		}
		if other, dup := byFamily[f]; dup {
			e := refuse(ReasonTooManyIPs, "the Service requests two %s addresses (%s and %s); at most one per family", f, other, ip)
			e.IP = ip.String()
			return nil, e
		}
		byFamily[f] = ip
		ips = append(ips, ip)
	}
	if svc.FamilyPolicy == RequireDualStack && len(ips) < 2 {
		return nil, refuse(ReasonMissingFamily, "ipFamilyPolicy RequireDualStack needs one requested address of each family, the Service requests only %s", familyOf(ips[0]))
	}
	return ips, nil
}

func (a *Allocator) assignRequested(svc Service) (Assignment, error) {
	ips, err := parseRequested(svc)
	if err != nil {
		return Assignment{}, err
	}
	return a.place(svc, ips)
}

// poolFor returns the usable pool that may hand out ip, or nil and why not.
func (a *Allocator) poolFor(ip netip.Addr) (*pool, *Error) {
	for _, p := range a.pools {
		if !p.contains(ip) {
			continue
		}
		if p.spec.AvoidBuggyIPs && isBuggy(ip) {
			e := refuse(ReasonBuggyIP, "%s is in pool %q, which has avoidBuggyIPs: addresses ending in .0 and .255 are not used", ip, p.spec.Name)
			e.IP, e.Pool = ip.String(), p.spec.Name
			return nil, e
		}
		return p, nil
	}
	e := refuse(ReasonNotInPool, "%s is not in any pool", ip)
	e.IP = ip.String()
	return nil, e
}

// place assigns exactly ips to svc if every rule allows it.
func (a *Allocator) place(svc Service, ips []netip.Addr) (Assignment, error) {
	var p *pool
	for _, ip := range ips {
		ipPool, err := a.poolFor(ip)
		if err != nil {
			return Assignment{}, err
		}
		if p != nil && p != ipPool {
			e := refuse(ReasonDifferentPools, "%s is in pool %q but %s is in pool %q; all addresses of a Service must come from one pool", ips[0], p.spec.Name, ip, ipPool.spec.Name)
			e.IP, e.Pool = ip.String(), ipPool.spec.Name
			return Assignment{}, e
		}
		p = ipPool
	}
	if svc.RequestedPool != "" && p.spec.Name != svc.RequestedPool {
		if err := a.checkRequestedPool(svc); err != nil {
			return Assignment{}, err
		}
		e := refuse(ReasonNotInRequestedPool, "%s is in pool %q, not in the requested pool %q", ips[0], p.spec.Name, svc.RequestedPool)
		e.IP, e.Pool = ips[0].String(), p.spec.Name
		return Assignment{}, e
	}
	if err := checkAllowed(p, svc); err != nil {
		return Assignment{}, err
	}
	for _, ip := range ips {
		if err := a.checkSharing(svc, ip); err != nil {
			return Assignment{}, err
		}
	}
	return a.commit(svc, ips, p), nil
}

// checkAllowed applies the pool's serviceAllocation to svc.
func checkAllowed(p *pool, svc Service) *Error {
	if !p.allowsNamespace(svc.Key.Namespace, svc.NamespaceLabels) {
		e := refuse(ReasonNamespaceNotAllowed, "pool %q does not allow namespace %q", p.spec.Name, svc.Key.Namespace)
		e.Pool = p.spec.Name
		return e
	}
	if !p.allowsServiceLabels(svc.Labels) {
		e := refuse(ReasonServiceNotAllowed, "pool %q does not allow Service %s: its labels {%s} match none of the pool's serviceSelectors", p.spec.Name, svc.Key, labels.Set(svc.Labels))
		e.Pool = p.spec.Name
		return e
	}
	return nil
}

// checkRequestedPool returns why the requested pool cannot be used at all, or nil.
func (a *Allocator) checkRequestedPool(svc Service) *Error {
	if _, ok := a.pools[svc.RequestedPool]; ok {
		return nil
	}
	if problem, ok := a.problems[svc.RequestedPool]; ok {
		e := refuse(ReasonPoolUnusable, "pool %q is not in use: %s", svc.RequestedPool, problem.Message)
		e.Pool = svc.RequestedPool
		return e
	}
	e := refuse(ReasonUnknownPool, "pool %q does not exist", svc.RequestedPool)
	e.Pool = svc.RequestedPool
	return e
}

func selectorString(sel map[string]string) string {
	if len(sel) == 0 {
		return "nothing (no selector)"
	}
	return labels.Set(sel).String()
}

// checkSharing returns why svc may not use ip next to the Services already holding it, or nil.
// svc must not hold ip itself.
func (a *Allocator) checkSharing(svc Service, ip netip.Addr) *Error {
	use := a.ips[ip]
	if use == nil {
		return nil
	}
	other := use.firstHolder()
	mk := func(reason Reason, format string, args ...any) *Error {
		e := refuse(reason, format, args...)
		e.IP, e.Pool = ip.String(), use.pool
		k := other.svc.Key
		e.OtherService = &k
		return e
	}
	switch {
	case use.sharingKey == "":
		return mk(ReasonIPInUse, "%s is used by %s, which has no sharing key", ip, other.svc.Key)
	case svc.SharingKey == "":
		return mk(ReasonIPInUse, "%s is used by %s with sharing key %q, this Service has no sharing key", ip, other.svc.Key, use.sharingKey)
	case svc.SharingKey != use.sharingKey:
		return mk(ReasonSharingKeyMismatch, "%s is used by %s with sharing key %q, this Service has key %q", ip, other.svc.Key, use.sharingKey, svc.SharingKey)
	}
	mine := TrafficPolicy(svc.TrafficPolicy)
	if mine == "" {
		mine = TrafficCluster
	}
	if mine != other.trafficPolicy() {
		return mk(ReasonTrafficPolicyMix, "Services sharing %s must have the same externalTrafficPolicy: %s has %s, this Service has %s", ip, other.svc.Key, other.trafficPolicy(), mine)
	}
	if mine == TrafficLocal && selectorString(svc.Selector) != other.selector {
		return mk(ReasonSelectorMismatch, "Services sharing %s with externalTrafficPolicy Local must have the same selector: %s selects %s, this Service selects %s", ip, other.svc.Key, other.selector, selectorString(svc.Selector))
	}
	for _, port := range svc.Ports {
		if holder, taken := use.ports[port]; taken {
			e := mk(ReasonPortConflict, "port %s of %s is already used by %s", port, ip, holder)
			e.OtherService = &holder
			return e
		}
	}
	return nil
}

// commit records the assignment; every rule has been checked.
func (a *Allocator) commit(svc Service, ips []netip.Addr, p *pool) Assignment {
	al := &allocation{svc: svc, selector: selectorString(svc.Selector), ips: ips, pool: p.spec.Name}
	for _, ip := range ips {
		use := a.ips[ip]
		if use == nil {
			use = &ipUse{pool: p.spec.Name, sharingKey: svc.SharingKey, holders: map[ServiceKey]*allocation{}, ports: map[Port]ServiceKey{}}
			a.ips[ip] = use
			p.used[familyIndex(ip)]++
			if svc.SharingKey != "" {
				if a.byKey[svc.SharingKey] == nil {
					a.byKey[svc.SharingKey] = map[netip.Addr]struct{}{}
				}
				a.byKey[svc.SharingKey][ip] = struct{}{}
			}
		}
		use.holders[svc.Key] = al
		for _, port := range svc.Ports {
			use.ports[port] = svc.Key
		}
	}
	a.allocs[svc.Key] = al
	return Assignment{IPs: append([]netip.Addr(nil), ips...), Pool: p.spec.Name}
}

func (a *Allocator) release(key ServiceKey) bool {
	al := a.allocs[key]
	if al == nil {
		return false
	}
	delete(a.allocs, key)
	for _, ip := range al.ips {
		use := a.ips[ip]
		if use == nil {
			continue
		}
		delete(use.holders, key)
		for port, holder := range use.ports {
			if holder == key {
				delete(use.ports, port)
			}
		}
		if len(use.holders) > 0 {
			continue
		}
		delete(a.ips, ip)
		if p := a.pools[use.pool]; p != nil && p.used[familyIndex(ip)] > 0 {
			p.used[familyIndex(ip)]--
		}
		if set := a.byKey[use.sharingKey]; set != nil {
			delete(set, ip)
			if len(set) == 0 {
				delete(a.byKey, use.sharingKey)
			}
		}
	}
	return true
}
