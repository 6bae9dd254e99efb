package config

import (
	"encoding/json"
	"time"

	logsapi "k8s.io/component-base/logs/api/v1"

	"github.com/herald-lb/herald/framework"
)

// Default values of the speaker's settings.
const (
	DefaultProfileName = "default"
	// A dead speaker's IPs move when its heartbeat lapses, so the lease is the failover time:
	// 2.5 s keeps failover under 3 s, and renewing every second survives one lost renewal.
	// That is one Lease write per node per second; large clusters may trade failover time for
	// API load by raising both.
	DefaultLeaseDuration      = 2500 * time.Millisecond
	DefaultRenewInterval      = time.Second
	DefaultNamespace          = "herald-system"
	DefaultMetricsBindAddress = ":7472"
	DefaultDrainTimeout       = 10 * time.Second
	// DefaultFastPathBindAddress is memberlist's (and MetalLB's) port on every address.
	DefaultFastPathBindAddress = ":7946"
	// DefaultProbeInterval finds a dead speaker in about 0.4 s (fastpath's BenchmarkDetection).
	DefaultProbeInterval = 100 * time.Millisecond
	// An announcer with nothing to announce is stopped after this long: long enough that
	// churn (a Service deleted and created again) does not restart it.
	DefaultAnnouncerIdleTimeout = 5 * time.Minute
	// DisableAll in a disabled list removes every default plugin of the stage.
	DisableAll = "*"
)

// Options is what loading a configuration needs from the binary that loads it.
type Options struct {
	// Registry holds every plugin the binary knows: in-tree and out-of-tree.
	Registry framework.Registry
	// DefaultPlugins is the default plugin set every profile starts from (its Name is
	// ignored); its Args, when present, are the args given to plugins the file does not
	// configure. The in-tree set is plugins.DefaultProfile().
	DefaultPlugins framework.ProfileSpec
}

// Default returns the default configuration: one profile named "default" for Services
// without a class, using the default plugin set, and the default speaker settings.
func Default(opts Options) (*SpeakerConfiguration, error) {
	c := &SpeakerConfiguration{}
	if err := Complete(c, opts); err != nil {
		return nil, err
	}
	return c, nil
}

// setScalarDefaults fills every unset field except the plugin sets, which are merged only
// after validation so that errors point at the entries as the file wrote them.
func setScalarDefaults(c *SpeakerConfiguration) {
	if c.APIVersion == "" {
		c.APIVersion = APIVersion
	}
	if c.Kind == "" {
		c.Kind = Kind
	}
	if len(c.Profiles) == 0 {
		c.Profiles = []Profile{{Name: DefaultProfileName}}
	}
	if len(c.Announcers) == 0 {
		// Every built-in: each starts only once the cluster asks for it (an IPv4 or IPv6
		// address to announce, a BGPPeer for this node), so the list costs nothing unused.
		c.Announcers = []Announcer{{Name: "arp"}, {Name: "ndp"}, {Name: "bgp"}}
	}
	for i := range c.Announcers {
		if c.Announcers[i].IdleTimeout == nil {
			d := D(DefaultAnnouncerIdleTimeout)
			c.Announcers[i].IdleTimeout = &d
		}
	}
	if c.Heartbeat.LeaseDuration.Duration == 0 && c.Heartbeat.LeaseDuration.invalid == "" {
		c.Heartbeat.LeaseDuration = D(DefaultLeaseDuration)
	}
	if c.Heartbeat.RenewInterval.Duration == 0 && c.Heartbeat.RenewInterval.invalid == "" {
		c.Heartbeat.RenewInterval = D(DefaultRenewInterval)
	}
	if c.Heartbeat.Namespace == "" {
		c.Heartbeat.Namespace = DefaultNamespace
	}
	if c.ConfigNamespace == "" {
		c.ConfigNamespace = c.Heartbeat.Namespace
	}
	if c.HandleNoClass == nil {
		t := true
		c.HandleNoClass = &t
	}
	if c.MetricsBindAddress == "" {
		c.MetricsBindAddress = DefaultMetricsBindAddress
	}
	logsapi.SetRecommendedLoggingConfiguration(&c.Logging)
	if c.Draining.Timeout.Duration == 0 && c.Draining.Timeout.invalid == "" {
		c.Draining.Timeout = D(DefaultDrainTimeout)
	}
	if c.FastPath.BindAddress == "" {
		c.FastPath.BindAddress = DefaultFastPathBindAddress
	}
	if c.FastPath.ProbeInterval.Duration == 0 && c.FastPath.ProbeInterval.invalid == "" {
		c.FastPath.ProbeInterval = D(DefaultProbeInterval)
	}
}

