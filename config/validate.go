package config

import (
	"bytes"
	"fmt"
	"net"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
	logsapi "k8s.io/component-base/logs/api/v1"
	sigsjson "sigs.k8s.io/json"

	"github.com/herald-lb/herald/framework"
)

var sha256Hex = regexp.MustCompile(`^[0-9a-f]{64}$`)

// Validate returns every problem of the configuration, each with its field path. Plugin
// entries are checked as written (before they are merged with the default set) so that
// paths point at the file's own entries; checks that need the merged set (pluginConfig for a
// plugin that is not enabled) use the merge.
func Validate(c *SpeakerConfiguration, opts Options) field.ErrorList {
	var errs field.ErrorList
	if c.APIVersion != APIVersion {
		errs = append(errs, field.NotSupported(field.NewPath("apiVersion"), c.APIVersion, []string{APIVersion}))
	}
	if c.Kind != Kind {
		errs = append(errs, field.NotSupported(field.NewPath("kind"), c.Kind, []string{Kind}))
	}
	errs = append(errs, validateProfiles(c.Profiles, opts, field.NewPath("profiles"))...)
	errs = append(errs, validateAnnouncers(c.Announcers, field.NewPath("announcers"))...)
	errs = append(errs, validateHeartbeat(&c.Heartbeat, field.NewPath("heartbeat"))...)
	// Defaulted from heartbeat.namespace, whose own check reports a bad value once.
	if c.ConfigNamespace != c.Heartbeat.Namespace {
		for _, msg := range validation.IsDNS1123Label(c.ConfigNamespace) {
			errs = append(errs, field.Invalid(field.NewPath("configNamespace"), c.ConfigNamespace, msg))
		}
	}
	errs = append(errs, validateAddress(c.MetricsBindAddress, field.NewPath("metricsBindAddress"))...)
	if c.HealthBindAddress != "" {
		errs = append(errs, validateAddress(c.HealthBindAddress, field.NewPath("healthBindAddress"))...)
	}
	if c.MetricsBindAddress != "" && c.MetricsBindAddress == c.HealthBindAddress {
		errs = append(errs, field.Invalid(field.NewPath("healthBindAddress"), c.HealthBindAddress, "must differ from metricsBindAddress"))
	}
	errs = append(errs, logsapi.Validate(&c.Logging, nil, field.NewPath("logging"))...)
	errs = append(errs, validateDuration(c.Draining.Timeout, field.NewPath("draining", "timeout"))...)
	errs = append(errs, validateFastPath(&c.FastPath, field.NewPath("fastPath"))...)
	return errs
}

func validateFastPath(f *FastPath, path *field.Path) field.ErrorList {
	errs := validateAddress(f.BindAddress, path.Child("bindAddress"))
	if host, port, err := net.SplitHostPort(f.BindAddress); err == nil && len(errs) == 0 {
		if port == "0" {
			errs = append(errs, field.Invalid(path.Child("bindAddress"), f.BindAddress, "needs a port other than 0: the others reach it there"))
		}
		if host != "" && net.ParseIP(host) == nil {
			errs = append(errs, field.Invalid(path.Child("bindAddress"), f.BindAddress, "host must be an IP address or empty"))
		}
	}
	probeErrs := validateDuration(f.ProbeInterval, path.Child("probeInterval"))
	errs = append(errs, probeErrs...)
	if len(probeErrs) == 0 && f.ProbeInterval.Duration < 10*time.Millisecond {
		errs = append(errs, field.Invalid(path.Child("probeInterval"), f.ProbeInterval.Duration.String(), "must be at least 10ms"))
	}
	return errs
}

func validateProfiles(profiles []Profile, opts Options, path *field.Path) field.ErrorList {
	var errs field.ErrorList
	if len(profiles) == 0 {
		errs = append(errs, field.Required(path, "at least one profile is needed"))
	}
	names := map[string]bool{}
	classes := map[string]bool{}
	for i := range profiles {
		p := &profiles[i]
		pp := path.Index(i)
		switch {
		case p.Name == "":
			errs = append(errs, field.Required(pp.Child("name"), ""))
		case names[p.Name]:
			errs = append(errs, field.Duplicate(pp.Child("name"), p.Name))
		default:
			for _, msg := range validation.IsDNS1123Subdomain(p.Name) {
				errs = append(errs, field.Invalid(pp.Child("name"), p.Name, msg))
			}
		}
		names[p.Name] = true
		if classes[p.LoadBalancerClass] {
			errs = append(errs, field.Duplicate(pp.Child("loadBalancerClass"), p.LoadBalancerClass))
		} else if p.LoadBalancerClass != "" {
			for _, msg := range validation.IsQualifiedName(p.LoadBalancerClass) {
				errs = append(errs, field.Invalid(pp.Child("loadBalancerClass"), p.LoadBalancerClass, msg))
			}
		}
		classes[p.LoadBalancerClass] = true
		errs = append(errs, validatePlugins(p, opts, pp)...)
	}
	return errs
}

