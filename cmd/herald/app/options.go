package app

import (
	"fmt"

	"github.com/herald-lb/herald/config"
	"github.com/herald-lb/herald/framework"
	"github.com/herald-lb/herald/plugins"
)

// Option changes how the herald command is built, for example to register out-of-tree plugins.
type Option func(*options)

// options collects what Options configure; subcommands read it.
type options struct {
	// outOfTree holds the plugins added with WithPlugin, merged into the in-tree registry
	// wherever a registry is needed (configuration validation, explain, the speaker).
	outOfTree framework.Registry
	// errs are problems found while applying Options (a plugin registered twice); every
	// subcommand that uses the registry reports them.
	errs []error
}

// WithPlugin registers an out-of-tree plugin, the way kube-scheduler's app.WithPlugin does:
// a third party implements the framework interfaces in its own module and builds its own
// binary with app.NewHeraldCommand(app.WithPlugin(...)). newArgs returns a zero value of the
// plugin's args type, or is nil for a plugin without args. The name may then be enabled in
// the configuration file's profiles like any in-tree plugin.
func WithPlugin(name string, factory framework.Factory, newArgs func() framework.PluginArgs) Option {
	return func(o *options) {
		if o.outOfTree == nil {
			o.outOfTree = framework.Registry{}
		}
		if err := o.outOfTree.Register(name, framework.Registration{Factory: factory, NewArgs: newArgs}); err != nil {
			o.errs = append(o.errs, fmt.Errorf("WithPlugin: %w", err))
		}
	}
}

// Registry returns the in-tree plugins merged with the out-of-tree ones; an out-of-tree
// plugin may not reuse an in-tree name.
func (o *options) Registry() (framework.Registry, error) {
	if len(o.errs) > 0 {
		return nil, o.errs[0]
	}
	reg := plugins.NewInTreeRegistry()
	if err := reg.Merge(o.outOfTree); err != nil {
		return nil, fmt.Errorf("out-of-tree plugins: %w", err)
	}
	return reg, nil
}

// ConfigOptions is what loading the configuration file needs: the merged registry and the
// default plugin set.
func (o *options) ConfigOptions() (config.Options, error) {
	reg, err := o.Registry()
	if err != nil {
		return config.Options{}, err
	}
	return config.Options{Registry: reg, DefaultPlugins: plugins.DefaultProfile()}, nil
}
