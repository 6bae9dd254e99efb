package manager

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc/health/grpc_health_v1"

	"github.com/herald-lb/herald/announcers"
)

// supervised is one announcer: its desired state, its current process and its health.
type supervised struct {
	spec Spec
	m    *Manager
	log  logr.Logger
	// kind is what the announcer serves, the key callers route by (Manager.For): Spec.Kind,
	// or what the executable reported when New asked it. Set in New, read-only after.
	kind string

	// kick wakes the sender; wake tells the supervisor a call timed out (see suspect).
	kick chan struct{}
	wake chan struct{}

	// sendMu serialises the calls that change the announcer's state: the sender's and the
	// replay after a start. Callers never take it.
	sendMu sync.Mutex

	mu sync.Mutex
	// The desired state, whatever runs.
	config     *announcers.Config
	configGen  uint64
	desired    map[string]announcers.Announcement
	generation uint64
	dirty      map[string]struct{} // keys changed since the last send
	wantFull   bool                // SetDesired was called: send the whole set
	lastChange time.Time
	// What the running process holds.
	inst         *instance
	inSync       bool   // inst holds the desired set at acked, so deltas may follow
	acked        uint64 // the generation inst acknowledged
	configAcked  uint64
	rejected     map[string]string // key → reason, from inst's acknowledgements
	sendingSince time.Time         // start of the call in flight, zero when none
	sendErr      string            // the last send's failure, until one succeeds
	suspect      string            // why inst must be replaced, "" when it need not
	// changed is closed and replaced on every change that waiters and the idle supervisor
	// look at.
	changed chan struct{}
	health  Health
}

func newSupervised(m *Manager, spec Spec) *supervised {
	state, msg := StateStopped, ""
	if spec.IdleTimeout > 0 {
		state, msg = StateIdle, "not started: nothing to announce"
	}
	return &supervised{spec: spec, m: m, log: m.log.WithValues("announcer", spec.Name), kind: spec.Kind,
		kick: make(chan struct{}, 1), wake: make(chan struct{}, 1),
		desired: map[string]announcers.Announcement{}, dirty: map[string]struct{}{}, rejected: map[string]string{},
		changed: make(chan struct{}),
		health:  Health{Name: spec.Name, Kind: spec.Kind, State: state, Message: msg, Since: time.Now()}}
}

// instance is one process; ctx ends when it dies, which cancels calls in flight to it.
type instance struct {
	client *plugin.Client
	rpc    plugin.ClientProtocol
	ann    announcers.Announcer
	pid    int
	ctx    context.Context
	cancel context.CancelFunc
	gone   chan struct{} // closed when the event stream ends
	// release ends the goroutine whose locked OS thread started the process (see launch).
	release func()
}

// call returns a context bounded by timeout, by ctx and by the instance's life.
func (i *instance) call(ctx context.Context, timeout time.Duration) (context.Context, func()) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	stop := context.AfterFunc(i.ctx, cancel)
	return ctx, func() { stop(); cancel() }
}

func (s *supervised) current() *instance {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.inst
}

