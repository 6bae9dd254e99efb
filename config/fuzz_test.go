package config_test

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/herald-lb/herald/config"
	"github.com/herald-lb/herald/framework"
	"github.com/herald-lb/herald/plugins"
)

// FuzzDecode feeds the speaker configuration loader arbitrary files: it must never panic, every
// refusal must say something, and a file it accepts must be usable as loaded (every profile's
// args decode and its framework builds) and mean the same when its rendering is loaded again.
// `go test` runs the seeds: the files in testdata/valid and testdata/invalid and the corpus in
// testdata/fuzz/FuzzDecode; `go test -fuzz FuzzDecode ./config/` searches further.
func FuzzDecode(f *testing.F) {
	for _, dir := range []string{"testdata/valid", "testdata/invalid"} {
		files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
		if err != nil {
			f.Fatal(err)
		}
		for _, name := range files {
			data, err := os.ReadFile(name)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(data)
		}
	}
	opts := config.Options{Registry: plugins.NewInTreeRegistry(), DefaultPlugins: plugins.DefaultProfile()}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := config.Decode(data, opts)
		if err != nil {
			if err.Error() == "" {
				t.Fatal("refused with an empty error")
			}
			return
		}
		specs, err := c.ProfileSpecs(opts.Registry)
		if err != nil {
			t.Fatalf("accepted, but its profiles do not convert: %v", err)
		}
		for _, spec := range specs {
			if _, err := framework.NewFramework(opts.Registry, spec, nil); err != nil {
				t.Fatalf("accepted, but profile %q does not build: %v", spec.Name, err)
			}
		}
		out, err := config.Marshal(c)
		if err != nil {
			t.Fatalf("accepted, but does not render: %v", err)
		}
		again, err := config.Decode(out, opts)
		if err != nil {
			t.Fatalf("its own rendering is refused: %v\n%s", err, out)
		}
		if !reflect.DeepEqual(again, c) {
			t.Fatalf("its rendering loads as something else:\n%s", out)
		}
	})
}
