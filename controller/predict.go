package controller

import (
	"net/netip"
	"sort"

	corev1 "k8s.io/api/core/v1"

	metallbv1beta1 "github.com/herald-lb/herald/config/metallb/v1beta1"
	"github.com/herald-lb/herald/ipam"
)

// Kept is what a new leader would do with one Service's current addresses.
type Kept struct {
	// Owned: the Service is one this controller handles (type, class).
	Owned bool
	IPs   []netip.Addr
	// Kept: the allocator takes the addresses back as they are; Pool holds them.
	Kept bool
	Pool string
	// Reason says why not, from the allocator, when an owned Service with addresses is not
	// kept; or, when it is kept although no rule would give it the addresses now (no usable
	// pool contains them), why it is reported.
	Reason string
}

// PredictKept replays, read-only, what a new leader's rebuild does with the Services'
// current addresses: the same order (oldest Service first), the same pool conversion and the
// same allocator calls. `herald migrate check` uses it so its prediction is the controller's
// own rule, not a copy. pools are the configuration namespace's; nsLabels gives a namespace's
// labels (for serviceAllocation.namespaceSelectors).
func PredictKept(o Options, pools []*metallbv1beta1.IPAddressPool, services []corev1.Service, nsLabels func(string) map[string]string) map[string]Kept {
	alloc := ipam.New()
	var specs []ipam.Pool
	for _, p := range pools {
		if spec, err := toPool(p); err == nil {
			specs = append(specs, spec)
		}
	}
	alloc.SetPools(specs)
	items := append([]corev1.Service(nil), services...)
	oldestFirst(items)
	out := map[string]Kept{}
	for i := range items {
		svc := &items[i]
		k := Kept{Owned: o.owns(svc), IPs: statusIPs(svc)}
		if k.Owned && len(k.IPs) > 0 {
			res, err := alloc.Restore(toIPAM(svc, nsLabels(svc.Namespace)), k.IPs)
			if err != nil {
				k.Reason = err.Error()
			} else {
				k.Kept, k.Pool = true, res.Pool
				if res.Kept != nil {
					k.Reason = res.Kept.Error()
				}
			}
		}
		out[svc.Namespace+"/"+svc.Name] = k
	}
	return out
}

// oldestFirst orders Services as the rebuild restores them, so that on a conflict the older
// Service keeps its address.
func oldestFirst(items []corev1.Service) {
	sort.SliceStable(items, func(i, j int) bool {
		ti, tj := items[i].CreationTimestamp, items[j].CreationTimestamp
		if !ti.Equal(&tj) {
			return ti.Before(&tj)
		}
		return items[i].Namespace+"/"+items[i].Name < items[j].Namespace+"/"+items[j].Name
	})
}
