package config

import (
	"errors"
	"fmt"
	"os"

	"k8s.io/apimachinery/pkg/util/validation/field"
	sigsjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"

	"github.com/herald-lb/herald/framework"
)

// Load reads the configuration file at path; see Decode.
func Load(path string, opts Options) (*SpeakerConfiguration, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading configuration: %w", err)
	}
	c, err := Decode(data, opts)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

// Decode decodes a YAML or JSON configuration strictly (unknown and duplicate fields are
// errors), applies defaults, validates it, and returns it with every profile's plugin sets
// merged with the defaults and every plugin's args defaulted. The error lists every problem,
// one per line, each with its field path.
func Decode(data []byte, opts Options) (*SpeakerConfiguration, error) {
	js, err := yaml.YAMLToJSONStrict(data)
	if err != nil {
		return nil, fmt.Errorf("parsing YAML: %w", err)
	}
	c := &SpeakerConfiguration{}
	strict, err := sigsjson.UnmarshalStrict(js, c)
	if err != nil {
		return nil, fmt.Errorf("decoding: %w", err)
	}
	if len(strict) > 0 {
		return nil, joinErrors(strict)
	}
	if err := Complete(c, opts); err != nil {
		return nil, err
	}
	return c, nil
}

// Complete applies defaults, validates, and merges the plugin sets, as Decode does after
// decoding. The error lists every problem with its field path.
func Complete(c *SpeakerConfiguration, opts Options) error {
	setScalarDefaults(c)
	if errs := Validate(c, opts); len(errs) > 0 {
		return AsError(errs)
	}
	for i := range c.Profiles {
		completePlugins(&c.Profiles[i], opts)
	}
	return nil
}

// AsError joins the field errors into one error that prints one problem per line.
func AsError(errs field.ErrorList) error {
	out := make([]error, len(errs))
	for i, e := range errs {
		out[i] = e
	}
	return joinErrors(out)
}

func joinErrors(errs []error) error { return errors.Join(errs...) }

// Marshal renders the configuration as YAML.
func Marshal(c *SpeakerConfiguration) ([]byte, error) {
	return yaml.Marshal(c)
}

// ProfileSpecs converts the completed configuration's profiles into the framework's
// ProfileSpecs, decoding each plugin's args into its typed args.
func (c *SpeakerConfiguration) ProfileSpecs(reg framework.Registry) ([]framework.ProfileSpec, error) {
	specs := make([]framework.ProfileSpec, 0, len(c.Profiles))
	for _, p := range c.Profiles {
		spec := framework.ProfileSpec{Name: p.Name, Args: map[string]framework.PluginArgs{}}
		for _, e := range p.Plugins.PreFilter.Enabled {
			spec.PreFilter = append(spec.PreFilter, e.Name)
		}
		for _, e := range p.Plugins.Filter.Enabled {
			spec.Filter = append(spec.Filter, e.Name)
		}
		for _, e := range p.Plugins.Score.Enabled {
			w := int64(1)
			if e.Weight != nil {
				w = *e.Weight
			}
			spec.Score = append(spec.Score, framework.WeightedPlugin{Name: e.Name, Weight: w})
		}
		for _, e := range p.Plugins.Bind.Enabled {
			spec.Bind = append(spec.Bind, e.Name)
		}
		for _, pc := range p.PluginConfig {
			args, err := decodeArgs(reg, pc.Name, pc.Args)
			if err != nil {
				return nil, fmt.Errorf("profile %q: pluginConfig %q: %w", p.Name, pc.Name, err)
			}
			if args != nil {
				spec.Args[pc.Name] = args
			}
		}
		specs = append(specs, spec)
	}
	return specs, nil
}

// ProfileFor returns the profile that schedules Services of the load-balancer class (""
// for Services without one), or false when this speaker does not handle the class.
func (c *SpeakerConfiguration) ProfileFor(class string) (*Profile, bool) {
	if class == "" && c.HandleNoClass != nil && !*c.HandleNoClass {
		return nil, false
	}
	for i := range c.Profiles {
		if c.Profiles[i].LoadBalancerClass == class {
			return &c.Profiles[i], true
		}
	}
	return nil, false
}
