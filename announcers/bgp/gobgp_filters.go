package bgp

// The per-peer export filters of the GoBGP adapter (see gobgp.go): GoBGP policies that keep a
// route from the peers it is not meant for.

import (
	"context"
	"fmt"
	"net/netip"
	"strings"

	"github.com/osrg/gobgp/v4/api"
)

func filterNames(peer netip.Addr) (neighborSet, prefixSet4, prefixSet6, policy string) {
	id := strings.NewReplacer(".", "-", ":", "-").Replace(peer.String())
	return "herald-peer-" + id, "herald-deny4-" + id, "herald-deny6-" + id, "herald-restrict-" + id
}

// Sentinels keep each deny set non-empty and of its family (GoBGP prefix sets hold one family,
// and take it from their content); they are never announced (broadcast and multicast).
var (
	sentinel4 = netip.MustParsePrefix("255.255.255.255/32")
	sentinel6 = netip.MustParsePrefix("ff0f::/128")
)

func prefixSet(name string, family netip.Prefix, prefixes []netip.Prefix) *api.DefinedSet {
	ds := &api.DefinedSet{DefinedType: api.DefinedType_DEFINED_TYPE_PREFIX, Name: name}
	for _, p := range prefixes {
		if p.Addr().Is4() != family.Addr().Is4() {
			continue
		}
		ds.Prefixes = append(ds.Prefixes, &api.Prefix{IpPrefix: p.String(), MaskLengthMin: uint32(p.Bits()), MaskLengthMax: uint32(p.Bits())})
	}
	return ds
}

// SetExportFilter makes the speaker withhold the given prefixes from one peer (routes
// restricted to other peers). It installs, once per peer, a global export policy whose
// statements match that neighbor and a per-family prefix set, and then edits the sets in
// place (GoBGP's replace swaps in a new set object that existing statements never see).
// Paths already sent are re-evaluated by RefreshPeer, so callers refresh the peer after
// changing its filter.
func (s *Speaker) SetExportFilter(ctx context.Context, peer netip.Addr, deny []netip.Prefix) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(deny) == 0 && !s.filters[peer] {
		return nil
	}
	nset, pset4, pset6, pol := filterNames(peer)
	if !s.filters[peer] {
		if err := s.installFilter(ctx, peer, nset, pset4, pset6, pol); err != nil {
			return err
		}
		s.filters[peer] = true
	}
	cur := s.denied[peer]
	next := make(map[netip.Prefix]bool, len(deny))
	var add, del []netip.Prefix
	for _, p := range deny {
		next[p] = true
		if !cur[p] {
			add = append(add, p)
		}
	}
	for p := range cur {
		if !next[p] {
			del = append(del, p)
		}
	}
	for _, fam := range []struct {
		name     string
		sentinel netip.Prefix
	}{{pset4, sentinel4}, {pset6, sentinel6}} {
		if ds := prefixSet(fam.name, fam.sentinel, add); len(ds.Prefixes) > 0 {
			if err := s.srv.AddDefinedSet(ctx, &api.AddDefinedSetRequest{DefinedSet: ds}); err != nil {
				return fmt.Errorf("peer %s: export filter: add to %s: %w", peer, fam.name, err)
			}
		}
		if ds := prefixSet(fam.name, fam.sentinel, del); len(ds.Prefixes) > 0 {
			if err := s.srv.DeleteDefinedSet(ctx, &api.DeleteDefinedSetRequest{DefinedSet: ds}); err != nil {
				return fmt.Errorf("peer %s: export filter: remove from %s: %w", peer, fam.name, err)
			}
		}
	}
	s.denied[peer] = next
	return nil
}

func (s *Speaker) installFilter(ctx context.Context, peer netip.Addr, nset, pset4, pset6, pol string) error {
	for _, ds := range []*api.DefinedSet{
		prefixSet(pset4, sentinel4, []netip.Prefix{sentinel4}),
		prefixSet(pset6, sentinel6, []netip.Prefix{sentinel6}),
		{DefinedType: api.DefinedType_DEFINED_TYPE_NEIGHBOR, Name: nset, List: []string{netip.PrefixFrom(peer, peer.BitLen()).String()}},
	} {
		if err := s.srv.AddDefinedSet(ctx, &api.AddDefinedSetRequest{Replace: true, DefinedSet: ds}); err != nil {
			return fmt.Errorf("peer %s: export filter set %s: %w", peer, ds.Name, err)
		}
	}
	policy := &api.Policy{Name: pol}
	for _, ps := range []string{pset4, pset6} {
		policy.Statements = append(policy.Statements, &api.Statement{
			Name: pol + "-" + ps,
			Conditions: &api.Conditions{
				NeighborSet: &api.MatchSet{Type: api.MatchSet_TYPE_ANY, Name: nset},
				PrefixSet:   &api.MatchSet{Type: api.MatchSet_TYPE_ANY, Name: ps},
			},
			Actions: &api.Actions{RouteAction: api.RouteAction_ROUTE_ACTION_REJECT},
		})
	}
	if err := s.srv.AddPolicy(ctx, &api.AddPolicyRequest{Policy: policy}); err != nil {
		return fmt.Errorf("peer %s: export filter policy: %w", peer, err)
	}
	if err := s.srv.AddPolicyAssignment(ctx, &api.AddPolicyAssignmentRequest{Assignment: &api.PolicyAssignment{
		Name: "global", Direction: api.PolicyDirection_POLICY_DIRECTION_EXPORT,
		Policies: []*api.Policy{{Name: pol}}, DefaultAction: api.RouteAction_ROUTE_ACTION_ACCEPT,
	}}); err != nil {
		return fmt.Errorf("peer %s: export filter assignment: %w", peer, err)
	}
	return nil
}

// removeFilter empties a peer's deny sets (down to their sentinels). The policy itself stays:
// GoBGP refuses to delete defined sets that a statement still references.
func (s *Speaker) removeFilter(ctx context.Context, peer netip.Addr) error {
	return s.SetExportFilter(ctx, peer, nil)
}
