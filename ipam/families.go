package ipam

import (
	"net/netip"
)

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

func containsFamily(fams []Family, f Family) bool {
	for _, x := range fams {
		if x == f {
			return true
		}
	}
	return false
}
