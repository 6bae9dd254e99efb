package outoftree_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/herald-lb/herald/config"
	"github.com/herald-lb/herald/plugins"
)

const guidePath = "../../docs/writing-a-plugin.md"

// guideBlock is a fenced block of the guide that a marker comment names: `<!-- file: path -->`
// for the files a reader creates, `<!-- output: what -->` for output the guide quotes.
var guideBlock = regexp.MustCompile("(?s)<!-- (file|output): ([^>]+?) -->\n```[a-z]*\n(.*?)```\n")

func guideBlocks(t *testing.T) (files, outputs map[string]string) {
	t.Helper()
	md, err := os.ReadFile(guidePath)
	if err != nil {
		t.Fatal(err)
	}
	files, outputs = map[string]string{}, map[string]string{}
	for _, m := range guideBlock.FindAllStringSubmatch(string(md), -1) {
		if m[1] == "file" {
			files[m[2]] = m[3]
		} else {
			outputs[m[2]] = m[3]
		}
	}
	for _, name := range []string{"zones/zones.go", "zones/zones_test.go", "cmd/herald/main.go", "go.mod", "speaker.yaml", "values.yaml"} {
		if files[name] == "" {
			t.Fatalf("%s has no block marked <!-- file: %s -->", guidePath, name)
		}
	}
	return files, outputs
}

// TestGuidePluginFitsOnOnePage holds the guide to its promise of a complete plugin in one
// file of under 60 lines.
func TestGuidePluginFitsOnOnePage(t *testing.T) {
	files, _ := guideBlocks(t)
	if n := strings.Count(files["zones/zones.go"], "\n"); n >= 60 {
		t.Errorf("the guide's plugin has %d lines, want under 60", n)
	}
}

// TestGuide follows docs/writing-a-plugin.md as a reader would: its files in a module of
// their own that requires Herald through the guide's replace line, `go mod tidy`, the guide's
// test, the custom binary, `config validate` of the guide's configuration with and without
// its pluginConfig entry, and the chart rendered with the guide's values.
func TestGuide(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a custom herald binary")
	}
	files, outputs := guideBlocks(t)
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	mod := t.TempDir()
	for name, content := range files {
		if name == "go.mod" {
			if !strings.Contains(content, "=> ../herald\n") {
				t.Fatalf("the guide's go.mod has no replace line to ../herald:\n%s", content)
			}
			content = strings.Replace(content, "=> ../herald\n", "=> "+root+"\n", 1)
		}
		writeIn(t, mod, name, content)
	}
	// Herald's go.sum holds the checksums of the modules Herald builds with; tidy may still
	// need go.mod files of modules in the graph that Herald never downloads (a fresh module
	// cache has none of them), so it alone may reach the module proxy. The rest runs offline.
	sum, err := os.ReadFile(filepath.Join(root, "go.sum"))
	if err != nil {
		t.Fatal(err)
	}
	writeIn(t, mod, "go.sum", string(sum))
	writeIn(t, mod, "cmd/herald/readme.go", readmeSnippets(t, root))
	goCmdOnline(t, mod, "mod", "tidy")
	goCmd(t, mod, "test", "./...")
	goCmd(t, mod, "build", "-o", "bin/herald", "./cmd/herald")
	herald := filepath.Join(mod, "bin", "herald")

	out, errOut, err := run(t, herald, "config", "validate", filepath.Join(mod, "speaker.yaml"))
	if err != nil {
		t.Fatalf("config validate of the guide's speaker.yaml: %v\n%s", err, errOut)
	}
	checkZonesLast(t, out)

	// Without its pluginConfig entry the plugin's defaults lack zones: the path the guide quotes.
	bare, _, ok := strings.Cut(files["speaker.yaml"], "  pluginConfig:")
	if !ok {
		t.Fatal("the guide's speaker.yaml has no pluginConfig")
	}
	want := strings.TrimSpace(outputs["config validate without pluginConfig"])
	if want == "" {
		t.Fatal("the guide quotes no output of config validate without pluginConfig")
	}
	_, errOut, err = run(t, herald, "config", "validate", writeIn(t, mod, "bare.yaml", bare))
	if err == nil || !strings.Contains(errOut, want) {
		t.Errorf("config validate without pluginConfig: err %v, stderr does not contain the guide's %q:\n%s", err, want, errOut)
	}

	checkChart(t, root, herald, writeIn(t, mod, "values.yaml", files["values.yaml"]))
}

// checkZonesLast checks that a printed configuration's first profile runs the default
// filters followed by Zones, with the guide's zones.
func checkZonesLast(t *testing.T, printed string) {
	t.Helper()
	var c config.SpeakerConfiguration
	if err := yaml.UnmarshalStrict([]byte(printed), &c); err != nil {
		t.Fatalf("not a configuration: %v\n%s", err, printed)
	}
	filters := c.Profiles[0].Plugins.Filter.Enabled
	if len(filters) < 2 || filters[len(filters)-1].Name != "Zones" {
		t.Errorf("filters %+v, want the defaults followed by Zones", filters)
	}
	for _, pc := range c.Profiles[0].PluginConfig {
		if pc.Name == "Zones" && string(pc.Args) != `{"label":"topology.kubernetes.io/zone","zones":["rack-1","rack-2"]}` {
			t.Errorf("Zones args %s", pc.Args)
		}
	}
}

