package plugins_test

import (
	"os"
	"strings"
	"testing"

	"github.com/herald-lb/herald/config"
	"github.com/herald-lb/herald/plugins"
)

// TestREADMEProfileLoads keeps the README's example configuration valid and equal, in its
// plugin lists and weights, to DefaultProfile.
func TestREADMEProfileLoads(t *testing.T) {
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(readme), "```yaml\n")
	yaml, _, ok2 := strings.Cut(rest, "```")
	if !ok || !ok2 {
		t.Fatal("README has no yaml block")
	}
	opts := config.Options{Registry: plugins.NewInTreeRegistry(), DefaultPlugins: plugins.DefaultProfile()}
	c, err := config.Decode([]byte(yaml), opts)
	if err != nil {
		t.Fatalf("README example: %v", err)
	}
	specs, err := c.ProfileSpecs(opts.Registry)
	if err != nil {
		t.Fatal(err)
	}
	want := plugins.DefaultProfile()
	got := specs[0]
	if strings.Join(got.PreFilter, ",") != strings.Join(want.PreFilter, ",") || strings.Join(got.Filter, ",") != strings.Join(want.Filter, ",") {
		t.Fatalf("README profile %v / %v, default %v / %v", got.PreFilter, got.Filter, want.PreFilter, want.Filter)
	}
	if len(got.Score) != len(want.Score) {
		t.Fatalf("README scores %v, default %v", got.Score, want.Score)
	}
	for i := range want.Score {
		if got.Score[i] != want.Score[i] {
			t.Fatalf("README scores %v, default %v", got.Score, want.Score)
		}
	}
}
