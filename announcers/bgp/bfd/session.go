package bfd

import (
	"math/rand/v2"
	"time"
)

// Config is a session's timers, as in a metallb.io BFDProfile.
type Config struct {
	// DesiredMinTx is how often this system would like to send once the session is Up.
	DesiredMinTx time.Duration
	// RequiredMinRx is the fastest rate at which this system accepts packets.
	RequiredMinRx time.Duration
	DetectMult    uint8
}

// slowTx is the transmit interval advertised and used while a session is not Up (RFC 5880
// section 6.8.3: at least one second), so that a session coming up starts slowly and moves to
// the configured rate through a Poll Sequence once Up.
const slowTx = time.Second

// timers are the intervals a system advertises.
type timers struct {
	desiredMinTx, requiredMinRx time.Duration
}

// machine is the state of one session (RFC 5880 section 6.8.1) and the rules that change it.
// It does no I/O and reads no clock: the caller sends what it returns and arms the transmit
// and detection timers from txInterval and detectionTime. Not safe for concurrent use.
type machine struct {
	cfg         Config
	state       State
	localDiscr  uint32
	remoteDiscr uint32
	diag        Diag
	// cur is what is advertised (and in force) now; target is what a Poll Sequence in
	// progress is moving to (equal to cur when no poll is in progress).
	cur, target timers
	polling     bool
	// The remote system's last advertised values; prevMinTx is the one before, so that a
	// remote system lowering its rate is given one more packet at the old rate (it may keep
	// the old rate until our Final reaches it).
	remoteMinRx, remoteMinTx, prevMinTx time.Duration
	remoteMult                          uint8
	// everUp is true once the session has been Up.
	everUp bool
}

func newMachine(discr uint32, cfg Config) *machine {
	m := &machine{cfg: cfg, state: Down, localDiscr: discr, remoteMinRx: time.Microsecond}
	m.cur = m.slowTimers()
	m.target = m.cur
	return m
}

func (m *machine) slowTimers() timers {
	return timers{desiredMinTx: max(slowTx, m.cfg.DesiredMinTx), requiredMinRx: m.cfg.RequiredMinRx}
}

func (m *machine) fastTimers() timers {
	return timers{desiredMinTx: m.cfg.DesiredMinTx, requiredMinRx: m.cfg.RequiredMinRx}
}

// transition is a state change for the caller to report.
type transition struct {
	from, to State
	diag     Diag
	// remoteAdmin is set when the remote system took the session administratively down,
	// which RFC 5882 section 3.2 says is not a path failure.
	remoteAdmin bool
}

// packet builds the next periodic packet.
func (m *machine) packet() Packet {
	t := m.cur
	if m.polling {
		t = m.target
	}
	return Packet{
		Diag: m.diag, State: m.state, Poll: m.polling, DetectMult: m.cfg.DetectMult,
		MyDiscr: m.localDiscr, YourDiscr: m.remoteDiscr,
		DesiredMinTx: t.desiredMinTx, RequiredMinRx: t.requiredMinRx,
	}
}

// txInterval is the interval between periodic packets before jitter: the slower of what this
// system wants to send at and what the remote system accepts (RFC 5880 section 6.8.7). A Poll
// Sequence that lowers the interval applies it at once (the remote system shortens its
// detection time as soon as it sees the poll); one that raises it waits for the Final.
func (m *machine) txInterval() time.Duration {
	tx := m.cur.desiredMinTx
	if m.polling {
		tx = min(tx, m.target.desiredMinTx)
	}
	return max(tx, m.remoteMinRx)
}

// jittered applies RFC 5880's jitter: 75-100% of the interval, 75-90% with a detect multiplier
// of one.
func (m *machine) jittered(d time.Duration) time.Duration {
	hi := 0.25
	if m.cfg.DetectMult == 1 {
		hi = 0.15
	}
	return time.Duration(float64(d) * (0.75 + rand.Float64()*hi))
}

