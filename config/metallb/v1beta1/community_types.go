package v1beta1

import metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

// CommunitySpec defines community aliases usable by name in BGPAdvertisement.spec.communities.
type CommunitySpec struct {
	// Communities lists the aliases.
	// +kubebuilder:validation:MaxItems=1024
	// +optional
	Communities []CommunityAlias `json:"communities,omitempty"`
}

// CommunityAlias names a BGP community value.
type CommunityAlias struct {
	// Name is the alias used in BGPAdvertisements.
	// +kubebuilder:validation:MaxLength=64
	// +optional
	Name string `json:"name,omitempty"`

	// Value is a standard (65535:65282) or large (large:1:2:3) community.
	// +kubebuilder:validation:MaxLength=64
	// +kubebuilder:validation:XValidation:rule="self.matches('^[0-9]{1,5}:[0-9]{1,5}$') && int(self.split(':')[0]) <= 65535 && int(self.split(':')[1]) <= 65535 || self.matches('^large:[0-9]{1,10}:[0-9]{1,10}:[0-9]{1,10}$') && int(self.split(':')[1]) <= 4294967295 && int(self.split(':')[2]) <= 4294967295 && int(self.split(':')[3]) <= 4294967295",message="must be a standard community (65535:65282) or a large community (large:1:2:3)",reason="FieldValueInvalid"
	// +optional
	Value string `json:"value,omitempty"`
}

// CommunityStatus is empty.
type CommunityStatus struct{}

// Community is a set of BGP community aliases.
//
// +genclient
// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:storageversion
type Community struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   CommunitySpec   `json:"spec,omitempty"`
	Status CommunityStatus `json:"status,omitempty"`
}

// CommunityList is a list of Communities.
//
// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object
// +kubebuilder:object:root=true
type CommunityList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []Community `json:"items"`
}
