package bgp

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"sort"
	"strings"

	"github.com/herald-lb/herald/announcers"
)

// route is one prefix the speaker originates, merged from every announcement that yields it.
type route struct {
	path Path
	// peers restricts the route to these peer names; nil means every peer.
	peers map[string]bool
	id    PathID
}

func (r *route) allows(peer string) bool { return r.peers == nil || r.peers[peer] }

// routeOf turns one announcement into the route it asks for: the prefix (the host route, or
// the aggregate of aggregationLength), its attributes, and its peer restriction.
func routeOf(an announcers.Announcement) (*route, error) {
	if !an.Prefix.IsValid() {
		return nil, errors.New("prefix: not a valid prefix")
	}
	addr := an.Prefix.Addr()
	if addr.IsUnspecified() || addr.IsMulticast() || addr.IsLoopback() || addr == netip.AddrFrom4([4]byte{255, 255, 255, 255}) {
		return nil, fmt.Errorf("prefix: %s is not a unicast address", an.Prefix)
	}
	bits := an.Prefix.Bits()
	r := &route{}
	b := an.BGP
	if b == nil {
		b = &announcers.BGPRoute{}
	}
	if b.AggregationLength != 0 {
		if b.AggregationLength < 0 || b.AggregationLength > addr.BitLen() {
			return nil, fmt.Errorf("bgp.aggregationLength: %d is outside [0, %d] for %s", b.AggregationLength, addr.BitLen(), an.Prefix)
		}
		bits = min(bits, b.AggregationLength)
	}
	r.path.Prefix = netip.PrefixFrom(addr, bits).Masked()
	if b.LocalPref != nil {
		lp := *b.LocalPref
		r.path.LocalPref = &lp
	}
	var errs []error
	for i, c := range b.Communities {
		v, err := ParseCommunity(c)
		if err != nil {
			errs = append(errs, fmt.Errorf("bgp.communities[%d]: %w", i, err))
			continue
		}
		r.path.Communities = append(r.path.Communities, v)
	}
	for i, c := range b.LargeCommunities {
		v, err := ParseLargeCommunity(c)
		if err != nil {
			errs = append(errs, fmt.Errorf("bgp.largeCommunities[%d]: %w", i, err))
			continue
		}
		r.path.LargeCommunities = append(r.path.LargeCommunities, v)
	}
	for i, c := range b.ExtendedCommunities {
		ec, err := parseExtended(c)
		if err != nil {
			errs = append(errs, fmt.Errorf("bgp.extendedCommunities[%d]: %w", i, err))
			continue
		}
		r.path.ExtendedCommunities = append(r.path.ExtendedCommunities, ec)
	}
	if len(b.Peers) > 0 {
		r.peers = map[string]bool{}
		for _, p := range b.Peers {
			r.peers[p] = true
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	r.path.normalize()
	return r, nil
}

// parseExtended reads "route-target:65000:100" (also "rt:") or "route-origin:65000:100"
// (also "soo:").
func parseExtended(s string) (ExtCommunity, error) {
	kind, value, ok := strings.Cut(s, ":")
	if !ok {
		return ExtCommunity{}, fmt.Errorf("%q: want route-target:X:Y or route-origin:X:Y", s)
	}
	var ec ExtCommunity
	switch kind {
	case "route-target", "rt":
	case "route-origin", "soo":
		ec.Origin = true
	default:
		return ExtCommunity{}, fmt.Errorf("%q: type %q is not route-target or route-origin", s, kind)
	}
	ec.Value = value
	if _, err := ParseExtCommunity(ec); err != nil {
		return ExtCommunity{}, err
	}
	return ec, nil
}

// mergeRoutes merges announcements by resulting prefix: several Services sharing an aggregate,
// or several advertisements of one address. A BGP peer gets one path per prefix, so the merged
// path carries the union of the communities and the highest local preference, and goes to the
// union of the peers (every peer when any announcement is unrestricted). owners lists the
// announcement keys behind each prefix.
func mergeRoutes(anns []announcers.Announcement) (map[netip.Prefix]*route, map[netip.Prefix][]string) {
	out := make(map[netip.Prefix]*route, len(anns))
	owners := make(map[netip.Prefix][]string, len(anns))
	for _, an := range anns {
		r, err := routeOf(an)
		if err != nil {
			continue // the table has rejected it already
		}
		pfx := r.path.Prefix
		owners[pfx] = append(owners[pfx], an.Key())
		cur := out[pfx]
		if cur == nil {
			out[pfx] = r
			continue
		}
		cur.path.Communities = append(cur.path.Communities, r.path.Communities...)
		cur.path.LargeCommunities = append(cur.path.LargeCommunities, r.path.LargeCommunities...)
		cur.path.ExtendedCommunities = append(cur.path.ExtendedCommunities, r.path.ExtendedCommunities...)
		if r.path.LocalPref != nil && (cur.path.LocalPref == nil || *r.path.LocalPref > *cur.path.LocalPref) {
			cur.path.LocalPref = r.path.LocalPref
		}
		if cur.peers != nil && r.peers == nil {
			cur.peers = nil
		} else if cur.peers != nil {
			for p := range r.peers {
				cur.peers[p] = true
			}
		}
		cur.path.normalize()
	}
	return out, owners
}

// normalize sorts and de-duplicates the communities so equal paths compare equal.
func (p *Path) normalize() {
	slices.Sort(p.Communities)
	p.Communities = slices.Compact(p.Communities)
	slices.SortFunc(p.LargeCommunities, func(a, b [3]uint32) int { return slices.Compare(a[:], b[:]) })
	p.LargeCommunities = slices.Compact(p.LargeCommunities)
	slices.SortFunc(p.ExtendedCommunities, func(a, b ExtCommunity) int {
		if a.Origin != b.Origin {
			if a.Origin {
				return 1
			}
			return -1
		}
		return strings.Compare(a.Value, b.Value)
	})
	p.ExtendedCommunities = slices.Compact(p.ExtendedCommunities)
}

func (p Path) equal(q Path) bool {
	if (p.LocalPref == nil) != (q.LocalPref == nil) || p.LocalPref != nil && *p.LocalPref != *q.LocalPref {
		return false
	}
	return p.Prefix == q.Prefix && slices.Equal(p.Communities, q.Communities) &&
		slices.Equal(p.LargeCommunities, q.LargeCommunities) && slices.Equal(p.ExtendedCommunities, q.ExtendedCommunities)
}

func prefixLess(a, b netip.Prefix) bool {
	if c := a.Addr().Compare(b.Addr()); c != 0 {
		return c < 0
	}
	return a.Bits() < b.Bits()
}

func sortPrefixes(ps []netip.Prefix) {
	sort.Slice(ps, func(i, j int) bool { return prefixLess(ps[i], ps[j]) })
}

func samePrefixes(a, b []netip.Prefix) bool { return slices.Equal(a, b) }

// symmetricDiff returns the prefixes in exactly one of two sorted lists.
func symmetricDiff(a, b []netip.Prefix) []netip.Prefix {
	in := map[netip.Prefix]int{}
	for _, p := range a {
		in[p]++
	}
	for _, p := range b {
		in[p]--
	}
	var out []netip.Prefix
	for p, n := range in {
		if n != 0 {
			out = append(out, p)
		}
	}
	return out
}
