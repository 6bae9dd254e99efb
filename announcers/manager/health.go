package manager

import "time"

// State is an announcer's state as the manager sees it.
type State string

// States.
const (
	StateStarting State = "starting"
	// StateHealthy: running, in step, and it reports itself healthy.
	StateHealthy State = "healthy"
	// StateDegraded: running, but it reports a problem.
	StateDegraded State = "degraded"
	// StateUnhealthy: down: crashed, hung (and being replaced), failed to start, or it
	// reports itself unhealthy.
	StateUnhealthy State = "unhealthy"
	// StateRefused: the executable failed its checksum, is missing, or failed the handshake.
	StateRefused State = "refused"
	StateStopped State = "stopped"
	// StateIdle: not running because nothing needs it (Spec.IdleTimeout); it starts on its
	// first announcement or peer. Not a failure.
	StateIdle State = "idle"
)

// Available reports whether an announcer in this state can serve what it is given: it runs
// (healthy or degraded), or it is idle and starts when asked. Starting, unhealthy, refused
// and stopped announcers are not available.
func (s State) Available() bool {
	return s == StateHealthy || s == StateDegraded || s == StateIdle
}

// Health is one announcer's health.
type Health struct {
	Name string
	// Kind is what the announcer serves (arp, ndp, bgp): Spec.Kind until it runs, then what
	// its Info reports.
	Kind  string
	State State
	// Message says why the state is not healthy, or what the announcer reports.
	Message string
	// Restarts counts starts after a failure (not starts after being idle).
	Restarts int
	// Generation is the last generation the running announcer acknowledged.
	Generation uint64
	// PID is the running process's id, 0 when none runs.
	PID   int
	Since time.Time
}

// Available is h.State.Available().
func (h Health) Available() bool { return h.State.Available() }

func (s *supervised) healthNow() Health {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.health
}

func (s *supervised) setHealth(state State, msg string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.setHealthLocked(state, msg)
}

func (s *supervised) setHealthLocked(state State, msg string) {
	if s.health.State != state {
		s.health.Since = time.Now()
	}
	s.health.State, s.health.Message = state, msg
	s.notifyLocked()
}
