package bfd

import (
	"log/slog"
	"net/netip"
	"sync"
	"testing"
	"time"
)

func TestPacketRoundTrip(t *testing.T) {
	for _, p := range []Packet{
		{State: Down, DetectMult: 3, MyDiscr: 1, DesiredMinTx: time.Second, RequiredMinRx: 300 * time.Millisecond},
		{State: Up, Diag: DiagNeighborDown, Poll: true, DetectMult: 5, MyDiscr: 7, YourDiscr: 9, DesiredMinTx: 10 * time.Millisecond, RequiredMinRx: 20 * time.Millisecond, RequiredMinEchoRx: time.Millisecond},
		{State: Init, Final: true, ControlPlaneIndependent: true, DetectMult: 1, MyDiscr: 1 << 31, YourDiscr: 2},
	} {
		got, err := Unmarshal(p.Marshal())
		if err != nil || got != p {
			t.Errorf("round trip of %+v = %+v, %v", p, got, err)
		}
	}
}

func TestUnmarshalRejects(t *testing.T) {
	good := Packet{State: Up, DetectMult: 3, MyDiscr: 1, YourDiscr: 2}.Marshal()
	mutate := func(f func(b []byte) []byte) []byte {
		b := append([]byte(nil), good...)
		return f(b)
	}
	for _, c := range []struct {
		name string
		b    []byte
		want error
	}{
		{"short", good[:23], errShort},
		{"version 0", mutate(func(b []byte) []byte { b[0] &^= 0xe0; return b }), errVersion},
		{"length too small", mutate(func(b []byte) []byte { b[3] = 20; return b }), errLength},
		{"length beyond packet", mutate(func(b []byte) []byte { b[3] = 48; return b }), errLength},
		{"auth", mutate(func(b []byte) []byte { b[1] |= flagAuth; return b }), errAuth},
		{"multiplier zero", mutate(func(b []byte) []byte { b[2] = 0; return b }), errDetectMult},
		{"multipoint", mutate(func(b []byte) []byte { b[1] |= flagMulti; return b }), errMultipoint},
		{"my discriminator zero", mutate(func(b []byte) []byte { clear(b[4:8]); return b }), errMyDiscr},
		{"your discriminator zero while Up", mutate(func(b []byte) []byte { clear(b[8:12]); return b }), errYourDiscrZero},
	} {
		if _, err := Unmarshal(c.b); err != c.want {
			t.Errorf("%s: err %v, want %v", c.name, err, c.want)
		}
	}
}

func FuzzUnmarshal(f *testing.F) {
	f.Add(Packet{State: Up, DetectMult: 3, MyDiscr: 1, YourDiscr: 2}.Marshal())
	f.Add([]byte{0x20, 0x40, 3, 24})
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := Unmarshal(b)
		if err != nil {
			return
		}
		// Whatever is accepted survives a round trip (intervals are whole microseconds).
		if q, err := Unmarshal(p.Marshal()); err != nil || q != p {
			t.Fatalf("accepted %x as %+v; round trip %+v, %v", b, p, q, err)
		}
	})
}

var profile = Config{DesiredMinTx: 300 * time.Millisecond, RequiredMinRx: 300 * time.Millisecond, DetectMult: 3}

// frr is what FRR's bfdd sends while slow (not Up): one second both ways.
func remote(state State, my, your uint32, poll, final bool, tx time.Duration) Packet {
	return Packet{State: state, DetectMult: 3, MyDiscr: my, YourDiscr: your, Poll: poll, Final: final, DesiredMinTx: tx, RequiredMinRx: tx}
}

