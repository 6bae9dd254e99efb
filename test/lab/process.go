package lab

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Command returns a command that runs name inside the host's namespace.
func (h *Host) Command(ctx context.Context, name string, args ...string) *exec.Cmd {
	return exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", h.Netns, name}, args...)...)
}

// Run runs name to completion inside the namespace, bounded by one minute, and returns its
// combined output; it fails the test with that output on error.
func (h *Host) Run(t testing.TB, name string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := h.Command(ctx, name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %s %s: %v\n%s", h.Name, name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// Process is a background command in a namespace.
type Process struct {
	Cmd  *exec.Cmd
	host *Host
	out  syncBuffer
	done chan struct{}
	err  error
}

// Start starts name in the background inside the namespace, in its own process group, which
// the test's cleanup kills.
func (h *Host) Start(t testing.TB, name string, args ...string) *Process {
	t.Helper()
	p := &Process{host: h, done: make(chan struct{})}
	p.Cmd = h.Command(context.Background(), name, args...)
	p.Cmd.Stdout = &p.out
	p.Cmd.Stderr = &p.out
	p.Cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := p.Cmd.Start(); err != nil {
		t.Fatalf("%s: starting %s: %v", h.Name, name, err)
	}
	go func() {
		p.err = p.Cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() { p.Kill() })
	return p
}

// PID is the process id (`ip netns exec` execs the command, so it is the command's own).
func (p *Process) PID() int { return p.Cmd.Process.Pid }

// Signal sends sig to the process group.
func (p *Process) Signal(sig syscall.Signal) error {
	return syscall.Kill(-p.PID(), sig)
}

// Kill kills the process group and waits for the process to exit.
func (p *Process) Kill() {
	syscall.Kill(-p.PID(), syscall.SIGKILL)
	<-p.done
}

// Wait waits for the process to exit and returns its exit error.
func (p *Process) Wait() error {
	<-p.done
	return p.err
}

// Done is closed when the process has exited.
func (p *Process) Done() <-chan struct{} { return p.done }

// Output returns the combined stdout and stderr written so far.
func (p *Process) Output() string { return p.out.String() }

// String names the process for messages.
func (p *Process) String() string {
	return fmt.Sprintf("%s: %s (pid %d)", p.host.Name, strings.Join(p.Cmd.Args[3:], " "), p.PID())
}

type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
