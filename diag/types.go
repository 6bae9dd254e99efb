package diag

import (
	"time"

	appsv1 "k8s.io/api/apps/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"

	metallbv1beta1 "github.com/herald-lb/herald/config/metallb/v1beta1"
	metallbv1beta2 "github.com/herald-lb/herald/config/metallb/v1beta2"
)

// APIVersion versions the JSON form of a Report. Fields are only ever added within a version.
const APIVersion = "herald.dev/diag/v1"

// Severity says how bad a finding is.
type Severity string

// Severities, from worst to mildest.
const (
	// Critical: traffic is (or will be) lost, or Herald cannot work; `herald diag` exits
	// non-zero.
	Critical Severity = "critical"
	// Warning: something is misconfigured or degraded but traffic still flows.
	Warning Severity = "warning"
	// Info: worth knowing, nothing to fix necessarily.
	Info Severity = "info"
)

func (s Severity) rank() int {
	switch s {
	case Critical:
		return 0
	case Warning:
		return 1
	}
	return 2
}

// ObjectRef names the object a finding is about.
type ObjectRef struct {
	Kind      string `json:"kind"`
	Namespace string `json:"namespace,omitempty"`
	Name      string `json:"name"`
}

func (o ObjectRef) String() string {
	if o.Namespace == "" {
		return o.Kind + "/" + o.Name
	}
	return o.Kind + "/" + o.Namespace + "/" + o.Name
}

// Finding is one problem found by one check.
type Finding struct {
	// Check is the stable check ID ("pool.exhausted"); docs/diag.md lists them all.
	Check    string    `json:"check"`
	Severity Severity  `json:"severity"`
	Object   ObjectRef `json:"object"`
	// Message says what is wrong, naming the objects involved.
	Message string `json:"message"`
	// Fix says what to do about it.
	Fix string `json:"fix"`
}

// Summary counts findings per severity.
type Summary struct {
	Critical int `json:"critical"`
	Warning  int `json:"warning"`
	Info     int `json:"info"`
}

// Report is the outcome of `herald diag`: the findings, the score, and an inventory of what
// was inspected (pools, Services, nodes) so a reader sees the healthy parts too.
type Report struct {
	APIVersion string `json:"apiVersion"`
	// Namespace is Herald's namespace (pods, heartbeat Leases, status objects).
	Namespace string `json:"namespace"`
	// ConfigNamespace is the namespace of the metallb.io configuration Herald reads.
	ConfigNamespace string `json:"configNamespace"`
	// Score is the health score, 0..100 (see Score).
	Score    int       `json:"score"`
	Summary  Summary   `json:"summary"`
	Findings []Finding `json:"findings"`
	// Checks are the IDs of every check that can produce findings, in the order they ran.
	Checks   []string       `json:"checks"`
	CRDs     []CRDState     `json:"crds"`
	Pools    []PoolUsage    `json:"pools"`
	Services []ServiceState `json:"services"`
	Nodes    []NodeState    `json:"nodes"`
}

// CRDState is one metallb.io resource Herald needs.
type CRDState struct {
	// Name is the CRD name ("ipaddresspools.metallb.io").
	Name string `json:"name"`
	// Version is the version Herald reads.
	Version string `json:"version"`
	// Installed: the CustomResourceDefinition exists (unknown when it could not be read).
	Installed bool `json:"installed"`
	// Established: its Established condition is True.
	Established bool `json:"established"`
	// Served: discovery lists the resource in Version.
	Served bool `json:"served"`
}

// PoolUsage is one IPAddressPool's usage.
type PoolUsage struct {
	Name string `json:"name"`
	// Size, Used and Free count addresses (both families); Size saturates at 2^64-1.
	Size uint64 `json:"size"`
	Used uint64 `json:"used"`
	Free uint64 `json:"free"`
	// Exhausted: usable, and every address is in use.
	Exhausted bool `json:"exhausted"`
	// Usable is false for an invalid pool or one overlapping an earlier pool.
	Usable bool `json:"usable"`
	// Advertisements are the L2Advertisements and BGPAdvertisements covering the pool, as
	// "L2/name" and "BGP/name".
	Advertisements []string `json:"advertisements"`
}