// TestMachineBringUp walks a session through the three-way handshake against a peer that
// starts slowly and then polls to 300 ms (as FRR's bfdd does), and checks what is advertised,
// the transmit interval and the detection time at each step.
func TestMachineBringUp(t *testing.T) {
	m := newMachine(11, profile)
	if p := m.packet(); p.State != Down || p.DesiredMinTx != time.Second || p.RequiredMinRx != 300*time.Millisecond || p.YourDiscr != 0 || p.Poll {
		t.Fatalf("first packet %+v, want Down, slow 1s transmit, no discriminator", p)
	}
	steps := []struct {
		name     string
		in       Packet
		to       State // the state after the packet
		changed  bool
		final    bool
		poll     bool // our next packet polls
		tx       time.Duration
		detect   time.Duration
		advertTx time.Duration
	}{
		{"peer Down", remote(Down, 22, 0, false, false, time.Second), Init, true, false, false, time.Second, 3 * time.Second, time.Second},
		{"peer Up", remote(Up, 22, 11, false, false, time.Second), Up, true, false, true, time.Second, 3 * time.Second, 300 * time.Millisecond},
		// Our own poll lowers our rate at once; the peer's lower rate counts from its
		// second packet (it may keep the slow rate until our Final reaches it).
		{"peer polls to 300ms", remote(Up, 22, 11, true, false, 300*time.Millisecond), Up, false, true, true, 300 * time.Millisecond, 3 * time.Second, 300 * time.Millisecond},
		{"peer's Final ends our poll", remote(Up, 22, 11, false, true, 300*time.Millisecond), Up, false, false, false, 300 * time.Millisecond, 900 * time.Millisecond, 300 * time.Millisecond},
	}
	for _, s := range steps {
		tr, final := m.receive(s.in)
		if (tr != nil) != s.changed || m.state != s.to || final != s.final {
			t.Fatalf("%s: transition %+v final %v state %s; want changed %v final %v state %s", s.name, tr, final, m.state, s.changed, s.final, s.to)
		}
		p := m.packet()
		if p.Poll != s.poll || p.DesiredMinTx != s.advertTx || p.YourDiscr != 22 {
			t.Errorf("%s: next packet %+v, want poll %v, desired tx %s, your discriminator 22", s.name, p, s.poll, s.advertTx)
		}
		if got := m.txInterval(); got != s.tx {
			t.Errorf("%s: transmit interval %s, want %s", s.name, got, s.tx)
		}
		if got := m.detectionTime(); got != s.detect {
			t.Errorf("%s: detection time %s, want %s", s.name, got, s.detect)
		}
	}
	if !m.everUp {
		t.Error("everUp not set")
	}
}

// TestMachineDown covers the ways a session leaves Init or Up, and that only a session that
// was Up reports having been Up.
func TestMachineDown(t *testing.T) {
	upMachine := func() *machine {
		m := newMachine(11, profile)
		m.receive(remote(Init, 22, 11, false, false, time.Second))
		if m.state != Up {
			t.Fatalf("setup: state %s", m.state)
		}
		return m
	}
	initMachine := func() *machine {
		m := newMachine(11, profile)
		m.receive(remote(Down, 22, 0, false, false, time.Second))
		return m
	}
	for _, c := range []struct {
		name   string
		m      *machine
		event  func(m *machine) *transition
		to     State
		diag   Diag
		everUp bool
	}{
		{"Up, detection time expires", upMachine(), (*machine).expire, Down, DiagDetectionExpired, true},
		{"Init, detection time expires", initMachine(), (*machine).expire, Down, DiagDetectionExpired, false},
		{"Up, peer says Down", upMachine(), func(m *machine) *transition {
			tr, _ := m.receive(remote(Down, 22, 11, false, false, time.Second))
			return tr
		}, Down, DiagNeighborDown, true},
		{"Up, peer restarted with a new discriminator", upMachine(), func(m *machine) *transition {
			tr, _ := m.receive(remote(Down, 33, 0, false, false, time.Second))
			return tr
		}, Down, DiagNeighborDown, true},
		{"Up, peer AdminDown", upMachine(), func(m *machine) *transition {
			tr, _ := m.receive(remote(AdminDown, 22, 11, false, false, time.Second))
			return tr
		}, Down, DiagNeighborDown, true},
		{"Up, local AdminDown", upMachine(), (*machine).adminDown, AdminDown, DiagAdminDown, true},
	} {
		tr := c.event(c.m)
		if tr == nil || tr.to != c.to || tr.diag != c.diag || c.m.everUp != c.everUp {
			t.Errorf("%s: transition %+v everUp %v; want to %s diag %s everUp %v", c.name, tr, c.m.everUp, c.to, c.diag, c.everUp)
			continue
		}
		if c.to == Down {
			if p := c.m.packet(); p.DesiredMinTx != time.Second || p.Poll {
				t.Errorf("%s: after going down the packet is %+v, want the slow 1s rate without poll", c.name, p)
			}
		}
	}
	// A Down from an earlier incarnation of the remote session is ignored.
	stale := upMachine()
	if tr, _ := stale.receive(remote(AdminDown, 99, 11, false, false, time.Second)); tr != nil || stale.state != Up {
		t.Errorf("stale AdminDown: transition %+v state %s, want none", tr, stale.state)
	}
	// A Down session whose detection time expires only forgets the remote discriminator.
	m := newMachine(11, profile)
	m.receive(remote(AdminDown, 22, 0, false, false, time.Second))
	if tr := m.expire(); tr != nil || m.remoteDiscr != 0 {
		t.Errorf("expiry while Down: %+v, remote discriminator %d", tr, m.remoteDiscr)
	}
}

