// Package manager is the speaker's side of the announcer protocol: it starts the announcer
// executables named in the configuration through hashicorp/go-plugin (AutoMTLS on, SHA-256
// checksum when configured), keeps each one's configuration and full desired set, health-checks
// them, restarts a crashed one with exponential backoff (a go-plugin Client cannot be restarted,
// so each start makes a new one) and replays Configure and the full set, forwards their events,
// and on Stop drains then kills them. One announcer failing never affects the others.
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
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"github.com/hashicorp/go-plugin"

	"github.com/herald-lb/herald/announcers"
)

// Spec configures one announcer.
type Spec struct {
	// Name identifies the announcer in every call, in health and in events (e.g. "arp").
	Name string
	// Path is the announcer executable; its checksum is checked when SHA256 is set.
	Path string
	Args []string
	// Env is added to the speaker's environment.
	Env []string
	// SHA256 is the hex SHA-256 the executable must have; empty skips the check.
	SHA256 string
	// Command, when set, makes the process instead of Path and Args, e.g. to run the announcer
	// inside a network namespace with `ip netns exec`. Path is still the file checked.
	Command func() *exec.Cmd
}

// Options tune supervision; zero values select the defaults.
type Options struct {
	// InitialBackoff is the wait before the first restart; it doubles up to MaxBackoff and
	// starts over once an announcer has stayed up for StableAfter.
	InitialBackoff time.Duration
	MaxBackoff     time.Duration
	StableAfter    time.Duration
	// HealthInterval is how often Ping and Status are called.
	HealthInterval time.Duration
	// CallTimeout bounds the manager's own calls (health checks, replay).
	CallTimeout time.Duration
	// StartTimeout bounds the go-plugin handshake.
	StartTimeout time.Duration
}

func (o Options) withDefaults() Options {
	set := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	set(&o.InitialBackoff, 50*time.Millisecond)
	set(&o.MaxBackoff, 30*time.Second)
	set(&o.StableAfter, 10*time.Second)
	set(&o.HealthInterval, 2*time.Second)
	set(&o.CallTimeout, 10*time.Second)
	set(&o.StartTimeout, 10*time.Second)
	return o
}

// State is an announcer's state as the manager sees it.
type State string

// States.
const (
	StateStarting  State = "starting"
	StateHealthy   State = "healthy"
	StateDegraded  State = "degraded" // running, but it reports a problem
	StateUnhealthy State = "unhealthy"
	StateRefused   State = "refused" // the executable failed its checksum or handshake
	StateStopped   State = "stopped"
)

// Health is one announcer's health.
type Health struct {
	Name  string
	Kind  string
	State State
	// Message says why the state is not healthy, or what the announcer reports.
	Message string
	// Restarts counts starts after the first.
	Restarts int
	// Generation is the last generation the running announcer acknowledged.
	Generation uint64
	// PID is the running process's id, 0 when none runs.
	PID   int
	Since time.Time
}

// Event is an announcer's event with the announcer's name.
type Event struct {
	Announcer string
	announcers.Event
}

var (
	// ErrUnknownAnnouncer is returned for a name no Spec has.
	ErrUnknownAnnouncer = errors.New("unknown announcer")
	// ErrUnavailable is returned when the announcer is not running right now; the change is
	// kept and sent when it is back.
	ErrUnavailable = errors.New("announcer not running; the change is kept and replayed when it is back")
	// ErrChecksum is wrapped when an executable does not have its configured checksum.
	ErrChecksum = errors.New("checksum mismatch")
	// ErrStopped is returned after Stop.
	ErrStopped = errors.New("manager stopped")
)

// Manager supervises the announcers.
type Manager struct {
	log    logr.Logger
	opts   Options
	byName map[string]*supervised
	names  []string
	events chan Event

	mu      sync.Mutex
	cancel  context.CancelFunc
	stopped bool
	wg      sync.WaitGroup // supervisors
	fwd     sync.WaitGroup // event forwarders
}

