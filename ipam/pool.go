package ipam

import (
	"fmt"
	"math"
	"math/big"
	"net/netip"
	"sort"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/labels"
)

// Pool is an address pool as the allocator needs it: the controller converts an
// IPAddressPool into one.
type Pool struct {
	Name string
	// Created orders pools for overlap resolution: the earlier pool wins.
	Created time.Time
	// Addresses are CIDRs ("192.0.2.0/28", "2001:db8::/120") or inclusive ranges
	// ("192.0.2.10-192.0.2.20").
	Addresses []string
	// AutoAssign allows allocating from the pool to Services that do not ask for it.
	AutoAssign bool
	// AvoidBuggyIPs skips IPv4 addresses ending in .0 and .255.
	AvoidBuggyIPs bool
	// Priority orders pools for automatic allocation: a lower number is tried first and 0
	// (unset) comes last, as in MetalLB's serviceAllocation.priority.
	Priority int
	// ServiceAllocation is set when the IPAddressPool has a spec.serviceAllocation, even an
	// empty one or one with only a priority: MetalLB tries such pools, when they allow the
	// Service, before the pools without one.
	ServiceAllocation bool
	// Namespaces and NamespaceSelectors restrict the pool to some namespaces; both empty allows
	// every namespace.
	Namespaces         []string
	NamespaceSelectors []labels.Selector
	// ServiceSelectors restrict the pool to Services whose labels match one of them; empty
	// allows every Service.
	ServiceSelectors []labels.Selector
}

// addrRange is an inclusive range of addresses of one family.
type addrRange struct {
	first, last netip.Addr
}

func (r addrRange) String() string {
	if r.first == r.last {
		return r.first.String()
	}
	return r.first.String() + "-" + r.last.String()
}

func (r addrRange) contains(ip netip.Addr) bool {
	return r.first.Compare(ip) <= 0 && ip.Compare(r.last) <= 0
}

func (r addrRange) overlaps(o addrRange) bool {
	return r.first.Is4() == o.first.Is4() && r.first.Compare(o.last) <= 0 && o.first.Compare(r.last) <= 0
}

// pool is a parsed, usable Pool with its usage counters.
type pool struct {
	spec   Pool
	ranges []addrRange
	size   [2]uint64 // per family, saturating
	used   [2]uint64 // distinct addresses in use per family
	// cursor remembers where the last free address was found, so allocating many Services
	// does not rescan the used part of the pool each time.
	cursor [2]netip.Addr
}

func familyIndex(ip netip.Addr) int {
	if ip.Is4() {
		return 0
	}
	return 1
}

// parsePool validates a Pool and computes its size.
func parsePool(spec Pool) (*pool, error) {
	p := &pool{spec: spec}
	if len(spec.Addresses) == 0 {
		return nil, fmt.Errorf("pool %q: spec.addresses is empty", spec.Name)
	}
	for i, s := range spec.Addresses {
		r, err := parseRange(s)
		if err != nil {
			return nil, fmt.Errorf("pool %q: spec.addresses[%d]: %w", spec.Name, i, err)
		}
		for _, o := range p.ranges {
			if r.overlaps(o) {
				return nil, fmt.Errorf("pool %q: spec.addresses[%d] %s overlaps %s of the same pool", spec.Name, i, r, o)
			}
		}
		p.ranges = append(p.ranges, r)
		f := familyIndex(r.first)
		p.size[f] = addSat(p.size[f], rangeSize(r, spec.AvoidBuggyIPs))
	}
	// Address order makes the scan cursor meaningful and allocation deterministic.
	sort.Slice(p.ranges, func(i, j int) bool { return p.ranges[i].first.Less(p.ranges[j].first) })
	return p, nil
}

// parseRange parses a CIDR or an "a-b" range and refuses special addresses (see
// specialBlocks). Messages quote the input shortened.
func parseRange(s string) (addrRange, error) {
	r, err := parseRangeSyntax(s)
	if err != nil {
		return r, err
	}
	return r, checkSpecial(r)
}

