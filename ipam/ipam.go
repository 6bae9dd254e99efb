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
	"slices"
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

// SetPools replaces the pool configuration. Invalid pools, and pools overlapping an earlier
// pool (by Created, then Name), are not used and are returned as problems, one *Error per
// pool; the earlier pool keeps working. No Service loses an address, as in MetalLB: each
// address now belongs to the usable pool that contains it (a renamed or split pool keeps
// every Service where it is), and an address no usable pool contains stays held, kept for its
// Service until the Service's spec or an operator decides. repooled lists the Services whose
// pool changed, so the caller can re-check them.
func (a *Allocator) SetPools(specs []Pool) (problems []*Error, repooled []ServiceKey) {
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

// revalidate derives every held address's pool again after a configuration change and
// recounts pool usage. It releases nothing.
func (a *Allocator) revalidate() []ServiceKey {
	for ip, use := range a.ips {
		use.pool = ""
		if p := a.usablePoolOf(ip); p != nil {
			use.pool = p.spec.Name
			p.used[familyIndex(ip)]++
		}
	}
	var repooled []ServiceKey
	for k, al := range a.allocs {
		name := ""
		p, kept := a.poolFor(al.ips)
		if p != nil {
			name, kept = p.spec.Name, checkAllowed(p, al.svc)
		}
		al.kept = kept
		if name != al.pool {
			al.pool = name
			repooled = append(repooled, k)
		}
	}
	sort.Slice(repooled, func(i, j int) bool { return repooled[i].less(repooled[j]) })
	return repooled
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

// Restore re-establishes an assignment read back from a Service's status, as on a controller
// restart, with the rules of keep. It never picks other addresses: if ips no longer satisfy
// svc, it returns the reason and svc holds nothing, to be handled by Assign once every other
// Service is restored.
func (a *Allocator) Restore(svc Service, ips []netip.Addr) (Assignment, error) {
	a.release(svc.Key)
	if err := validateFamilies(svc); err != nil {
		return Assignment{}, err
	}
	res, err := a.keep(svc, ips, true)
	if err != nil {
		return Assignment{}, err
	}
	return res, nil
}

// keep assigns svc exactly the addresses it already has, unless its spec asks for something
// else: other requested IPs, a requested pool that does not contain them, ipFamilies they do
// not fit, or sharing rules that no longer let it stay next to the other holders. A pool
// change alone never refuses addresses outside every usable pool: they are kept and the
// Assignment says why in Kept. Addresses in a pool whose serviceAllocation does not allow svc
// are refused as MetalLB does (svc moves to a pool that allows it), unless disallowedOK.
func (a *Allocator) keep(svc Service, ips []netip.Addr, disallowedOK bool) (Assignment, *Error) {
	if err := a.keepable(svc, ips); err != nil {
		return Assignment{}, err
	}
	p, kept := a.poolFor(ips)
	if svc.RequestedPool != "" && (p == nil || p.spec.Name != svc.RequestedPool) {
		return Assignment{}, refuse(ReasonNotInRequestedPool, "the Service requests pool %s", quote(svc.RequestedPool))
	}
	if p != nil {
		kept = checkAllowed(p, svc)
		if kept != nil && !disallowedOK {
			return Assignment{}, kept
		}
	}
	for _, ip := range ips {
		if err := a.checkSharing(svc, ip); err != nil {
			return Assignment{}, err
		}
	}
	var partial *Error
	if want := wantedFamilies(svc); len(want) == 2 && len(ips) == 1 && svc.FamilyPolicy == PreferDualStack {
		// MetalLB adds the missing family from the same pool when it can.
		missing := want[0]
		if missing == familyOf(ips[0]) {
			missing = want[1]
		}
		if p == nil || kept != nil {
			partial = oneFamily(familyOf(ips[0]), "the address it has is kept outside the pools' rules")
		} else if extra := a.pick(p, svc, []Family{missing})[0]; extra.IsValid() {
			ips = append(slices.Clone(ips), extra)
		} else {
			partial = oneFamily(familyOf(ips[0]), fmt.Sprintf("pool %q, which holds it, has no free %s address", p.spec.Name, missing))
		}
	}
	res := a.commit(svc, ips, p, kept)
	res.Partial = partial
	return res, nil
}

// oneFamily explains why a PreferDualStack Service has an address of family f only.
func oneFamily(f Family, why string) *Error {
	return refuse(ReasonMissingFamily, "ipFamilyPolicy PreferDualStack, but the Service has only an %s address: %s; all addresses of a Service come from one pool, as in MetalLB", f, why)
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
			e := refuse(ReasonInvalidIP, "%s is not a valid IP", short(strings.TrimSpace(s)))
			e.IP = short(s)
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

// usablePoolOf returns the usable pool containing ip, or nil. Usable pools never overlap.
func (a *Allocator) usablePoolOf(ip netip.Addr) *pool {
	for _, p := range a.pools {
		if p.contains(ip) {
			return p
		}
	}
	return nil
}

// poolFor returns the usable pool that may hand out every one of ips, as MetalLB's poolFor
// does, or nil and why not.
func (a *Allocator) poolFor(ips []netip.Addr) (*pool, *Error) {
	var p *pool
	for _, ip := range ips {
		ipPool := a.usablePoolOf(ip)
		if ipPool == nil {
			e := refuse(ReasonNotInPool, "%s is not in any pool", ip)
			e.IP = ip.String()
			return nil, e
		}
		if ipPool.spec.AvoidBuggyIPs && isBuggy(ip) {
			e := refuse(ReasonBuggyIP, "%s is in pool %q, which has avoidBuggyIPs: addresses ending in .0 and .255 are not used", ip, ipPool.spec.Name)
			e.IP, e.Pool = ip.String(), ipPool.spec.Name
			return nil, e
		}
		if p != nil && p != ipPool {
			e := refuse(ReasonDifferentPools, "%s is in pool %q but %s is in pool %q; all addresses of a Service must come from one pool", ips[0], p.spec.Name, ip, ipPool.spec.Name)
			e.IP, e.Pool = ip.String(), ipPool.spec.Name
			return nil, e
		}
		p = ipPool
	}
	return p, nil
}

// PoolOf returns the usable pool that contains every one of ips, or "" and why none does.
func (a *Allocator) PoolOf(ips ...netip.Addr) (string, *Error) {
	p, err := a.poolFor(ips)
	if p == nil {
		return "", err
	}
	return p.spec.Name, nil
}

// place assigns exactly ips to svc if every rule allows it.
func (a *Allocator) place(svc Service, ips []netip.Addr) (Assignment, error) {
	p, err := a.poolFor(ips)
	if err != nil {
		return Assignment{}, err
	}
	if svc.RequestedPool != "" && p.spec.Name != svc.RequestedPool {
		if err := a.checkRequestedPool(svc); err != nil {
			return Assignment{}, err
		}
		e := refuse(ReasonNotInRequestedPool, "%s is in pool %q, not in the requested pool %s", ips[0], p.spec.Name, quote(svc.RequestedPool))
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
	return a.commit(svc, ips, p, nil), nil
}

// checkAllowed applies the pool's serviceAllocation to svc.
func checkAllowed(p *pool, svc Service) *Error {
	if !p.allowsNamespace(svc.Key.Namespace, svc.NamespaceLabels) {
		e := refuse(ReasonNamespaceNotAllowed, "pool %q does not allow namespace %q", p.spec.Name, svc.Key.Namespace)
		e.Pool = p.spec.Name
		return e
	}
	if !p.allowsServiceLabels(svc.Labels) {
		e := refuse(ReasonServiceNotAllowed, "pool %q does not allow Service %s: its labels {%s} match none of the pool's serviceSelectors", p.spec.Name, svc.Key, short(labels.Set(svc.Labels).String()))
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
		e := refuse(ReasonPoolUnusable, "pool %s is not in use: %s", quote(svc.RequestedPool), problem.Message)
		e.Pool = svc.RequestedPool
		return e
	}
	e := refuse(ReasonUnknownPool, "pool %s does not exist", quote(svc.RequestedPool))
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
	if other, ok := a.releasing[ip]; ok && other != svc.Key {
		e := refuse(ReasonIPInUse, "%s is still in the status of %s, which is giving it up", ip, other)
		e.IP = ip.String()
		e.OtherService = &other
		return e
	}
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
		return mk(ReasonIPInUse, "%s is used by %s with sharing key %s, this Service has no sharing key", ip, other.svc.Key, quote(use.sharingKey))
	case svc.SharingKey != use.sharingKey:
		return mk(ReasonSharingKeyMismatch, "%s is used by %s with sharing key %s, this Service has key %s", ip, other.svc.Key, quote(use.sharingKey), quote(svc.SharingKey))
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