// TestMachineReconfigureUp: new timers on an Up session go through a Poll Sequence; the old
// (slower) receive interval keeps counting for detection until the Final.
func TestMachineReconfigureUp(t *testing.T) {
	m := newMachine(11, profile)
	m.receive(remote(Init, 22, 11, false, false, 300*time.Millisecond))
	m.receive(remote(Up, 22, 11, false, true, 300*time.Millisecond))
	if m.polling {
		t.Fatal("setup: still polling")
	}
	m.reconfigure(Config{DesiredMinTx: 100 * time.Millisecond, RequiredMinRx: 100 * time.Millisecond, DetectMult: 3})
	if p := m.packet(); !p.Poll || p.DesiredMinTx != 100*time.Millisecond {
		t.Fatalf("packet after reconfigure %+v, want a poll for 100ms", p)
	}
	if d := m.detectionTime(); d != 900*time.Millisecond {
		t.Errorf("detection time during poll %s, want the old 900ms", d)
	}
	m.receive(remote(Up, 22, 11, false, true, 100*time.Millisecond))
	m.receive(remote(Up, 22, 11, false, false, 100*time.Millisecond))
	if m.polling || m.detectionTime() != 300*time.Millisecond || m.txInterval() != 100*time.Millisecond {
		t.Errorf("after Final: polling %v detection %s tx %s", m.polling, m.detectionTime(), m.txInterval())
	}
}

func TestJitter(t *testing.T) {
	m := newMachine(1, profile)
	for range 1000 {
		if d := m.jittered(time.Second); d < 750*time.Millisecond || d > time.Second {
			t.Fatalf("jittered 1s = %s", d)
		}
	}
	m.cfg.DetectMult = 1
	for range 1000 {
		if d := m.jittered(time.Second); d < 750*time.Millisecond || d > 900*time.Millisecond {
			t.Fatalf("jittered 1s with multiplier 1 = %s", d)
		}
	}
}

type eventLog struct {
	mu  sync.Mutex
	evs []Event
}

func (l *eventLog) add(ev Event) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.evs = append(l.evs, ev)
}

func (l *eventLog) get() []Event {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]Event(nil), l.evs...)
}

// TestServersOnLoopback runs two servers against each other over 127.0.0.1: the session comes
// up, moves to the fast timers, and when one side is removed (AdminDown) the other goes Down
// with "neighbor signaled session down"; a server that is closed abruptly is detected within
// the detection time.
func TestServersOnLoopback(t *testing.T) {
	lo := netip.MustParseAddr("127.0.0.1")
	// 100 ms x 10: fast enough to show the move from the slow start-up rate, slack enough for a
	// loaded test machine.
	fast := Config{DesiredMinTx: 100 * time.Millisecond, RequiredMinRx: 100 * time.Millisecond, DetectMult: 10}
	var la, lb eventLog
	a, err := Listen(slog.New(slog.DiscardHandler), 47841, 47842, la.add)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := Listen(slog.New(slog.DiscardHandler), 47842, 47841, lb.add)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Add(lo, netip.Addr{}, fast); err != nil {
		t.Fatal(err)
	}
	if err := b.Add(lo, netip.Addr{}, fast); err != nil {
		t.Fatal(err)
	}
	waitState := func(s *Server, want State, within time.Duration) {
		t.Helper()
		deadline := time.Now().Add(within)
		for {
			st, _ := s.SessionState(lo)
			if st == want {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("session state %s after %s, want %s; events a %+v b %+v", st, within, want, la.get(), lb.get())
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	// Up within a few slow (1 s) packets.
	waitState(a, Up, 5*time.Second)
	waitState(b, Up, 5*time.Second)
	// Both settle on 100 ms: neither side goes down for several detection times.
	time.Sleep(3 * time.Second)
	for _, l := range []*eventLog{&la, &lb} {
		for _, ev := range l.get() {
			if ev.To != Up && ev.To != Init {
				t.Fatalf("unexpected event %+v while settling", ev)
			}
		}
	}
	// b removes its session: a learns AdminDown and goes Down.
	b.Remove(lo)
	waitState(a, Down, 2*time.Second)
	evs := la.get()
	if last := evs[len(evs)-1]; last.From != Up || last.To != Down || last.Diag != DiagNeighborDown || !last.EverUp {
		t.Errorf("a's last event %+v, want Up to Down, neighbor signaled down", last)
	}
	// b comes back; then b goes silent: a detects it within 10 x 100 ms (plus slack).
	if err := b.Add(lo, netip.Addr{}, fast); err != nil {
		t.Fatal(err)
	}
	waitState(a, Up, 5*time.Second)
	time.Sleep(500 * time.Millisecond) // the poll to 100 ms completes
	b.mu.Lock()
	ss := b.sessions[lo]
	b.mu.Unlock()
	// Silence b without AdminDown, as a frozen or cut-off peer is silent.
	ss.silent.Store(true)
	t0 := time.Now()
	waitState(a, Down, 5*time.Second)
	if d := time.Since(t0); d < 900*time.Millisecond || d > 2*time.Second {
		t.Errorf("silence detected after %s, want about 1 s (the detection time, not the slow 10 s)", d)
	}
	if last := la.get()[len(la.get())-1]; last.Diag != DiagDetectionExpired {
		t.Errorf("a's last event %+v, want detection time expired", last)
	}
}
