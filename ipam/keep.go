package ipam

import (
	"fmt"
	"net/netip"
	"slices"
)

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
