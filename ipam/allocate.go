package ipam

import (
	"fmt"
	"net/netip"
	"sort"
	"strings"
)

// allocateFromPools picks new addresses for svc from the requested pool or, without one, from
// the pools that auto-assign and allow svc, group by group as MetalLB does: first the pools
// whose serviceAllocation selects svc, then the unrestricted ones (see candidatePools).
func (a *Allocator) allocateFromPools(svc Service) (Assignment, error) {
	groups, err := a.candidatePools(svc)
	if err != nil {
		return Assignment{}, err
	}
	want := wantedFamilies(svc)
	for _, group := range groups {
		if res, ok := a.allocateFromGroup(svc, group, want); ok {
			return res, nil
		}
	}
	var all []*pool
	for _, g := range groups {
		all = append(all, g...)
	}
	withFamilies, ferr := poolsWithFamilies(all, want)
	if ferr != nil && len(want) == 2 && svc.FamilyPolicy == PreferDualStack {
		// PreferDualStack settles for one family: the refusal is about that.
		for _, f := range want {
			if withFamilies, ferr = poolsWithFamilies(all, []Family{f}); ferr == nil {
				want = []Family{f}
				break
			}
		}
		if ferr != nil {
			withFamilies, ferr = poolsWithFamilies(all, want[:1])
		}
	}
	if ferr != nil {
		return Assignment{}, ferr
	}
	return Assignment{}, exhausted(withFamilies, want)
}

// allocateFromGroup is MetalLB's findBestPoolForService over one group of pools, in order: the
// first pool with a free address of every wanted family wins; PreferDualStack settles for the
// first pool with a free address of the primary family, else of the secondary one.
func (a *Allocator) allocateFromGroup(svc Service, group []*pool, want []Family) (Assignment, bool) {
	preferDual := len(want) == 2 && svc.FamilyPolicy == PreferDualStack
	var fallback [2]*pool
	var fallbackIP [2]netip.Addr
	for _, p := range group {
		ips := a.pick(p, svc, want)
		complete := true
		for i, ip := range ips {
			complete = complete && ip.IsValid()
			if preferDual && ip.IsValid() && fallback[i] == nil {
				fallback[i], fallbackIP[i] = p, ip
			}
		}
		if complete {
			return a.commit(svc, ips, p, nil), true
		}
	}
	for i, p := range fallback {
		if p != nil {
			res := a.commit(svc, []netip.Addr{fallbackIP[i]}, p, nil)
			res.Partial = oneFamily(want[i], "no pool allowed for this Service has a free address of each family")
			return res, true
		}
	}
	return Assignment{}, false
}

// candidatePools returns the pools svc may get addresses from in the order they are tried, in
// groups, or why there is none: the requested pool alone, else the auto-assign pools that
// allow svc, those with a serviceAllocation first (MetalLB's pools "pinned" to the Service by
// namespace or labels), then those without one.
func (a *Allocator) candidatePools(svc Service) ([][]*pool, *Error) {
	if svc.RequestedPool != "" {
		if err := a.checkRequestedPool(svc); err != nil {
			return nil, err
		}
		p := a.pools[svc.RequestedPool]
		if err := checkAllowed(p, svc); err != nil {
			return nil, err
		}
		return [][]*pool{{p}}, nil
	}
	if len(a.pools) == 0 {
		return nil, refuse(ReasonNoPools, "no usable address pool is configured")
	}
	auto := a.autoOrder
	var inNamespace int
	var pinned, open []*pool
	for _, p := range auto {
		if !p.allowsNamespace(svc.Key.Namespace, svc.NamespaceLabels) {
			continue
		}
		inNamespace++
		if !p.allowsServiceLabels(svc.Labels) {
			continue
		}
		if p.restricted() {
			pinned = append(pinned, p)
		} else {
			open = append(open, p)
		}
	}
	switch {
	case len(auto) == 0:
		return nil, refuse(ReasonNoAutoAssignPool, "no pool has autoAssign enabled; request one with the metallb.io/address-pool annotation")
	case inNamespace == 0:
		return nil, refuse(ReasonNamespaceNotAllowed, "no pool allows namespace %q", svc.Key.Namespace)
	case len(pinned)+len(open) == 0:
		return nil, refuse(ReasonServiceNotAllowed, "no pool allows Service %s: its labels {%s} match no pool's serviceSelectors", svc.Key, short(formatLabels(svc.Labels)))
	}
	var groups [][]*pool
	for _, g := range [][]*pool{pinned, open} {
		if len(g) > 0 {
			groups = append(groups, g)
		}
	}
	return groups, nil
}