// ServiceState is one LoadBalancer Service.
type ServiceState struct {
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	// Class is spec.loadBalancerClass ("" when unset).
	Class string `json:"class"`
	// Owned: Herald handles the Service (its class, or no class when Herald handles those).
	Owned bool `json:"owned"`
	// IPs are status.loadBalancer.ingress[*].ip.
	IPs []string `json:"ips"`
	// Pool is the pool the IPs belong to ("" if none).
	Pool string `json:"pool"`
	// Pending: owned and without an IP. PendingReason is the controller's condition reason
	// and message, or why there is none.
	Pending       bool   `json:"pending"`
	PendingReason string `json:"pendingReason,omitempty"`
	// ExternalTrafficPolicy is "Cluster" or "Local".
	ExternalTrafficPolicy string `json:"externalTrafficPolicy"`
	// ServingEndpoints counts endpoints able to take traffic, on any node.
	ServingEndpoints int `json:"servingEndpoints"`
	// Announcers are the nodes named by the Service's ServiceL2Status and ServiceBGPStatus
	// objects, as "L2/node" and "BGP/node".
	Announcers []string `json:"announcers"`
}

// NodeState is one node as the speakers see it.
type NodeState struct {
	Name string `json:"name"`
	// Ready is the Ready condition's status ("True", "False", "Unknown", "" when absent).
	Ready string `json:"ready"`
	// Excluded: labelled node.kubernetes.io/exclude-from-external-load-balancers.
	Excluded bool `json:"excluded"`
	// SpeakerPod is the speaker pod on the node ("" when none); SpeakerReady its readiness.
	SpeakerPod   string `json:"speakerPod"`
	SpeakerReady bool   `json:"speakerReady"`
	// Heartbeat is "fresh", "stale" or "missing".
	Heartbeat string `json:"heartbeat"`
	Draining  bool   `json:"draining"`
	// Interfaces are the up interfaces the node's speaker published.
	Interfaces []string `json:"interfaces"`
}

// Cluster is everything the checks read, listed once by Gather (or constructed by a test).
type Cluster struct {
	// Namespace is Herald's namespace.
	Namespace string
	// ConfigNamespace is where Herald reads its metallb.io configuration; empty means
	// Namespace.
	ConfigNamespace string
	// Now is when the objects were listed; heartbeat freshness is judged against it.
	Now time.Time
	// LoadBalancerClass and HandleNoClass say which Services Herald owns, as the controller's
	// flags of the same names.
	LoadBalancerClass string
	HandleNoClass     bool

	CRDs []CRDState
	// Pods are the pods of every namespace (Herald's are recognised by their labels in
	// Namespace; others are inspected for other load-balancer implementations).
	Pods           []corev1.Pod
	DaemonSets     []appsv1.DaemonSet
	Deployments    []appsv1.Deployment
	Nodes          []corev1.Node
	Leases         []coordinationv1.Lease
	Services       []corev1.Service
	EndpointSlices []discoveryv1.EndpointSlice
	// Events are Warning Events on Services and BGPPeers.
	Events []corev1.Event

	Pools             []metallbv1beta1.IPAddressPool
	L2Advertisements  []metallbv1beta1.L2Advertisement
	BGPAdvertisements []metallbv1beta1.BGPAdvertisement
	BGPPeers          []metallbv1beta2.BGPPeer
	BFDProfiles       []metallbv1beta1.BFDProfile
	L2Statuses        []metallbv1beta1.ServiceL2Status
	BGPStatuses       []metallbv1beta1.ServiceBGPStatus
	// Ignored are the metallb.io configuration objects outside ConfigNamespace: Herald
	// ignores them (the config.ignored check reports each).
	Ignored []ObjectRef

	// Errors are objects Gather could not list; each becomes a finding and the checks that
	// need them see an empty list.
	Errors []GatherError
}

// GatherError is a resource that could not be listed.
type GatherError struct {
	// Resource is what was listed ("ipaddresspools.metallb.io").
	Resource string
	Err      error
}