// pluginInstances builds each plugin once per validation so its extension points can be
// checked; a factory that fails is reported once.
type pluginInstances struct {
	opts   Options
	args   map[string]framework.PluginArgs
	built  map[string]framework.Plugin
	failed map[string]bool
	handle framework.Handle
	errs   *field.ErrorList
}

func (pi *pluginInstances) get(name string, path *field.Path) framework.Plugin {
	if p, ok := pi.built[name]; ok || pi.failed[name] {
		return p
	}
	reg := pi.opts.Registry[name]
	args := pi.args[name]
	if args == nil && reg.NewArgs != nil {
		args = reg.NewArgs()
		args.Default()
	}
	p, err := reg.Factory(args, pi.handle)
	if err != nil || p == nil {
		pi.failed[name] = true
		*pi.errs = append(*pi.errs, field.Invalid(path, name, fmt.Sprintf("plugin cannot be built: %v", err)))
		return nil
	}
	pi.built[name] = p
	return p
}

func implements(p framework.Plugin, stage string) bool {
	switch stage {
	case "preFilter":
		_, ok := p.(framework.PreFilterPlugin)
		return ok
	case "filter":
		_, ok := p.(framework.FilterPlugin)
		return ok
	case "score":
		_, ok := p.(framework.ScorePlugin)
		return ok
	case "bind":
		_, ok := p.(framework.BindPlugin)
		return ok
	}
	return false
}

var stagePoint = map[string]string{"preFilter": framework.PointPreFilter, "filter": framework.PointFilter, "score": framework.PointScore, "bind": framework.PointBind}

func validatePlugins(p *Profile, opts Options, path *field.Path) field.ErrorList {
	var errs field.ErrorList
	known := opts.Registry.Names()
	// Args first: building plugins for the stage checks uses them.
	args, argErrs := validatePluginConfig(p, opts, path.Child("pluginConfig"))
	pi := &pluginInstances{opts: opts, args: args, built: map[string]framework.Plugin{}, failed: map[string]bool{},
		handle: framework.NewHandle(logr.Discard()), errs: &errs}
	// A plugin enabled with no pluginConfig entry runs with its default args: validate those
	// too, as kube-scheduler does, or a plugin whose args need a field passes validation and
	// then rejects every node.
	argErrs = append(argErrs, validateDefaultArgs(p, opts, path.Child("pluginConfig"), pi)...)
	enabledSomewhere := map[string]bool{}
	for _, st := range stages {
		set := st.set(&p.Plugins)
		sp := path.Child("plugins", st.name)
		seen := map[string]bool{}
		for j, e := range set.Enabled {
			ep := sp.Child("enabled").Index(j)
			switch {
			case e.Name == "":
				errs = append(errs, field.Required(ep.Child("name"), ""))
			case !slices.Contains(known, e.Name):
				errs = append(errs, field.NotSupported(ep.Child("name"), e.Name, known))
			case seen[e.Name]:
				errs = append(errs, field.Duplicate(ep.Child("name"), e.Name))
			default:
				if pl := pi.get(e.Name, ep.Child("name")); pl != nil && !implements(pl, st.name) {
					errs = append(errs, field.Invalid(ep.Child("name"), e.Name, fmt.Sprintf("plugin does not implement %s", stagePoint[st.name])))
				}
			}
			seen[e.Name] = true
			if e.Weight != nil {
				if st.name != "score" {
					errs = append(errs, field.Forbidden(ep.Child("weight"), "only score plugins have a weight"))
				} else if *e.Weight < 1 || *e.Weight > 100 {
					errs = append(errs, field.Invalid(ep.Child("weight"), *e.Weight, "must be in 1..100"))
				}
			}
		}
		for j, d := range set.Disabled {
			dp := sp.Child("disabled").Index(j).Child("name")
			switch {
			case d.Name == "":
				errs = append(errs, field.Required(dp, ""))
			case d.Name != DisableAll && !slices.Contains(known, d.Name):
				errs = append(errs, field.NotSupported(dp, d.Name, append([]string{DisableAll}, known...)))
			}
			if d.Weight != nil {
				errs = append(errs, field.Forbidden(sp.Child("disabled").Index(j).Child("weight"), "disabled plugins have no weight"))
			}
		}
		for _, e := range effective(st.defaults(opts.DefaultPlugins), *set, st.name == "score") {
			enabledSomewhere[e.Name] = true
		}
	}
	for j, pc := range p.PluginConfig {
		if pc.Name != "" && slices.Contains(known, pc.Name) && !enabledSomewhere[pc.Name] {
			errs = append(errs, field.Invalid(path.Child("pluginConfig").Index(j).Child("name"), pc.Name, "plugin is not enabled in this profile"))
		}
	}
	return append(errs, argErrs...)
}

