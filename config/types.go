// Package config is the speaker's configuration file API (herald.dev/v1alpha1,
// SpeakerConfiguration): its types, strict decoding, defaults and validation with field paths,
// and the conversion of profiles into the framework's ProfileSpec. The metallb.io resource
// types live in config/metallb.
package config

import (
	"encoding/json"

	logsapi "k8s.io/component-base/logs/api/v1"
)

// The file's type identity.
const (
	APIVersion = "herald.dev/v1alpha1"
	Kind       = "SpeakerConfiguration"
)

// SpeakerConfiguration is the speaker's configuration file.
type SpeakerConfiguration struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	// Profiles are scheduling profiles; a Service picks one by spec.loadBalancerClass.
	Profiles []Profile `json:"profiles,omitempty"`
	// Announcers are the announcer plugin executables the speaker runs.
	Announcers []Announcer `json:"announcers,omitempty"`
	Heartbeat  Heartbeat   `json:"heartbeat"`
	// ConfigNamespace is the one namespace the metallb.io configuration (IPAddressPools,
	// L2Advertisements, BGPAdvertisements, BGPPeers, BFDProfiles, Communities) and the BGP
	// peers' password Secrets are read from; objects of those kinds elsewhere are ignored.
	// Default: heartbeat.namespace, Herald's own; set it to metallb-system to use a MetalLB
	// installation's configuration where it is.
	ConfigNamespace string `json:"configNamespace,omitempty"`
	// HandleNoClass makes the profile without a loadBalancerClass serve Services that set no
	// class. Default true.
	HandleNoClass *bool `json:"handleNoClass,omitempty"`
	// MetricsBindAddress is the host:port serving /metrics, /healthz and /readyz (default :7472,
	// MetalLB's port, so scrape and probe configurations carry over). HealthBindAddress, when
	// set, serves /healthz and /readyz alone on a second port; unset by default because a
	// hostNetwork speaker takes the port on every node (7473 is MetalLB's FRR metrics port).
	MetricsBindAddress string                       `json:"metricsBindAddress,omitempty"`
	HealthBindAddress  string                       `json:"healthBindAddress,omitempty"`
	Logging            logsapi.LoggingConfiguration `json:"logging"`
	Draining           Draining                     `json:"draining"`
	FastPath           FastPath                     `json:"fastPath"`
}

// Profile is a scheduling profile: which plugins run at which extension point, with which
// weights and args.
type Profile struct {
	Name string `json:"name"`
	// LoadBalancerClass selects the Services the profile schedules; empty makes it the
	// profile for Services without a class (when handleNoClass is true).
	LoadBalancerClass string `json:"loadBalancerClass,omitempty"`
	// Plugins are merged with the default plugin set: defaults not disabled keep their place,
	// enabled plugins are added after them (an enabled default keeps its place and takes the
	// new weight). After defaulting every stage lists its full set with disabled: ["*"].
	Plugins      Plugins        `json:"plugins"`
	PluginConfig []PluginConfig `json:"pluginConfig,omitempty"`
}

// Plugins lists the plugins per extension point.
type Plugins struct {
	PreFilter PluginSet `json:"preFilter"`
	Filter    PluginSet `json:"filter"`
	Score     PluginSet `json:"score"`
	Bind      PluginSet `json:"bind"`
}

// PluginSet enables and disables plugins at one extension point.
type PluginSet struct {
	Enabled []Plugin `json:"enabled,omitempty"`
	// Disabled removes default plugins; the name "*" removes all of them.
	Disabled []Plugin `json:"disabled,omitempty"`
}

// Plugin names a plugin; Weight is for score plugins only (1..100, default 1 or the default
// set's weight).
type Plugin struct {
	Name   string `json:"name"`
	Weight *int64 `json:"weight,omitempty"`
}

// PluginConfig holds one plugin's args, decoded strictly into the plugin's <Name>Args type.
type PluginConfig struct {
	Name string          `json:"name"`
	Args json.RawMessage `json:"args,omitempty"`
}

// Announcer is an announcer plugin executable.
type Announcer struct {
	// Name is arp, ndp, bgp or a custom announcer's name.
	Name string `json:"name"`
	// Path is the executable; empty for the built-in names means herald-announcer-<name>
	// next to the herald binary.
	Path string `json:"path,omitempty"`
	// SHA256 is the expected hex checksum of the executable; empty skips the check.
	SHA256 string `json:"sha256,omitempty"`
	// Args are passed to the executable.
	Args []string `json:"args,omitempty"`
	// IdleTimeout makes the announcer start when it gets its first address (or, for bgp, a
	// BGPPeer selects this node) and stop after it has had nothing to announce, and no
	// change, for this long (default 5m). "0s" runs it from the speaker's start to its end.
	IdleTimeout *Duration `json:"idleTimeout,omitempty"`
}

// Heartbeat configures the speaker's node heartbeat Lease.
type Heartbeat struct {
	// LeaseDuration is how long a renewal stays valid (default 2.5s).
	LeaseDuration Duration `json:"leaseDuration"`
	// RenewInterval is how often the speaker renews (default 1s); less than LeaseDuration.
	RenewInterval Duration `json:"renewInterval"`
	// Namespace is Herald's own namespace (default herald-system): it holds the heartbeat
	// Leases and the ServiceL2Status and ServiceBGPStatus objects, as MetalLB's speaker
	// namespace does.
	Namespace string `json:"namespace,omitempty"`
}

// FastPath configures the probes between speakers (hashicorp/memberlist) that find a dead
// speaker within a second, long before its heartbeat Lease lapses. It runs when
// SecretKeyFile is set: its packets must be authenticated, or any host on the segment could
// fake a node's liveness.
type FastPath struct {
	// SecretKeyFile holds the secret every speaker shares (at least 16 bytes; surrounding
	// white space is ignored); its SHA-256 is the AES-256 key that seals every packet.
	SecretKeyFile string `json:"secretKeyFile,omitempty"`
	// BindAddress is the host:port the fast path listens at, UDP and TCP (default :7946,
	// memberlist's and MetalLB's). Without a host it listens on every address and the others
	// reach it at the node's InternalIP.
	BindAddress string `json:"bindAddress,omitempty"`
	// ProbeInterval is how often each speaker probes one other (default 100ms): a dead
	// speaker is found in about four intervals, and each speaker sends a probe and an answer
	// per interval whatever the cluster's size.
	ProbeInterval Duration `json:"probeInterval"`
}

// Enabled reports whether the fast path runs.
func (f FastPath) Enabled() bool { return f.SecretKeyFile != "" }

// Draining configures the hand-over on shutdown.
type Draining struct {
	// Timeout bounds how long a stopping speaker waits for others to take over (default 10s).
	Timeout Duration `json:"timeout"`
}

// BuiltinAnnouncers are the announcer names Herald ships executables for.
var BuiltinAnnouncers = []string{"arp", "bgp", "ndp"}
