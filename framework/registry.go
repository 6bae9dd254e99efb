package framework

import (
	"fmt"
	"sort"

	"k8s.io/apimachinery/pkg/util/validation/field"
)

// PluginArgs is a plugin's typed arguments, decoded strictly from the configuration file's
// pluginConfig[].args. Types are named <PluginName>Args.
type PluginArgs interface {
	// Default fills unset fields.
	Default()
	// Validate returns every problem, each with its field path under path.
	Validate(path *field.Path) field.ErrorList
}

// Factory builds a plugin from its args. The contract: for a plugin whose Registration has
// NewArgs, args is never nil: it is a value NewArgs returned, decoded from the profile's
// pluginConfig entry or left empty when there is none, then defaulted (Default) and validated
// (Validate) — a factory never needs a nil check or its own defaults. For a plugin without
// NewArgs, args is nil.
type Factory func(args PluginArgs, h Handle) (Plugin, error)

// Registration is a registry entry.
type Registration struct {
	Factory Factory
	// NewArgs returns a zero args value to decode into; nil for plugins that take no args.
	NewArgs func() PluginArgs
}

// Registry maps plugin names to their registrations.
type Registry map[string]Registration

// Register adds a plugin; registering a name twice is an error.
func (r Registry) Register(name string, reg Registration) error {
	if _, ok := r[name]; ok {
		return fmt.Errorf("plugin %q is already registered", name)
	}
	if reg.Factory == nil {
		return fmt.Errorf("plugin %q: nil factory", name)
	}
	r[name] = reg
	return nil
}

// Merge adds every plugin of other; a name present in both is an error.
func (r Registry) Merge(other Registry) error {
	for _, name := range other.Names() {
		if err := r.Register(name, other[name]); err != nil {
			return err
		}
	}
	return nil
}

// Names returns the registered names, sorted.
func (r Registry) Names() []string {
	names := make([]string, 0, len(r))
	for n := range r {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}
