// Package ipam allocates load-balancer addresses to Services from address pools, with
// MetalLB's semantics (pools, requested IPs and pools, dual-stack, IP sharing), and explains
// every refusal with a typed *Error naming the rule and the other object involved.
//
// It is pure logic with no Kubernetes client: the controller converts Services, Namespaces and
// IPAddressPools into the small input types of this package. An Allocator is not safe for
// concurrent use; the controller serialises calls.
//
// The files: ipam.go the input types and the Allocator's API, poolset.go replacing the pools,
// pool.go one pool and its ranges, allocate.go choosing a pool and addresses, requested.go
// requested addresses and pools, keep.go keeping the addresses a Service has, sharing.go the
// sharing rules, families.go IP families, errors.go the refusals, special.go addresses no
// pool may hold, addrset.go a pool's addresses for callers that only ask what it contains.
package ipam

import (
	"fmt"
	"net/netip"
	"slices"
	"sort"
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
	// Current is the addresses in the Service's status.loadBalancer.ingress. Assign keeps them
	// when the allocator holds nothing for the Service (a pool change, a new leader, a
	// migration from MetalLB), so an address the world already uses never changes because of
	// the allocator's memory.
	Current []netip.Addr
}

// Assignment is the addresses held by a Service and the pool they come from.
type Assignment struct {
	IPs []netip.Addr
	// Pool is the usable pool that contains every address, derived from the addresses and the
	// pools (never from an annotation); "" when no single usable pool contains them all.
	Pool string
	// Kept is set when the Service keeps addresses it already had although the rules would
	// not give them to it now (no usable pool contains them, or the pool that does no longer
	// allows the Service): a pool change never takes an address away, the Service's own spec
	// or an operator decides. It says why, for a Warning and a condition.
	Kept *Error
	// Partial is set when a PreferDualStack Service got one family only, and says why (as in
	// MetalLB, one Service's addresses come from one pool).
	Partial *Error
}

// allocation is a Service's assignment together with what sharing is checked against.
type allocation struct {
	svc      Service
	selector string
	ips      []netip.Addr
	pool     string
	kept     *Error
}

func (a *allocation) trafficPolicy() TrafficPolicy {
	if a.svc.TrafficPolicy == "" {
		return TrafficCluster
	}
	return a.svc.TrafficPolicy
}

// ipUse records the Services holding one address.
type ipUse struct {
	// pool is the usable pool containing the address, "" for a kept address outside them.
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
	// releasing holds addresses a Service gave up that its status may still show: nobody
	// else gets them until Settle confirms the status write that removed them.
	releasing map[netip.Addr]ServiceKey
}

// New returns an Allocator with no pools.
func New() *Allocator {
	return &Allocator{
		pools:    map[string]*pool{},
		problems: map[string]*Error{},
		allocs:   map[ServiceKey]*allocation{},
		ips:      map[netip.Addr]*ipUse{},
		byKey:    map[string]map[netip.Addr]struct{}{},

		releasing: map[netip.Addr]ServiceKey{},
	}
}

