package v1beta1

import metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

// InterfaceInfo names a node interface a Service's address is announced on.
type InterfaceInfo struct {
	// Name is the interface name.
	// +optional
	Name string `json:"name,omitempty"`
}

// MetalLBServiceL2Status says which node announces a Service in layer 2, and on which interfaces.
type MetalLBServiceL2Status struct {
	// Node is the announcing node.
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="value is immutable",reason="FieldValueForbidden"
	// +optional
	Node string `json:"node,omitempty"`
	// ServiceName is the announced Service's name.
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="value is immutable",reason="FieldValueForbidden"
	// +optional
	ServiceName string `json:"serviceName,omitempty"`
	// ServiceNamespace is the announced Service's namespace.
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="value is immutable",reason="FieldValueForbidden"
	// +optional
	ServiceNamespace string `json:"serviceNamespace,omitempty"`
	// Interfaces are the node interfaces the address is announced on.
	// +optional
	Interfaces []InterfaceInfo `json:"interfaces,omitempty"`
}

// ServiceL2StatusSpec is empty.
type ServiceL2StatusSpec struct{}

// ServiceL2Status records the layer-2 announcement of one Service by one node.
//
// +genclient
// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:storageversion
// +kubebuilder:printcolumn:name="Allocated Node",type=string,JSONPath=`.status.node`
// +kubebuilder:printcolumn:name="Service Name",type=string,JSONPath=`.status.serviceName`
// +kubebuilder:printcolumn:name="Service Namespace",type=string,JSONPath=`.status.serviceNamespace`
type ServiceL2Status struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   ServiceL2StatusSpec    `json:"spec,omitempty"`
	Status MetalLBServiceL2Status `json:"status,omitempty"`
}

// ServiceL2StatusList is a list of ServiceL2Statuses.
//
// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object
// +kubebuilder:object:root=true
type ServiceL2StatusList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []ServiceL2Status `json:"items"`
}

// MetalLBServiceBGPStatus says which BGP peers a node advertises a Service to.
type MetalLBServiceBGPStatus struct {
	// Node is the advertising node.
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="value is immutable",reason="FieldValueForbidden"
	// +optional
	Node string `json:"node,omitempty"`
	// ServiceName is the advertised Service's name.
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="value is immutable",reason="FieldValueForbidden"
	// +optional
	ServiceName string `json:"serviceName,omitempty"`
	// ServiceNamespace is the advertised Service's namespace.
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="value is immutable",reason="FieldValueForbidden"
	// +optional
	ServiceNamespace string `json:"serviceNamespace,omitempty"`
	// Peers are the BGPPeers the Service is configured to be advertised to.
	// +optional
	Peers []string `json:"peers,omitempty"`
}

// ServiceBGPStatusSpec is empty.
type ServiceBGPStatusSpec struct{}

// ServiceBGPStatus records the BGP advertisement of one Service by one node.
//
// +genclient
// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:storageversion
// +kubebuilder:printcolumn:name="Node",type=string,JSONPath=`.status.node`
// +kubebuilder:printcolumn:name="Service Name",type=string,JSONPath=`.status.serviceName`
// +kubebuilder:printcolumn:name="Service Namespace",type=string,JSONPath=`.status.serviceNamespace`
type ServiceBGPStatus struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   ServiceBGPStatusSpec    `json:"spec,omitempty"`
	Status MetalLBServiceBGPStatus `json:"status,omitempty"`
}

// ServiceBGPStatusList is a list of ServiceBGPStatuses.
//
// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object
// +kubebuilder:object:root=true
type ServiceBGPStatusList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []ServiceBGPStatus `json:"items"`
}