func parseRangeSyntax(s string) (addrRange, error) {
	s = strings.TrimSpace(s)
	if strings.Contains(s, "/") {
		prefix, err := netip.ParsePrefix(s)
		if err != nil {
			return addrRange{}, fmt.Errorf("%s is not a valid CIDR", quote(s))
		}
		prefix = prefix.Masked()
		return addrRange{first: prefix.Addr(), last: lastAddr(prefix)}, nil
	}
	a, b, ok := strings.Cut(s, "-")
	if !ok {
		return addrRange{}, fmt.Errorf("%s is neither a CIDR nor a range like 192.0.2.10-192.0.2.20", quote(s))
	}
	first, err := netip.ParseAddr(strings.TrimSpace(a))
	if err != nil || first.Zone() != "" {
		return addrRange{}, fmt.Errorf("range %s: %s is not a valid IP", quote(s), quote(strings.TrimSpace(a)))
	}
	last, err := netip.ParseAddr(strings.TrimSpace(b))
	if err != nil || last.Zone() != "" {
		return addrRange{}, fmt.Errorf("range %s: %s is not a valid IP", quote(s), quote(strings.TrimSpace(b)))
	}
	if first.Is4() != last.Is4() {
		return addrRange{}, fmt.Errorf("range %s mixes IPv4 and IPv6", quote(s))
	}
	if last.Less(first) {
		return addrRange{}, fmt.Errorf("range %s ends before it starts", quote(s))
	}
	return addrRange{first: first, last: last}, nil
}

func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Addr().AsSlice()
	bits := p.Bits()
	for i := range b {
		for bit := 0; bit < 8; bit++ {
			if i*8+bit >= bits {
				b[i] |= 0x80 >> bit
			}
		}
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}

// rangeSize counts the usable addresses of r, saturating at math.MaxUint64.
func rangeSize(r addrRange, avoidBuggy bool) uint64 {
	if r.first.Is4() {
		a, b := v4(r.first), v4(r.last)
		n := uint64(b-a) + 1
		if avoidBuggy {
			n -= countMod256(a, b, 0) + countMod256(a, b, 255)
		}
		return n
	}
	lo := new(big.Int).SetBytes(r.first.AsSlice())
	hi := new(big.Int).SetBytes(r.last.AsSlice())
	n := hi.Sub(hi, lo)
	n.Add(n, big.NewInt(1))
	if !n.IsUint64() {
		return math.MaxUint64
	}
	return n.Uint64()
}

func v4(ip netip.Addr) uint32 {
	b := ip.As4()
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
}

// countMod256 counts x in [a, b] with x%256 == rem.
func countMod256(a, b uint32, rem uint32) uint64 {
	upTo := func(n int64) int64 { // count in [0, n]
		if n < int64(rem) {
			return 0
		}
		return (n-int64(rem))/256 + 1
	}
	return uint64(upTo(int64(b)) - upTo(int64(a)-1))
}

func addSat(a, b uint64) uint64 {
	if a > math.MaxUint64-b {
		return math.MaxUint64
	}
	return a + b
}

// isBuggy reports an IPv4 address ending in .0 or .255, which some CPE firmwares drop as
// smurf attacks.
func isBuggy(ip netip.Addr) bool {
	if !ip.Is4() {
		return false
	}
	last := ip.As4()[3]
	return last == 0 || last == 255
}

func (p *pool) contains(ip netip.Addr) bool {
	for _, r := range p.ranges {
		if r.contains(ip) {
			return true
		}
	}
	return false
}

func (p *pool) hasFamily(f int) bool { return p.size[f] > 0 }