// New validates the specs; nothing starts before Start.
func New(log logr.Logger, specs []Spec, opts Options) (*Manager, error) {
	registerMetrics()
	m := &Manager{log: log, opts: opts.withDefaults(), byName: map[string]*supervised{}, events: make(chan Event, 1024)}
	for i, s := range specs {
		if err := validate(s); err != nil {
			return nil, fmt.Errorf("announcers[%d]: %w", i, err)
		}
		if _, dup := m.byName[s.Name]; dup {
			return nil, fmt.Errorf("announcers[%d].name: %q is used twice", i, s.Name)
		}
		m.byName[s.Name] = &supervised{spec: s, m: m, log: log.WithValues("announcer", s.Name), desired: map[string]announcers.Announcement{},
			health: Health{Name: s.Name, State: StateStopped, Since: time.Now()}}
		m.names = append(m.names, s.Name)
		// Every announcer shows in /metrics from the start, down and never restarted.
		upGauge.WithLabelValues(s.Name).Set(0)
		restartsTotal.WithLabelValues(s.Name).Add(0)
	}
	sort.Strings(m.names)
	return m, nil
}

func validate(s Spec) error {
	if s.Name == "" {
		return errors.New("name: must not be empty")
	}
	if s.Path == "" {
		return fmt.Errorf("%s: path: must not be empty", s.Name)
	}
	if s.SHA256 != "" {
		if b, err := hex.DecodeString(s.SHA256); err != nil || len(b) != sha256.Size {
			return fmt.Errorf("%s: sha256: want 64 hex digits, got %q", s.Name, s.SHA256)
		}
	}
	return nil
}

// Start starts every announcer and returns at once; each is supervised until Stop or until
// ctx is done.
func (m *Manager) Start(ctx context.Context) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cancel != nil || m.stopped {
		return
	}
	ctx, m.cancel = context.WithCancel(ctx)
	for _, name := range m.names {
		s := m.byName[name]
		m.wg.Add(1)
		go func() {
			defer m.wg.Done()
			s.run(ctx)
		}()
	}
}

