package manager

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/go-logr/logr"
)

// The orphan tests run this test binary as a stand-in speaker: a process that runs a Manager
// with one announcer, prints the announcer's pid and waits to be killed.
const (
	envChildOwner  = "MANAGER_TEST_CHILD_OWNER"
	envChildBinary = "MANAGER_TEST_CHILD_ANNOUNCER"
	envChildNoPDS  = "MANAGER_TEST_CHILD_NO_PDEATHSIG"
)

func TestMain(m *testing.M) {
	if owner := os.Getenv(envChildOwner); owner != "" {
		os.Exit(runChild(owner))
	}
	os.Exit(m.Run())
}

func runChild(owner string) int {
	m, err := New(logr.Discard(), []Spec{{Name: "x", Path: os.Getenv(envChildBinary)}},
		Options{Owner: owner, NoParentDeathSignal: os.Getenv(envChildNoPDS) != ""})
	if err != nil {
		fmt.Println("error", err)
		return 1
	}
	m.Start(context.Background())
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if h := m.Health()[0]; h.State == StateHealthy {
			fmt.Printf("pid %d\n", h.PID)
			time.Sleep(5 * time.Minute) // until the test kills it
			return 0
		}
	}
	fmt.Println("error announcer not healthy:", m.Health()[0].Message)
	return 1
}

// startChild runs the stand-in speaker and returns it and its announcer's pid.
func startChild(t *testing.T, owner string, pdeathsig bool) (*exec.Cmd, int) {
	t.Helper()
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), envChildOwner+"="+owner, envChildBinary+"="+testAnnouncer(t))
	if !pdeathsig {
		cmd.Env = append(cmd.Env, envChildNoPDS+"=1")
	}
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	line, err := bufio.NewReader(out).ReadString('\n')
	pid, perr := strconv.Atoi(strings.TrimSpace(strings.TrimPrefix(line, "pid ")))
	if err != nil || perr != nil || !strings.HasPrefix(line, "pid ") {
		t.Fatalf("stand-in speaker said %q (%v)", line, err)
	}
	t.Cleanup(func() { _ = syscall.Kill(pid, syscall.SIGKILL) })
	return cmd, pid
}

func TestAnnouncersDieWithTheSpeaker(t *testing.T) {
	cmd, pid := startChild(t, "test-"+t.Name(), true)
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	_ = cmd.Wait()
	waitFor(t, fmt.Sprintf("announcer %d to die with its speaker", pid), time.Second, func() bool { return gone(pid) })
	t.Logf("announcer gone %s after the speaker was killed", time.Since(killed))
}

func TestStartKillsLeftoverAnnouncers(t *testing.T) {
	owner := fmt.Sprintf("test-%s-%d", t.Name(), os.Getpid())
	cmd, orphan := startChild(t, owner, false)
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
	time.Sleep(200 * time.Millisecond)
	if gone(orphan) {
		t.Fatalf("without the parent-death signal announcer %d should outlive its speaker", orphan)
	}

	// A live manager's announcer with the same owner is not a leftover.
	bin := testAnnouncer(t)
	var logs logBuffer
	live := startWith(t, logr.Discard(), Options{Owner: owner + "-live"}, Spec{Name: "live", Path: bin})
	livePID := healthOf(live, "live").PID
	m := startWith(t, logs.logger(t), Options{Owner: owner}, Spec{Name: "x", Path: bin})
	if !gone(orphan) {
		t.Errorf("leftover announcer %d still runs after a speaker with its owner started", orphan)
	}
	if !logs.contains("Killing an announcer a previous speaker left behind", fmt.Sprintf(`"pid"=%d`, orphan)) {
		t.Error("no log line names the leftover that was killed")
	}
	startWith(t, logr.Discard(), Options{Owner: owner + "-live"}, Spec{Name: "other", Path: bin})
	if gone(livePID) || healthOf(live, "live").PID != livePID {
		t.Errorf("the announcer %d of a running speaker with the same owner was killed", livePID)
	}
	if gone(healthOf(m, "x").PID) {
		t.Error("the new speaker's own announcer is not running")
	}
}
