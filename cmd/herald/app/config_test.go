package app

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/herald-lb/herald/config"
	"github.com/herald-lb/herald/framework"
	"github.com/herald-lb/herald/framework/examples/nodename"
)

func yamlStrict(s string, v any) error { return yaml.UnmarshalStrict([]byte(s), v) }

func execute(t *testing.T, opts []Option, args ...string) (string, error) {
	t.Helper()
	cmd := NewHeraldCommand(opts...)
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	cmd.SetArgs(args)
	err := cmd.Execute()
	return out.String(), err
}

func TestConfigDefaultValidatesAndRoundTrips(t *testing.T) {
	out, err := execute(t, nil, "config", "default")
	if err != nil {
		t.Fatalf("config default: %v\n%s", err, out)
	}
	file := filepath.Join(t.TempDir(), "default.yaml")
	if err := os.WriteFile(file, []byte(out), 0o644); err != nil {
		t.Fatal(err)
	}
	again, err := execute(t, nil, "config", "validate", file)
	if err != nil {
		t.Fatalf("config validate of the default: %v\n%s", err, again)
	}
	if again != out {
		t.Errorf("validate changed the default configuration:\n%s\n---\n%s", out, again)
	}
	var c config.SpeakerConfiguration
	if err := yamlStrict(out, &c); err != nil || c.Kind != config.Kind || len(c.Profiles) != 1 {
		t.Errorf("default output: %v %+v", err, c)
	}
}

func TestConfigValidateReportsEveryError(t *testing.T) {
	file := filepath.Join(t.TempDir(), "bad.yaml")
	bad := "apiVersion: herald.dev/v1alpha1\nkind: SpeakerConfiguration\nheartbeat: {renewInterval: 1m}\nprofiles:\n- name: default\n  plugins:\n    score:\n      enabled: [{name: Spread, weight: 0}]\n"
	if err := os.WriteFile(file, []byte(bad), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := execute(t, nil, "config", "validate", file)
	if err == nil {
		t.Fatalf("invalid file accepted:\n%s", out)
	}
	for _, want := range []string{
		`profiles[0].plugins.score.enabled[0].weight: Invalid value: 0: must be in 1..100`,
		`heartbeat.renewInterval: Invalid value: "1m0s": must be less than heartbeat.leaseDuration (2.5s)`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

func TestWithPlugin(t *testing.T) {
	opt := WithPlugin(nodename.Name, nodename.New, func() framework.PluginArgs { return &nodename.NodeNameArgs{} })
	o := &options{}
	opt(o)
	reg, err := o.Registry()
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := reg[nodename.Name]; !ok || len(reg) < 2 {
		t.Errorf("registry %v lacks the out-of-tree plugin or the in-tree ones", reg.Names())
	}
	// Registering a name twice, or an in-tree name, is reported, not ignored.
	twice := &options{}
	opt(twice)
	opt(twice)
	if _, err := twice.Registry(); err == nil || !strings.Contains(err.Error(), "already registered") {
		t.Errorf("double registration: err = %v", err)
	}
	clash := &options{}
	WithPlugin("NodeReady", nodename.New, nil)(clash)
	if _, err := clash.Registry(); err == nil || !strings.Contains(err.Error(), `"NodeReady" is already registered`) {
		t.Errorf("in-tree name clash: err = %v", err)
	}
}
