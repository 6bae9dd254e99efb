package arch

import (
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/herald-lb/herald"

// deps lists the packages pkg imports, directly or not (not its tests'), with go list.
func deps(t *testing.T, pkg string) []string {
	t.Helper()
	out, err := exec.Command("go", "list", "-deps", "-f", "{{.ImportPath}}", module+"/"+pkg).CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps %s: %v\n%s", pkg, err, out)
	}
	return strings.Fields(string(out))
}

func isPlugin(p string) bool {
	return p == module+"/plugins" || strings.HasPrefix(p, module+"/plugins/")
}

// TestOnlyTheWiringImportsPlugins: the framework, the snapshot and the speaker reach plugins
// only through the registry the binary's wiring hands them (a plugin's rule needed elsewhere
// lives in the framework: Advertisement.Covers, Unit.Covering, InterfaceChoice).
func TestOnlyTheWiringImportsPlugins(t *testing.T) {
	for _, pkg := range []string{"framework", "framework/frameworktest", "snapshot", "speaker", "speaker/announce"} {
		t.Run(pkg, func(t *testing.T) {
			for _, d := range deps(t, pkg) {
				if isPlugin(d) {
					t.Errorf("%s imports %s: only cmd/... and plugins/registry.go may import plugin packages", pkg, d)
				}
			}
		})
	}
}

// TestTheCheckSeesPlugins keeps the test above honest: the wiring does import the plugins, so
// a check that found none there would be looking at nothing.
func TestTheCheckSeesPlugins(t *testing.T) {
	for _, d := range deps(t, "cmd/herald/app") {
		if strings.HasPrefix(d, module+"/plugins/") {
			return
		}
	}
	t.Fatal("go list finds no plugin package among cmd/herald/app's dependencies")
}
