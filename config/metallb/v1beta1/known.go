package v1beta1

import "k8s.io/apimachinery/pkg/runtime"

var knownTypes = []runtime.Object{
	&IPAddressPool{}, &IPAddressPoolList{},
	&L2Advertisement{}, &L2AdvertisementList{},
	&BGPAdvertisement{}, &BGPAdvertisementList{},
	&BFDProfile{}, &BFDProfileList{},
	&Community{}, &CommunityList{},
	&ServiceL2Status{}, &ServiceL2StatusList{},
	&ServiceBGPStatus{}, &ServiceBGPStatusList{},
	&BGPPeer{}, &BGPPeerList{},
}
