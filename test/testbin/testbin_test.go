package testbin

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestBuildOnceAndRuns(t *testing.T) {
	first := Build(t, "./test/testbin/testdata/hello")
	second := Build(t, "./test/testbin/testdata/hello")
	if first != second {
		t.Errorf("second Build returned %q, want the cached %q", second, first)
	}
	out, err := exec.Command(first).Output()
	if err != nil || strings.TrimSpace(string(out)) != "hello from testbin" {
		t.Fatalf("running %s: %q, %v", first, out, err)
	}
}

func TestPrebuiltUsedOnlyWhenNewer(t *testing.T) {
	dir := t.TempDir()
	prebuilt := filepath.Join(dir, "hello2")
	if err := os.WriteFile(prebuilt, []byte("#!/bin/sh\necho prebuilt\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("HERALD_BIN_DIR", dir)
	// Older than every source: must be rebuilt, not used.
	old := time.Unix(1000, 0)
	if err := os.Chtimes(prebuilt, old, old); err != nil {
		t.Fatal(err)
	}
	if got, err := build("./test/testbin/testdata/hello2"); err != nil || got == prebuilt {
		t.Errorf("stale prebuilt: build = %q, %v; want a fresh build", got, err)
	}
	now := time.Now().Add(time.Minute)
	if err := os.Chtimes(prebuilt, now, now); err != nil {
		t.Fatal(err)
	}
	if got, err := build("./test/testbin/testdata/hello2"); err != nil || got != prebuilt {
		t.Errorf("fresh prebuilt: build = %q, %v; want %q", got, err, prebuilt)
	}
}