func formatLabels(l map[string]string) string {
	keys := make([]string, 0, len(l))
	for k := range l {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + l[k]
	}
	return strings.Join(parts, ",")
}

// poolsWithFamilies keeps the pools that have addresses of every wanted family, in order.
func poolsWithFamilies(pools []*pool, want []Family) ([]*pool, *Error) {
	var out []*pool
	for _, p := range pools {
		ok := true
		for _, f := range want {
			ok = ok && p.hasFamily(f.index())
		}
		if ok {
			out = append(out, p)
		}
	}
	if len(out) > 0 {
		return out, nil
	}
	what := string(want[0]) + " addresses"
	if len(want) == 2 {
		what = "both IPv4 and IPv6 addresses"
	}
	if len(pools) == 1 {
		e := refuse(ReasonNoPoolForFamily, "pool %q has no %s", pools[0].spec.Name, what)
		e.Pool = pools[0].spec.Name
		return nil, e
	}
	return nil, refuse(ReasonNoPoolForFamily, "no pool allowed for this Service has %s", what)
}

// pick chooses one address per wanted family in p, an invalid Addr where the family has none
// free: first an address already shared under svc's sharing key that accepts svc, as MetalLB
// does, else a free one (not held, not being given up by another Service: its own it may take back).
func (a *Allocator) pick(p *pool, svc Service, want []Family) []netip.Addr {
	ips := make([]netip.Addr, 0, len(want))
	inUse := func(ip netip.Addr) bool {
		k, releasing := a.releasing[ip]
		return a.ips[ip] != nil || (releasing && k != svc.Key)
	}
	for _, f := range want {
		ip, ok := a.pickShared(p, svc, f)
		if !ok && p.hasFamily(f.index()) {
			ip, _ = p.nextFree(f.index(), inUse)
		}
		ips = append(ips, ip)
	}
	return ips
}

func (a *Allocator) pickShared(p *pool, svc Service, f Family) (netip.Addr, bool) {
	if svc.SharingKey == "" {
		return netip.Addr{}, false
	}
	var shared []netip.Addr
	for ip := range a.byKey[svc.SharingKey] {
		if familyOf(ip) == f && a.ips[ip].pool == p.spec.Name {
			shared = append(shared, ip)
		}
	}
	sort.Slice(shared, func(i, j int) bool { return shared[i].Less(shared[j]) })
	for _, ip := range shared {
		if a.checkSharing(svc, ip) == nil {
			return ip, true
		}
	}
	return netip.Addr{}, false
}

// exhausted explains that no pool had room, with each pool's usage.
func exhausted(pools []*pool, want []Family) *Error {
	var parts []string
	var full []string
	for _, p := range pools {
		for _, f := range want {
			i := f.index()
			if p.used[i] < p.size[i] {
				continue
			}
			what := "addresses"
			if p.hasFamily(0) && p.hasFamily(1) {
				what = string(f) + " addresses"
			}
			parts = append(parts, fmt.Sprintf("%d of %d %s in use", p.used[i], p.size[i], what))
			full = append(full, p.spec.Name)
			break
		}
	}
	if len(parts) == 0 {
		// Not reachable while the usage counters are right; still never a bare refusal.
		return refuse(ReasonPoolExhausted, "no free address found in pools %s", poolNames(pools))
	}
	if len(pools) == 1 {
		e := refuse(ReasonPoolExhausted, "pool %q is exhausted: %s", pools[0].spec.Name, parts[0])
		e.Pool = pools[0].spec.Name
		return e
	}
	msgs := make([]string, len(full))
	for i := range full {
		msgs[i] = fmt.Sprintf("pool %q: %s", full[i], parts[i])
	}
	return refuse(ReasonPoolExhausted, "every pool allowed for this Service is exhausted: %s", strings.Join(msgs, "; "))
}

func poolNames(pools []*pool) string {
	names := make([]string, len(pools))
	for i, p := range pools {
		names[i] = fmt.Sprintf("%q", p.spec.Name)
	}
	return strings.Join(names, ", ")
}
