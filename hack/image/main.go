// Command image builds Herald's container image without a Docker daemon: the binaries of
// ./cmd/... (built by `make image` with -trimpath and no build ID or VCS stamp) in
// /usr/local/bin on an empty base, non-root by default, written as an OCI image-layout
// tarball that `ctr images import` and `crane` read. Same commit and toolchain, same digest.
//
//	go run ./hack/image -bin DIR -ref docker.io/herald-lb/herald:0.1.0 -out herald.oci.tar
package main

import (
	"bufio"
	"flag"
	"fmt"
	"os"
	"sort"
)

func main() {
	bin := flag.String("bin", "bin/image", "directory holding the binaries to ship (every file in it)")
	ref := flag.String("ref", "docker.io/herald-lb/herald:dev", "image name written in the archive's index")
	out := flag.String("out", "bin/herald.oci.tar", "the OCI archive to write")
	entrypoint := flag.String("entrypoint", "herald", "the binary (of -bin) the image starts")
	flag.Parse()
	if err := run(*bin, *ref, *out, *entrypoint); err != nil {
		fmt.Fprintln(os.Stderr, "image:", err)
		os.Exit(1)
	}
}

func run(bin, ref, out, entrypoint string) error {
	entries, err := os.ReadDir(bin)
	if err != nil {
		return err
	}
	var names []string
	for _, e := range entries {
		if e.Type().IsRegular() {
			names = append(names, e.Name())
		}
	}
	sort.Strings(names)
	if len(names) == 0 {
		return fmt.Errorf("%s holds no binaries", bin)
	}
	spec, err := HeraldSpec(bin, names, entrypoint)
	if err != nil {
		return err
	}
	img, err := Build(spec)
	if err != nil {
		return err
	}
	digest, err := img.Digest()
	if err != nil {
		return err
	}
	f, err := os.Create(out + ".tmp")
	if err != nil {
		return err
	}
	w := bufio.NewWriter(f)
	if err := WriteOCIArchive(w, img, ref); err != nil {
		f.Close()
		return err
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(out+".tmp", out); err != nil {
		return err
	}
	fmt.Printf("%s %s %v\n", ref, digest, names)
	return nil
}
