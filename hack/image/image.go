package main

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// epoch is every timestamp in the image: file times and the config's created time. A fixed
// time, not the build's, is what makes the same inputs give the same digest.
var epoch = time.Unix(0, 0).UTC()

// nonRoot is the default user, as distroless's :nonroot tag (the chart's controller runs as
// it; the speaker overrides it with root and only NET_RAW, see deploy/helm/herald/values.yaml).
const nonRoot = 65532

// binDir is where the binaries live in the image; the chart runs them from there, and the
// speaker finds its announcers beside its own executable.
const binDir = "/usr/local/bin"

// File is one file of the image's single layer.
type File struct {
	Path string // absolute path in the image
	Mode int64
	Data []byte
}

// Spec describes an image: its files and how it starts.
type Spec struct {
	Files      []File
	Entrypoint []string
	User       string
	Env        []string
}

// baseFiles are what a distroless "static" image holds that a static Go binary may need:
// the user database (so the non-root user has a name) and /tmp. There are no CA roots: Herald
// trusts only the cluster's CA, from its service-account token mount.
func baseFiles() []File {
	return []File{
		{Path: "/etc/passwd", Mode: 0o644, Data: []byte(fmt.Sprintf("root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:%d:%d:nonroot:/home/nonroot:/sbin/nologin\n", nonRoot, nonRoot))},
		{Path: "/etc/group", Mode: 0o644, Data: []byte(fmt.Sprintf("root:x:0:\nnonroot:x:%d:\n", nonRoot))},
		{Path: "/tmp/", Mode: 0o1777},
		{Path: "/home/nonroot/", Mode: 0o700},
	}
}

// HeraldSpec is Herald's image: every binary in dir (herald, the announcers, kubectl-herald)
// in /usr/local/bin, entrypoint (herald) started by default as the non-root user. The test
// bed's image (test/cluster: pause and an echo server) is built the same way.
func HeraldSpec(dir string, names []string, entrypoint string) (Spec, error) {
	if !slices.Contains(names, entrypoint) {
		return Spec{}, fmt.Errorf("entrypoint %q is not among the binaries %v", entrypoint, names)
	}
	files := baseFiles()
	for _, name := range names {
		data, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			return Spec{}, err
		}
		files = append(files, File{Path: path.Join(binDir, name), Mode: 0o755, Data: data})
	}
	return Spec{
		Files:      files,
		Entrypoint: []string{path.Join(binDir, entrypoint)},
		User:       fmt.Sprintf("%d:%d", nonRoot, nonRoot),
		Env:        []string{"PATH=" + binDir + ":/usr/bin:/bin"},
	}, nil
}

// Build makes the image: one layer holding spec's files (and their parent directories) with
// fixed owners and times, on an empty base, for linux/amd64.
func Build(spec Spec) (v1.Image, error) {
	layerTar, err := layerTar(spec.Files)
	if err != nil {
		return nil, err
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(layerTar)), nil
	}, tarball.WithMediaType(types.OCILayer))
	if err != nil {
		return nil, err
	}
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	img, err = mutate.Append(img, mutate.Addendum{Layer: layer, History: v1.History{
		Created: v1.Time{Time: epoch}, CreatedBy: "herald hack/image", Comment: "herald binaries",
	}})
	if err != nil {
		return nil, err
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cfg = cfg.DeepCopy()
	cfg.OS, cfg.Architecture = "linux", "amd64"
	cfg.Created = v1.Time{Time: epoch}
	cfg.Config.Entrypoint = spec.Entrypoint
	cfg.Config.User = spec.User
	cfg.Config.Env = spec.Env
	cfg.Config.WorkingDir = "/"
	return mutate.ConfigFile(img, cfg)
}

// layerTar writes files, sorted by path, with every parent directory before its children.
func layerTar(files []File) ([]byte, error) {
	entries := map[string]File{}
	for _, f := range files {
		p := path.Clean(f.Path)
		if !path.IsAbs(p) || p == "/" {
			return nil, fmt.Errorf("image file %q: need an absolute path below /", f.Path)
		}
		isDir := f.Path[len(f.Path)-1] == '/'
		if isDir {
			f.Data = nil
		}
		f.Path = p
		if isDir {
			f.Path += "/"
		}
		entries[p] = f
		for dir := path.Dir(p); dir != "/"; dir = path.Dir(dir) {
			if _, ok := entries[dir]; !ok {
				entries[dir] = File{Path: dir + "/", Mode: 0o755}
			}
		}
	}
	keys := make([]string, 0, len(entries))
	for k := range entries {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, k := range keys {
		f := entries[k]
		hdr := &tar.Header{
			Name: k[1:], Mode: f.Mode, ModTime: epoch, Format: tar.FormatPAX,
			Typeflag: tar.TypeReg, Size: int64(len(f.Data)),
		}
		if f.Path[len(f.Path)-1] == '/' {
			hdr.Name, hdr.Typeflag, hdr.Size = k[1:]+"/", tar.TypeDir, 0
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return nil, err
		}
		if _, err := tw.Write(f.Data); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// WriteOCIArchive writes img as an OCI image layout in one tar stream, named ref in the
// index (org.opencontainers.image.ref.name, which `ctr images import` reads; CRI names
// "herald-lb/herald:tag" docker.io/herald-lb/herald:tag, so ref should be that full name).
// The layout is written to a scratch directory by the library, then archived with fixed
// owners and times, so the tarball is as reproducible as the image.
func WriteOCIArchive(w io.Writer, img v1.Image, ref string) error {
	dir, err := os.MkdirTemp("", "herald-image-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		return err
	}
	if err := p.AppendImage(img, layout.WithAnnotations(map[string]string{
		"org.opencontainers.image.ref.name": ref,
		"io.containerd.image.name":          ref,
	})); err != nil {
		return err
	}
	return archiveDir(w, dir)
}

// archiveDir tars every file under dir, sorted, with fixed owners and times.
func archiveDir(w io.Writer, dir string) error {
	var names []string
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || p == dir {
			return err
		}
		names = append(names, p)
		return nil
	})
	if err != nil {
		return err
	}
	sort.Strings(names)
	tw := tar.NewWriter(w)
	for _, p := range names {
		rel, _ := filepath.Rel(dir, p)
		info, err := os.Stat(p)
		if err != nil {
			return err
		}
		hdr := &tar.Header{Name: filepath.ToSlash(rel), Mode: 0o644, ModTime: epoch, Typeflag: tar.TypeReg, Size: info.Size(), Format: tar.FormatPAX}
		if info.IsDir() {
			hdr.Name, hdr.Mode, hdr.Typeflag, hdr.Size = hdr.Name+"/", 0o755, tar.TypeDir, 0
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if info.IsDir() {
			continue
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if _, err := tw.Write(data); err != nil {
			return err
		}
	}
	return tw.Close()
}
