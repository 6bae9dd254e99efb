package config

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/herald-lb/herald/framework"
	"github.com/herald-lb/herald/framework/examples/labelscore"
	"github.com/herald-lb/herald/framework/examples/nodename"
)

type extraFilter struct{}

func (extraFilter) Name() string { return "Extra" }
func (extraFilter) Filter(context.Context, *framework.CycleState, *framework.Unit, *framework.NodeInfo) *framework.Status {
	return nil
}

func testOptions(t *testing.T) Options {
	t.Helper()
	reg := framework.Registry{}
	for name, r := range map[string]framework.Registration{
		nodename.Name:   framework.Registration{Factory: nodename.New, NewArgs: nodename.NewArgs},
		labelscore.Name: framework.Registration{Factory: labelscore.New, NewArgs: labelscore.NewArgs},
		"Extra": {Factory: func(framework.PluginArgs, framework.Handle) (framework.Plugin, error) {
			return extraFilter{}, nil
		}},
	} {
		if err := reg.Register(name, r); err != nil {
			t.Fatal(err)
		}
	}
	return Options{
		Registry: reg,
		DefaultPlugins: framework.ProfileSpec{
			Filter: []string{nodename.Name},
			Score:  []framework.WeightedPlugin{{Name: labelscore.Name, Weight: 2}},
		},
	}
}

func TestInvalidFilesReportTheirFieldPaths(t *testing.T) {
	tests := map[string][]string{
		"unknown-field.yaml":            {`unknown field "profilez"`},
		"unknown-nested-field.yaml":     {`unknown field "profiles[0].plugins.filterz"`},
		"duplicate-yaml-field.yaml":     {`metricsBindAddress`},
		"wrong-type.yaml":               {`profiles`},
		"bad-apiversion.yaml":           {`apiVersion: Unsupported value: "herald.dev/v1": supported values: "herald.dev/v1alpha1"`},
		"bad-kind.yaml":                 {`kind: Unsupported value: "KubeSchedulerConfiguration"`},
		"weight-zero.yaml":              {`profiles[1].plugins.score.enabled[0].weight: Invalid value: 0: must be in 1..100`},
		"weight-on-filter.yaml":         {`profiles[0].plugins.filter.enabled[0].weight: Forbidden: only score plugins have a weight`},
		"duplicate-profile-name.yaml":   {`profiles[1].name: Duplicate value: "default"`},
		"duplicate-class.yaml":          {`profiles[1].loadBalancerClass: Duplicate value: ""`},
		"unknown-plugin.yaml":           {`profiles[0].plugins.filter.enabled[0].name: Unsupported value: "Nope": supported values: "Extra", "LabelScore", "NodeName"`},
		"unknown-disabled.yaml":         {`profiles[0].plugins.filter.disabled[0].name: Unsupported value: "Nope": supported values: "*", "Extra", "LabelScore", "NodeName"`},
		"wrong-stage.yaml":              {`profiles[0].plugins.score.enabled[0].name: Invalid value: "NodeName": plugin does not implement Score`},
		"pluginconfig-not-enabled.yaml": {`profiles[0].pluginConfig[0].name: Invalid value: "NodeName": plugin is not enabled in this profile`},
		"args-unknown-field.yaml":       {`profiles[0].pluginConfig[0].args: Invalid value:`, `unknown field "exclude"`},
		"args-invalid.yaml":             {`profiles[0].pluginConfig[0].args.excluded[1]: Duplicate value: "node-a"`},
		"bad-duration.yaml":             {`heartbeat.leaseDuration: Invalid value: "5 minutes": time: unknown unit`},
		"renew-ge-lease.yaml":           {`heartbeat.renewInterval: Invalid value: "20s": must be less than heartbeat.leaseDuration (15s)`},
		"negative-drain.yaml":           {`draining.timeout: Invalid value: "-1s": must be greater than 0`},
		"custom-announcer-no-path.yaml": {`announcers[0].path: Required value: custom announcers need a path`},
		"bad-sha.yaml":                  {`announcers[0].sha256: Invalid value: "ABCDEF": must be 64 lower-case hex digits`},
		"bad-idle-timeout.yaml":         {`announcers[0].idleTimeout: Invalid value: "-1m0s": must not be negative`, `announcers[1].idleTimeout: Invalid value: "soon"`},
		"bad-fast-path.yaml": {
			`fastPath.bindAddress: Invalid value: "node-1:0": needs a port other than 0`,
			`fastPath.bindAddress: Invalid value: "node-1:0": host must be an IP address or empty`,
			`fastPath.probeInterval: Invalid value: "1ms": must be at least 10ms`,
		},
		"bad-address.yaml":      {`metricsBindAddress: Invalid value: "7472": must be host:port`},
		"bad-logging.yaml":      {`logging.format: Invalid value: "xml": Unsupported log format`},
		"bad-profile-name.yaml": {`profiles[0].name: Invalid value: "Gold_Profile"`},
		"many-errors.yaml": {
			`profiles[0].plugins.score.enabled[0].weight: Invalid value: 101: must be in 1..100`,
			`profiles[0].plugins.score.enabled[1].name: Unsupported value: "Nope"`,
			`heartbeat.renewInterval: Invalid value: "1 hour"`,
			`heartbeat.namespace: Invalid value: "Not_A_Namespace"`,
			`healthBindAddress: Invalid value: "localhost:99999": port must be a number in 0..65535`,
		},
	}
	files, err := filepath.Glob("testdata/invalid/*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != len(tests) {
		t.Errorf("%d files in testdata/invalid, %d in the table", len(files), len(tests))
	}
	opts := testOptions(t)
	for _, file := range files {
		name := filepath.Base(file)
		t.Run(name, func(t *testing.T) {
			want, ok := tests[name]
			if !ok {
				t.Fatalf("no expectation for %s", name)
			}
			_, err := Load(file, opts)
			if err == nil {
				t.Fatal("accepted")
			}
			for _, w := range want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error does not contain %q:\n%v", w, err)
				}
			}
			if name == "many-errors.yaml" {
				if lines := strings.Count(err.Error(), "\n") + 1; lines != len(want) {
					t.Errorf("%d error lines, want every one of the %d problems on its own line", lines, len(want))
				}
			}
		})
	}
}

