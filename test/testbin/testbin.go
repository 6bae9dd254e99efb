// Package testbin builds the module's commands for tests that run them as processes (announcer
// plugins, the speaker): each command is built at most once per test process, into a cache
// directory shared by test runs, so a run pays only Go's incremental build.
//
// When $HERALD_BIN_DIR/<name> exists and is newer than every Go file of the module, that binary
// is used instead (CI builds once and points every test package at it).
package testbin

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

var builds sync.Map // package path → func() (string, error)

// Build returns the path of the executable built from pkg, a package path relative to the
// module root such as "./cmd/herald-announcer-arp". It fails the test if the build fails.
func Build(t testing.TB, pkg string) string {
	t.Helper()
	once, _ := builds.LoadOrStore(pkg, sync.OnceValues(func() (string, error) { return build(pkg) }))
	path, err := once.(func() (string, error))()
	if err != nil {
		t.Fatalf("testbin: %v", err)
	}
	return path
}

func build(pkg string) (string, error) {
	root, err := moduleRoot()
	if err != nil {
		return "", err
	}
	name := filepath.Base(pkg)
	if dir := os.Getenv("HERALD_BIN_DIR"); dir != "" {
		candidate := filepath.Join(dir, name)
		if fresh, err := newerThanSources(candidate, root); err == nil && fresh {
			return candidate, nil
		}
	}
	cache, err := os.UserCacheDir()
	if err != nil {
		cache = os.TempDir()
	}
	sum := sha256.Sum256([]byte(root))
	dir := filepath.Join(cache, "herald", "testbin", hex.EncodeToString(sum[:6]))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("cache dir: %w", err)
	}
	out := filepath.Join(dir, name)
	// Build beside the target and rename: another test process may be running the old binary.
	tmp := fmt.Sprintf("%s.tmp-%d", out, os.Getpid())
	cmd := exec.Command("go", "build", "-o", tmp, pkg)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		_ = os.Remove(tmp)
		return "", fmt.Errorf("go build %s: %w\n%s", pkg, err, b)
	}
	if err := os.Rename(tmp, out); err != nil {
		return "", fmt.Errorf("install %s: %w", out, err)
	}
	return out, nil
}

// moduleRoot walks up from the working directory (a test runs in its package directory) to
// the directory holding go.mod.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no go.mod above the working directory")
		}
		dir = parent
	}
}

func newerThanSources(bin, root string) (bool, error) {
	st, err := os.Stat(bin)
	if err != nil {
		return false, err
	}
	newest, err := newestSource(root)
	if err != nil {
		return false, err
	}
	return st.ModTime().After(newest), nil
}

func newestSource(root string) (time.Time, error) {
	var newest time.Time
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && path != root && (strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata") {
			return filepath.SkipDir
		}
		if d.IsDir() || !(strings.HasSuffix(path, ".go") || d.Name() == "go.mod" || d.Name() == "go.sum") {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		if info.ModTime().After(newest) {
			newest = info.ModTime()
		}
		return nil
	})
	return newest, err
}
