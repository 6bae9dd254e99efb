package cluster

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// kubeletSysctls are the kernel settings kubelet changes at start (setupKernelTunables,
// protectKernelDefaults off); they are not per network namespace, so teardown restores them.
var kubeletSysctls = []string{
	"vm/overcommit_memory", "vm/panic_on_oom", "kernel/panic", "kernel/panic_on_oops",
	"kernel/keys/root_maxkeys", "kernel/keys/root_maxbytes",
}

// hostPaths are fixed paths kubelet and containerd create whatever their configured
// directories (device plugins, container log links, CNI results, shim sockets); teardown
// removes those that did not exist before.
var hostPaths = []string{"/var/lib/kubelet", "/var/log/containers", "/var/log/pods", "/var/lib/cni", "/run/containerd", "/etc/cni"}

// teardown records what the cluster changes outside its namespaces and directory, and
// undoes it.
type teardown struct {
	c        *Cluster
	sysctls  map[string]string
	created  []string // host paths that did not exist
	netnsBef map[string]bool
	cgroups  []string // cgroup roots made, relative to each hierarchy
}

func newTeardown(c *Cluster) *teardown {
	td := &teardown{c: c, sysctls: map[string]string{}, netnsBef: map[string]bool{}}
	for _, k := range kubeletSysctls {
		if v, err := os.ReadFile("/proc/sys/" + k); err == nil {
			td.sysctls[k] = strings.TrimSpace(string(v))
		}
	}
	for _, p := range hostPaths {
		if _, err := os.Lstat(p); errors.Is(err, os.ErrNotExist) {
			td.created = append(td.created, p)
		}
	}
	for _, n := range podNetns() {
		td.netnsBef[n] = true
	}
	return td
}

// cgroupHierarchies are the cgroup v1 hierarchies (and the named systemd one) kubelet uses.
func cgroupHierarchies() []string {
	entries, _ := os.ReadDir("/sys/fs/cgroup")
	var out []string
	for _, e := range entries {
		if e.Name() == "unified" {
			continue
		}
		p := filepath.Join("/sys/fs/cgroup", e.Name())
		if st, err := os.Stat(p); err == nil && st.IsDir() {
			if real, err := filepath.EvalSymlinks(p); err == nil && !slices.Contains(out, real) {
				out = append(out, real)
			}
		}
	}
	return out
}

// makeCgroupRoot creates a kubelet's cgroup root in every hierarchy; cpuset needs its
// parent's cpus and mems before a process may join.
func (td *teardown) makeCgroupRoot(root string) error {
	td.cgroups = append(td.cgroups, root)
	for _, h := range cgroupHierarchies() {
		dir := filepath.Join(h, root)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return fmt.Errorf("cgroup %s: %w", dir, err)
		}
		for _, f := range []string{"cpuset.cpus", "cpuset.mems"} {
			if v, err := os.ReadFile(filepath.Join(h, f)); err == nil {
				if err := os.WriteFile(filepath.Join(dir, f), v, 0o644); err != nil {
					return fmt.Errorf("cgroup %s: %s: %w", dir, f, err)
				}
			}
		}
	}
	return nil
}