func TestDefaultRoundTrips(t *testing.T) {
	opts := testOptions(t)
	def, err := Default(opts)
	if err != nil {
		t.Fatal(err)
	}
	data, err := Marshal(def)
	if err != nil {
		t.Fatal(err)
	}
	back, err := Decode(data, opts)
	if err != nil {
		t.Fatalf("default configuration does not load:\n%s\n%v", data, err)
	}
	if !reflect.DeepEqual(def, back) {
		again, _ := Marshal(back)
		t.Fatalf("round trip changed the configuration:\n%s\n---\n%s", data, again)
	}
	// And the defaults are what the documentation promises.
	p := def.Profiles[0]
	if p.Name != DefaultProfileName || p.LoadBalancerClass != "" || !*def.HandleNoClass {
		t.Errorf("default profile %q class %q handleNoClass %v", p.Name, p.LoadBalancerClass, *def.HandleNoClass)
	}
	if got := p.Plugins.Score.Enabled; len(got) != 1 || got[0].Name != labelscore.Name || *got[0].Weight != 2 {
		t.Errorf("default score plugins = %+v", got)
	}
	if def.Heartbeat.LeaseDuration.Duration != DefaultLeaseDuration || def.Heartbeat.RenewInterval.Duration != DefaultRenewInterval {
		t.Errorf("heartbeat = %+v", def.Heartbeat)
	}
	if len(p.PluginConfig) != 2 || !strings.Contains(string(p.PluginConfig[1].Args), `"label":"herald.dev/score"`) {
		t.Errorf("pluginConfig is not completed with defaulted args: %+v", p.PluginConfig)
	}
	// Every built-in announcer, each started on demand (issue 14: BGPPeers get a BGP
	// announcer without editing the configuration).
	var names []string
	for _, a := range def.Announcers {
		names = append(names, a.Name)
		if a.IdleTimeout == nil || a.IdleTimeout.Duration != DefaultAnnouncerIdleTimeout {
			t.Errorf("announcer %s idleTimeout = %v, want %s", a.Name, a.IdleTimeout, DefaultAnnouncerIdleTimeout)
		}
	}
	if !reflect.DeepEqual(names, []string{"arp", "ndp", "bgp"}) {
		t.Errorf("default announcers = %v, want arp, ndp, bgp", names)
	}
}

