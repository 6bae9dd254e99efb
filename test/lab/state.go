package lab

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// StateRoot holds one directory per lab, named by the lab's id.
const StateRoot = "/run/herald-lab"

const maxID = 250

// Owner of a lab made by `lab.sh up`: never reaped as stale, removed by `lab.sh down`.
const manualOwner = 0

// state lists what a lab created, so that cleanup removes exactly that.
type state struct {
	ID         int         `json:"id"`
	Owner      int         `json:"owner"`
	Namespaces []namespace `json:"namespaces"`
	Links      []string    `json:"links"`
	Rules      []string    `json:"rules"`
	// Hosts is the topology, for `lab.sh exec` and for humans.
	Hosts []hostRecord `json:"hosts"`
}

// namespace identifies a namespace the lab created. Namespace inode numbers are reused
// after a namespace is freed, so a random marker set as lo's alias must match too.
type namespace struct {
	Name   string `json:"name"`
	Inode  uint64 `json:"inode"`
	Marker string `json:"marker"`
}

type hostRecord struct {
	Name  string `json:"name"`
	Netns string `json:"netns"`
	IPv4  string `json:"ipv4"`
	IPv6  string `json:"ipv6"`
}

func prefixOf(id int) string { return fmt.Sprintf("hl%d-", id) }

func stateDir(id int) string { return filepath.Join(StateRoot, strconv.Itoa(id)) }

func (s *state) save() error {
	data, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	tmp := filepath.Join(stateDir(s.ID), "state.json.tmp")
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return fmt.Errorf("lab %d state: %w", s.ID, err)
	}
	return os.Rename(tmp, filepath.Join(stateDir(s.ID), "state.json"))
}

func loadState(id int) (*state, error) {
	data, err := os.ReadFile(filepath.Join(stateDir(id), "state.json"))
	if err != nil {
		return nil, err
	}
	s := &state{}
	if err := json.Unmarshal(data, s); err != nil {
		return nil, fmt.Errorf("lab %d state: %w", id, err)
	}
	return s, nil
}