// Assign gives svc its addresses: the ones it holds, else the ones in its status
// (svc.Current), if its spec still accepts them (see keep), else the requested IPs, else
// addresses from the requested pool, else from the first pool that allows it (see
// sortForAutoAssign). On refusal it returns an *Error and svc holds nothing. Addresses svc
// gives up stay reserved until Settle.
func (a *Allocator) Assign(svc Service) (res Assignment, err error) {
	var held []netip.Addr
	if prev := a.allocs[svc.Key]; prev != nil {
		held = prev.ips
		if prev.kept != nil && !sameAddrs(prev.ips, svc.Current) {
			// A kept address the Service's status no longer shows was removed by an
			// operator: that is the decision to allocate again.
			held = nil
		}
	}
	given := append(slices.Clone(held), svc.Current...)
	if prev := a.allocs[svc.Key]; prev != nil && held == nil {
		given = append(given, prev.ips...)
	}
	a.release(svc.Key)
	defer func() { a.reserve(svc.Key, given, res.IPs) }()
	if err := validateFamilies(svc); err != nil {
		return Assignment{}, err
	}
	var disallowed []netip.Addr
	for _, ips := range [][]netip.Addr{held, svc.Current} {
		if len(ips) == 0 {
			continue
		}
		res, err := a.keep(svc, ips, false)
		if err == nil {
			return res, nil
		}
		if disallowed == nil && (err.Reason == ReasonNamespaceNotAllowed || err.Reason == ReasonServiceNotAllowed) {
			disallowed = ips
		}
	}
	if len(svc.RequestedIPs) > 0 {
		return a.assignRequested(svc)
	}
	res, err = a.allocateFromPools(svc)
	if err != nil && disallowed != nil && svc.RequestedPool == "" {
		// The pool holding the addresses no longer allows svc and no other pool has room:
		// keep them, reported, rather than leave svc with nothing.
		if kept, kerr := a.keep(svc, disallowed, true); kerr == nil {
			return kept, nil
		}
	}
	return res, err
}

// reserve keeps the addresses svc gave up (given minus kept) from other Services until Settle.
func (a *Allocator) reserve(key ServiceKey, given, kept []netip.Addr) {
	for _, ip := range given {
		if slices.Contains(kept, ip) || a.ips[ip] != nil {
			continue
		}
		if _, other := a.releasing[ip]; !other {
			a.releasing[ip] = key
		}
	}
}

// Settle records that the Service's status now shows exactly ips (its status write
// succeeded, or it is read back from the API): addresses it gave up that are not among them
// are free. It reports whether any was freed.
func (a *Allocator) Settle(key ServiceKey, ips []netip.Addr) bool {
	freed := false
	for ip, k := range a.releasing {
		if k == key && !slices.Contains(ips, ip) {
			delete(a.releasing, ip)
			freed = true
		}
	}
	return freed
}

// Unassign gives up the Service's addresses when its status still shows them (it stopped
// being a LoadBalancer, or changed class): they are free once Settle confirms they left it.
func (a *Allocator) Unassign(key ServiceKey) bool {
	al := a.allocs[key]
	if al == nil {
		return false
	}
	a.release(key)
	a.reserve(key, al.ips, nil)
	return true
}

// Release frees the addresses of the Service at once, those it holds and those it gave up,
// as when it is deleted (its status goes with it). It reports whether it held any.
func (a *Allocator) Release(key ServiceKey) bool {
	a.Settle(key, nil)
	return a.release(key)
}

// Lookup returns the Service's current assignment.
func (a *Allocator) Lookup(key ServiceKey) (Assignment, bool) {
	al := a.allocs[key]
	if al == nil {
		return Assignment{}, false
	}
	return Assignment{IPs: append([]netip.Addr(nil), al.ips...), Pool: al.pool, Kept: al.kept}, true
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

// commit records the assignment; every rule has been checked. p is nil, and kept says why,
// for addresses kept outside every usable pool.
func (a *Allocator) commit(svc Service, ips []netip.Addr, p *pool, kept *Error) Assignment {
	name := ""
	if p != nil {
		name = p.spec.Name
	}
	al := &allocation{svc: svc, selector: selectorString(svc.Selector), ips: ips, pool: name, kept: kept}
	for _, ip := range ips {
		delete(a.releasing, ip) // svc takes back an address it was giving up
		use := a.ips[ip]
		if use == nil {
			use = &ipUse{sharingKey: svc.SharingKey, holders: map[ServiceKey]*allocation{}, ports: map[Port]ServiceKey{}}
			if ipPool := a.usablePoolOf(ip); ipPool != nil {
				use.pool = ipPool.spec.Name
				ipPool.used[familyIndex(ip)]++
			}
			a.ips[ip] = use
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
	return Assignment{IPs: append([]netip.Addr(nil), ips...), Pool: name, Kept: kept}
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