// checkChart renders Herald's chart with the guide's values: the speaker runs the guide's
// image, and the configuration the chart writes validates with the custom binary.
func checkChart(t *testing.T, root, herald, values string) {
	t.Helper()
	helm, err := exec.LookPath("helm")
	if err != nil {
		home, _ := os.UserHomeDir()
		if helm = filepath.Join(home, ".cache", "herald", "bin", "helm"); !fileExists(helm) {
			t.Skip("no helm (test/tools/install.sh installs it): the chart part of the guide is not checked")
		}
	}
	rendered, errOut, err := run(t, helm, "template", "herald", filepath.Join(root, "deploy", "helm", "herald"), "-n", "herald-system", "-f", values)
	if err != nil {
		t.Fatalf("helm template: %v\n%s", err, errOut)
	}
	if !strings.Contains(rendered, "image: registry.example.com/herald-zones:0.1.0") {
		t.Errorf("the chart does not run the guide's image:\n%s", rendered)
	}
	var speakerConfig string
	for _, doc := range strings.Split(rendered, "\n---\n") {
		var cm struct {
			Kind string            `json:"kind"`
			Data map[string]string `json:"data"`
		}
		if yaml.Unmarshal([]byte(doc), &cm) == nil && cm.Kind == "ConfigMap" && strings.Contains(cm.Data["config.yaml"], "SpeakerConfiguration") {
			speakerConfig = cm.Data["config.yaml"]
		}
	}
	if speakerConfig == "" {
		t.Fatalf("no speaker ConfigMap in the chart:\n%s", rendered)
	}
	out, errOut, err := run(t, herald, "config", "validate", writeIn(t, t.TempDir(), "config.yaml", speakerConfig))
	if err != nil {
		t.Fatalf("the chart's speaker configuration: %v\n%s\n%s", err, errOut, speakerConfig)
	}
	checkZonesLast(t, out)
}

func writeIn(t *testing.T, dir, name, content string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// goCmd runs the go command in dir offline: everything the guide's module needs is Herald's
// own dependencies, already in the module cache.
func goCmd(t *testing.T, dir string, args ...string) {
	t.Helper()
	goCmdEnv(t, dir, []string{"GOPROXY=off"}, args...)
}

// goCmdOnline is goCmd with the caller's module proxy.
func goCmdOnline(t *testing.T, dir string, args ...string) {
	t.Helper()
	goCmdEnv(t, dir, nil, args...)
}

func goCmdEnv(t *testing.T, dir string, env []string, args ...string) {
	t.Helper()
	cmd := exec.Command("go", args...)
	cmd.Dir = dir
	cmd.Env = append(append(os.Environ(), "GOFLAGS=-mod=mod", "GOWORK=off", "CGO_ENABLED=0"), env...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("go %s in the guide's module: %v\n%s", strings.Join(args, " "), err, out.String())
	}
}

// readmeSnippets returns a Go file of the guide's main package that compiles every inline
// `app.…` call of the README, with the README's argument names declared as the types
// app.WithPlugin takes, so the README cannot drift from the API the guide uses.
func readmeSnippets(t *testing.T, root string) string {
	t.Helper()
	md, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	calls := regexp.MustCompile("`(app\\.[^`]+)`").FindAllStringSubmatch(string(md), -1)
	if len(calls) == 0 {
		t.Fatal("README.md quotes no app.… call")
	}
	var b strings.Builder
	b.WriteString("package main\n\nimport (\n\t\"github.com/herald-lb/herald/cmd/herald/app\"\n\t\"github.com/herald-lb/herald/framework\"\n)\n\n")
	b.WriteString("func readme(name string, factory framework.Factory, newArgs func() framework.PluginArgs) {\n")
	for _, c := range calls {
		b.WriteString("\t_ = " + c[1] + "\n")
	}
	b.WriteString("}\n\nvar _ = readme\n")
	return b.String()
}

// TestREADMEConfigurationValidates keeps the README's example configuration loadable.
func TestREADMEConfigurationValidates(t *testing.T) {
	md, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	blocks := regexp.MustCompile("(?s)```yaml\n(.*?)```").FindAllStringSubmatch(string(md), -1)
	if len(blocks) == 0 {
		t.Fatal("README.md has no yaml block")
	}
	opts := config.Options{Registry: plugins.NewInTreeRegistry(), DefaultPlugins: plugins.DefaultProfile()}
	for _, b := range blocks {
		if _, err := config.Decode([]byte(b[1]), opts); err != nil {
			t.Errorf("README.md configuration: %v\n%s", err, b[1])
		}
	}
}
