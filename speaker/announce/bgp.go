package announce

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"github.com/herald-lb/herald/announcers"
	"github.com/herald-lb/herald/framework"
)

// advertise makes this node advertise a BGP unit: one announcement per BGPAdvertisement that
// covers the unit and selects this node (MetalLB advertises each one with its own
// attributes; the announcer merges those that yield the same prefix), and one
// ServiceBGPStatus per Service naming the peers the routes go to.
func (p *Plugin) advertise(ctx context.Context, state *framework.CycleState, unit *framework.Unit, selected []string) *framework.Status {
	key := unit.Key()
	node := state.Snapshot().Node(p.node)
	if node == nil {
		return framework.AsStatus(fmt.Errorf("selected for %s but node %q is not in the snapshot", unit.IP, p.node))
	}
	routes := Routes(unit, node, unit.Covering())
	if len(routes) == 0 {
		// Only a profile without the Advertisement filter gets here: nothing says how to
		// advertise the IP from this node, so it does not.
		return p.withdraw(ctx, state, unit, selected)
	}
	prev, already := p.ledger.get(key)
	if !already && !p.ledger.mayClaim() {
		logger(ctx).Info("Not advertising an IP this node qualifies for: its heartbeat is not current", "ip", unit.IP)
		return framework.NewStatus(framework.Success).WithDetail("not advertising %s: this node's heartbeat is not current", unit.IP)
	}
	name := p.deps.Router.AnnouncerFor(framework.AnnouncerKindBGP)
	if err := p.deps.Router.Answers(name); err != nil {
		return framework.AsStatus(fmt.Errorf("selected for %s but announcer %q cannot answer: %w", unit.IP, name, err))
	}
	var configured []string
	if p.deps.Peers != nil {
		configured = p.deps.Peers.Names()
	}
	cur := Current{Key: key, IP: unit.IP, Mode: framework.ModeBGP, Announcer: name,
		Services: serviceKeys(unit), Routes: routes, Peers: RoutePeers(routes, configured), Claimed: prev.Claimed}
	if !already || prev.pending || !sameRoutes(prev.Routes, routes) {
		err := p.ledger.send(ctx, cur.Announcer, unit.IP, routes, removedIDs(prev.ids(), cur.ids(), already))
		if errors.Is(err, errPending) {
			// Kept by the manager and replayed when the announcer is back: this node's to
			// withdraw, but no status says it advertises until it does.
			cur.pending = true
			p.ledger.hold(cur)
			return framework.AsStatus(err)
		}
		if err != nil {
			p.recordAll(unit, corev1.EventTypeWarning, ReasonAnnounceFailed, err.Error())
			return framework.AsStatus(err)
		}
	}
	if quiet(state) {
		p.ledger.hold(cur)
		return framework.NewStatus(framework.Success).WithDetail("advertising %s ahead of being a candidate", unit.IP)
	}
	// Claimed, not already: a unit advertised ahead of being a candidate, or kept while the
	// announcer started, is counted (and logged) when this node first claims it.
	if !cur.Claimed {
		logger(ctx).Info("Advertising", "ip", unit.IP, "routes", len(routes), "peers", cur.Peers, "was", unit.AnnouncingNodes)
		p.observe(framework.ModeBGP, false)
	}
	cur.Claimed = true
	p.ledger.hold(cur)
	var errs []error
	for _, svc := range cur.Services {
		var err error
		if len(cur.Peers) > 0 {
			err = p.ledger.status.BGP.Publish(ctx, svc, unit.IP, cur.Peers)
		} else {
			// No session to send the routes over: this node does not advertise the
			// Service to anyone, so its status must not say it does.
			err = p.ledger.status.BGP.Retract(ctx, svc, unit.IP)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("service %s: status: %w", svc, err))
		}
	}
	for _, svc := range removedServices(prev.Services, cur.Services) {
		if err := p.ledger.status.BGP.Retract(ctx, svc, unit.IP); err != nil {
			errs = append(errs, fmt.Errorf("service %s: status: %w", svc, err))
		}
	}
	return framework.AsStatus(errors.Join(errs...))
}

// Routes returns the announcements of a BGP unit from node: one per covering advertisement
// whose nodeSelectors admit the node, with its aggregation length (of the IP's family), local
// preference, communities (standard, or large with the "large:" prefix) and peer restriction.
// IDs are "<unit key>#<advertisement name>", unique within the unit.
func Routes(unit *framework.Unit, node *framework.NodeInfo, covering []*framework.Advertisement) []announcers.Announcement {
	var out []announcers.Announcement
	seen := map[string]bool{}
	for i, a := range covering {
		if a.Mode != framework.ModeBGP || !a.SelectsNode(node) {
			continue
		}
		id := unit.Key() + "#" + a.Name
		if seen[id] {
			id += "#" + strconv.Itoa(i)
		}
		seen[id] = true
		out = append(out, announcers.Announcement{ID: id, Prefix: netip.PrefixFrom(unit.IP, unit.IP.BitLen()), BGP: routeAttributes(unit.IP, a.BGP)})
	}
	return out
}

func routeAttributes(ip netip.Addr, a *framework.BGPRouteAttributes) *announcers.BGPRoute {
	r := &announcers.BGPRoute{}
	if a == nil {
		return r
	}
	agg := int(a.AggregationLength)
	if ip.Is6() && !ip.Is4In6() {
		agg = int(a.AggregationLengthV6)
	}
	if agg != ip.BitLen() {
		r.AggregationLength = agg
	}
	if a.LocalPref != 0 {
		// metallb.io treats 0 as unset.
		lp := a.LocalPref
		r.LocalPref = &lp
	}
	for _, c := range a.Communities {
		if strings.HasPrefix(c, "large:") {
			r.LargeCommunities = append(r.LargeCommunities, strings.TrimPrefix(c, "large:"))
		} else {
			r.Communities = append(r.Communities, c)
		}
	}
	r.Peers = slices.Clone(a.Peers)
	return r
}

// RoutePeers returns the configured peers at least one of the routes goes to, sorted: every
// configured peer for an unrestricted route, the named ones for a restricted route.
func RoutePeers(routes []announcers.Announcement, configured []string) []string {
	var out []string
	for _, peer := range configured {
		for _, r := range routes {
			if r.BGP == nil || len(r.BGP.Peers) == 0 || slices.Contains(r.BGP.Peers, peer) {
				out = append(out, peer)
				break
			}
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

func sameRoutes(a, b []announcers.Announcement) bool {
	return slices.EqualFunc(a, b, func(x, y announcers.Announcement) bool {
		if x.ID != y.ID || x.Prefix != y.Prefix || (x.BGP == nil) != (y.BGP == nil) {
			return false
		}
		if x.BGP == nil {
			return true
		}
		p, q := x.BGP, y.BGP
		return p.AggregationLength == q.AggregationLength &&
			(p.LocalPref == nil) == (q.LocalPref == nil) && (p.LocalPref == nil || *p.LocalPref == *q.LocalPref) &&
			slices.Equal(p.Communities, q.Communities) && slices.Equal(p.LargeCommunities, q.LargeCommunities) &&
			slices.Equal(p.ExtendedCommunities, q.ExtendedCommunities) && slices.Equal(p.Peers, q.Peers)
	})
}

// removedIDs are the announcement keys held before and not any more.
func removedIDs(before, after []string, had bool) []string {
	if !had {
		return nil
	}
	var out []string
	for _, id := range before {
		if !slices.Contains(after, id) {
			out = append(out, id)
		}
	}
	return out
}
