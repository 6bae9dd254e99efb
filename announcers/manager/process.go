package manager

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/hashicorp/go-plugin"

	"github.com/herald-lb/herald/announcers"
)

// errExecutable is wrapped when the executable cannot be used at all (missing, not a file).
var errExecutable = errors.New("executable unusable")

// killGrace is how long a graceful end may take before the process is killed.
const killGrace = 3 * time.Second

// start launches a new process, checks it, and replays configuration and the full set.
func (s *supervised) start(ctx context.Context) (*instance, error) {
	s.mu.Lock()
	if s.health.State != StateRefused {
		// A refused executable stays refused while it is tried again: callers are told at
		// once, not "starting" for the moment of each attempt.
		s.setHealthLocked(StateStarting, "")
	}
	s.mu.Unlock()
	inst, info, err := s.launchChecked(ctx)
	if err != nil {
		return nil, err
	}
	pid := inst.pid
	if err := s.forwardEvents(inst); err != nil {
		inst.kill()
		return nil, err
	}
	if err := s.replay(inst); err != nil {
		inst.kill()
		return nil, err
	}
	s.mu.Lock()
	s.health.Kind = info.Kind
	s.mu.Unlock()
	s.setHealth(StateHealthy, "")
	s.log.Info("Announcer running", "kind", info.Kind, "version", info.Version, "pid", pid, "generation", s.healthNow().Generation)
	return inst, nil
}

// launchChecked starts a process (its executable checked against Spec.SHA256), dispenses
// the announcer and asks its Info within CallTimeout; it refuses one that speaks another
// protocol version. The instance lives until ctx ends or it is killed.
func (s *supervised) launchChecked(ctx context.Context) (*instance, announcers.Info, error) {
	cfg := &plugin.ClientConfig{
		HandshakeConfig:  announcers.Handshake,
		Plugins:          announcers.PluginMap,
		AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC},
		AutoMTLS:         true,
		Logger:           newHCLogr(s.log),
		StartTimeout:     s.m.opts.StartTimeout,
		SyncStdout:       io.Discard,
		SyncStderr:       io.Discard,
	}
	if s.spec.SHA256 != "" {
		sum, _ := hex.DecodeString(s.spec.SHA256) // checked in New
		if s.spec.Command == nil {
			cfg.SecureConfig = &plugin.SecureConfig{Checksum: sum, Hash: sha256.New()}
		} else if err := checkFile(s.spec.Path, sum); err != nil {
			return nil, announcers.Info{}, err
		}
	}
	cfg.Cmd = s.command()
	client, rpc, release, err := s.launch(cfg)
	if err != nil {
		if errors.Is(err, plugin.ErrChecksumsDoNotMatch) {
			return nil, announcers.Info{}, fmt.Errorf("%w, refused: executable %s", ErrChecksum, s.spec.Path)
		}
		if errors.Is(err, os.ErrNotExist) || errors.Is(err, syscall.EACCES) {
			return nil, announcers.Info{}, fmt.Errorf("executable %s: %w: %w", s.spec.Path, errExecutable, err)
		}
		return nil, announcers.Info{}, fmt.Errorf("start %s: %w", s.spec.Path, err)
	}
	pid, _ := strconv.Atoi(client.ID())
	instCtx, cancel := context.WithCancel(ctx)
	inst := &instance{client: client, rpc: rpc, pid: pid, ctx: instCtx, cancel: cancel, gone: make(chan struct{}), release: release}
	raw, err := rpc.Dispense(announcers.PluginName)
	if err != nil {
		inst.kill()
		return nil, announcers.Info{}, fmt.Errorf("dispense: %w", err)
	}
	inst.ann = raw.(announcers.Announcer)
	callCtx, done := inst.call(ctx, s.m.opts.CallTimeout)
	info, err := inst.ann.Info(callCtx)
	done()
	if err != nil {
		inst.kill()
		return nil, announcers.Info{}, fmt.Errorf("info: %w", err)
	}
	if info.ProtocolVersion != announcers.ProtocolVersion {
		inst.kill()
		return nil, announcers.Info{}, fmt.Errorf("announcer speaks protocol %d, want %d", info.ProtocolVersion, announcers.ProtocolVersion)
	}
	return inst, info, nil
}

// learnKind asks the executable of an announcer configured without a Spec.Kind which kind it
// serves: callers route by kind (Manager.For), and an announcer that starts on demand would
// otherwise never be routed anything to start for. The process is killed at once. An
// executable that cannot say keeps no kind; Start then reports why it does not run.
func (s *supervised) learnKind() {
	inst, info, err := s.launchChecked(context.Background())
	if err != nil {
		s.log.Error(err, "Asking the announcer for its kind failed; nothing is routed to it")
		return
	}
	inst.kill()
	s.kind, s.health.Kind = info.Kind, info.Kind
	s.log.Info("Learned the announcer's kind from its executable", "kind", info.Kind)
}

