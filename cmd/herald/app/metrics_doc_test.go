package app

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// definedMetrics finds every component-base metric defined in the module's non-test Go files:
// the &metrics.{Counter,Gauge,Histogram,Summary}Opts literals, joined as Namespace_Subsystem_Name.
func definedMetrics(t *testing.T, root string) map[string]string {
	t.Helper()
	out := map[string]string{}
	fset := token.NewFileSet()
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if name := d.Name(); path != root && (strings.HasPrefix(name, ".") || name == "testdata" || name == "vendor") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		file, err := parser.ParseFile(fset, path, nil, 0)
		if err != nil {
			return err
		}
		ast.Inspect(file, func(n ast.Node) bool {
			lit, ok := n.(*ast.CompositeLit)
			if !ok {
				return true
			}
			sel, ok := lit.Type.(*ast.SelectorExpr)
			if !ok || !strings.HasSuffix(sel.Sel.Name, "Opts") {
				return true
			}
			if x, ok := sel.X.(*ast.Ident); !ok || x.Name != "metrics" {
				return true
			}
			parts := map[string]string{}
			for _, e := range lit.Elts {
				kv, ok := e.(*ast.KeyValueExpr)
				if !ok {
					continue
				}
				key, _ := kv.Key.(*ast.Ident)
				val, ok := kv.Value.(*ast.BasicLit)
				if key == nil || !ok || val.Kind != token.STRING {
					continue
				}
				parts[key.Name], _ = strconv.Unquote(val.Value)
			}
			if parts["Name"] == "" {
				t.Errorf("%s: a metric whose Name is not a string literal; this test cannot check it", fset.Position(lit.Pos()))
				return true
			}
			var name []string
			for _, k := range []string{"Namespace", "Subsystem", "Name"} {
				if parts[k] != "" {
					name = append(name, parts[k])
				}
			}
			out[strings.Join(name, "_")] = fset.Position(lit.Pos()).String()
			return true
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestMetricsDocumented keeps docs/metrics.md and the code in step: every herald_ metric is
// documented, and every herald_ metric the page names exists.
func TestMetricsDocumented(t *testing.T) {
	root, err := filepath.Abs("../../..")
	if err != nil {
		t.Fatal(err)
	}
	doc, err := os.ReadFile(filepath.Join(root, "docs", "metrics.md"))
	if err != nil {
		t.Fatal(err)
	}
	documented := map[string]bool{}
	for _, m := range regexp.MustCompile(`herald_[a-z0-9_]+`).FindAllString(string(doc), -1) {
		if !strings.HasSuffix(m, "_") { // herald_announcer_* and the like
			documented[m] = true
		}
	}
	defined := definedMetrics(t, root)
	var missing []string
	for name, where := range defined {
		if !strings.HasPrefix(name, "herald_") {
			t.Errorf("%s: metric %s is not in the herald namespace", where, name)
			continue
		}
		if !documented[name] {
			missing = append(missing, name+" ("+where+")")
		}
	}
	sort.Strings(missing)
	for _, m := range missing {
		t.Errorf("metric not in docs/metrics.md: %s", m)
	}
	for name := range documented {
		if _, ok := defined[name]; !ok {
			t.Errorf("docs/metrics.md names %s, which no code defines", name)
		}
	}
	if len(defined) < 20 {
		t.Errorf("found only %d metrics in the code: %v; the scan is broken", len(defined), defined)
	}
}
