// Package v1beta1 is the metallb.io/v1beta1 API: address pools, advertisements, BFD profiles,
// community aliases, per-service status objects, and BGPPeer as served at v1beta1 (identical in
// shape to v1beta2, which is the storage version).
//
// +k8s:deepcopy-gen=package
// +groupName=metallb.io
package v1beta1
