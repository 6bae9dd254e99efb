package bfd

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
)

// Port is the single-hop BFD control port (RFC 5881).
const Port = 3784

// ttl is sent and required on every single-hop packet (RFC 5881 section 5, GTSM).
const ttl = 255

// Event is a session's state change.
type Event struct {
	Peer     netip.Addr
	From, To State
	// Diag is this system's diagnostic: why the session left Up.
	Diag Diag
	// EverUp is true when the session has been Up at least once.
	EverUp bool
	// RemoteAdminDown is set when the peer took the session down administratively: RFC 5882
	// section 3.2 says that is not a failure of the path, so clients must not act on it.
	RemoteAdminDown bool
}

// Server runs the BFD sessions of one process: it listens on the control port and
// demultiplexes packets to sessions, by Your Discriminator or, when that is zero, by source
// address (single hop). State changes are delivered, in order, to the callback given to Listen,
// from a goroutine of their own, so the callback may take the caller's locks.
type Server struct {
	log      *slog.Logger
	onChange func(Event)
	peerPort int // where peers listen; Port except in tests
	conns    []*listener
	wg       sync.WaitGroup

	mu       sync.Mutex
	sessions map[netip.Addr]*session
	byDiscr  map[uint32]*session
	closed   bool

	evMu    sync.Mutex
	events  []Event
	evReady chan struct{}
	evDone  chan struct{}
}

// Listen opens the IPv4 and IPv6 control sockets on port and sends to peers on peerPort (both
// Port in production; tests on one host use two) and starts the event dispatcher. A family
// whose socket cannot be opened (no IPv6 in the namespace) is skipped; failing both is an
// error.
func Listen(log *slog.Logger, port, peerPort int, onChange func(Event)) (*Server, error) {
	s := &Server{log: log, onChange: onChange, peerPort: peerPort, sessions: map[netip.Addr]*session{},
		byDiscr: map[uint32]*session{}, evReady: make(chan struct{}, 1), evDone: make(chan struct{})}
	var errs []error
	for _, network := range []string{"udp4", "udp6"} {
		l, err := listen(network, port)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		s.conns = append(s.conns, l)
	}
	if len(s.conns) == 0 {
		return nil, errors.Join(errs...)
	}
	for _, l := range s.conns {
		s.wg.Add(1)
		go s.read(l)
	}
	go s.dispatch()
	return s, nil
}

// listener is one family's control socket; the received TTL comes with each packet.
type listener struct {
	conn net.PacketConn
	v4   *ipv4.PacketConn // nil for IPv6
	v6   *ipv6.PacketConn
}

func listen(network string, port int) (*listener, error) {
	lc := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) { serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_REUSEADDR, 1) })
		return errors.Join(err, serr)
	}}
	addr := "0.0.0.0"
	if network == "udp6" {
		addr = "::"
	}
	c, err := lc.ListenPacket(context.Background(), network, net.JoinHostPort(addr, strconv.Itoa(port)))
	if err != nil {
		return nil, fmt.Errorf("bfd: listen %s port %d: %w", network, port, err)
	}
	// The received TTL/hop limit is checked per packet (RFC 5881 section 5).
	l := &listener{conn: c}
	if network == "udp4" {
		l.v4 = ipv4.NewPacketConn(c)
		err = l.v4.SetControlMessage(ipv4.FlagTTL, true)
	} else {
		l.v6 = ipv6.NewPacketConn(c)
		err = l.v6.SetControlMessage(ipv6.FlagHopLimit, true)
	}
	if err != nil {
		_ = c.Close()
		return nil, fmt.Errorf("bfd: %s: receive TTL: %w", network, err)
	}
	return l, nil
}

// read receives packets until the socket is closed. Bad packets are dropped and counted by
// the log at debug level; they never stop the loop.
func (s *Server) read(l *listener) {
	defer s.wg.Done()
	buf := make([]byte, 512)
	for {
		var n, hops int
		var src net.Addr
		var err error
		if l.v4 != nil {
			var cm *ipv4.ControlMessage
			n, cm, src, err = l.v4.ReadFrom(buf)
			if cm != nil {
				hops = cm.TTL
			}
		} else {
			var cm *ipv6.ControlMessage
			n, cm, src, err = l.v6.ReadFrom(buf)
			if cm != nil {
				hops = cm.HopLimit
			}
		}
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		ua, ok := src.(*net.UDPAddr)
		if !ok {
			continue
		}
		from := ua.AddrPort().Addr().Unmap().WithZone("")
		if hops != ttl {
			s.log.Debug("BFD packet dropped: TTL is not 255", "peer", from, "ttl", hops)
			continue
		}
		p, err := Unmarshal(buf[:n])
		if err != nil {
			s.log.Debug("BFD packet dropped", "peer", from, "error", err)
			continue
		}
		s.deliver(from, p)
	}
}

