package ipam

import (
	"fmt"
	"net/netip"
)

// AddressSet is the parsed spec.addresses of an IPAddressPool, for callers that only ask
// whether a pool contains an address (the speaker derives an IP's pool from it rather than
// trusting the Service's user-writable metallb.io/ip-allocated-from-pool annotation).
type AddressSet struct {
	ranges []addrRange
}

// ParseAddressSet parses CIDRs and "a-b" ranges as a Pool's Addresses. Entries that do not
// parse are skipped and reported; the others still count, so one typo never hides a pool's
// valid ranges.
func ParseAddressSet(addresses []string) (AddressSet, error) {
	var s AddressSet
	var err error
	for i, a := range addresses {
		r, perr := parseRange(a)
		if perr != nil {
			err = fmt.Errorf("spec.addresses[%d]: %w", i, perr)
			continue
		}
		s.ranges = append(s.ranges, r)
	}
	return s, err
}

// Contains reports whether ip is in one of the set's ranges.
func (s AddressSet) Contains(ip netip.Addr) bool {
	ip = ip.Unmap()
	for _, r := range s.ranges {
		if r.contains(ip) {
			return true
		}
	}
	return false
}
