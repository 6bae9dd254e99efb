package outoftree_test

import (
	"bytes"
	"context"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/herald-lb/herald/cmd/herald/app"
	"github.com/herald-lb/herald/config"
	"github.com/herald-lb/herald/framework"
	"github.com/herald-lb/herald/plugins"
	"github.com/herald-lb/herald/test/outoftree/maintenance"
	"github.com/herald-lb/herald/test/testbin"
)

const header = "apiVersion: herald.dev/v1alpha1\nkind: SpeakerConfiguration\n"

// withMaintenance enables the out-of-tree filter after the default filters.
const withMaintenance = header + `profiles:
- name: default
  plugins:
    filter:
      enabled: [{name: Maintenance}]
  pluginConfig:
  - name: Maintenance
    args: {label: example.com/drain}
`

func run(t *testing.T, bin string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	var out, errOut bytes.Buffer
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err = cmd.Run()
	return out.String(), errOut.String(), err
}

func writeFile(t *testing.T, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "speaker.yaml")
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestCustomBinaryKnowsThePlugin(t *testing.T) {
	custom := testbin.Build(t, "./test/outoftree/cmd/custom-herald")
	file := writeFile(t, withMaintenance)

	out, errOut, err := run(t, custom, "config", "validate", file)
	if err != nil {
		t.Fatalf("custom-herald config validate: %v\n%s", err, errOut)
	}
	var got config.SpeakerConfiguration
	if err := yaml.UnmarshalStrict([]byte(out), &got); err != nil {
		t.Fatalf("output is not a configuration: %v\n%s", err, out)
	}
	filters := got.Profiles[0].Plugins.Filter.Enabled
	if len(filters) < 2 || filters[len(filters)-1].Name != maintenance.Name || filters[0].Name == maintenance.Name {
		t.Errorf("filters = %+v, want the defaults followed by Maintenance", filters)
	}
	var args string
	for _, pc := range got.Profiles[0].PluginConfig {
		if pc.Name == maintenance.Name {
			args = string(pc.Args)
		}
	}
	if args != `{"label":"example.com/drain"}` {
		t.Errorf("Maintenance args = %s", args)
	}

	// The stock command does not know the plugin: WithPlugin is what makes it valid. (Run
	// in process: building a second binary of the whole app costs minutes on a busy machine.)
	stock := app.NewHeraldCommand()
	var stockOut bytes.Buffer
	stock.SetOut(&stockOut)
	stock.SetErr(&stockOut)
	stock.SetArgs([]string{"config", "validate", file})
	if err := stock.Execute(); err == nil || !strings.Contains(stockOut.String(), `profiles[0].plugins.filter.enabled[0].name: Unsupported value: "Maintenance"`) {
		t.Errorf("stock herald: err %v, output:\n%s", err, stockOut.String())
	}

	// The plugin's args are decoded strictly and validated with their field paths.
	for content, want := range map[string]string{
		strings.Replace(withMaintenance, "{label: example.com/drain}", "{label: 'not a label!'}", 1):    `profiles[0].pluginConfig[0].args.label: Invalid value: "not a label!"`,
		strings.Replace(withMaintenance, "{label: example.com/drain}", "{lable: example.com/drain}", 1): `unknown field "lable"`,
	} {
		_, errOut, err := run(t, custom, "config", "validate", writeFile(t, content))
		if err == nil || !strings.Contains(errOut, want) {
			t.Errorf("err %v, stderr does not contain %q:\n%s", err, want, errOut)
		}
	}
}

func TestPluginVerdictShowsInTheDiagnosis(t *testing.T) {
	reg := plugins.NewInTreeRegistry()
	if err := reg.Register(maintenance.Name, framework.Registration{Factory: maintenance.New, NewArgs: maintenance.NewArgs}); err != nil {
		t.Fatal(err)
	}
	opts := config.Options{Registry: reg, DefaultPlugins: plugins.DefaultProfile()}
	c, err := config.Decode([]byte(header+`profiles:
- name: default
  plugins:
    preFilter:
      disabled: [{name: "*"}]
    filter:
      disabled: [{name: "*"}]
      enabled: [{name: NodeReady}, {name: Maintenance}]
    score:
      disabled: [{name: "*"}]
`), opts)
	if err != nil {
		t.Fatal(err)
	}
	specs, err := c.ProfileSpecs(reg)
	if err != nil {
		t.Fatal(err)
	}
	f, err := framework.NewFramework(reg, specs[0], nil)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	node := func(name string, labels map[string]string) *framework.NodeInfo {
		return &framework.NodeInfo{Name: name, Labels: labels, Ready: framework.ConditionTrue,
			Speaker: &framework.SpeakerInfo{RenewTime: now, LeaseDuration: 15 * time.Second}}
	}
	snap := framework.NewSnapshot(now, []*framework.NodeInfo{
		node("node-a", map[string]string{maintenance.DefaultLabel: "true"}),
		node("node-b", map[string]string{maintenance.DefaultLabel: "false"}),
		node("node-c", nil),
	})
	res := f.Schedule(context.Background(), snap, &framework.Unit{IP: netip.MustParseAddr("192.0.2.10"), Mode: framework.ModeBGP})
	if res.Err != nil {
		t.Fatal(res.Err)
	}
	d := res.Diagnosis()
	rej := d.Nodes[0].Rejection
	if rej == nil || rej.Plugin != maintenance.Name || rej.Code != "Unschedulable" || rej.Detail != "label example.com/maintenance=true" {
		t.Fatalf("node-a rejection = %+v", rej)
	}
	if d.Nodes[1].Rejection != nil || d.Nodes[2].Rejection != nil {
		t.Errorf("healthy nodes rejected: %+v %+v", d.Nodes[1].Rejection, d.Nodes[2].Rejection)
	}
	if want := "2/3 nodes can announce 192.0.2.10: 1 node(s) in maintenance; selected node-b, node-c"; d.Summary != want {
		t.Errorf("Summary = %q, want %q", d.Summary, want)
	}
}