// run starts the announcer when it is needed and restarts it with backoff until ctx is done.
func (s *supervised) run(ctx context.Context) {
	backoff := s.m.opts.InitialBackoff
	failed := false
	for {
		if !s.waitNeeded(ctx) {
			return
		}
		if failed {
			s.mu.Lock()
			s.health.Restarts++
			s.mu.Unlock()
			restartsTotal.WithLabelValues(s.spec.Name).Inc()
		}
		started := time.Now()
		inst, err := s.start(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			state := StateUnhealthy
			if errors.Is(err, ErrChecksum) || errors.Is(err, plugin.ErrChecksumsDoNotMatch) || errors.Is(err, errExecutable) {
				state = StateRefused
			}
			s.setHealth(state, err.Error())
			s.log.Error(err, "Announcer failed to start", "state", state, "retryIn", backoff)
			failed = true
		} else {
			reason, idle := s.watch(ctx, inst)
			if ctx.Err() != nil {
				return // Stop drains and kills it
			}
			if idle {
				backoff, failed = s.m.opts.InitialBackoff, false
				continue
			}
			s.down(inst, reason)
			failed = true
			if time.Since(started) >= s.m.opts.StableAfter {
				backoff = s.m.opts.InitialBackoff
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, s.m.opts.MaxBackoff)
	}
}

// waitNeeded returns at once for an announcer that always runs; one that starts on demand
// waits, idle, until it has something to serve. False means ctx ended.
func (s *supervised) waitNeeded(ctx context.Context) bool {
	if s.spec.IdleTimeout <= 0 {
		return ctx.Err() == nil
	}
	checked := false
	for {
		s.mu.Lock()
		need := s.neededLocked()
		ch := s.changed
		s.mu.Unlock()
		if need {
			return true
		}
		if !checked {
			// A broken executable is a failure even while nothing needs it: report it
			// now, not when the first address arrives.
			checked = true
			if err := s.checkExecutable(); err != nil {
				s.setHealth(StateRefused, err.Error())
				s.log.Error(err, "Announcer refused", "state", StateRefused)
			} else if h := s.healthNow(); h.State != StateIdle {
				s.setHealth(StateIdle, "not started: nothing to announce")
			}
		}
		select {
		case <-ctx.Done():
			return false
		case <-ch:
		}
	}
}

// watch returns why the instance must be replaced, or idle when it has had nothing to do
// for the spec's IdleTimeout (it is stopped then), or "" when ctx ends.
//
// The status check runs beside the loop: it may wait StatusTimeout for a hung process, and
// the pings must go on meanwhile, or a process stopped just as a status check began would be
// found StatusTimeout later instead of within PingInterval plus PingTimeout.
func (s *supervised) watch(ctx context.Context, inst *instance) (reason string, idle bool) {
	ping := time.NewTicker(s.m.opts.PingInterval)
	defer ping.Stop()
	status := time.NewTicker(s.m.opts.HealthInterval)
	defer status.Stop()
	statusDone := make(chan statusCheck, 1)
	checking := false
	for {
		select {
		case <-ctx.Done():
			return "", false
		case <-inst.gone:
			if inst.client.Exited() {
				return "process exited", false
			}
			return "event stream ended", false
		case <-s.wake:
			s.mu.Lock()
			why := s.suspect
			s.mu.Unlock()
			if why != "" {
				return "not answering: " + why, false
			}
		case <-ping.C:
			if inst.client.Exited() {
				return "process exited", false
			}
			if err := s.ping(inst); err != nil {
				return fmt.Sprintf("not answering: health check: %v", err), false
			}
		case <-status.C:
			if !checking {
				checking = true
				go func() { statusDone <- s.checkStatus(inst) }()
			}
		case st := <-statusDone:
			checking = false
			if st.err != nil {
				return "not answering: status: " + st.err.Error(), false
			}
			s.setHealth(st.state, st.msg)
			if s.retireIfIdle(inst) {
				return "", true
			}
			s.poke() // retries a send that failed
		}
	}
}

// ping runs go-plugin's health check with a deadline (its own Ping has none, so a stopped
// process would hang the supervisor).
func (s *supervised) ping(inst *instance) error {
	ctx, done := inst.call(context.Background(), s.m.opts.PingTimeout)
	defer done()
	if gc, ok := inst.rpc.(*plugin.GRPCClient); ok {
		_, err := grpc_health_v1.NewHealthClient(gc.Conn).Check(ctx, &grpc_health_v1.HealthCheckRequest{Service: plugin.GRPCServiceName})
		return err
	}
	return inst.rpc.Ping()
}

// statusCheck is what a status check found: the announcer's state and message, or err.
type statusCheck struct {
	state State
	msg   string
	err   error
}

// checkStatus asks the announcer how it is, within StatusTimeout. The watch loop records
// the answer, so an answer that comes after the instance was replaced records nothing.
func (s *supervised) checkStatus(inst *instance) statusCheck {
	ctx, done := inst.call(context.Background(), s.m.opts.StatusTimeout)
	defer done()
	st, err := inst.ann.Status(ctx)
	switch {
	case err != nil:
		return statusCheck{err: err}
	case st.Health == announcers.HealthHealthy:
		return statusCheck{state: StateHealthy}
	case st.Health == announcers.HealthUnhealthy:
		return statusCheck{state: StateUnhealthy, msg: st.Message}
	}
	return statusCheck{state: StateDegraded, msg: st.Message}
}

// retireIfIdle stops an on-demand announcer that has had nothing to serve, and no change,
// for its IdleTimeout. Holding sendMu, no call is in flight when it decides.
func (s *supervised) retireIfIdle(inst *instance) bool {
	if s.spec.IdleTimeout <= 0 {
		return false
	}
	s.sendMu.Lock()
	s.mu.Lock()
	idle := s.inst == inst && !s.neededLocked() && time.Since(s.lastChange) >= s.spec.IdleTimeout
	if idle {
		s.inst, s.inSync, s.health.PID = nil, false, 0
		s.setHealthLocked(StateIdle, fmt.Sprintf("stopped after %s with nothing to announce", s.spec.IdleTimeout))
	}
	s.mu.Unlock()
	s.sendMu.Unlock()
	if !idle {
		return false
	}
	upGauge.WithLabelValues(s.spec.Name).Set(0)
	s.log.Info("Announcer idle, stopping it", "idleFor", s.spec.IdleTimeout)
	s.end(context.Background(), inst, true)
	return true
}

// down ends a dead or hung instance at once; the caller restarts.
func (s *supervised) down(inst *instance, reason string) {
	s.mu.Lock()
	if s.inst == inst {
		s.inst, s.inSync, s.health.PID = nil, false, 0
	}
	s.suspect = ""
	s.setHealthLocked(StateUnhealthy, reason)
	s.mu.Unlock()
	upGauge.WithLabelValues(s.spec.Name).Set(0)
	s.log.Error(errors.New(reason), "Announcer down, restarting", "pid", inst.pid)
	inst.kill()
}

// stop drains the running instance, then ends it (Manager.Stop); when keep, it kills it
// without a drain (Manager.StopKeeping).
func (s *supervised) stop(ctx context.Context, keep bool) error {
	s.mu.Lock()
	inst := s.inst
	s.inst, s.inSync, s.health.PID = nil, false, 0
	s.notifyLocked()
	s.mu.Unlock()
	upGauge.WithLabelValues(s.spec.Name).Set(0)
	var err error
	switch {
	case inst != nil && keep:
		// SIGKILL: a graceful exit would close the BGP sessions with a NOTIFICATION, which
		// ends the router's graceful-restart helper mode and flushes the paths.
		s.log.Info("Stopped without draining: its announcements stay with its peers", "pid", inst.pid)
		inst.kill()
	case inst != nil:
		err = s.end(ctx, inst, false)
	}
	s.setHealth(StateStopped, "")
	return err
}

// end drains the instance (withdraw everything), within ctx and CallTimeout, and ends it:
// gracefully when the drain worked, at once when it did not.
func (s *supervised) end(ctx context.Context, inst *instance, quiet bool) error {
	// The instance context may be cancelled with the supervisor's already: not ctx's parent.
	ctx, cancel := context.WithTimeout(ctx, s.m.opts.CallTimeout)
	defer cancel()
	n, err := inst.ann.Drain(ctx)
	if err != nil {
		s.log.Error(err, "Drain failed; killing anyway")
		inst.kill()
		return fmt.Errorf("announcer %q: drain: %w", s.spec.Name, err)
	}
	if !quiet || n > 0 {
		s.log.Info("Drained", "withdrawn", n)
	}
	inst.close()
	return nil
}
