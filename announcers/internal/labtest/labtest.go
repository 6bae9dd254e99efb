//go:build e2e

// Package labtest holds what the announcers' end-to-end tests share: running an announcer
// under the real manager inside a lab node's network namespace, and a raw ARP prober/flooder
// that runs inside another namespace (the client) from the test process.
package labtest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/go-logr/logr/funcr"
	"github.com/mdlayher/arp"
	"github.com/mdlayher/packet"
	"golang.org/x/sys/unix"

	"github.com/herald-lb/herald/announcers"
	"github.com/herald-lb/herald/announcers/manager"
	"github.com/herald-lb/herald/test/lab"
	"github.com/herald-lb/herald/test/testbin"
)

// Log keeps a manager's log lines for assertions and shows them with -v.
type Log struct {
	mu    sync.Mutex
	lines []string
}

// Logger returns a logr.Logger writing into l.
func (l *Log) Logger(t testing.TB) logr.Logger {
	return funcr.New(func(_, args string) {
		l.mu.Lock()
		l.lines = append(l.lines, args)
		l.mu.Unlock()
		if testing.Verbose() {
			t.Log(args)
		}
	}, funcr.Options{})
}

// Contains reports whether one line contains every part.
func (l *Log) Contains(parts ...string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, line := range l.lines {
		ok := true
		for _, p := range parts {
			ok = ok && strings.Contains(line, p)
		}
		if ok {
			return true
		}
	}
	return false
}

// Lines returns a copy of the lines logged so far.
func (l *Log) Lines() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.lines...)
}

// Binary builds an announcer command, e.g. "herald-announcer-arp".
func Binary(t testing.TB, name string) string {
	return testbin.Build(t, "./cmd/"+name)
}

// SpecOn is a manager Spec that runs bin inside host's network namespace.
func SpecOn(h *lab.Host, name, bin string) manager.Spec {
	return manager.Spec{Name: name, Path: bin, Command: func() *exec.Cmd {
		return h.Command(context.Background(), bin)
	}}
}

// Start runs a manager for specs with fast supervision, waits until every announcer is
// healthy, and stops it at cleanup.
func Start(t testing.TB, log logr.Logger, l2 *announcers.L2Config, specs ...manager.Spec) *manager.Manager {
	t.Helper()
	// Tests assert on the wire right after a change: wait for every acknowledgement.
	m, err := manager.New(log, specs, manager.Options{InitialBackoff: 20 * time.Millisecond, HealthInterval: 500 * time.Millisecond, AckTimeout: 10 * time.Second})
	if err != nil {
		t.Fatalf("manager.New: %v", err)
	}
	m.Start(context.Background())
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = m.Stop(ctx)
	})
	for _, s := range specs {
		WaitFor(t, s.Name+" healthy", 15*time.Second, func() bool { return HealthOf(m, s.Name).State == manager.StateHealthy })
		if l2 != nil {
			if err := m.Configure(context.Background(), s.Name, announcers.Config{L2: l2}); err != nil {
				t.Fatalf("configure %s: %v", s.Name, err)
			}
		}
	}
	return m
}

// HealthOf returns one announcer's health.
func HealthOf(m *manager.Manager, name string) manager.Health {
	for _, h := range m.Health() {
		if h.Name == name {
			return h
		}
	}
	return manager.Health{}
}

// WaitFor polls cond every 10ms until it holds or the timeout passes.
func WaitFor(t testing.TB, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Announce sets the full desired set of one announcer to addrs on the given interfaces.
func Announce(t testing.TB, m *manager.Manager, name string, addrs []netip.Addr, ifaces ...string) {
	t.Helper()
	set := make([]announcers.Announcement, len(addrs))
	for i, a := range addrs {
		set[i] = announcers.Announcement{Prefix: netip.PrefixFrom(a, a.BitLen()), Interfaces: ifaces}
	}
	res, err := m.SetDesired(context.Background(), name, set)
	if err != nil || len(res.Rejected) > 0 || res.Pending != "" {
		t.Fatalf("SetDesired(%s, %d addresses) = %+v, %v", name, len(addrs), res, err)
	}
}

// Range returns n consecutive addresses from first.
func Range(first string, n int) []netip.Addr {
	a := netip.MustParseAddr(first)
	out := make([]netip.Addr, n)
	for i := range out {
		out[i] = a
		a = a.Next()
	}
	return out
}

// inNetns runs fn on an OS thread switched into the named network namespace; sockets fn
// opens stay in that namespace after the thread switches back.
func inNetns(netns string, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		// The thread is left locked (and so discarded) if switching back fails.
		self, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			errc <- err
			return
		}
		defer func() { _ = self.Close() }()
		target, err := os.Open("/var/run/netns/" + netns)
		if err != nil {
			errc <- err
			return
		}
		defer func() { _ = target.Close() }()
		if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("setns %s: %w", netns, err)
			return
		}
		ferr := fn()
		if err := unix.Setns(int(self.Fd()), unix.CLONE_NEWNET); err != nil {
			errc <- errors.Join(ferr, fmt.Errorf("setns back: %w", err))
			return
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	return <-errc
}

