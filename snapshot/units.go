package snapshot

import (
	"net/netip"
	"slices"
	"sort"

	"github.com/herald-lb/herald/framework"
)

// Units: built on demand from the builder's state, once per invalidation, with their coverage
// resolved (see framework.Unit.ResolveCoverage).

// Units returns every unit, ordered by IP then mode.
func (b *Builder) Units() []*framework.Unit {
	b.mu.Lock()
	defer b.mu.Unlock()
	ips := make([]netip.Addr, 0, len(b.byIP))
	for ip := range b.byIP {
		ips = append(ips, ip)
	}
	slices.SortFunc(ips, netip.Addr.Compare)
	var out []*framework.Unit
	for _, ip := range ips {
		out = append(out, b.unitsFor(ip)...)
	}
	return out
}

// UnitsFor returns the units of one IP: one per mode with a covering advertisement (L2 before
// BGP), or, when no advertisement covers the IP, an L2 unit whose cycle explains why nothing
// announces it. None when no Service uses the IP.
func (b *Builder) UnitsFor(ip netip.Addr) []*framework.Unit {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.unitsFor(ip.Unmap())
}

func (b *Builder) unitsFor(ip netip.Addr) []*framework.Unit {
	if us, ok := b.units[ip]; ok {
		return us
	}
	keys := b.byIP[ip]
	if len(keys) == 0 {
		return nil
	}
	base := framework.Unit{IP: ip}
	for _, k := range keys {
		base.Services = append(base.Services, b.serviceInfo(k))
	}
	base.Class = b.services[keys[0]].class
	if p := b.poolOf(ip); p != nil {
		base.Pool, base.PoolLabels = p.name, p.labels
	}
	lists := b.advertisementLists()
	var us []*framework.Unit
	for _, mode := range []framework.Mode{framework.ModeL2, framework.ModeBGP} {
		u := base
		u.Mode = mode
		u.Advertisements = lists[mode]
		// Coverage is resolved once here, with the unit: every cycle and plugin reads it.
		u.ResolveCoverage()
		if len(u.Covering()) == 0 {
			continue
		}
		u.AnnouncingNodes = b.announcers(mode, keys)
		us = append(us, &u)
	}
	if len(us) == 0 {
		u := base
		u.Mode = framework.ModeL2
		u.Advertisements = lists[framework.ModeL2]
		u.AnnouncingNodes = b.announcers(framework.ModeL2, keys)
		u.ResolveCoverage()
		us = append(us, &u)
	}
	b.units[ip] = us
	return us
}

func (b *Builder) serviceInfo(k framework.ServiceKey) *framework.ServiceInfo {
	if si, ok := b.serviceInfos[k]; ok {
		return si
	}
	svc := b.services[k]
	slices := b.endpoints[k]
	var serving map[string]int
	if len(slices) == 1 {
		// Shared, not copied: counts maps are replaced, never modified.
		serving = slices[0].counts
	} else {
		serving = map[string]int{}
		for _, sc := range slices {
			for node, n := range sc.counts {
				serving[node] += n
			}
		}
	}
	si := &framework.ServiceInfo{Key: k, Labels: svc.labels, TrafficPolicyLocal: svc.local, ServingEndpoints: serving}
	b.serviceInfos[k] = si
	return si
}

func (b *Builder) advertisementLists() map[framework.Mode][]*framework.Advertisement {
	if b.advLists != nil {
		return b.advLists
	}
	b.advLists = map[framework.Mode][]*framework.Advertisement{
		framework.ModeL2:  sortedAdvs(b.l2),
		framework.ModeBGP: sortedAdvs(b.bgp),
	}
	return b.advLists
}

func sortedAdvs(m map[string]*framework.Advertisement) []*framework.Advertisement {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make([]*framework.Advertisement, len(keys))
	for i, k := range keys {
		out[i] = m[k]
	}
	return out
}

func (b *Builder) announcers(mode framework.Mode, keys []framework.ServiceKey) []string {
	statuses := b.l2Status
	if mode == framework.ModeBGP {
		statuses = b.bgpStatus
	}
	var out []string
	for _, k := range keys {
		for _, node := range statuses[k] {
			out = append(out, node)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}