// validatePluginConfig decodes every pluginConfig entry strictly into its plugin's args type,
// defaults and validates it, and returns the decoded args by plugin name.
func validatePluginConfig(p *Profile, opts Options, path *field.Path) (map[string]framework.PluginArgs, field.ErrorList) {
	var errs field.ErrorList
	known := opts.Registry.Names()
	out := map[string]framework.PluginArgs{}
	seen := map[string]bool{}
	for j, pc := range p.PluginConfig {
		pp := path.Index(j)
		switch {
		case pc.Name == "":
			errs = append(errs, field.Required(pp.Child("name"), ""))
			continue
		case !slices.Contains(known, pc.Name):
			errs = append(errs, field.NotSupported(pp.Child("name"), pc.Name, known))
			continue
		case seen[pc.Name]:
			errs = append(errs, field.Duplicate(pp.Child("name"), pc.Name))
			continue
		}
		seen[pc.Name] = true
		args, err := decodeArgs(opts.Registry, pc.Name, pc.Args)
		if err != nil {
			errs = append(errs, field.Invalid(pp.Child("args"), string(pc.Args), err.Error()))
			continue
		}
		if args == nil {
			continue
		}
		if argErrs := args.Validate(pp.Child("args")); len(argErrs) > 0 {
			errs = append(errs, argErrs...)
			continue
		}
		out[pc.Name] = args
	}
	return out, errs
}

// validateDefaultArgs defaults and validates the args of every plugin the profile enables
// (after merging with the default plugin set) that takes args and has no pluginConfig entry.
// Valid defaults go into pi's args; a plugin whose defaults are invalid is marked failed, so
// it is reported once, here, with the field path its pluginConfig entry would have.
func validateDefaultArgs(p *Profile, opts Options, path *field.Path, pi *pluginInstances) field.ErrorList {
	configured := map[string]bool{}
	for _, pc := range p.PluginConfig {
		configured[pc.Name] = true
	}
	var errs field.ErrorList
	for _, name := range enabledPlugins(p, opts) {
		reg, ok := opts.Registry[name]
		if !ok || reg.NewArgs == nil || configured[name] || pi.args[name] != nil {
			continue
		}
		args := opts.DefaultPlugins.Args[name]
		if args == nil {
			args = reg.NewArgs()
		}
		args.Default()
		argErrs := args.Validate(path.Key(name).Child("args"))
		if len(argErrs) == 0 {
			pi.args[name] = args
			continue
		}
		pi.failed[name] = true
		for _, e := range argErrs {
			e.Detail = strings.TrimSpace(e.Detail + " (plugin " + name + " is enabled with no pluginConfig entry, so its args are the defaults: add one)")
			errs = append(errs, e)
		}
	}
	return errs
}

// enabledPlugins lists the plugins the profile runs at any stage, once each, in stage order.
func enabledPlugins(p *Profile, opts Options) []string {
	var out []string
	seen := map[string]bool{}
	for _, st := range stages {
		for _, e := range effective(st.defaults(opts.DefaultPlugins), *st.set(&p.Plugins), st.name == "score") {
			if e.Name != "" && !seen[e.Name] {
				seen[e.Name] = true
				out = append(out, e.Name)
			}
		}
	}
	return out
}