// Reply is one ARP reply the prober saw.
type Reply struct {
	Addr netip.Addr
	MAC  net.HardwareAddr
	At   time.Time
}

// ARPProber sends ARP requests from inside a namespace and records the replies.
type ARPProber struct {
	client *arp.Client
	mu     sync.Mutex
	first  map[netip.Addr]Reply // first reply per address since the last Reset
	count  int
	done   chan struct{}
	closed atomic.Bool
}

// NewARPProber opens a raw ARP socket on iface inside netns; it is closed at cleanup.
func NewARPProber(t testing.TB, netns, iface string) *ARPProber {
	t.Helper()
	p := &ARPProber{first: map[netip.Addr]Reply{}, done: make(chan struct{})}
	err := inNetns(netns, func() error {
		ifi, err := net.InterfaceByName(iface)
		if err != nil {
			return err
		}
		p.client, err = arp.Dial(ifi)
		return err
	})
	if err != nil {
		t.Fatalf("ARP prober in %s: %v", netns, err)
	}
	go p.read()
	t.Cleanup(func() { p.closed.Store(true); _ = p.client.Close(); <-p.done })
	return p
}

func (p *ARPProber) read() {
	defer close(p.done)
	for {
		pkt, _, err := p.client.Read()
		if err != nil {
			if p.closed.Load() || errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		if pkt.Operation != arp.OperationReply || pkt.TargetHardwareAddr.String() != p.client.HardwareAddr().String() {
			continue
		}
		now := time.Now()
		p.mu.Lock()
		p.count++
		if _, seen := p.first[pkt.SenderIP]; !seen {
			p.first[pkt.SenderIP] = Reply{Addr: pkt.SenderIP, MAC: pkt.SenderHardwareAddr, At: now}
		}
		p.mu.Unlock()
	}
}

// Request sends one ARP request for addr.
func (p *ARPProber) Request(addr netip.Addr) error { return p.client.Request(addr) }

// Reset forgets the replies seen so far.
func (p *ARPProber) Reset() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.first = map[netip.Addr]Reply{}
	p.count = 0
}

// Answered returns the first reply per address since the last Reset, and how many replies
// arrived in all.
func (p *ARPProber) Answered() (map[netip.Addr]Reply, int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make(map[netip.Addr]Reply, len(p.first))
	for k, v := range p.first {
		out[k] = v
	}
	return out, p.count
}

// OnLink6 returns the address with the given low 16 bits in the /64 of h's IPv6 address, so
// tests follow the lab's addressing.
func OnLink6(h *lab.Host, low uint16) netip.Addr {
	b := h.IPv6.As16()
	for i := 8; i < 14; i++ {
		b[i] = 0
	}
	b[14], b[15] = byte(low>>8), byte(low)
	return netip.AddrFrom16(b)
}

// Flood sends ARP requests for addr back to back, at most max of them and for at most d,
// then waits 200ms for late replies. It returns how many it sent, how many replies arrived,
// and how long the sending took.
func (p *ARPProber) Flood(addr netip.Addr, max int, d time.Duration) (sent, answered int, took time.Duration) {
	p.Reset()
	start := time.Now()
	for sent < max && time.Since(start) < d {
		if err := p.Request(addr); err != nil {
			// A full socket buffer: yield and retry rather than spin.
			time.Sleep(time.Millisecond)
			continue
		}
		sent++
	}
	took = time.Since(start)
	time.Sleep(200 * time.Millisecond)
	_, answered = p.Answered()
	return sent, answered, took
}

// RawSocket writes whole Ethernet frames from inside a namespace, for tests that put on the
// wire what no well-behaved stack would send (malformed ARP and NDP).
type RawSocket struct {
	conn *packet.Conn
}

// NewRawSocket opens a packet socket on iface inside netns; it is closed at cleanup.
func NewRawSocket(t testing.TB, netns, iface string) *RawSocket {
	t.Helper()
	var s RawSocket
	err := inNetns(netns, func() error {
		ifi, err := net.InterfaceByName(iface)
		if err != nil {
			return err
		}
		// A protocol nothing uses: the socket only writes.
		s.conn, err = packet.Listen(ifi, packet.Raw, 0, nil)
		return err
	})
	if err != nil {
		t.Fatalf("raw socket in %s: %v", netns, err)
	}
	t.Cleanup(func() { _ = s.conn.Close() })
	return &s
}

// Send writes frame (destination MAC first) as is.
func (s *RawSocket) Send(frame []byte) error {
	_, err := s.conn.WriteTo(frame, &packet.Addr{HardwareAddr: net.HardwareAddr(frame[0:6])})
	return err
}
