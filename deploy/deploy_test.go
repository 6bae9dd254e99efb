// Package deploy_test checks Herald's deployment artefacts: the Helm chart in
// deploy/helm/herald, the plain manifests in deploy/kustomize (generated from the chart) and
// the image (`make image`). Plain tests check what needs no tool: the chart's CRDs are
// deploy/crds byte for byte, and the image ships every binary the chart runs. Integration tests
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

// TestImageShipsEveryBinaryTheChartRuns checks that the image holds every executable the
// chart starts (the containers' command) or the speaker starts (herald-announcer-<name> for
// every announcer the chart may configure). `make image` ships every ./cmd binary in
// /usr/local/bin (hack/image), so each needed binary must be a command under cmd/.
func TestImageShipsEveryBinaryTheChartRuns(t *testing.T) {
	built := imageBinaries(t)
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
			t.Errorf("%s runs %s, which the image does not ship (no ./cmd/%s)", where, bin, bin)
		}
	}
}

// imageBinaries returns the binaries `make image` ships: the commands under cmd/, provided the
// Makefile's image target still builds ./cmd/... into the directory hack/image packs.
func imageBinaries(t *testing.T) map[string]bool {
	t.Helper()
	mk := readFile(t, "../Makefile")
	if !regexp.MustCompile(`\$\(GO\) build [^\n]*-o \$\(BIN_DIR\)/image/ \./cmd/\.\.\.`).MatchString(mk) ||
		!strings.Contains(mk, "./hack/image -bin $(BIN_DIR)/image") {
		t.Fatal("the Makefile's image target no longer builds ./cmd/... into $(BIN_DIR)/image and packs that directory; update this test with it")
	}
	cmds, err := filepath.Glob("../cmd/*/main.go")
	if err != nil {
		t.Fatal(err)
	}
	if len(cmds) == 0 {
		t.Fatal("found no commands under cmd/")
	}
	built := map[string]bool{}
	for _, m := range cmds {
		built[filepath.Base(filepath.Dir(m))] = true
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