// launch starts the process from a goroutine locked to its OS thread for as long as the
// process lives. The parent-death signal (SIGKILL) is tied to the thread that forked the
// child, not to the process: started from an ordinary goroutine, the child would be killed
// whenever the Go runtime happened to end that thread. When release is called the goroutine
// returns still locked, which ends the thread; that kills the child if it somehow lives.
func (s *supervised) launch(cfg *plugin.ClientConfig) (*plugin.Client, plugin.ClientProtocol, func(), error) {
	type started struct {
		client *plugin.Client
		rpc    plugin.ClientProtocol
		err    error
	}
	ended := make(chan struct{})
	res := make(chan started, 1)
	go func() {
		runtime.LockOSThread() // never unlocked, on purpose: see above
		client := plugin.NewClient(cfg)
		rpc, err := client.Client()
		if err != nil {
			client.Kill()
		}
		res <- started{client, rpc, err}
		if err == nil {
			<-ended
		}
	}()
	r := <-res
	if r.err != nil {
		return nil, nil, nil, r.err
	}
	var once sync.Once
	return r.client, r.rpc, func() { once.Do(func() { close(ended) }) }, nil
}

// command makes the process: Spec.Command or Path and Args, with the speaker's environment,
// the markers that identify its owner (see orphans.go) and the parent-death signal.
func (s *supervised) command() *exec.Cmd {
	var cmd *exec.Cmd
	if s.spec.Command != nil {
		cmd = s.spec.Command()
	} else {
		cmd = exec.Command(s.spec.Path, s.spec.Args...)
		cmd.Env = append(os.Environ(), s.spec.Env...)
	}
	if cmd.Env == nil {
		cmd.Env = os.Environ()
	}
	cmd.Env = append(cmd.Env, s.m.markers()...)
	if !s.m.opts.NoParentDeathSignal {
		if cmd.SysProcAttr == nil {
			cmd.SysProcAttr = &syscall.SysProcAttr{}
		}
		cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
	}
	return cmd
}

// kill ends the process at once (SIGKILL first: go-plugin's own Kill asks the plugin to shut
// down over gRPC without a deadline, which a stopped process never answers).
func (i *instance) kill() {
	i.cancel()
	if i.pid > 0 && !i.client.Exited() {
		_ = syscall.Kill(i.pid, syscall.SIGKILL)
	}
	i.close()
}

// close ends the process gracefully, and kills it when that takes longer than killGrace.
func (i *instance) close() {
	i.cancel()
	done := make(chan struct{})
	go func() {
		i.client.Kill()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(killGrace):
		if i.pid > 0 && !i.client.Exited() {
			_ = syscall.Kill(i.pid, syscall.SIGKILL)
		}
		<-done
	}
	if i.release != nil {
		i.release()
	}
}

// checkExecutable reports a missing executable, or one without its configured checksum.
func (s *supervised) checkExecutable() error {
	st, err := os.Stat(s.spec.Path)
	if err != nil {
		return fmt.Errorf("executable %s: %w: %w", s.spec.Path, errExecutable, err)
	}
	if !st.Mode().IsRegular() || st.Mode().Perm()&0o111 == 0 {
		return fmt.Errorf("executable %s: %w: not an executable file (%s)", s.spec.Path, errExecutable, st.Mode())
	}
	if s.spec.SHA256 != "" {
		sum, _ := hex.DecodeString(s.spec.SHA256)
		return checkFile(s.spec.Path, sum)
	}
	return nil
}

func checkFile(path string, want []byte) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("executable %s: %w: %w", path, errExecutable, err)
	}
	defer func() { _ = f.Close() }()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return fmt.Errorf("executable %s: %w", path, err)
	}
	if got := h.Sum(nil); string(got) != string(want) {
		// The reason first: health messages travel in the heartbeat, shortened to 256 bytes.
		return fmt.Errorf("%w, refused: executable %s has sha256 %x, configured %x", ErrChecksum, path, got, want)
	}
	return nil
}

// forwardEvents subscribes to the announcer's events; when the stream ends (the process died
// or the instance ended) it closes inst.gone, which is the fastest crash signal there is.
func (s *supervised) forwardEvents(inst *instance) error {
	events, err := inst.ann.Events(inst.ctx)
	if err != nil {
		return fmt.Errorf("events: %w", err)
	}
	s.m.fwd.Add(1)
	go func() {
		defer s.m.fwd.Done()
		defer close(inst.gone)
		for e := range events {
			s.m.publish(s.log, Event{Announcer: s.spec.Name, Event: e})
		}
	}()
	return nil
}
