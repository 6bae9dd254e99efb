// Package manager is the speaker's side of the announcer protocol: it starts the announcer
// executables named in the configuration through hashicorp/go-plugin (AutoMTLS on, SHA-256
// checksum when configured), keeps each one's configuration and full desired set, and sends
// them from a sender of its own, so a caller records a change and never waits on an announcer
// longer than Options.AckTimeout. It health-checks every announcer with deadlines, kills one
// that hangs or crashes and restarts it with exponential backoff (a go-plugin Client cannot be
// restarted, so each start makes a new one) and replays Configure and the full set, forwards
// their events, and on Stop drains then kills them.
//
// Announcer processes die with the speaker (the parent-death signal), and a restarted
// speaker kills the leftovers of its predecessor before starting its own (Options.Owner).
// An announcer with Spec.IdleTimeout starts when its first address or peer appears and
// stops after that long with nothing to do. One announcer's trouble never affects the others.
//
// The files: manager.go the API, health.go the states, desired.go the desired state and its
// sender, supervisor.go the process life cycle, process.go starting and killing processes,
// orphans.go the leftovers of a previous speaker.
package manager

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os/exec"
	"sort"
	"sync"
	"time"

	"github.com/go-logr/logr"

	"github.com/herald-lb/herald/announcers"
)

// Spec configures one announcer.
type Spec struct {
	// Name identifies the announcer in every call, in health and in events (e.g. "arp").
	Name string
	// Kind is what the announcer serves (announcers.KindARP, KindNDP, KindBGP) before it has
	// said so itself in Info: an announcer that never started still has a kind in Health.
	Kind string
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
	// IdleTimeout, when positive, makes the announcer start on demand: only once it has an
	// announcement or a BGP peer to serve, and it is stopped (drained first) after it has had
	// nothing for IdleTimeout without a change. Zero runs it from Start to Stop.
	IdleTimeout time.Duration
}

// Options tune supervision; zero values select the defaults.
type Options struct {
	// InitialBackoff is the wait before the first restart; it doubles up to MaxBackoff and
	// starts over once an announcer has stayed up for StableAfter.
	InitialBackoff time.Duration
	MaxBackoff     time.Duration
	StableAfter    time.Duration
	// PingInterval is how often go-plugin's health check runs, each bounded by PingTimeout:
	// a stopped or wedged process is detected within their sum and replaced.
	PingInterval time.Duration
	PingTimeout  time.Duration
	// HealthInterval is how often Status is asked, each bounded by StatusTimeout (a process
	// whose gRPC server answers pings but whose announcer is deadlocked fails this one).
	HealthInterval time.Duration
	StatusTimeout  time.Duration
	// CallTimeout bounds every call that changes an announcer's state (Configure,
	// SetDesired, Apply, Drain) and Info; one that times out gets the process replaced.
	CallTimeout time.Duration
	// AckTimeout bounds how long Apply, SetDesired and Configure wait for the announcer to
	// acknowledge; after it they return a pending Result and the change is sent later.
	AckTimeout time.Duration
	// StartTimeout bounds the go-plugin handshake.
	StartTimeout time.Duration
	// Owner identifies the speaker (e.g. its node) across restarts: announcers carry it, and
	// Start kills those a previous speaker with the same Owner left behind in this network
	// namespace. Empty skips that clean-up.
	Owner string
	// NoParentDeathSignal leaves announcers running when the speaker dies. Only tests set
	// it, to make the orphans the clean-up is for.
	NoParentDeathSignal bool
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
	set(&o.PingInterval, 500*time.Millisecond)
	set(&o.PingTimeout, time.Second)
	set(&o.HealthInterval, 2*time.Second)
	set(&o.StatusTimeout, 3*time.Second)
	set(&o.CallTimeout, 10*time.Second)
	set(&o.AckTimeout, 500*time.Millisecond)
	set(&o.StartTimeout, 10*time.Second)
	return o
}

// Event is an announcer's event with the announcer's name.
type Event struct {
	Announcer string
	announcers.Event
}

// Kept reports whether a change given to Configure, SetDesired or Apply waits in the
// announcer's desired state without the running announcer's acknowledgement, and why: the
// result is pending (the announcer is starting, restarting, idle or slow), or err wraps
// ErrUnavailable (its executable was refused: the change is sent once it is fixed). Such a
// change is the caller's to withdraw later, but nothing answers for it yet. Kept is false for
// an acknowledged change and for errors that keep nothing (ErrUnknownAnnouncer, ErrStopped).
// Callers test this instead of matching errors.
func Kept(res Result, err error) (why string, kept bool) {
	switch {
	case res.Pending != "":
		return res.Pending, true
	case errors.Is(err, ErrUnavailable):
		return err.Error(), true
	}
	return "", false
}

// Result is the outcome of a change of an announcer's desired set.
type Result struct {
	// ApplyResult is the announcer's acknowledgement: the generation it holds and the
	// announcements of this call it rejected. Empty when Pending.
	announcers.ApplyResult
	// Pending is empty when the running announcer acknowledged the change. Otherwise it
	// says why it has not (not running yet, restarting, idle, slow to answer): the change is
	// kept in the desired state and sent, or replayed after a start, as soon as it can be.
	Pending string
}