// allowsNamespace reports whether the pool's serviceAllocation admits the namespace.
func (p *pool) allowsNamespace(ns string, nsLabels map[string]string) bool {
	if len(p.spec.Namespaces) == 0 && len(p.spec.NamespaceSelectors) == 0 {
		return true
	}
	for _, n := range p.spec.Namespaces {
		if n == ns {
			return true
		}
	}
	for _, sel := range p.spec.NamespaceSelectors {
		if sel.Matches(labels.Set(nsLabels)) {
			return true
		}
	}
	return false
}

// allowsServiceLabels reports whether the pool's serviceSelectors admit the Service.
func (p *pool) allowsServiceLabels(svcLabels map[string]string) bool {
	if len(p.spec.ServiceSelectors) == 0 {
		return true
	}
	for _, sel := range p.spec.ServiceSelectors {
		if sel.Matches(labels.Set(svcLabels)) {
			return true
		}
	}
	return false
}

// nextFree returns the first address of family f not in use, scanning from where the last
// free address was found and wrapping around once.
func (p *pool) nextFree(f int, inUse func(netip.Addr) bool) (netip.Addr, bool) {
	if p.used[f] >= p.size[f] {
		return netip.Addr{}, false
	}
	if ip, ok := p.scan(f, p.cursor[f], inUse); ok {
		return ip, true
	}
	return p.scan(f, netip.Addr{}, inUse)
}

func (p *pool) scan(f int, from netip.Addr, inUse func(netip.Addr) bool) (netip.Addr, bool) {
	for _, r := range p.ranges {
		if familyIndex(r.first) != f {
			continue
		}
		ip := r.first
		if from.IsValid() {
			if r.last.Less(from) {
				continue
			}
			if r.first.Less(from) {
				ip = from
			}
		}
		for ; ; ip = ip.Next() {
			if !(p.spec.AvoidBuggyIPs && isBuggy(ip)) && !inUse(ip) {
				p.cursor[f] = ip
				return ip, true
			}
			if ip == r.last {
				break
			}
		}
	}
	return netip.Addr{}, false
}

// PoolStats is the usage of one pool.
type PoolStats struct {
	Name string
	// Size, Used and Free count addresses of both families; Size saturates at MaxUint64 for
	// huge IPv6 pools.
	Size, Used, Free uint64
	// SizeIPv4, UsedIPv4, SizeIPv6 and UsedIPv6 split Size and Used by family.
	SizeIPv4, UsedIPv4, SizeIPv6, UsedIPv6 uint64
	// Usable is false when the pool is not used (invalid, or overlapping an earlier pool).
	Usable bool
	// Problem explains why the pool is not usable.
	Problem string
}

func (p *pool) stats() PoolStats {
	size := addSat(p.size[0], p.size[1])
	used := p.used[0] + p.used[1]
	return PoolStats{
		Name: p.spec.Name, Size: size, Used: used, Free: size - used, Usable: true,
		SizeIPv4: p.size[0], UsedIPv4: p.used[0], SizeIPv6: p.size[1], UsedIPv6: p.used[1],
	}
}

// restricted reports whether the pool has a serviceAllocation (see Pool.ServiceAllocation).
func (p *pool) restricted() bool {
	s := &p.spec
	return s.ServiceAllocation || s.Priority != 0 || len(s.Namespaces) > 0 || len(s.NamespaceSelectors) > 0 || len(s.ServiceSelectors) > 0
}

// sortForAutoAssign orders pools as MetalLB does: pools with a serviceAllocation before those
// without (candidatePools splits them into groups), then priority ascending with 0 (unset)
// last, then by name so the order is deterministic where MetalLB's follows map iteration.
func sortForAutoAssign(pools []*pool) {
	sort.Slice(pools, func(i, j int) bool {
		if ri, rj := pools[i].restricted(), pools[j].restricted(); ri != rj {
			return ri
		}
		pi, pj := pools[i].spec.Priority, pools[j].spec.Priority
		if (pi > 0) != (pj > 0) {
			return pi > 0
		}
		if pi != pj {
			return pi < pj
		}
		return pools[i].spec.Name < pools[j].spec.Name
	})
}
