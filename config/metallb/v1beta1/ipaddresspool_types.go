package v1beta1

import metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

// IPAddressPoolSpec is a set of addresses LoadBalancer Services may be given.
type IPAddressPoolSpec struct {
	// Addresses lists CIDR prefixes (192.0.2.0/24) or inclusive ranges (192.0.2.10-192.0.2.20).
	// A range's ends are of the same family and start <= end. No entry may contain unspecified,
	// loopback, link-local, multicast, broadcast or IPv4-mapped IPv6 addresses (the controller
	// also refuses a range that only spans them).
	// +kubebuilder:validation:MaxItems=1024
	// +kubebuilder:validation:items:MaxLength=100
	// +kubebuilder:validation:items:XValidation:rule="self.contains('-') || isCIDR(self)",message="must be a CIDR (192.0.2.0/24) or a range (192.0.2.10-192.0.2.20)",reason="FieldValueInvalid"
	// +kubebuilder:validation:items:XValidation:rule="!self.contains('-') || (size(self.split('-')) == 2 && isIP(self.split('-')[0].trim()) && isIP(self.split('-')[1].trim()))",message="a range must be two IP addresses separated by '-'",reason="FieldValueInvalid"
	// +kubebuilder:validation:items:XValidation:rule="!self.contains('-') || size(self.split('-')) != 2 || !isIP(self.split('-')[0].trim()) || !isIP(self.split('-')[1].trim()) || ip(self.split('-')[0].trim()).family() == ip(self.split('-')[1].trim()).family()",message="a range's start and end must be of the same address family",reason="FieldValueInvalid"
	// +kubebuilder:validation:items:XValidation:rule="!self.contains('-') || size(self.split('-')) != 2 || !isIP(self.split('-')[0].trim()) || !isIP(self.split('-')[1].trim()) || ip(self.split('-')[0].trim()).family() != 4 || ip(self.split('-')[1].trim()).family() != 4 || (int(self.split('-')[0].trim().split('.')[0]) * 16777216 + int(self.split('-')[0].trim().split('.')[1]) * 65536 + int(self.split('-')[0].trim().split('.')[2]) * 256 + int(self.split('-')[0].trim().split('.')[3]) <= int(self.split('-')[1].trim().split('.')[0]) * 16777216 + int(self.split('-')[1].trim().split('.')[1]) * 65536 + int(self.split('-')[1].trim().split('.')[2]) * 256 + int(self.split('-')[1].trim().split('.')[3]))",message="a range's start must not be greater than its end",reason="FieldValueInvalid"
	// +kubebuilder:validation:items:XValidation:rule="!isCIDR(self) || !['0.0.0.0/32', '127.0.0.0/8', '169.254.0.0/16', '224.0.0.0/4', '255.255.255.255/32', '::/128', '::1/128', 'fe80::/10', 'ff00::/8'].exists(b, cidr(b).ip().family() == cidr(self).ip().family() && (cidr(self).masked().containsCIDR(cidr(b)) || cidr(b).containsIP(cidr(self).masked().ip())))",message="must not contain unspecified, loopback, link-local, multicast or broadcast addresses (0.0.0.0, 127.0.0.0/8, 169.254.0.0/16, 224.0.0.0/4, 255.255.255.255, ::, ::1, fe80::/10, ff00::/8)",reason="FieldValueInvalid"
	// +kubebuilder:validation:items:XValidation:rule="!self.contains('-') || size(self.split('-')) != 2 || !isIP(self.split('-')[0].trim()) || !isIP(self.split('-')[1].trim()) || (ip(self.split('-')[0].trim()).isGlobalUnicast() && ip(self.split('-')[1].trim()).isGlobalUnicast())",message="a range must not start or end at an unspecified, loopback, link-local, multicast or broadcast address",reason="FieldValueInvalid"
	Addresses []string `json:"addresses"`

	// AutoAssign lets the controller pick addresses from this pool without an explicit request.
	// +kubebuilder:default:=true
	// +optional
	AutoAssign *bool `json:"autoAssign,omitempty"`

	// AvoidBuggyIPs skips addresses ending in .0 and .255.
	// +kubebuilder:default:=false
	// +optional
	AvoidBuggyIPs bool `json:"avoidBuggyIPs,omitempty"`

	// AllocateTo restricts and orders which Services this pool serves.
	// +optional
	AllocateTo *ServiceAllocation `json:"serviceAllocation,omitempty"`
}

// ServiceAllocation restricts a pool to some Services and orders pools among themselves.
type ServiceAllocation struct {
	// Priority orders pools: a lower value is tried first; pools without one come last.
	// +optional
	Priority int `json:"priority,omitempty"`

	// Namespaces limits the pool to Services in these namespaces.
	// +optional
	Namespaces []string `json:"namespaces,omitempty"`

	// NamespaceSelectors limits the pool to Services in namespaces matching any selector.
	// +optional
	NamespaceSelectors []metav1.LabelSelector `json:"namespaceSelectors,omitempty"`

	// ServiceSelectors limits the pool to Services matching any selector.
	// +optional
	ServiceSelectors []metav1.LabelSelector `json:"serviceSelectors,omitempty"`
}

// IPAddressPoolStatus reports the pool's usage and health.
type IPAddressPoolStatus struct {
	// AssignedIPv4 is the number of IPv4 addresses assigned to Services.
	AssignedIPv4 int64 `json:"assignedIPv4"`
	// AssignedIPv6 is the number of IPv6 addresses assigned to Services.
	AssignedIPv6 int64 `json:"assignedIPv6"`
	// AvailableIPv4 is the number of IPv4 addresses still free.
	AvailableIPv4 int64 `json:"availableIPv4"`
	// AvailableIPv6 is the number of IPv6 addresses still free.
	AvailableIPv6 int64 `json:"availableIPv6"`

	// Conditions is a Herald addition: the controller reports problems such as overlapping pools.
	// +listType=map
	// +listMapKey=type
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// IPAddressPool is a pool of addresses for LoadBalancer Services.
//
// +genclient
// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:storageversion
// +kubebuilder:printcolumn:name="Auto Assign",type=boolean,JSONPath=`.spec.autoAssign`
// +kubebuilder:printcolumn:name="Avoid Buggy IPs",type=boolean,JSONPath=`.spec.avoidBuggyIPs`
// +kubebuilder:printcolumn:name="Addresses",type=string,JSONPath=`.spec.addresses`
type IPAddressPool struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   IPAddressPoolSpec   `json:"spec"`
	Status IPAddressPoolStatus `json:"status,omitempty"`
}

// IPAddressPoolList is a list of IPAddressPools.
//
// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object
// +kubebuilder:object:root=true
type IPAddressPoolList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []IPAddressPool `json:"items"`
}
