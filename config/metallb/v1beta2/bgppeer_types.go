package v1beta2

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// DynamicASNMode lets a peer's ASN be learned from its OPEN message instead of configured.
type DynamicASNMode string

const (
	// InternalASNMode accepts the peer only if its ASN equals myASN (iBGP).
	InternalASNMode DynamicASNMode = "internal"
	// ExternalASNMode accepts the peer only if its ASN differs from myASN (eBGP).
	ExternalASNMode DynamicASNMode = "external"
)

// BGPPeerSpec describes one BGP session the speakers open, field-compatible with MetalLB.
//
// +kubebuilder:validation:XValidation:rule="has(self.peerASN) != has(self.dynamicASN)",message="exactly one of peerASN or dynamicASN must be set",fieldPath=".peerASN",reason="FieldValueRequired"
// +kubebuilder:validation:XValidation:rule="has(self.peerAddress) != has(self.interface)",message="exactly one of peerAddress or interface must be set",fieldPath=".peerAddress",reason="FieldValueRequired"
// +kubebuilder:validation:XValidation:rule="!has(self.holdTime) || !has(self.keepaliveTime) || duration(self.keepaliveTime) < duration(self.holdTime) || (duration(self.holdTime) == duration('0s') && duration(self.keepaliveTime) == duration('0s'))",message="keepaliveTime must be lower than holdTime",fieldPath=".keepaliveTime",reason="FieldValueInvalid"
// +kubebuilder:validation:XValidation:rule="!has(self.password) || size(self.password) == 0 || !has(self.passwordSecret) || !has(self.passwordSecret.name)",message="password and passwordSecret are mutually exclusive",fieldPath=".password",reason="FieldValueForbidden"
// +kubebuilder:validation:XValidation:rule="!has(self.ebgpMultiHop) || !self.ebgpMultiHop || ((!has(self.peerASN) || self.peerASN != self.myASN) && (!has(self.dynamicASN) || self.dynamicASN != 'internal'))",message="ebgpMultiHop is only valid for eBGP peers (peerASN different from myASN)",fieldPath=".ebgpMultiHop",reason="FieldValueForbidden"
type BGPPeerSpec struct {
	// MyASN is the AS number of the local end of the session.
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=4294967295
	// +kubebuilder:validation:Format=int64
	MyASN uint32 `json:"myASN"`

	// ASN is the AS number expected from the peer. Exactly one of peerASN and dynamicASN is set.
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=4294967295
	// +kubebuilder:validation:Format=int64
	// +optional
	ASN uint32 `json:"peerASN,omitempty"`

	// DynamicASN accepts the peer's ASN from the session instead of configuring it:
	// internal requires it to equal myASN, external requires it to differ.
	// +kubebuilder:validation:Enum=internal;external
	// +optional
	DynamicASN DynamicASNMode `json:"dynamicASN,omitempty"`

	// Address is the peer's IP address to dial. Exactly one of peerAddress and interface is set.
	// +kubebuilder:validation:MaxLength=45
	// +kubebuilder:validation:XValidation:rule="isIP(self)",message="must be a valid IP address",reason="FieldValueInvalid"
	// +optional
	Address string `json:"peerAddress,omitempty"`

	// Interface is the node interface for unnumbered BGP peering.
	// +kubebuilder:validation:MaxLength=15
	// +kubebuilder:validation:Pattern=`^[^\s/]+$`
	// +optional
	Interface string `json:"interface,omitempty"`

	// SrcAddress is the local address used for the session.
	// +kubebuilder:validation:MaxLength=45
	// +kubebuilder:validation:XValidation:rule="isIP(self)",message="must be a valid IP address",reason="FieldValueInvalid"
	// +optional
	SrcAddress string `json:"sourceAddress,omitempty"`

	// Port is the TCP port to dial.
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=16384
	// +kubebuilder:default:=179
	// +optional
	Port uint16 `json:"peerPort,omitempty"`

	// HoldTime is the requested BGP hold time (RFC 4271): 0 or at least 3s.
	// +kubebuilder:validation:XValidation:rule="duration(self) == duration('0s') || duration(self) >= duration('3s')",message="must be 0s or at least 3s",reason="FieldValueInvalid"
	// +optional
	HoldTime *metav1.Duration `json:"holdTime,omitempty"`

	// KeepaliveTime is the requested BGP keepalive interval; lower than holdTime.
	// +kubebuilder:validation:XValidation:rule="duration(self) >= duration('0s')",message="must not be negative",reason="FieldValueInvalid"
	// +optional
	KeepaliveTime *metav1.Duration `json:"keepaliveTime,omitempty"`

	// ConnectTime is how long to wait between connection attempts, in whole seconds (1..65535).
	// +kubebuilder:validation:XValidation:rule="duration(self) >= duration('1s') && duration(self) <= duration('65535s')",message="must be between 1s and 65535s",reason="FieldValueInvalid"
	// +kubebuilder:validation:XValidation:rule="duration(self).getMilliseconds() % 1000 == 0",message="must be a whole number of seconds",reason="FieldValueInvalid"
	// +optional
	ConnectTime *metav1.Duration `json:"connectTime,omitempty"`

	// RouterID is the BGP router ID advertised to the peer, in IPv4 address form.
	// +kubebuilder:validation:MaxLength=15
	// +kubebuilder:validation:XValidation:rule="isIP(self) && ip(self).family() == 4",message="must be an IPv4 address",reason="FieldValueInvalid"
	// +optional
	RouterID string `json:"routerID,omitempty"`

	// NodeSelectors limits the session to nodes matching any of these selectors; empty means all.
	// +optional
	NodeSelectors []metav1.LabelSelector `json:"nodeSelectors,omitempty"`

	// Password is the TCP MD5 password. Mutually exclusive with passwordSecret.
	// +optional
	Password string `json:"password,omitempty"`

	// PasswordSecret names a kubernetes.io/basic-auth Secret whose "password" key holds the
	// TCP MD5 password. Mutually exclusive with password.
	// +optional
	PasswordSecret *corev1.SecretReference `json:"passwordSecret,omitempty"`

	// BFDProfile names the BFDProfile for the session's BFD; empty disables BFD.
	// +optional
	BFDProfile string `json:"bfdProfile,omitempty"`

	// EnableGracefulRestart keeps forwarding during a peer restart; immutable.
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="enableGracefulRestart cannot be changed after creation",reason="FieldValueForbidden"
	// +optional
	EnableGracefulRestart bool `json:"enableGracefulRestart,omitempty"`

	// EBGPMultiHop marks an eBGP peer that is more than one hop away.
	// +optional
	EBGPMultiHop bool `json:"ebgpMultiHop,omitempty"`

	// VRFName is the host VRF the session is established in.
	// +optional
	VRFName string `json:"vrf,omitempty"`

	// DisableMP separates IPv4 and IPv6 route exchange into distinct sessions.
	// Deprecated: use dualStackAddressFamily.
	// +kubebuilder:default:=false
	// +optional
	DisableMP bool `json:"disableMP,omitempty"`

	// DualStackAddressFamily enables both address families on the session.
	// +kubebuilder:default:=false
	// +optional
	DualStackAddressFamily bool `json:"dualStackAddressFamily,omitempty"`
}

// BGPPeerStatus is empty; session state is reported elsewhere.
type BGPPeerStatus struct{}

// BGPPeer is a BGP router the speakers peer with.
//
// +genclient
// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:storageversion
// +kubebuilder:printcolumn:name="Address",type=string,JSONPath=`.spec.peerAddress`
// +kubebuilder:printcolumn:name="ASN",type=string,JSONPath=`.spec.peerASN`
// +kubebuilder:printcolumn:name="BFD Profile",type=string,JSONPath=`.spec.bfdProfile`
// +kubebuilder:printcolumn:name="Multi Hops",type=string,JSONPath=`.spec.ebgpMultiHop`
type BGPPeer struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   BGPPeerSpec   `json:"spec,omitempty"`
	Status BGPPeerStatus `json:"status,omitempty"`
}

// BGPPeerList is a list of BGPPeers.
//
// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object
// +kubebuilder:object:root=true
type BGPPeerList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []BGPPeer `json:"items"`
}