// detectionTime is how long without a packet before the session is declared down (RFC 5880
// section 6.8.4): the remote multiplier times the slower of our Required Min RX and its Desired
// Min TX. While a Poll Sequence lowers our Required Min RX, the old value counts until it ends.
func (m *machine) detectionTime() time.Duration {
	if m.remoteMult == 0 {
		return 0
	}
	rx := max(m.cur.requiredMinRx, m.target.requiredMinRx)
	if !m.polling {
		rx = m.cur.requiredMinRx
	}
	return time.Duration(m.remoteMult) * max(rx, m.remoteMinTx, m.prevMinTx)
}

// receive applies a valid packet (RFC 5880 section 6.8.6). It returns the state change, if
// any, and whether a Final must be sent at once (the packet had Poll set).
func (m *machine) receive(p Packet) (tr *transition, final bool) {
	if m.state == AdminDown {
		return nil, false
	}
	if p.YourDiscr != 0 && m.remoteDiscr != 0 && p.MyDiscr != m.remoteDiscr && (p.State == Down || p.State == AdminDown) {
		// A Down addressed to us by an earlier incarnation of the remote session (its last
		// AdminDown packets after it was replaced): it says nothing about the current one.
		return nil, false
	}
	m.remoteDiscr = p.MyDiscr
	m.remoteMinRx = p.RequiredMinRx
	m.prevMinTx = m.remoteMinTx
	m.remoteMinTx = p.DesiredMinTx
	m.remoteMult = p.DetectMult
	if p.Final && m.polling {
		m.polling = false
		m.cur = m.target
	}
	from := m.state
	switch {
	case p.State == AdminDown:
		if m.state != Down {
			m.down(DiagNeighborDown)
		}
	case m.state == Down && p.State == Down:
		m.state = Init
	case m.state == Down && p.State == Init:
		m.up()
	case m.state == Init && (p.State == Init || p.State == Up):
		m.up()
	case m.state == Up && p.State == Down:
		m.down(DiagNeighborDown)
	}
	if m.state != from {
		tr = &transition{from: from, to: m.state, diag: m.diag, remoteAdmin: p.State == AdminDown}
	}
	return tr, p.Poll
}

// expire is called when no packet arrived within the detection time.
func (m *machine) expire() *transition {
	m.remoteDiscr = 0
	m.remoteMult = 0
	m.remoteMinRx = time.Microsecond
	m.remoteMinTx, m.prevMinTx = 0, 0
	if m.state != Init && m.state != Up {
		return nil
	}
	from := m.state
	m.down(DiagDetectionExpired)
	return &transition{from: from, to: Down, diag: m.diag}
}

// up enters Up and starts a Poll Sequence towards the configured timers.
func (m *machine) up() {
	m.state = Up
	m.everUp = true
	m.diag = DiagNone
	m.setTarget(m.fastTimers())
}

// down leaves Init or Up, back to the slow timers (no Poll Sequence is needed while not Up).
func (m *machine) down(d Diag) {
	m.state = Down
	m.diag = d
	m.polling = false
	m.cur = m.slowTimers()
	m.target = m.cur
}

// setTarget moves the advertised timers: at once when not Up, through a Poll Sequence when Up.
func (m *machine) setTarget(t timers) {
	if m.state != Up {
		m.cur, m.target, m.polling = t, t, false
		return
	}
	if t == m.cur {
		m.target, m.polling = t, false
		return
	}
	m.target, m.polling = t, true
}

// reconfigure applies new timers; an Up session moves to them through a Poll Sequence.
func (m *machine) reconfigure(cfg Config) {
	m.cfg = cfg
	if m.state == Up {
		m.setTarget(m.fastTimers())
	} else {
		m.setTarget(m.slowTimers())
	}
}

// adminDown stops the session: the remote system is told AdminDown, which RFC 5882 says must
// not be taken as a forwarding failure.
func (m *machine) adminDown() *transition {
	if m.state == AdminDown {
		return nil
	}
	from := m.state
	m.state = AdminDown
	m.diag = DiagAdminDown
	m.polling = false
	m.cur = m.slowTimers()
	m.target = m.cur
	return &transition{from: from, to: AdminDown, diag: m.diag}
}
