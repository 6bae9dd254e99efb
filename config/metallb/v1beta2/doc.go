// Package v1beta2 is the metallb.io/v1beta2 API: BGPPeer, the storage version of BGP peers.
//
// +k8s:deepcopy-gen=package
// +groupName=metallb.io
package v1beta2
