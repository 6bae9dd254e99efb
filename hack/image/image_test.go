package main

import (
	"archive/tar"
	"bytes"
	"io"
	"os"
	"path/filepath"
	"slices"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
)

func sampleSpec(t *testing.T, herald []byte) Spec {
	t.Helper()
	dir := t.TempDir()
	for name, data := range map[string][]byte{"herald": herald, "herald-announcer-arp": []byte("arp")} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	spec, err := HeraldSpec(dir, []string{"herald", "herald-announcer-arp"}, "herald")
	if err != nil {
		t.Fatal(err)
	}
	return spec
}

func archive(t *testing.T, spec Spec) (v1.Hash, []byte) {
	t.Helper()
	img, err := Build(spec)
	if err != nil {
		t.Fatal(err)
	}
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := WriteOCIArchive(&buf, img, "docker.io/herald-lb/herald:test"); err != nil {
		t.Fatal(err)
	}
	return d, buf.Bytes()
}

// TestBuildIsReproducible: the same files give the same digest and the same archive bytes,
// whatever the files' times on disk; a changed byte gives another digest.
func TestBuildIsReproducible(t *testing.T) {
	d1, a1 := archive(t, sampleSpec(t, []byte("herald v1")))
	d2, a2 := archive(t, sampleSpec(t, []byte("herald v1"))) // new temp dir, new mtimes
	if d1 != d2 {
		t.Errorf("same inputs, digests %s and %s", d1, d2)
	}
	if !bytes.Equal(a1, a2) {
		t.Error("same inputs, different archive bytes")
	}
	d3, _ := archive(t, sampleSpec(t, []byte("herald v2")))
	if d3 == d1 {
		t.Error("a changed binary kept the digest")
	}
}

// TestArchiveReadsBackAsOCILayout unpacks the archive and reads it with the library, as a
// runtime's import would: the name, the non-root user, the entrypoint and the files.
func TestArchiveReadsBackAsOCILayout(t *testing.T) {
	want, data := archive(t, sampleSpec(t, []byte("herald binary")))
	dir := t.TempDir()
	untar(t, data, dir)
	idx, err := layout.ImageIndexFromPath(dir)
	if err != nil {
		t.Fatal(err)
	}
	man, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if len(man.Manifests) != 1 || man.Manifests[0].Annotations["org.opencontainers.image.ref.name"] != "docker.io/herald-lb/herald:test" {
		t.Fatalf("index manifests: %+v", man.Manifests)
	}
	img, err := idx.Image(man.Manifests[0].Digest)
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := img.Digest(); got != want {
		t.Errorf("digest read back %s, built %s", got, want)
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Config.User != "65532:65532" || !slices.Equal(cfg.Config.Entrypoint, []string{"/usr/local/bin/herald"}) || cfg.OS != "linux" || cfg.Architecture != "amd64" {
		t.Errorf("config: user %q entrypoint %v platform %s/%s", cfg.Config.User, cfg.Config.Entrypoint, cfg.OS, cfg.Architecture)
	}
	layers, err := img.Layers()
	if err != nil || len(layers) != 1 {
		t.Fatalf("layers %d, %v", len(layers), err)
	}
	rc, err := layers[0].Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	files := map[string]*tar.Header{}
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		files[h.Name] = h
	}
	for name, mode := range map[string]int64{
		"usr/": 0o755, "usr/local/": 0o755, "usr/local/bin/": 0o755,
		"usr/local/bin/herald": 0o755, "usr/local/bin/herald-announcer-arp": 0o755,
		"etc/passwd": 0o644, "tmp/": 0o1777,
	} {
		h := files[name]
		if h == nil {
			t.Errorf("layer lacks %s (has %v)", name, keys(files))
			continue
		}
		if h.Mode != mode || h.Uid != 0 || h.Gid != 0 || !h.ModTime.Equal(epoch) {
			t.Errorf("%s: mode %o uid %d gid %d time %v", name, h.Mode, h.Uid, h.Gid, h.ModTime)
		}
	}
}

func TestLayerRefusesRelativePaths(t *testing.T) {
	if _, err := layerTar([]File{{Path: "etc/passwd"}}); err == nil {
		t.Error("a relative path was accepted")
	}
}

func untar(t *testing.T, data []byte, dir string) {
	t.Helper()
	tr := tar.NewReader(bytes.NewReader(data))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, filepath.FromSlash(h.Name))
		if h.Typeflag == tar.TypeDir {
			if err := os.MkdirAll(p, 0o755); err != nil {
				t.Fatal(err)
			}
			continue
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func keys(m map[string]*tar.Header) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