// An announcer's idleTimeout of 0 is kept (always running), not replaced by the default.
func TestAnnouncerIdleTimeoutZeroIsKept(t *testing.T) {
	c, err := Decode([]byte("apiVersion: herald.dev/v1alpha1\nkind: SpeakerConfiguration\nannouncers: [{name: arp, idleTimeout: 0s}, {name: ndp}]\n"), testOptions(t))
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Announcers[0].IdleTimeout; got == nil || got.Duration != 0 {
		t.Errorf("arp idleTimeout = %v, want 0s", got)
	}
	if got := c.Announcers[1].IdleTimeout; got == nil || got.Duration != DefaultAnnouncerIdleTimeout {
		t.Errorf("ndp idleTimeout = %v, want the default", got)
	}
}

func TestMergeWithDefaults(t *testing.T) {
	opts := testOptions(t)
	c, err := Load("testdata/valid/custom.yaml", opts)
	if err != nil {
		t.Fatal(err)
	}
	specs, err := c.ProfileSpecs(opts.Registry)
	if err != nil {
		t.Fatal(err)
	}
	want := []framework.ProfileSpec{
		{
			Name:   "default",
			Filter: []string{nodename.Name, "Extra"},
			Score:  []framework.WeightedPlugin{{Name: labelscore.Name, Weight: 7}},
			Args: map[string]framework.PluginArgs{
				nodename.Name:   &nodename.NodeNameArgs{Excluded: []string{"node-b"}},
				labelscore.Name: &labelscore.LabelScoreArgs{Label: labelscore.DefaultLabel},
			},
		},
		{Name: "gold", Args: map[string]framework.PluginArgs{}},
	}
	if !reflect.DeepEqual(specs, want) {
		t.Errorf("ProfileSpecs =\n%#v\nwant\n%#v", specs, want)
	}
	// The completed file means the same when loaded again, whatever the defaults.
	data, _ := Marshal(c)
	again, err := Decode(data, Options{Registry: opts.Registry})
	if err != nil || !reflect.DeepEqual(again, c) {
		t.Errorf("completed configuration changes without defaults (err %v)", err)
	}
	if p, ok := c.ProfileFor("example.com/gold"); !ok || p.Name != "gold" {
		t.Errorf("ProfileFor(gold) = %v %v", p, ok)
	}
	if _, ok := c.ProfileFor("example.com/none"); ok {
		t.Error("ProfileFor(unknown class) found a profile")
	}
	for _, spec := range specs {
		if _, err := framework.NewFramework(opts.Registry, spec, nil); err != nil {
			t.Errorf("profile %q does not build: %v", spec.Name, err)
		}
	}
}

func TestHandleNoClass(t *testing.T) {
	opts := testOptions(t)
	c, err := Decode([]byte("apiVersion: herald.dev/v1alpha1\nkind: SpeakerConfiguration\nhandleNoClass: false\n"), opts)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := c.ProfileFor(""); ok {
		t.Error("handleNoClass: false still handles Services without a class")
	}
}

func TestLoadMissingFile(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "nope.yaml"), testOptions(t))
	if err == nil || !os.IsNotExist(unwrapAll(err)) {
		t.Errorf("err = %v", err)
	}
}

func unwrapAll(err error) error {
	for {
		u, ok := err.(interface{ Unwrap() error })
		if !ok {
			return err
		}
		err = u.Unwrap()
	}
}