// Stop drains every running announcer (withdraw everything), then ends it. It returns once
// all processes are gone; the Events channel is closed then.
func (m *Manager) Stop(ctx context.Context) error {
	m.mu.Lock()
	if m.stopped {
		m.mu.Unlock()
		return nil
	}
	m.stopped = true
	cancel := m.cancel
	m.mu.Unlock()
	if cancel != nil {
		cancel()
	}
	m.wg.Wait()
	var errs []error
	for _, name := range m.names {
		if err := m.byName[name].stop(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	m.fwd.Wait()
	close(m.events)
	return errors.Join(errs...)
}

// Events delivers the announcers' events. A consumer that falls behind loses events (each
// loss is logged) rather than stalling the announcers.
func (m *Manager) Events() <-chan Event { return m.events }

// Health returns every announcer's health, sorted by name.
func (m *Manager) Health() []Health {
	out := make([]Health, 0, len(m.names))
	for _, name := range m.names {
		out = append(out, m.byName[name].healthNow())
	}
	return out
}

// Configure sets an announcer's protocol configuration, now if it runs and on every restart.
func (m *Manager) Configure(ctx context.Context, name string, cfg announcers.Config) error {
	s, err := m.get(name)
	if err != nil {
		return err
	}
	return s.configure(ctx, cfg)
}

// SetDesired replaces the full set an announcer should announce.
func (m *Manager) SetDesired(ctx context.Context, name string, set []announcers.Announcement) (announcers.ApplyResult, error) {
	s, err := m.get(name)
	if err != nil {
		return announcers.ApplyResult{}, err
	}
	return s.setDesired(ctx, set)
}

// Apply changes an announcer's set by a delta: upserts by key, removes by key. The manager
// sends the delta when the announcer is in step, and the full set otherwise.
func (m *Manager) Apply(ctx context.Context, name string, upserts []announcers.Announcement, removes []string) (announcers.ApplyResult, error) {
	s, err := m.get(name)
	if err != nil {
		return announcers.ApplyResult{}, err
	}
	return s.apply(ctx, upserts, removes)
}

// Status asks a running announcer what it announces.
func (m *Manager) Status(ctx context.Context, name string) (announcers.Status, error) {
	s, err := m.get(name)
	if err != nil {
		return announcers.Status{}, err
	}
	inst := s.current()
	if inst == nil {
		return announcers.Status{}, fmt.Errorf("announcer %q: %w", name, ErrUnavailable)
	}
	ctx, done := inst.tie(ctx)
	defer done()
	return inst.ann.Status(ctx)
}

func (m *Manager) get(name string) (*supervised, error) {
	m.mu.Lock()
	stopped := m.stopped
	m.mu.Unlock()
	if stopped {
		return nil, ErrStopped
	}
	s, ok := m.byName[name]
	if !ok {
		return nil, fmt.Errorf("announcer %q: %w", name, ErrUnknownAnnouncer)
	}
	return s, nil
}

func (m *Manager) publish(log logr.Logger, e Event) {
	select {
	case m.events <- e:
	default:
		log.Info("event dropped: consumer too slow", "event", e.Event.String())
	}
}

// supervised is one announcer: its desired state and its current process.
type supervised struct {
	spec Spec
	m    *Manager
	log  logr.Logger

	// sendMu serialises every change of the desired state with sending it, and replays.
	sendMu     sync.Mutex
	config     *announcers.Config
	desired    map[string]announcers.Announcement
	generation uint64
	inSync     bool // the running announcer holds generation

	mu     sync.Mutex
	inst   *instance
	health Health
}

// instance is one process; ctx ends when it dies, which cancels calls in flight to it.
type instance struct {
	client *plugin.Client
	rpc    plugin.ClientProtocol
	ann    announcers.Announcer
	ctx    context.Context
	cancel context.CancelFunc
	gone   chan struct{} // closed when the event stream ends
}

// tie returns a context ended by ctx or by the instance's death.
func (i *instance) tie(ctx context.Context) (context.Context, func()) {
	ctx, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(i.ctx, cancel)
	return ctx, func() { stop(); cancel() }
}

func (s *supervised) current() *instance {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.inst
}

func (s *supervised) healthNow() Health {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.health
}

func (s *supervised) setHealth(state State, msg string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.health.State != state {
		s.health.Since = time.Now()
	}
	s.health.State, s.health.Message = state, msg
}

// run starts the announcer and restarts it with backoff until ctx is done.
func (s *supervised) run(ctx context.Context) {
	backoff := s.m.opts.InitialBackoff
	for first := true; ; first = false {
		if !first {
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
			if errors.Is(err, ErrChecksum) || errors.Is(err, plugin.ErrChecksumsDoNotMatch) {
				state = StateRefused
			}
			s.setHealth(state, err.Error())
			s.log.Error(err, "announcer failed to start", "state", state, "retryIn", backoff)
		} else {
			reason := s.watch(ctx, inst)
			if ctx.Err() != nil {
				return // Stop drains and kills it
			}
			s.down(inst, reason)
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

// start launches a new process, checks it, and replays configuration and the full set.
func (s *supervised) start(ctx context.Context) (*instance, error) {
	s.setHealth(StateStarting, "")
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
			return nil, err
		}
	}
	cfg.Cmd = s.command()
	client := plugin.NewClient(cfg)
	rpc, err := client.Client()
	if err != nil {
		client.Kill()
		if errors.Is(err, plugin.ErrChecksumsDoNotMatch) {
			return nil, fmt.Errorf("executable %s: %w: refused", s.spec.Path, ErrChecksum)
		}
		return nil, fmt.Errorf("start %s: %w", s.spec.Path, err)
	}
	raw, err := rpc.Dispense(announcers.PluginName)
	if err != nil {
		client.Kill()
		return nil, fmt.Errorf("dispense: %w", err)
	}
	instCtx, cancel := context.WithCancel(ctx)
	inst := &instance{client: client, rpc: rpc, ann: raw.(announcers.Announcer), ctx: instCtx, cancel: cancel, gone: make(chan struct{})}
	fail := func(err error) (*instance, error) {
		cancel()
		client.Kill()
		return nil, err
	}
	callCtx, done := context.WithTimeout(instCtx, s.m.opts.CallTimeout)
	defer done()
	info, err := inst.ann.Info(callCtx)
	if err != nil {
		return fail(fmt.Errorf("info: %w", err))
	}
	if info.ProtocolVersion != announcers.ProtocolVersion {
		return fail(fmt.Errorf("announcer speaks protocol %d, want %d", info.ProtocolVersion, announcers.ProtocolVersion))
	}
	if err := s.forwardEvents(inst); err != nil {
		return fail(err)
	}
	if err := s.replay(callCtx, inst); err != nil {
		return fail(err)
	}
	pid, _ := strconv.Atoi(client.ID())
	s.mu.Lock()
	s.health.Kind, s.health.PID = info.Kind, pid
	s.mu.Unlock()
	s.setHealth(StateHealthy, "")
	s.log.Info("announcer running", "kind", info.Kind, "version", info.Version, "pid", client.ID(), "generation", s.healthNow().Generation)
	return inst, nil
}

func (s *supervised) command() *exec.Cmd {
	if s.spec.Command != nil {
		return s.spec.Command()
	}
	cmd := exec.Command(s.spec.Path, s.spec.Args...)
	cmd.Env = append(os.Environ(), s.spec.Env...)
	return cmd
}

func checkFile(path string, want []byte) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("executable %s: %w", path, err)
	}
	defer func() { _ = f.Close() }()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return fmt.Errorf("executable %s: %w", path, err)
	}
	if got := h.Sum(nil); string(got) != string(want) {
		return fmt.Errorf("executable %s: sha256 %x, configured %x: %w: refused", path, got, want, ErrChecksum)
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

// replay sends the configuration and the full desired set to a new process, then makes it
// the current one, all under sendMu so no change slips between.
func (s *supervised) replay(ctx context.Context, inst *instance) error {
	s.sendMu.Lock()
	defer s.sendMu.Unlock()
	if s.config != nil {
		if err := inst.ann.Configure(ctx, *s.config); err != nil {
			return fmt.Errorf("replay configure: %w", err)
		}
	}
	start := time.Now()
	res, err := inst.ann.SetDesired(ctx, announcers.DesiredSet{Generation: s.generation, Announcements: s.list()})
	observeRPC(s.spec.Name, methodSetDesired, start, err)
	if err != nil {
		return fmt.Errorf("replay desired set: %w", err)
	}
	s.logRejected(res)
	s.inSync = true
	s.mu.Lock()
	s.inst = inst
	s.health.Generation = res.Generation
	s.mu.Unlock()
	upGauge.WithLabelValues(s.spec.Name).Set(1)
	return nil
}

// watch returns why the instance must be replaced, or "" when ctx ends.
func (s *supervised) watch(ctx context.Context, inst *instance) string {
	t := time.NewTicker(s.m.opts.HealthInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return ""
		case <-inst.gone:
			if inst.client.Exited() {
				return "process exited"
			}
			return "event stream ended"
		case <-t.C:
		}
		if inst.client.Exited() {
			return "process exited"
		}
		if err := inst.rpc.Ping(); err != nil {
			return "ping: " + err.Error()
		}
		callCtx, done := context.WithTimeout(inst.ctx, s.m.opts.CallTimeout)
		st, err := inst.ann.Status(callCtx)
		done()
		if err != nil {
			return "status: " + err.Error()
		}
		switch st.Health {
		case announcers.HealthHealthy:
			s.setHealth(StateHealthy, "")
		case announcers.HealthUnhealthy:
			s.setHealth(StateUnhealthy, st.Message)
		default:
			s.setHealth(StateDegraded, st.Message)
		}
	}
}

// down ends a dead or failing instance; the caller restarts.
func (s *supervised) down(inst *instance, reason string) {
	s.mu.Lock()
	if s.inst == inst {
		s.inst, s.health.PID = nil, 0
	}
	s.mu.Unlock()
	upGauge.WithLabelValues(s.spec.Name).Set(0)
	s.setHealth(StateUnhealthy, reason)
	s.log.Error(errors.New(reason), "announcer down, restarting")
	inst.cancel()
	inst.client.Kill()
}

func (s *supervised) stop(ctx context.Context) error {
	s.mu.Lock()
	inst := s.inst
	s.inst, s.health.PID = nil, 0
	s.mu.Unlock()
	upGauge.WithLabelValues(s.spec.Name).Set(0)
	var err error
	if inst != nil {
		// The instance context may already be cancelled with the supervisor's; drain on
		// the caller's.
		n, derr := inst.ann.Drain(ctx)
		if derr != nil {
			err = fmt.Errorf("announcer %q: drain: %w", s.spec.Name, derr)
			s.log.Error(derr, "drain failed; killing anyway")
		} else {
			s.log.Info("drained", "withdrawn", n)
		}
		inst.cancel()
		inst.client.Kill()
	}
	s.setHealth(StateStopped, "")
	return err
}

func (s *supervised) configure(ctx context.Context, cfg announcers.Config) error {
	s.sendMu.Lock()
	defer s.sendMu.Unlock()
	s.config = &cfg
	inst := s.current()
	if inst == nil {
		return fmt.Errorf("announcer %q: %w", s.spec.Name, ErrUnavailable)
	}
	ctx, done := inst.tie(ctx)
	defer done()
	if err := inst.ann.Configure(ctx, cfg); err != nil {
		return fmt.Errorf("announcer %q: %w", s.spec.Name, err)
	}
	return nil
}

func (s *supervised) setDesired(ctx context.Context, set []announcers.Announcement) (announcers.ApplyResult, error) {
	s.sendMu.Lock()
	defer s.sendMu.Unlock()
	s.desired = make(map[string]announcers.Announcement, len(set))
	for _, a := range set {
		s.desired[a.Key()] = a
	}
	s.generation++
	s.inSync = false
	return s.pushFullLocked(ctx)
}

func (s *supervised) apply(ctx context.Context, upserts []announcers.Announcement, removes []string) (announcers.ApplyResult, error) {
	s.sendMu.Lock()
	defer s.sendMu.Unlock()
	base := s.generation
	for _, key := range removes {
		delete(s.desired, key)
	}
	for _, a := range upserts {
		s.desired[a.Key()] = a
	}
	s.generation++
	if !s.inSync {
		return s.pushFullLocked(ctx)
	}
	inst := s.current()
	if inst == nil {
		s.inSync = false
		return announcers.ApplyResult{}, fmt.Errorf("announcer %q: %w", s.spec.Name, ErrUnavailable)
	}
	callCtx, done := inst.tie(ctx)
	defer done()
	start := time.Now()
	res, err := inst.ann.Apply(callCtx, announcers.Delta{BaseGeneration: base, Generation: s.generation, Upserts: upserts, Removes: removes})
	observeRPC(s.spec.Name, methodApply, start, err)
	if errors.Is(err, announcers.ErrOutOfSync) {
		s.log.Info("announcer out of sync, sending the full set", "error", err.Error())
		s.inSync = false
		return s.pushFullLocked(ctx)
	}
	if err != nil {
		s.inSync = false
		return res, fmt.Errorf("announcer %q: %w", s.spec.Name, err)
	}
	s.acknowledged(res)
	return res, nil
}

// pushFullLocked sends the whole desired set; sendMu is held.
func (s *supervised) pushFullLocked(ctx context.Context) (announcers.ApplyResult, error) {
	inst := s.current()
	if inst == nil {
		return announcers.ApplyResult{}, fmt.Errorf("announcer %q: %w", s.spec.Name, ErrUnavailable)
	}
	callCtx, done := inst.tie(ctx)
	defer done()
	start := time.Now()
	res, err := inst.ann.SetDesired(callCtx, announcers.DesiredSet{Generation: s.generation, Announcements: s.list()})
	observeRPC(s.spec.Name, methodSetDesired, start, err)
	if err != nil {
		return res, fmt.Errorf("announcer %q: %w", s.spec.Name, err)
	}
	s.inSync = true
	s.acknowledged(res)
	return res, nil
}

func (s *supervised) acknowledged(res announcers.ApplyResult) {
	s.logRejected(res)
	s.mu.Lock()
	s.health.Generation = res.Generation
	s.mu.Unlock()
}

func (s *supervised) logRejected(res announcers.ApplyResult) {
	for _, r := range res.Rejected {
		s.log.Info("announcement rejected by the announcer", "id", r.ID, "reason", r.Reason)
	}
}

func (s *supervised) list() []announcers.Announcement {
	keys := make([]string, 0, len(s.desired))
	for k := range s.desired {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make([]announcers.Announcement, len(keys))
	for i, k := range keys {
		out[i] = s.desired[k]
	}
	return out
}
