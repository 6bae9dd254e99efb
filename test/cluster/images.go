package cluster

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// moduleRoot is the repository's root (where go.mod is).
func moduleRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", fmt.Errorf("not inside the Herald module")
	}
	return filepath.Dir(gomod), nil
}

// HeraldImage returns the OCI archive of Herald's image: $HERALD_IMAGE, or bin/herald.oci.tar
// that `make image` writes (make test-cluster builds it first).
func HeraldImage() (string, error) {
	if p := os.Getenv("HERALD_IMAGE"); p != "" {
		return p, nil
	}
	root, err := moduleRoot()
	if err != nil {
		return "", err
	}
	p := filepath.Join(root, "bin", "herald.oci.tar")
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("the image of Herald: %w (run `make image`, or set $HERALD_IMAGE)", err)
	}
	return p, nil
}

// TestbedImage builds the test bed's image, SandboxImage, in dir: the pause program (its
// entrypoint, every pod's sandbox) and the echo server, written as an OCI archive the same
// way `make image` writes Herald's. It returns the archive's path.
func TestbedImage(dir string) (string, error) {
	root, err := moduleRoot()
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "testbed-bin")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	build := exec.CommandContext(ctx, "go", "build", "-trimpath", "-ldflags=-s -w", "-o", bin+"/", "./test/cluster/cmd/pause", "./test/cluster/cmd/echo")
	build.Dir, build.Env = root, append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		return "", fmt.Errorf("building the test bed's programs: %w\n%s", err, out)
	}
	archive := filepath.Join(dir, "testbed.oci.tar")
	img := exec.CommandContext(ctx, "go", "run", "./hack/image", "-bin", bin, "-entrypoint", "pause", "-ref", SandboxImage, "-out", archive)
	img.Dir = root
	if out, err := img.CombinedOutput(); err != nil {
		return "", fmt.Errorf("building the test bed's image: %w\n%s", err, out)
	}
	return archive, nil
}
