package v1beta2

import "k8s.io/apimachinery/pkg/runtime"

var knownTypes = []runtime.Object{&BGPPeer{}, &BGPPeerList{}}
