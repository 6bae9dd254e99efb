package ipam

import (
	"net/netip"
	"strings"

	"k8s.io/apimachinery/pkg/labels"
)

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
