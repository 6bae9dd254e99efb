package metallb

import "k8s.io/apimachinery/pkg/runtime/schema"

// ConfigResource is a metallb.io kind that configures Herald. Herald reads these from its one
// configuration namespace only; objects of these kinds in other namespaces are ignored (never
// merged) and reported.
type ConfigResource struct {
	Kind string
	// Resource is the resource with the version Herald reads.
	Resource schema.GroupVersionResource
}

// ConfigResources are every metallb.io configuration kind, in the order reports list them.
var ConfigResources = []ConfigResource{
	{"IPAddressPool", gvr("v1beta1", "ipaddresspools")},
	{"L2Advertisement", gvr("v1beta1", "l2advertisements")},
	{"BGPAdvertisement", gvr("v1beta1", "bgpadvertisements")},
	{"BGPPeer", gvr("v1beta2", "bgppeers")},
	{"BFDProfile", gvr("v1beta1", "bfdprofiles")},
	{"Community", gvr("v1beta1", "communities")},
}

func gvr(version, resource string) schema.GroupVersionResource {
	return schema.GroupVersionResource{Group: "metallb.io", Version: version, Resource: resource}
}

// APIVersion is the resource's group/version, as in an object reference.
func (r ConfigResource) APIVersion() string { return r.Resource.GroupVersion().String() }