// deliver hands a packet to its session: by Your Discriminator when set, otherwise by the
// source address. A packet whose discriminator names another peer's session is dropped.
func (s *Server) deliver(from netip.Addr, p Packet) {
	s.mu.Lock()
	var ss *session
	if p.YourDiscr != 0 {
		ss = s.byDiscr[p.YourDiscr]
		if ss != nil && ss.peer != from {
			ss = nil
		}
	} else {
		ss = s.sessions[from]
	}
	s.mu.Unlock()
	if ss == nil {
		s.log.Debug("BFD packet for no session dropped", "peer", from, "yourDiscr", p.YourDiscr)
		return
	}
	select {
	case ss.rx <- p:
	default: // the session is behind; a later packet carries the same news
	}
}

// Add starts a session with peer, sending from local (an invalid local lets the kernel pick
// the source address). Adding an existing peer changes its timers.
func (s *Server) Add(peer, local netip.Addr, cfg Config) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errors.New("bfd: server closed")
	}
	if old := s.sessions[peer]; old != nil {
		old.reconfigure(cfg)
		return nil
	}
	discr := s.newDiscr()
	conn, err := dialPeer(peer, local, s.peerPort)
	if err != nil {
		return err
	}
	ss := &session{srv: s, peer: peer, conn: conn, m: newMachine(discr, cfg),
		rx: make(chan Packet, 8), cfg: make(chan Config, 1), stop: make(chan struct{}), state: Down}
	s.sessions[peer] = ss
	s.byDiscr[discr] = ss
	s.wg.Add(1)
	go ss.run()
	return nil
}

func (s *Server) newDiscr() uint32 {
	for {
		d := rand.Uint32()
		if d != 0 && s.byDiscr[d] == nil {
			return d
		}
	}
}

// dialPeer opens the session's transmit socket: source port in 49152-65535 (RFC 5881 section
// 4), TTL 255.
func dialPeer(peer, local netip.Addr, port int) (*net.UDPConn, error) {
	var err error
	for range 16 {
		laddr := &net.UDPAddr{Port: 49152 + rand.IntN(65536-49152)}
		if local.IsValid() {
			laddr.IP = local.AsSlice()
		}
		var c *net.UDPConn
		c, err = net.DialUDP("udp", laddr, net.UDPAddrFromAddrPort(netip.AddrPortFrom(peer, uint16(port))))
		if err != nil {
			continue
		}
		if peer.Is4() {
			err = ipv4.NewConn(c).SetTTL(ttl)
		} else {
			err = ipv6.NewConn(c).SetHopLimit(ttl)
		}
		if err != nil {
			_ = c.Close()
			return nil, fmt.Errorf("bfd: peer %s: set TTL: %w", peer, err)
		}
		return c, nil
	}
	return nil, fmt.Errorf("bfd: peer %s: %w", peer, err)
}

// Remove ends the session with peer, telling it AdminDown first. It does not wait.
func (s *Server) Remove(peer netip.Addr) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if ss := s.sessions[peer]; ss != nil {
		s.forget(ss)
		close(ss.stop)
	}
}

func (s *Server) forget(ss *session) {
	delete(s.sessions, ss.peer)
	delete(s.byDiscr, ss.m.localDiscr)
}

// Peers returns the addresses with a session.
func (s *Server) Peers() []netip.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]netip.Addr, 0, len(s.sessions))
	for a := range s.sessions {
		out = append(out, a)
	}
	return out
}

// SessionState returns the state of the session with peer; ok is false when there is none.
func (s *Server) SessionState(peer netip.Addr) (st State, ok bool) {
	s.mu.Lock()
	ss := s.sessions[peer]
	s.mu.Unlock()
	if ss == nil {
		return Down, false
	}
	ss.mu.Lock()
	defer ss.mu.Unlock()
	return ss.state, true
}