// decodeArgs decodes raw args strictly into the plugin's args type and defaults them. It
// returns nil args for plugins without an args type (raw must then be empty).
func decodeArgs(reg framework.Registry, name string, raw []byte) (framework.PluginArgs, error) {
	r, ok := reg[name]
	if !ok {
		return nil, fmt.Errorf("plugin %q is not registered", name)
	}
	empty := len(bytes.TrimSpace(raw)) == 0 || bytes.Equal(bytes.TrimSpace(raw), []byte("null"))
	if r.NewArgs == nil {
		if !empty {
			return nil, fmt.Errorf("plugin %s takes no args", name)
		}
		return nil, nil
	}
	args := r.NewArgs()
	if !empty {
		strict, err := sigsjson.UnmarshalStrict(raw, args)
		if err != nil {
			return nil, fmt.Errorf("decoding %sArgs: %w", name, err)
		}
		if len(strict) > 0 {
			return nil, fmt.Errorf("decoding %sArgs: %w", name, joinErrors(strict))
		}
	}
	args.Default()
	return args, nil
}

func validateAnnouncers(as []Announcer, path *field.Path) field.ErrorList {
	var errs field.ErrorList
	seen := map[string]bool{}
	for i, a := range as {
		ap := path.Index(i)
		switch {
		case a.Name == "":
			errs = append(errs, field.Required(ap.Child("name"), ""))
		case seen[a.Name]:
			errs = append(errs, field.Duplicate(ap.Child("name"), a.Name))
		default:
			for _, msg := range validation.IsDNS1123Label(a.Name) {
				errs = append(errs, field.Invalid(ap.Child("name"), a.Name, msg))
			}
		}
		seen[a.Name] = true
		switch {
		case a.Path == "" && !slices.Contains(BuiltinAnnouncers, a.Name):
			errs = append(errs, field.Required(ap.Child("path"), fmt.Sprintf("custom announcers need a path (built-in: %v)", BuiltinAnnouncers)))
		case a.Path != "" && !filepath.IsAbs(a.Path):
			errs = append(errs, field.Invalid(ap.Child("path"), a.Path, "must be an absolute path"))
		}
		if a.IdleTimeout != nil {
			if err := a.IdleTimeout.parseError(); err != nil {
				errs = append(errs, field.Invalid(ap.Child("idleTimeout"), a.IdleTimeout.invalid, err.Error()))
			} else if a.IdleTimeout.Duration < 0 {
				errs = append(errs, field.Invalid(ap.Child("idleTimeout"), a.IdleTimeout.Duration.String(), "must not be negative (0s: always running)"))
			}
		}
		if a.SHA256 != "" && !sha256Hex.MatchString(a.SHA256) {
			errs = append(errs, field.Invalid(ap.Child("sha256"), a.SHA256, "must be 64 lower-case hex digits"))
		}
	}
	return errs
}

func validateHeartbeat(h *Heartbeat, path *field.Path) field.ErrorList {
	errs := validateDuration(h.LeaseDuration, path.Child("leaseDuration"))
	renewErrs := validateDuration(h.RenewInterval, path.Child("renewInterval"))
	errs = append(errs, renewErrs...)
	if len(errs) == 0 && h.RenewInterval.Duration >= h.LeaseDuration.Duration {
		errs = append(errs, field.Invalid(path.Child("renewInterval"), h.RenewInterval.Duration.String(),
			fmt.Sprintf("must be less than heartbeat.leaseDuration (%s)", h.LeaseDuration.Duration)))
	}
	for _, msg := range validation.IsDNS1123Label(h.Namespace) {
		errs = append(errs, field.Invalid(path.Child("namespace"), h.Namespace, msg))
	}
	return errs
}

func validateDuration(d Duration, path *field.Path) field.ErrorList {
	if err := d.parseError(); err != nil {
		return field.ErrorList{field.Invalid(path, d.invalid, err.Error())}
	}
	if d.Duration <= 0 {
		return field.ErrorList{field.Invalid(path, d.Duration.String(), "must be greater than 0")}
	}
	return nil
}

func validateAddress(addr string, path *field.Path) field.ErrorList {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return field.ErrorList{field.Invalid(path, addr, "must be host:port")}
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return field.ErrorList{field.Invalid(path, addr, "port must be a number in 0..65535")}
	}
	if host != "" && net.ParseIP(host) == nil {
		for _, msg := range validation.IsDNS1123Subdomain(host) {
			return field.ErrorList{field.Invalid(path, addr, "host: "+msg)}
		}
	}
	return nil
}