// withLock runs f holding an exclusive lock on StateRoot, so concurrent processes allocate
// distinct ids.
func withLock(f func() error) error {
	if err := os.MkdirAll(StateRoot, 0o700); err != nil {
		return fmt.Errorf("lab state root: %w", err)
	}
	lock, err := os.OpenFile(filepath.Join(StateRoot, ".lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return fmt.Errorf("lab lock: %w", err)
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return fmt.Errorf("lab lock: %w", err)
	}
	defer syscall.Flock(int(lock.Fd()), syscall.LOCK_UN)
	return f()
}

// allocate reaps labs of dead owners, then reserves the lowest free id for owner. An id is
// free when it has no state directory and no namespace or link carries its prefix (someone
// else's objects are never adopted).
func allocate(owner int) (*state, error) {
	var st *state
	err := withLock(func() error {
		reapStale()
		netns, _ := listNetns()
		links, _ := listLinks()
		for id := 1; id <= maxID; id++ {
			if _, err := os.Stat(stateDir(id)); err == nil {
				continue
			}
			if anyHasPrefix(netns, prefixOf(id)) || anyHasPrefix(links, prefixOf(id)) {
				continue
			}
			if err := os.MkdirAll(stateDir(id), 0o700); err != nil {
				return err
			}
			st = &state{ID: id, Owner: owner}
			return st.save()
		}
		return errors.New("no free lab id: too many labs alive")
	})
	return st, err
}

// reapStale destroys labs whose owning process is gone.
func reapStale() {
	for _, id := range stateIDs() {
		st, err := loadState(id)
		if err != nil {
			continue
		}
		if st.Owner != manualOwner && !processAlive(st.Owner) {
			st.destroy()
		}
	}
}

func stateIDs() []int {
	entries, _ := os.ReadDir(StateRoot)
	var ids []int
	for _, e := range entries {
		if id, err := strconv.Atoi(e.Name()); err == nil && e.IsDir() {
			ids = append(ids, id)
		}
	}
	return ids
}

// destroy removes what st lists and returns what it refused or failed to remove.
func (st *state) destroy() error {
	var errs []error
	for _, ns := range st.Namespaces {
		if err := deleteNamespace(ns); err != nil {
			errs = append(errs, err)
		}
	}
	for _, rule := range st.Rules {
		ip(append([]string{"rule", "del"}, strings.Fields(rule)...)...)
	}
	for _, link := range st.Links {
		if !strings.HasPrefix(link, prefixOf(st.ID)) {
			errs = append(errs, fmt.Errorf("link %q lacks the lab prefix %q: refused", link, prefixOf(st.ID)))
			continue
		}
		if linkExists(link) {
			// A veth whose peer was in a deleted namespace disappears when the kernel finishes
			// tearing that namespace down, which it does asynchronously: gone is success.
			if err := ip("link", "del", link); err != nil && linkExists(link) {
				errs = append(errs, err)
			}
		}
	}
	if len(errs) == 0 {
		if err := os.RemoveAll(stateDir(st.ID)); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// deleteNamespace kills the processes in ns and deletes it, unless the namespace under that
// name is not the one the lab created.
func deleteNamespace(ns namespace) error {
	ino, err := netnsInode(ns.Name)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if ino != ns.Inode {
		return fmt.Errorf("namespace %q is not the one this lab created (inode %d, recorded %d): refused", ns.Name, ino, ns.Inode)
	}
	if m := netnsMarker(ns.Name); m != ns.Marker {
		return fmt.Errorf("namespace %q is not the one this lab created (marker %q, recorded %q): refused", ns.Name, m, ns.Marker)
	}
	for range 50 {
		pids := netnsPids(ns.Name)
		if len(pids) == 0 {
			break
		}
		for _, pid := range pids {
			syscall.Kill(pid, syscall.SIGKILL)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return ip("netns", "del", ns.Name)
}

func netnsInode(name string) (uint64, error) {
	var st syscall.Stat_t
	if err := syscall.Stat(filepath.Join("/run/netns", name), &st); err != nil {
		if errors.Is(err, syscall.ENOENT) {
			return 0, os.ErrNotExist
		}
		return 0, fmt.Errorf("namespace %q: %w", name, err)
	}
	return st.Ino, nil
}

// netnsMarker returns the alias of lo in namespace name, where the lab puts its marker.
func netnsMarker(name string) string {
	out, _ := exec.Command("ip", "-n", name, "-o", "link", "show", "dev", "lo").Output()
	_, alias, found := strings.Cut(string(out), " alias ")
	if !found {
		return ""
	}
	return strings.TrimSpace(alias)
}

// netnsPids lists live (not zombie) processes in namespace name.
func netnsPids(name string) []int {
	out, _ := exec.Command("ip", "netns", "pids", name).Output()
	var pids []int
	for _, f := range strings.Fields(string(out)) {
		if pid, err := strconv.Atoi(f); err == nil && processAlive(pid) {
			pids = append(pids, pid)
		}
	}
	return pids
}

func listNetns() ([]string, error) {
	out, err := exec.Command("ip", "netns", "list").Output()
	var names []string
	for _, line := range strings.Split(string(out), "\n") {
		if f := strings.Fields(line); len(f) > 0 {
			names = append(names, f[0])
		}
	}
	return names, err
}

func listLinks() ([]string, error) {
	out, err := exec.Command("ip", "-o", "link", "show").Output()
	var names []string
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		name := strings.TrimSuffix(f[1], ":")
		if i := strings.IndexByte(name, '@'); i >= 0 {
			name = name[:i]
		}
		names = append(names, name)
	}
	return names, err
}

func linkExists(name string) bool {
	return exec.Command("ip", "link", "show", "dev", name).Run() == nil
}

func anyHasPrefix(names []string, prefix string) bool {
	for _, n := range names {
		if strings.HasPrefix(n, prefix) {
			return true
		}
	}
	return false
}

// processAlive reports whether pid runs and is not a zombie.
func processAlive(pid int) bool {
	if pid <= 0 || syscall.Kill(pid, 0) != nil {
		return false
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	i := strings.LastIndexByte(string(stat), ')')
	return i < 0 || i+2 >= len(stat) || stat[i+2] != 'Z'
}

// ip runs `ip args...` in the root namespace.
func ip(args ...string) error {
	out, err := exec.Command("ip", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ip %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}