// Close ends every session (AdminDown first) and the sockets, and waits for them.
func (s *Server) Close() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	for _, ss := range s.sessions {
		s.forget(ss)
		close(ss.stop)
	}
	s.mu.Unlock()
	for _, l := range s.conns {
		_ = l.conn.Close()
	}
	s.wg.Wait()
	close(s.evDone)
}

func (s *Server) emit(ev Event) {
	s.evMu.Lock()
	s.events = append(s.events, ev)
	s.evMu.Unlock()
	select {
	case s.evReady <- struct{}{}:
	default:
	}
}

// dispatch delivers events in order, outside every lock of the sessions.
func (s *Server) dispatch() {
	for {
		select {
		case <-s.evReady:
		case <-s.evDone:
			return
		}
		s.evMu.Lock()
		evs := s.events
		s.events = nil
		s.evMu.Unlock()
		for _, ev := range evs {
			s.onChange(ev)
		}
	}
}

// session is one peer's machine, driven by its own goroutine.
type session struct {
	srv  *Server
	peer netip.Addr
	conn *net.UDPConn
	m    *machine // owned by run
	rx   chan Packet
	cfg  chan Config
	stop chan struct{}

	mu    sync.Mutex
	state State
	// silent stops all sending, for tests that need a peer that goes quiet without AdminDown.
	silent atomic.Bool
}

func (ss *session) reconfigure(cfg Config) {
	select {
	case <-ss.cfg:
	default:
	}
	ss.cfg <- cfg
}

func (ss *session) run() {
	defer ss.srv.wg.Done()
	defer func() { _ = ss.conn.Close() }()
	tx := time.NewTimer(0)
	defer tx.Stop()
	detect := time.NewTimer(time.Hour)
	detect.Stop()
	defer detect.Stop()
	for {
		select {
		case <-ss.stop:
			ss.report(ss.m.adminDown())
			// Tell the peer a few times, so one lost packet does not make it see a failure.
			for range 3 {
				ss.send(ss.m.packet())
				time.Sleep(ss.m.jittered(50 * time.Millisecond))
			}
			return
		case p := <-ss.rx:
			before := ss.m.txInterval()
			tr, final := ss.m.receive(p)
			if final {
				p := ss.m.packet()
				p.Poll, p.Final = false, true
				ss.send(p)
			}
			if d := ss.m.detectionTime(); d > 0 {
				detect.Reset(d)
			}
			if tr != nil {
				ss.report(tr)
				// A state change is sent at once, so the three-way handshake and the
				// Poll Sequence that follows Up do not wait for the slow timer.
				ss.send(ss.m.packet())
				tx.Reset(ss.m.jittered(ss.m.txInterval()))
			} else if ss.m.txInterval() < before {
				// A Final or the remote's lower Required Min RX allows the faster rate now.
				tx.Reset(ss.m.jittered(ss.m.txInterval()))
			}
		case <-detect.C:
			if tr := ss.m.expire(); tr != nil {
				ss.report(tr)
				ss.send(ss.m.packet())
				tx.Reset(ss.m.jittered(ss.m.txInterval()))
			}
		case cfg := <-ss.cfg:
			ss.m.reconfigure(cfg)
			if ss.m.polling {
				ss.send(ss.m.packet())
			}
			tx.Reset(ss.m.jittered(ss.m.txInterval()))
		case <-tx.C:
			// A remote system that asks for no packets (Required Min RX zero) gets none.
			if ss.m.remoteMinRx > 0 {
				ss.send(ss.m.packet())
			}
			tx.Reset(ss.m.jittered(ss.m.txInterval()))
		}
	}
}

func (ss *session) send(p Packet) {
	if ss.silent.Load() {
		return
	}
	if _, err := ss.conn.Write(p.Marshal()); err != nil {
		ss.srv.log.Debug("BFD send failed", "peer", ss.peer, "error", err)
	}
}

func (ss *session) report(tr *transition) {
	if tr == nil {
		return
	}
	ss.mu.Lock()
	ss.state = tr.to
	ss.mu.Unlock()
	ss.srv.log.Debug("BFD session state", "peer", ss.peer, "from", tr.from, "to", tr.to, "diag", tr.diag,
		"detectionTime", ss.m.detectionTime(), "txInterval", ss.m.txInterval())
	ss.srv.emit(Event{Peer: ss.peer, From: tr.from, To: tr.to, Diag: tr.diag, EverUp: ss.m.everUp, RemoteAdminDown: tr.remoteAdmin})
}
