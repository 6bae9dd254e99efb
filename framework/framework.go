package framework

import (
	"fmt"
	"runtime"

	"github.com/go-logr/logr"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// Framework is one profile's plugins, instantiated and ready to run cycles. It is safe for
// concurrent use: each cycle has its own CycleState and buffers.
type Framework struct {
	profile     string
	preFilters  []PreFilterPlugin
	filters     []FilterPlugin
	scores      []weightedScore
	binds       []BindPlugin
	parallelism int
	metrics     *recorder
	// Names and weights in profile order, shared read-only by every cycle's record.
	filterNames []string
	scoreNames  []string
	weights     []int64
}

type weightedScore struct {
	plugin ScorePlugin
	ext    ScoreExtensions
	weight int64
}

// Option changes how NewFramework builds a Framework.
type Option func(*Framework)

// withParallelism sets how many goroutines evaluate nodes in one cycle (default GOMAXPROCS).
// The result does not depend on it, which the tests prove with it (export_test.go).
func withParallelism(n int) Option {
	return func(f *Framework) {
		if n > 0 {
			f.parallelism = n
		}
	}
}

// argsFor returns the args a plugin's factory gets: the profile's, or the plugin's defaults
// when the profile has none; defaulted and validated either way. Configuration loading validates them
// first with field paths; this is the backstop for callers that build a ProfileSpec by hand,
// so no factory ever sees args that failed their own Validate.
func argsFor(reg Registration, spec ProfileSpec, name string) (PluginArgs, error) {
	if reg.NewArgs == nil {
		return spec.Args[name], nil
	}
	args := spec.Args[name]
	if args == nil {
		args = reg.NewArgs()
	}
	// Idempotent: configuration loading has defaulted what it decoded, a hand-built spec may not have.
	args.Default()
	path := field.NewPath("profiles").Key(spec.Name).Child("pluginConfig").Key(name).Child("args")
	if errs := args.Validate(path); len(errs) > 0 {
		return nil, fmt.Errorf("profile %q: plugin %q: invalid args: %w", spec.Name, name, errs.ToAggregate())
	}
	return args, nil
}

// NewFramework instantiates the profile's plugins from the registry. A plugin listed at
// several extension points (a filter that also scores) is instantiated once. It fails when a
// plugin is unknown, does not implement an extension point it is listed at, has a weight out
// of 1..100, or its factory fails.
func NewFramework(registry Registry, spec ProfileSpec, h Handle, opts ...Option) (*Framework, error) {
	if h == nil {
		h = NewHandle(logr.Discard())
	}
	f := &Framework{profile: spec.Name, parallelism: runtime.GOMAXPROCS(0)}
	for _, o := range opts {
		o(f)
	}
	instances := map[string]Plugin{}
	get := func(name string) (Plugin, error) {
		if p, ok := instances[name]; ok {
			return p, nil
		}
		reg, ok := registry[name]
		if !ok {
			return nil, fmt.Errorf("profile %q: plugin %q is not registered (known: %v)", spec.Name, name, registry.Names())
		}
		args, err := argsFor(reg, spec, name)
		if err != nil {
			return nil, err
		}
		p, err := reg.Factory(args, namedHandle{Handle: h, name: name})
		if err != nil {
			return nil, fmt.Errorf("profile %q: plugin %q: %w", spec.Name, name, err)
		}
		if p == nil {
			return nil, fmt.Errorf("profile %q: plugin %q: factory returned nil", spec.Name, name)
		}
		instances[name] = p
		return p, nil
	}
	notAt := func(name, point string) error {
		return fmt.Errorf("profile %q: plugin %q does not implement %s", spec.Name, name, point)
	}
	for _, name := range spec.PreFilter {
		p, err := get(name)
		if err != nil {
			return nil, err
		}
		pf, ok := p.(PreFilterPlugin)
		if !ok {
			return nil, notAt(name, PointPreFilter)
		}
		f.preFilters = append(f.preFilters, pf)
	}
	for _, name := range spec.Filter {
		p, err := get(name)
		if err != nil {
			return nil, err
		}
		fp, ok := p.(FilterPlugin)
		if !ok {
			return nil, notAt(name, PointFilter)
		}
		f.filters = append(f.filters, fp)
	}
	for _, wp := range spec.Score {
		p, err := get(wp.Name)
		if err != nil {
			return nil, err
		}
		sp, ok := p.(ScorePlugin)
		if !ok {
			return nil, notAt(wp.Name, PointScore)
		}
		if wp.Weight < 1 || wp.Weight > 100 {
			return nil, fmt.Errorf("profile %q: score plugin %q: weight %d is not in 1..100", spec.Name, wp.Name, wp.Weight)
		}
		f.scores = append(f.scores, weightedScore{plugin: sp, ext: sp.ScoreExtensions(), weight: wp.Weight})
	}
	for _, name := range spec.Bind {
		p, err := get(name)
		if err != nil {
			return nil, err
		}
		bp, ok := p.(BindPlugin)
		if !ok {
			return nil, notAt(name, PointBind)
		}
		f.binds = append(f.binds, bp)
	}
	for _, p := range f.filters {
		f.filterNames = append(f.filterNames, p.Name())
	}
	for _, s := range f.scores {
		f.scoreNames = append(f.scoreNames, s.plugin.Name())
		f.weights = append(f.weights, s.weight)
	}
	f.metrics = newRecorder(f)
	return f, nil
}
