package framework

import (
	"slices"

	"k8s.io/apimachinery/pkg/labels"
)

// Advertisement coverage follows MetalLB's semantics, and lives here once: the Advertisement
// and Interfaces plugins, the snapshot (which modes an IP has), the Announce bind plugin (which
// route attributes a BGP unit gets) and herald diag all read it through these methods.
//
//   - pools: the advertisement names the unit's pool in ipAddressPools, or one of its
//     ipAddressPoolSelectors matches the pool's labels; with both empty it covers every pool;
//   - Services: with serviceSelectors set, at least one Service of the unit must match one of
//     them (a shared IP is one announcement on the wire, so "any Service" is MetalLB's
//     per-Service rule);
//   - nodes: with nodeSelectors set, the node matches one of them.

// Covers reports whether the advertisement applies to the unit: same mode, covers the pool,
// and selects one of the unit's Services.
func (a *Advertisement) Covers(unit *Unit) bool {
	return a.Mode == unit.Mode && a.CoversPool(unit.Pool, unit.PoolLabels) && a.CoversServices(unit.Services)
}

// CoversPool reports whether the advertisement covers the named pool with those labels.
func (a *Advertisement) CoversPool(pool string, poolLabels map[string]string) bool {
	if len(a.IPAddressPools) == 0 && len(a.IPAddressPoolSelectors) == 0 {
		return true
	}
	if slices.Contains(a.IPAddressPools, pool) {
		return true
	}
	return anyMatches(a.IPAddressPoolSelectors, poolLabels)
}

// CoversServices reports whether the advertisement's serviceSelectors admit at least one of
// the Services; no selectors admit every Service.
func (a *Advertisement) CoversServices(services []*ServiceInfo) bool {
	if len(a.ServiceSelectors) == 0 {
		return true
	}
	for _, s := range services {
		if anyMatches(a.ServiceSelectors, s.Labels) {
			return true
		}
	}
	return false
}

// SelectsNode reports whether the advertisement's nodeSelectors admit the node; no selectors
// admit every node.
func (a *Advertisement) SelectsNode(node *NodeInfo) bool {
	return len(a.NodeSelectors) == 0 || anyMatches(a.NodeSelectors, node.Labels)
}

func anyMatches(sels []labels.Selector, set map[string]string) bool {
	for _, s := range sels {
		if s != nil && s.Matches(labels.Set(set)) {
			return true
		}
	}
	return false
}

// Covering returns the unit's advertisements that cover it, in the unit's order. A unit
// prepared with ResolveCoverage (every unit the snapshot builds) answers from that record, so
// coverage is computed once per unit however many nodes and plugins ask; a unit built by hand
// is computed on each call.
func (u *Unit) Covering() []*Advertisement {
	if u.covering != nil {
		return u.covering
	}
	return u.computeCovering()
}

// ResolveCoverage computes and records the unit's covering advertisements. Call it once, when
// the unit is complete and before it is shared (cycles read units concurrently); a copy of the
// unit that changes its mode, pool, Services or advertisements must resolve again.
func (u *Unit) ResolveCoverage() {
	c := u.computeCovering()
	if c == nil {
		c = []*Advertisement{} // resolved, covered by none (no allocation)
	}
	u.covering = c
}

func (u *Unit) computeCovering() []*Advertisement {
	var out []*Advertisement
	for _, a := range u.Advertisements {
		if a.Covers(u) {
			out = append(out, a)
		}
	}
	return out
}
