package manager

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Announcers outlive a speaker killed with Pdeathsig disabled, or one whose creating thread
// somehow survived it; a leftover keeps answering for addresses with a dead node's MAC. Each
// announcer therefore carries two markers in its environment: the speaker's Owner (e.g. its
// node) and the speaker process itself (pid and start time, so a reused pid is not taken for
// it). A starting speaker kills every process in its own network namespace that carries its
// Owner and whose marked parent no longer runs.
const (
	envOwner  = "HERALD_ANNOUNCER_OWNER"
	envParent = "HERALD_ANNOUNCER_PARENT"
)

// markers are the environment entries that identify this speaker in its announcers.
func (m *Manager) markers() []string {
	if m.opts.Owner == "" {
		return nil
	}
	self := os.Getpid()
	start, _ := startTime(self)
	return []string{envOwner + "=" + m.opts.Owner, fmt.Sprintf("%s=%d:%d", envParent, self, start)}
}

// reapOrphans kills the announcers a previous speaker with this Owner left behind, and waits
// (bounded) until they are gone.
func (m *Manager) reapOrphans() {
	orphans := m.findOrphans()
	for _, pid := range orphans {
		m.log.Info("Killing an announcer a previous speaker left behind", "pid", pid, "owner", m.opts.Owner)
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
			m.log.Error(err, "Killing a leftover announcer", "pid", pid)
		}
	}
	deadline := time.Now().Add(2 * time.Second)
	for _, pid := range orphans {
		for alive(pid) && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		if alive(pid) {
			m.log.Error(errors.New("still running"), "A leftover announcer did not die", "pid", pid)
		}
	}
}

// findOrphans lists the processes in this network namespace marked with this Owner whose
// marked parent is gone.
func (m *Manager) findOrphans() []int {
	self := os.Getpid()
	netns, err := os.Readlink("/proc/self/ns/net")
	if err != nil {
		m.log.Error(err, "Cannot look for leftover announcers")
		return nil
	}
	entries, err := os.ReadDir("/proc")
	if err != nil {
		m.log.Error(err, "Cannot look for leftover announcers")
		return nil
	}
	var out []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == self {
			continue
		}
		env, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
		if err != nil {
			continue // gone, or not ours to read
		}
		vars := parseEnviron(env)
		if vars[envOwner] != m.opts.Owner {
			continue
		}
		if ns, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/net", pid)); err != nil || ns != netns {
			continue
		}
		if parentRuns(vars[envParent]) || !alive(pid) {
			continue
		}
		out = append(out, pid)
	}
	return out
}

func parseEnviron(b []byte) map[string]string {
	out := map[string]string{}
	for _, kv := range bytes.Split(b, []byte{0}) {
		k, v, ok := strings.Cut(string(kv), "=")
		if ok && (k == envOwner || k == envParent) {
			out[k] = v
		}
	}
	return out
}

// parentRuns reports whether the "pid:starttime" marker names a process that still runs.
func parentRuns(marker string) bool {
	p, s, ok := strings.Cut(marker, ":")
	pid, err1 := strconv.Atoi(p)
	want, err2 := strconv.ParseUint(s, 10, 64)
	if !ok || err1 != nil || err2 != nil {
		return false
	}
	got, err := startTime(pid)
	return err == nil && got == want && alive(pid)
}

// stat returns the fields of /proc/<pid>/stat after the command name (field 3 onwards).
func stat(pid int) ([]string, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return nil, err
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return nil, fmt.Errorf("/proc/%d/stat: no command name", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 20 {
		return nil, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(f))
	}
	return f, nil
}

// startTime is the process's start time in clock ticks since boot (field 22).
func startTime(pid int) (uint64, error) {
	f, err := stat(pid)
	if err != nil {
		return 0, err
	}
	return strconv.ParseUint(f[19], 10, 64)
}

// alive reports whether the process exists and is not a zombie.
func alive(pid int) bool {
	f, err := stat(pid)
	return err == nil && f[0] != "Z" && f[0] != "X"
}
