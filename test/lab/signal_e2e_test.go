//go:build e2e

package lab_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/herald-lb/herald/test/lab"
)

// childLab runs this test binary as a child that builds a one-node lab, prints its prefix and
// waits to be killed. It returns the child and the prefix.
func childLab(t *testing.T) (*exec.Cmd, string) {
	t.Helper()
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), "HERALD_LAB_CHILD=1")
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "prefix ") {
		t.Fatalf("child lab: %q %v", line, err)
	}
	prefix := strings.TrimSpace(strings.TrimPrefix(line, "prefix "))
	if got := listNetns(t, prefix); len(got) != 3 {
		t.Fatalf("child lab namespaces %v, want 3", got)
	}
	return cmd, prefix
}

// holdLab is the child side of childLab, run from TestMain: it builds a lab with a process
// in node-0, prints the prefix and waits for the parent to kill it.
func holdLab() {
	l, err := lab.Create(lab.Options{Nodes: 1})
	if err != nil {
		fmt.Println("error", err)
		os.Exit(1)
	}
	sleeper := l.Nodes[0].Command(context.Background(), "sleep", "300")
	if err := sleeper.Start(); err != nil {
		fmt.Println("error", err)
		os.Exit(1)
	}
	fmt.Printf("prefix %s\n", l.Prefix)
	time.Sleep(time.Minute)
	l.Close()
	os.Exit(1)
}

func TestE2ESIGTERMRemovesTheLab(t *testing.T) {
	cmd, prefix := childLab(t)
	cmd.Process.Signal(syscall.SIGTERM)
	err := cmd.Wait()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 128+int(syscall.SIGTERM) {
		t.Fatalf("child exit: %v, want status %d from the lab's signal handler", err, 128+int(syscall.SIGTERM))
	}
	if got := listNetns(t, prefix); len(got) != 0 {
		t.Fatalf("namespaces left after SIGTERM: %v", got)
	}
	if got := listLinks(t, prefix); len(got) != 0 {
		t.Fatalf("links left after SIGTERM: %v", got)
	}
}

func TestE2EStaleLabOfADeadOwnerIsReaped(t *testing.T) {
	cmd, prefix := childLab(t)
	cmd.Process.Kill() // no chance to clean up
	cmd.Wait()
	if got := listNetns(t, prefix); len(got) != 3 {
		t.Fatalf("namespaces after SIGKILL: %v, want the 3 left behind", got)
	}
	stale := map[string]string{}
	for _, name := range listNetns(t, prefix) {
		stale[name] = marker(t, name)
	}
	l := lab.New(t, lab.Options{Nodes: 0}) // reaps stale labs first; may reuse the freed id
	for name, m := range stale {
		if _, err := os.Stat("/run/netns/" + name); err == nil && marker(t, name) == m {
			t.Errorf("stale namespace %s survived", name)
		}
	}
	if l.Prefix != prefix {
		if got := listNetns(t, prefix); len(got) != 0 {
			t.Fatalf("stale namespaces not reaped: %v", got)
		}
	}
	if got := listLinks(t, prefix+"n0"); len(got) != 0 {
		t.Fatalf("stale node link not reaped: %v", got)
	}
}

// marker returns lo's alias in netns, where the lab marks the namespaces it created.
func marker(t *testing.T, netns string) string {
	out, err := exec.Command("ip", "-n", netns, "-o", "link", "show", "dev", "lo").Output()
	if err != nil {
		t.Fatal(err)
	}
	_, alias, _ := strings.Cut(string(out), " alias ")
	if strings.TrimSpace(alias) == "" {
		t.Fatalf("namespace %s has no lab marker", netns)
	}
	return strings.TrimSpace(alias)
}
