package ipam

import (
	"net/netip"
)

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
