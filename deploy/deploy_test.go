// Package deploy_test checks Herald's deployment artefacts: the Helm chart in
// deploy/helm/herald, the plain manifests in deploy/kustomize (generated from the chart) and
// the Dockerfile. Plain tests check what needs no tool: the chart's CRDs are deploy/crds byte
// for byte, and the image builds every binary the chart runs. Integration tests
// (-tags integration) render the chart with helm and kustomize, apply everything to a real
// kube-apiserver with RBAC on, and run the controller and a speaker as the chart's
// ServiceAccounts, recording every API call to compare with the chart's RBAC rules.
package deploy_test

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

// TestChartCRDsAreDeployCRDs keeps deploy/crds the one source of truth: Helm installs CRDs
// only from a chart's crds/ directory, so the chart carries a copy, which must not drift.
func TestChartCRDsAreDeployCRDs(t *testing.T) {
	want := yamlFiles(t, "crds")
	got := yamlFiles(t, "helm/herald/crds")
	if !slices.Equal(sortedKeys(want), sortedKeys(got)) {
		t.Fatalf("deploy/helm/herald/crds has %v, deploy/crds has %v: copy deploy/crds/*.yaml into the chart", sortedKeys(got), sortedKeys(want))
	}
	for name, data := range want {
		if !bytes.Equal(data, got[name]) {
			t.Errorf("deploy/helm/herald/crds/%s differs from deploy/crds/%s: copy it again after `make generate`", name, name)
		}
	}
}

// TestDockerfileBuildsEveryBinaryTheChartRuns checks that the image holds every executable the
// chart starts (the containers' command) or the speaker starts (herald-announcer-<name> for
// every announcer the chart may configure), and that it builds every command in cmd/.
func TestDockerfileBuildsEveryBinaryTheChartRuns(t *testing.T) {
	built := dockerfileBuilds(t)
	cmds, err := filepath.Glob("../cmd/*/main.go")
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range cmds {
		name := filepath.Base(filepath.Dir(m))
		if !built[name] {
			t.Errorf("the Dockerfile does not build ./cmd/%s", name)
		}
	}
	if len(cmds) == 0 {
		t.Fatal("found no commands under cmd/")
	}
	needed := map[string]string{}
	tmpls, _ := filepath.Glob("helm/herald/templates/*.yaml")
	command := regexp.MustCompile(`/usr/local/bin/([a-z0-9-]+)`)
	for _, f := range tmpls {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range command.FindAllStringSubmatch(string(data), -1) {
			needed[m[1]] = f
		}
	}
	if needed["herald"] == "" {
		t.Fatal("no template runs /usr/local/bin/herald; the check below would prove nothing")
	}
	// Every announcer the speaker knows may be named in speaker.announcers.
	for _, a := range []string{"arp", "ndp", "bgp"} {
		needed["herald-announcer-"+a] = "speaker.announcers"
	}
	var values struct {
		Speaker struct {
			Announcers []string `json:"announcers"`
		} `json:"speaker"`
	}
	data, err := os.ReadFile("helm/herald/values.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(data, &values); err != nil {
		t.Fatalf("values.yaml: %v", err)
	}
	for _, a := range values.Speaker.Announcers {
		needed["herald-announcer-"+a] = "values.yaml speaker.announcers"
	}
	for bin, where := range needed {
		if !built[bin] {
			t.Errorf("%s runs %s, which the Dockerfile does not build", where, bin)
		}
	}
	if !strings.Contains(readFile(t, "../Dockerfile"), "COPY --from=build /out/ /usr/local/bin/") {
		t.Error("the Dockerfile does not install the binaries into /usr/local/bin, where the chart runs them")
	}
}

// dockerfileBuilds returns the commands the Dockerfile's go build line builds (./cmd/<name>).
func dockerfileBuilds(t *testing.T) map[string]bool {
	t.Helper()
	df := readFile(t, "../Dockerfile")
	// Join continuation lines so the build RUN is one logical line.
	df = strings.ReplaceAll(df, "\\\n", " ")
	built := map[string]bool{}
	for _, line := range strings.Split(df, "\n") {
		if !strings.HasPrefix(line, "RUN ") || !strings.Contains(line, "go build") {
			continue
		}
		for _, f := range strings.Fields(line[strings.Index(line, "go build"):]) {
			if name, ok := strings.CutPrefix(f, "./cmd/"); ok {
				built[name] = true
			}
		}
	}
	if len(built) == 0 {
		t.Fatal("found no `go build ./cmd/...` in the Dockerfile")
	}
	return built
}

func yamlFiles(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]byte{}
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		out[filepath.Base(p)] = data
	}
	if len(out) == 0 {
		t.Fatalf("no YAML files in %s", dir)
	}
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}
