package snapshot

import (
	"fmt"
	"net/netip"
	"strings"
	"time"

	metallbv1beta1 "github.com/herald-lb/herald/config/metallb/v1beta1"
	"github.com/herald-lb/herald/ipam"
)

// The metallb.io configuration the units read: pools, advertisements, communities. A change
// invalidates every unit.

// SetPool adds or updates an IPAddressPool: its addresses (an IP's pool is the pool that
// contains it) and its labels (advertisements select on them). Every pool fed to the builder
// must come from the one configuration namespace: pools are keyed by name.
func (b *Builder) SetPool(p *metallbv1beta1.IPAddressPool) {
	addrs, err := ipam.ParseAddressSet(p.Spec.Addresses)
	if err != nil {
		err = fmt.Errorf("IPAddressPool %s/%s: %w", p.Namespace, p.Name, err)
	}
	b.mu.Lock()
	b.setErr("IPAddressPool "+p.Name, err)
	b.pools[p.Name] = &poolInfo{name: p.Name, created: p.CreationTimestamp.Time, labels: p.Labels, addresses: addrs}
	b.invalidateAll()
	b.done(Change{All: true})
}

// DeletePool removes an IPAddressPool.
func (b *Builder) DeletePool(name string) {
	b.mu.Lock()
	delete(b.errs, "IPAddressPool "+name)
	delete(b.pools, name)
	b.invalidateAll()
	b.done(Change{All: true})
}

// poolInfo is what the builder keeps of an IPAddressPool.
type poolInfo struct {
	name      string
	created   time.Time
	labels    map[string]string
	addresses ipam.AddressSet
}

// poolOf returns the pool that contains ip: derived from the address and the pools, never from
// the Service's metallb.io/ip-allocated-from-pool annotation, which any user who may edit the
// Service can set to another pool's name (and so pick that pool's advertisements, interfaces
// and BGP peers). Where pools overlap, the earliest created wins (then the name), as in the
// controller's allocator. nil when no pool contains ip.
func (b *Builder) poolOf(ip netip.Addr) *poolInfo {
	var best *poolInfo
	for _, p := range b.pools {
		if !p.addresses.Contains(ip) {
			continue
		}
		if best == nil || p.created.Before(best.created) || (p.created.Equal(best.created) && p.name < best.name) {
			best = p
		}
	}
	return best
}

// SetL2Advertisement adds or updates an L2Advertisement.
func (b *Builder) SetL2Advertisement(a *metallbv1beta1.L2Advertisement) {
	adv, err := L2Advertisement(a)
	b.mu.Lock()
	key := a.Namespace + "/" + a.Name
	b.setErr("L2Advertisement "+key, err)
	b.l2[key] = adv
	b.invalidateAll()
	b.done(Change{All: true})
}

// DeleteL2Advertisement removes an L2Advertisement.
func (b *Builder) DeleteL2Advertisement(namespace, name string) {
	b.mu.Lock()
	key := namespace + "/" + name
	delete(b.errs, "L2Advertisement "+key)
	delete(b.l2, key)
	b.invalidateAll()
	b.done(Change{All: true})
}

// SetBGPAdvertisement adds or updates a BGPAdvertisement.
func (b *Builder) SetBGPAdvertisement(a *metallbv1beta1.BGPAdvertisement) {
	b.mu.Lock()
	b.bgpRaw[a.Namespace+"/"+a.Name] = a
	b.convertBGP(a.Namespace + "/" + a.Name)
	b.invalidateAll()
	b.done(Change{All: true})
}

// DeleteBGPAdvertisement removes a BGPAdvertisement.
func (b *Builder) DeleteBGPAdvertisement(namespace, name string) {
	b.mu.Lock()
	key := namespace + "/" + name
	delete(b.bgpRaw, key)
	delete(b.bgp, key)
	delete(b.errs, "BGPAdvertisement "+key)
	b.invalidateAll()
	b.done(Change{All: true})
}

// SetCommunity adds or updates a Community (aliases used by BGPAdvertisements).
func (b *Builder) SetCommunity(c *metallbv1beta1.Community) {
	aliases := map[string]string{}
	for _, a := range c.Spec.Communities {
		aliases[a.Name] = a.Value
	}
	b.mu.Lock()
	b.communities[c.Namespace+"/"+c.Name] = aliases
	b.reconvertBGP()
	b.done(Change{All: true})
}

// DeleteCommunity removes a Community.
func (b *Builder) DeleteCommunity(namespace, name string) {
	b.mu.Lock()
	delete(b.communities, namespace+"/"+name)
	b.reconvertBGP()
	b.done(Change{All: true})
}

func (b *Builder) reconvertBGP() {
	for key := range b.bgpRaw {
		b.convertBGP(key)
	}
	b.invalidateAll()
}

// convertBGP converts one BGPAdvertisement with the aliases of its namespace's Communities.
func (b *Builder) convertBGP(key string) {
	a := b.bgpRaw[key]
	aliases := map[string]string{}
	for ck, m := range b.communities {
		if strings.HasPrefix(ck, a.Namespace+"/") {
			for k, v := range m {
				aliases[k] = v
			}
		}
	}
	adv, err := BGPAdvertisement(a, aliases)
	b.setErr("BGPAdvertisement "+key, err)
	b.bgp[key] = adv
}

func (b *Builder) invalidateAll() {
	clear(b.units)
	b.advLists = nil
}