// stage is one extension point's view of a profile.
type stage struct {
	name     string
	set      func(*Plugins) *PluginSet
	defaults func(framework.ProfileSpec) []Plugin
}

func names(ns []string) []Plugin {
	out := make([]Plugin, len(ns))
	for i, n := range ns {
		out[i] = Plugin{Name: n}
	}
	return out
}

func weight(w int64) *int64 { return &w }

var stages = []stage{
	{"preFilter", func(p *Plugins) *PluginSet { return &p.PreFilter }, func(s framework.ProfileSpec) []Plugin { return names(s.PreFilter) }},
	{"filter", func(p *Plugins) *PluginSet { return &p.Filter }, func(s framework.ProfileSpec) []Plugin { return names(s.Filter) }},
	{"score", func(p *Plugins) *PluginSet { return &p.Score }, func(s framework.ProfileSpec) []Plugin {
		out := make([]Plugin, len(s.Score))
		for i, w := range s.Score {
			out[i] = Plugin{Name: w.Name, Weight: weight(w.Weight)}
		}
		return out
	}},
	{"bind", func(p *Plugins) *PluginSet { return &p.Bind }, func(s framework.ProfileSpec) []Plugin { return names(s.Bind) }},
}

// effective merges a stage's defaults with what the file enables and disables: defaults
// that are not disabled keep their order (an enabled default keeps its place and takes the
// file's weight), then the other enabled plugins follow in file order. Score weights left
// unset take the default set's weight, or 1.
func effective(defaults []Plugin, set PluginSet, score bool) []Plugin {
	disabled := map[string]bool{}
	for _, d := range set.Disabled {
		disabled[d.Name] = true
	}
	enabled := map[string]Plugin{}
	for _, e := range set.Enabled {
		if _, ok := enabled[e.Name]; !ok {
			enabled[e.Name] = e
		}
	}
	var out []Plugin
	placed := map[string]bool{}
	if !disabled[DisableAll] {
		for _, d := range defaults {
			if disabled[d.Name] || placed[d.Name] {
				continue
			}
			p := d
			if e, ok := enabled[d.Name]; ok && e.Weight != nil {
				p.Weight = e.Weight
			}
			out = append(out, p)
			placed[d.Name] = true
		}
	}
	for _, e := range set.Enabled {
		if placed[e.Name] {
			continue
		}
		out = append(out, e)
		placed[e.Name] = true
	}
	for i := range out {
		if !score {
			out[i].Weight = nil
		} else if out[i].Weight == nil {
			out[i].Weight = weight(1)
		} else {
			out[i].Weight = weight(*out[i].Weight) // never alias the caller's pointer
		}
	}
	return out
}

// completePlugins replaces every stage with its effective set (disabled: ["*"], so the result
// means the same whatever the defaults) and gives every enabled plugin that takes args a
// pluginConfig entry with its defaulted args, so the printed configuration is complete.
func completePlugins(p *Profile, opts Options) {
	var order []string
	for _, st := range stages {
		set := st.set(&p.Plugins)
		eff := effective(st.defaults(opts.DefaultPlugins), *set, st.name == "score")
		*set = PluginSet{Enabled: eff, Disabled: []Plugin{{Name: DisableAll}}}
		for _, e := range eff {
			order = append(order, e.Name)
		}
	}
	have := map[string]bool{}
	for i := range p.PluginConfig {
		pc := &p.PluginConfig[i]
		have[pc.Name] = true
		if args, err := decodeArgs(opts.Registry, pc.Name, pc.Args); err == nil && args != nil {
			pc.Args = mustMarshal(args)
		}
	}
	for _, name := range order {
		if have[name] {
			continue
		}
		have[name] = true
		reg, ok := opts.Registry[name]
		if !ok || reg.NewArgs == nil {
			continue
		}
		args := opts.DefaultPlugins.Args[name]
		if args == nil {
			args = reg.NewArgs()
		}
		args.Default()
		p.PluginConfig = append(p.PluginConfig, PluginConfig{Name: name, Args: mustMarshal(args)})
	}
}

func mustMarshal(v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		// Args types are plain data; failing to marshal one is a programming error.
		panic(err)
	}
	return b
}