// run undoes everything: processes first (kubelet, so it restarts nothing; then every
// process in the cluster's cgroups; then containerd, its shims and the control plane), then
// mounts, pod network namespaces, cgroups, host paths and sysctls, and the directory.
func (td *teardown) run() error {
	c := td.c
	var errs []error
	for _, n := range c.Nodes {
		for _, p := range []*proc{n.kubelet, n.proxy} {
			if p != nil {
				p.kill()
			}
		}
	}
	td.killCgroups()
	for _, n := range c.Nodes {
		if n.containerd != nil {
			n.containerd.kill()
		}
		killNetns(n.Host.Netns)
	}
	for _, p := range c.control {
		p.kill()
	}
	td.killCgroups()
	errs = append(errs, unmountUnder(c.dir))
	for _, n := range podNetns() {
		if !td.netnsBef[n] {
			p := filepath.Join("/var/run/netns", n)
			_ = syscall.Unmount(p, syscall.MNT_DETACH)
			if err := os.Remove(p); err != nil {
				errs = append(errs, err)
			}
		}
	}
	errs = append(errs, td.removeCgroups())
	for _, p := range td.created {
		errs = append(errs, unmountUnder(p))
		if err := os.RemoveAll(p); err != nil {
			errs = append(errs, err)
		}
	}
	for k, v := range td.sysctls {
		if err := os.WriteFile("/proc/sys/"+k, []byte(v), 0o644); err != nil {
			errs = append(errs, fmt.Errorf("restoring %s=%s: %w", k, v, err))
		}
	}
	if err := os.RemoveAll(c.dir); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// killCgroups SIGKILLs every process in the cluster's cgroups until none is left (bounded).
func (td *teardown) killCgroups() {
	for try := 0; try < 50; try++ {
		pids := td.cgroupPIDs()
		if len(pids) == 0 {
			return
		}
		for _, pid := range pids {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (td *teardown) cgroupPIDs() []int {
	var pids []int
	for _, root := range td.cgroups {
		dir := filepath.Join("/sys/fs/cgroup/pids", root)
		_ = filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
			if err != nil || d.IsDir() || d.Name() != "cgroup.procs" {
				return nil
			}
			data, _ := os.ReadFile(p)
			for _, f := range strings.Fields(string(data)) {
				if pid, err := strconv.Atoi(f); err == nil {
					pids = append(pids, pid)
				}
			}
			return nil
		})
	}
	return pids
}

// removeCgroups removes the cluster's cgroup trees, deepest first, in every hierarchy.
func (td *teardown) removeCgroups() error {
	var errs []error
	for _, h := range cgroupHierarchies() {
		for _, root := range td.cgroups {
			var dirs []string
			_ = filepath.WalkDir(filepath.Join(h, root), func(p string, d os.DirEntry, err error) error {
				if err == nil && d.IsDir() {
					dirs = append(dirs, p)
				}
				return nil
			})
			for i := len(dirs) - 1; i >= 0; i-- {
				if err := os.Remove(dirs[i]); err != nil && !errors.Is(err, os.ErrNotExist) {
					errs = append(errs, fmt.Errorf("cgroup %s: %w", dirs[i], err))
				}
			}
		}
	}
	return errors.Join(errs...)
}

// podNetns lists the network namespaces containerd made for pods (/var/run/netns/cni-*).
func podNetns() []string {
	entries, _ := os.ReadDir("/var/run/netns")
	var out []string
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), "cni-") {
			out = append(out, e.Name())
		}
	}
	return out
}

// killNetns SIGKILLs every process in the named network namespace (containerd's shims).
func killNetns(name string) {
	var target syscall.Stat_t
	if err := syscall.Stat("/var/run/netns/"+name, &target); err != nil {
		return
	}
	procs, _ := os.ReadDir("/proc")
	for _, p := range procs {
		pid, err := strconv.Atoi(p.Name())
		if err != nil {
			continue
		}
		var st syscall.Stat_t
		if syscall.Stat(filepath.Join("/proc", p.Name(), "ns/net"), &st) == nil && st.Ino == target.Ino && st.Dev == target.Dev {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}

// unmountUnder detaches every mount at or below dir, deepest first.
func unmountUnder(dir string) error {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return err
	}
	defer f.Close()
	var mounts []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) > 4 {
			mp := unescapeMount(fields[4])
			if mp == dir || strings.HasPrefix(mp, dir+"/") {
				mounts = append(mounts, mp)
			}
		}
	}
	slices.SortFunc(mounts, func(a, b string) int { return len(b) - len(a) })
	var errs []error
	for _, m := range mounts {
		if err := syscall.Unmount(m, syscall.MNT_DETACH); err != nil && !errors.Is(err, syscall.EINVAL) && !errors.Is(err, syscall.ENOENT) {
			errs = append(errs, fmt.Errorf("unmount %s: %w", m, err))
		}
	}
	return errors.Join(errs...)
}

// unescapeMount undoes mountinfo's octal escapes (\040 for a space).
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