var (
	// ErrUnknownAnnouncer is returned for a name no Spec has.
	ErrUnknownAnnouncer = errors.New("unknown announcer")
	// ErrUnavailable is returned by Status when no process runs, and wrapped by ErrRefused.
	ErrUnavailable = errors.New("announcer not running")
	// ErrRefused is returned for changes to an announcer whose executable was refused (bad
	// checksum, missing, wrong protocol): the change is kept, but nothing will send it until
	// the executable is fixed.
	ErrRefused = fmt.Errorf("%w: its executable was refused", ErrUnavailable)
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
	wg      sync.WaitGroup // supervisors and senders
	fwd     sync.WaitGroup // event forwarders
}

// New validates the specs and learns the kind of each announcer whose Spec.Kind is empty
// from its executable (one short run, see probeKind); nothing else starts before Start.
func New(log logr.Logger, specs []Spec, opts Options) (*Manager, error) {
	registerMetrics()
	m := &Manager{log: log, opts: opts.withDefaults(), byName: map[string]*supervised{}, events: make(chan Event, 1024)}
	byKind := map[string]string{}
	for i, s := range specs {
		if err := validate(s); err != nil {
			return nil, fmt.Errorf("announcers[%d]: %w", i, err)
		}
		if _, dup := m.byName[s.Name]; dup {
			return nil, fmt.Errorf("announcers[%d].name: %q is used twice", i, s.Name)
		}
		sup := newSupervised(m, s)
		if sup.kind == "" {
			sup.learnKind()
		}
		if other, dup := byKind[sup.kind]; dup && sup.kind != "" {
			// Routed to one of them only (For): say so rather than run one for nothing.
			log.Error(fmt.Errorf("announcers %q and %q both serve kind %q", other, s.Name, sup.kind),
				"only the first by name is used for the kind", "kind", sup.kind, "used", min(other, s.Name))
		}
		byKind[sup.kind] = s.Name
		m.byName[s.Name] = sup
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

// Start kills the announcers a previous speaker with the same Owner left behind, then starts
// every announcer (those with an IdleTimeout once they are needed) and returns; each is
// supervised until Stop or until ctx is done.
func (m *Manager) Start(ctx context.Context) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cancel != nil || m.stopped {
		return
	}
	if m.opts.Owner != "" {
		m.reapOrphans()
	}
	ctx, m.cancel = context.WithCancel(ctx)
	for _, name := range m.names {
		s := m.byName[name]
		m.wg.Add(2)
		go func() {
			defer m.wg.Done()
			s.run(ctx)
		}()
		go func() {
			defer m.wg.Done()
			s.sendLoop(ctx)
		}()
	}
}

// Stop drains every running announcer (withdraw everything), then ends it. It returns once
// all processes are gone; the Events channel is closed then.
func (m *Manager) Stop(ctx context.Context) error { return m.StopKeeping(ctx, nil) }

// StopKeeping is Stop, except that the announcers keep names are ended at once, without a
// drain and without a word to their peers: what they announce stays on the network as long as
// the protocol keeps it. A BGP announcer whose peers negotiated graceful restart (RFC 4724)
// thus leaves its paths on the routers, as stale, until the next speaker's announcer re-sends
// them: a restart, such as a DaemonSet's rolling update, does not move flows on the router.
func (m *Manager) StopKeeping(ctx context.Context, keep func(name string) bool) error {
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
		if err := m.byName[name].stop(ctx, keep != nil && keep(name)); err != nil {
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

// For names the announcer that serves kind (announcers.KindARP, KindNDP, KindBGP): the one
// whose Spec.Kind is kind or, without a Spec.Kind, whose executable reported it; the first
// by name when several do (New logs that). It is "" when none does. Callers route by kind through For, never by an announcer's name, so an
// announcer configured under a name of its own is used for what it serves.
func (m *Manager) For(kind string) string {
	if kind == "" {
		return ""
	}
	for _, name := range m.names {
		if m.byName[name].kind == kind {
			return name
		}
	}
	return ""
}

// Configure sets an announcer's protocol configuration, now if it runs and on every start.
// It returns nil once the change is recorded, acknowledged or not; an error only for an
// unknown or refused announcer or a stopped manager (see Kept).
func (m *Manager) Configure(ctx context.Context, name string, cfg announcers.Config) error {
	s, err := m.get(name)
	if err != nil {
		return err
	}
	_, err = s.configure(ctx, cfg)
	return err
}

// SetDesired replaces the full set an announcer should announce. See Kept for what its
// result and error mean to the caller.
func (m *Manager) SetDesired(ctx context.Context, name string, set []announcers.Announcement) (Result, error) {
	s, err := m.get(name)
	if err != nil {
		return Result{}, err
	}
	return s.setDesired(ctx, set)
}

// Apply changes an announcer's set by a delta: upserts by key, removes by key. Changes are
// coalesced and sent as deltas while the announcer is in step, as the full set otherwise.
func (m *Manager) Apply(ctx context.Context, name string, upserts []announcers.Announcement, removes []string) (Result, error) {
	s, err := m.get(name)
	if err != nil {
		return Result{}, err
	}
	return s.apply(ctx, upserts, removes)
}

// Status asks a running announcer what it announces, within Options.CallTimeout.
func (m *Manager) Status(ctx context.Context, name string) (announcers.Status, error) {
	s, err := m.get(name)
	if err != nil {
		return announcers.Status{}, err
	}
	inst := s.current()
	if inst == nil {
		return announcers.Status{}, fmt.Errorf("announcer %q: %w", name, ErrUnavailable)
	}
	ctx, done := inst.call(ctx, m.opts.CallTimeout)
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
		log.Info("Event dropped: consumer too slow", "event", e.Event.String())
	}
}
