package speaker

import (
	"context"

	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes"

	"github.com/herald-lb/herald/config/metallb"
)

// informerResources are the metallb.io resources the speaker's informers wait for in cache
// sync: always the statuses, pools, advertisements and communities; with BGP also the
// peers and BFD profiles the peer sync reads.
func informerResources(bgp bool) []schema.GroupVersionResource {
	r := []schema.GroupVersionResource{
		metallb.ServiceL2Statuses, metallb.ServiceBGPStatuses, metallb.IPAddressPools,
		metallb.L2Advertisements, metallb.BGPAdvertisements, metallb.Communities,
	}
	if bgp {
		r = append(r, metallb.BGPPeers, metallb.BFDProfiles)
	}
	return r
}

// CheckCRDs fails with an error naming every CRD the speaker's informers need that is not
// served, instead of letting them wait in cache sync forever.
func CheckCRDs(ctx context.Context, client kubernetes.Interface, bgp bool) error {
	return metallb.CheckServed(ctx, client.Discovery(), "herald speaker", informerResources(bgp))
}
