package config

import (
	"context"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/herald-lb/herald/framework"
)

// zoneArgs need a zone: the empty defaults are invalid, like an out-of-tree plugin whose
// Validate requires a field.
type zoneArgs struct {
	Zone string `json:"zone,omitempty"`
}

func (a *zoneArgs) Default() {}
func (a *zoneArgs) Validate(path *field.Path) field.ErrorList {
	if a.Zone == "" {
		return field.ErrorList{field.Required(path.Child("zone"), "the zone this plugin keeps IPs in")}
	}
	return nil
}

type zoneFilter struct{ zone string }

func (zoneFilter) Name() string { return "Zone" }
func (zoneFilter) Filter(context.Context, *framework.CycleState, *framework.Unit, *framework.NodeInfo) *framework.Status {
	return nil
}

func zoneOptions(t *testing.T, built *[]string) Options {
	t.Helper()
	reg := framework.Registry{}
	err := reg.Register("Zone", framework.Registration{
		NewArgs: func() framework.PluginArgs { return &zoneArgs{} },
		Factory: func(args framework.PluginArgs, _ framework.Handle) (framework.Plugin, error) {
			a := args.(*zoneArgs)
			*built = append(*built, a.Zone)
			return zoneFilter{zone: a.Zone}, nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	return Options{Registry: reg}
}

// TestDefaultArgsAreValidated: a plugin enabled without a pluginConfig entry runs with its
// default args, so those are validated too, with the path the entry would have; its factory
// is never called with args that failed. With the entry, the file is accepted.
func TestDefaultArgsAreValidated(t *testing.T) {
	const head = "apiVersion: herald.dev/v1alpha1\nkind: SpeakerConfiguration\nprofiles:\n- name: default\n  plugins:\n    filter:\n      enabled: [{name: Zone}]\n"
	var built []string
	_, err := Decode([]byte(head), zoneOptions(t, &built))
	if err == nil {
		t.Fatal("a profile enabling Zone without its required zone was accepted")
	}
	want := "profiles[0].pluginConfig[Zone].args.zone: Required value"
	if !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "no pluginConfig entry") {
		t.Errorf("error %q does not name %q and say why", err, want)
	}
	if len(built) != 0 {
		t.Errorf("the factory was called with invalid default args %q", built)
	}

	c, err := Decode([]byte(head+"  pluginConfig:\n  - {name: Zone, args: {zone: rack-1}}\n"), zoneOptions(t, &built))
	if err != nil {
		t.Fatalf("with a pluginConfig entry: %v", err)
	}
	specs, err := c.ProfileSpecs(zoneOptions(t, &built).Registry)
	if err != nil || specs[0].Args["Zone"].(*zoneArgs).Zone != "rack-1" {
		t.Fatalf("specs %+v, %v", specs, err)
	}
}
