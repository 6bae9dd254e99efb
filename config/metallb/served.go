package metallb

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/discovery"

	"github.com/herald-lb/herald/config/metallb/v1beta1"
	"github.com/herald-lb/herald/config/metallb/v1beta2"
)

// The metallb.io resources Herald's informers read, at the version they read.
var (
	IPAddressPools     = v1beta1.SchemeGroupVersion.WithResource("ipaddresspools")
	L2Advertisements   = v1beta1.SchemeGroupVersion.WithResource("l2advertisements")
	BGPAdvertisements  = v1beta1.SchemeGroupVersion.WithResource("bgpadvertisements")
	Communities        = v1beta1.SchemeGroupVersion.WithResource("communities")
	BFDProfiles        = v1beta1.SchemeGroupVersion.WithResource("bfdprofiles")
	ServiceL2Statuses  = v1beta1.SchemeGroupVersion.WithResource("servicel2statuses")
	ServiceBGPStatuses = v1beta1.SchemeGroupVersion.WithResource("servicebgpstatuses")
	BGPPeers           = v1beta2.SchemeGroupVersion.WithResource("bgppeers")
)

// discoveryBackoff retries discovery failures other than "not served" (the API server
// restarting, a lost connection) for about 30 s.
var discoveryBackoff = wait.Backoff{Duration: 250 * time.Millisecond, Factor: 2, Jitter: 0.2, Steps: 8, Cap: 8 * time.Second}

// CheckServed returns an error naming every CRD of resources the API server does not serve,
// so a role whose informers would wait for them forever in cache sync stops at start with the
// reason instead. who names the role in the message.
func CheckServed(ctx context.Context, d discovery.ServerResourcesInterface, who string, resources []schema.GroupVersionResource) error {
	byGV := map[schema.GroupVersion][]string{}
	var order []schema.GroupVersion
	for _, r := range resources {
		gv := r.GroupVersion()
		if _, ok := byGV[gv]; !ok {
			order = append(order, gv)
		}
		byGV[gv] = append(byGV[gv], r.Resource)
	}
	var missing []string
	for _, gv := range order {
		served, err := servedResources(ctx, d, gv)
		if err != nil {
			return fmt.Errorf("%s: checking that the metallb.io CRDs are installed: %w", who, err)
		}
		for _, r := range byGV[gv] {
			if !served[r] {
				missing = append(missing, fmt.Sprintf("%s.%s (version %s)", r, gv.Group, gv.Version))
			}
		}
	}
	if len(missing) == 0 {
		return nil
	}
	noun := "CRD"
	if len(missing) > 1 {
		noun = "CRDs"
	}
	return fmt.Errorf("%s cannot start: %s %s not installed or not serving that version; install Herald's CRDs (helm install, kubectl apply -k deploy/kustomize, or kubectl apply -f deploy/crds/)",
		who, noun, strings.Join(missing, ", "))
}

// servedResources lists what gv serves; a group version that is not served at all serves
// nothing.
func servedResources(ctx context.Context, d discovery.ServerResourcesInterface, gv schema.GroupVersion) (map[string]bool, error) {
	var list []string
	var last error
	client := discovery.ToServerResourcesInterfaceWithContext(d)
	err := wait.ExponentialBackoffWithContext(ctx, discoveryBackoff, func(ctx context.Context) (bool, error) {
		res, err := client.ServerResourcesForGroupVersionWithContext(ctx, gv.String())
		switch {
		case err == nil:
			for _, r := range res.APIResources {
				list = append(list, r.Name)
			}
			return true, nil
		case apierrors.IsNotFound(err):
			return true, nil
		default:
			last = err
			return false, nil
		}
	})
	if err != nil {
		if last != nil {
			return nil, errors.Join(last, err)
		}
		return nil, err
	}
	served := make(map[string]bool, len(list))
	for _, r := range list {
		served[r] = true
	}
	return served, nil
}
