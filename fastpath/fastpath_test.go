package fastpath

import (
	"fmt"
	"net"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
)

var key = []byte("0123456789abcdef0123456789abcdef")

// freePort returns a port free for both TCP and UDP on 127.0.0.1, as memberlist needs both.
func freePort(t testing.TB) int {
	t.Helper()
	for range 20 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		u, err := net.ListenPacket("udp", fmt.Sprintf("127.0.0.1:%d", port))
		l.Close()
		if err == nil {
			u.Close()
			return port
		}
	}
	t.Fatal("no port free for both TCP and UDP on 127.0.0.1")
	return 0
}

func start(t testing.TB, name string, secret []byte) *Detector {
	t.Helper()
	d, err := New(Config{Name: name, BindAddr: fmt.Sprintf("127.0.0.1:%d", freePort(t)), SecretKey: secret, Logger: logr.Discard()})
	if err != nil {
		t.Fatalf("New(%s): %v", name, err)
	}
	t.Cleanup(func() { _ = d.Stop() })
	return d
}

func addrs(ds ...*Detector) map[string]string {
	out := map[string]string{}
	for _, d := range ds {
		out[d.self] = d.Address()
	}
	return out
}

// waitView waits until d's view satisfies ok, for at most 10 s; on timeout it fails with what
// it waited for and the view it had.
func waitView(t testing.TB, d *Detector, what string, ok func(map[string]bool) bool) time.Duration {
	t.Helper()
	begin := time.Now()
	for deadline := begin.Add(10 * time.Second); ; {
		view := map[string]bool{}
		for n, r := range d.View() {
			view[n] = r.Reachable
		}
		if ok(view) {
			return time.Since(begin)
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: waited 10s for %s; its view: %v", d.self, what, view)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func reaches(names ...string) func(map[string]bool) bool {
	return func(v map[string]bool) bool {
		for _, n := range names {
			if !v[n] {
				return false
			}
		}
		return true
	}
}

func lost(name string) func(map[string]bool) bool {
	return func(v map[string]bool) bool { r, known := v[name]; return known && !r }
}

// Three speakers join through the addresses their heartbeats publish; when one crashes the
// others find it gone; when it comes back under the same name they reach it again.
func TestDetectsCrashAndReturn(t *testing.T) {
	a, b, c := start(t, "a", key), start(t, "b", key), start(t, "c", key)
	all := addrs(a, b, c)
	for _, d := range []*Detector{a, b, c} {
		if err := d.Join(all); err != nil {
			t.Fatalf("%s: Join: %v", d.self, err)
		}
	}
	waitView(t, a, "b and c reachable", reaches("b", "c"))
	waitView(t, b, "a and c reachable", reaches("a", "c"))

	if err := c.Stop(); err != nil {
		t.Fatal(err)
	}
	took := waitView(t, a, "c lost", lost("c"))
	waitView(t, b, "c lost", lost("c"))
	t.Logf("a found c gone %s after it stopped", took.Round(time.Millisecond))
	if r := a.View()["b"]; !r.Reachable {
		t.Errorf("a lost b too: %+v", r)
	}

	c2, err := New(Config{Name: "c", BindAddr: c.Address(), SecretKey: key, Logger: logr.Discard()})
	if err != nil {
		t.Fatalf("restart c: %v", err)
	}
	t.Cleanup(func() { _ = c2.Stop() })
	if err := c2.Join(addrs(a, b)); err != nil {
		t.Fatalf("c: Join: %v", err)
	}
	waitView(t, a, "c reachable again", reaches("c"))
	waitView(t, c2, "a and b reachable", reaches("a", "b"))
}

// A node that leaves (a speaker stopping) is gone at once, without waiting for probes.
func TestLeave(t *testing.T) {
	a, b := start(t, "a", key), start(t, "b", key)
	if err := a.Join(addrs(b)); err != nil {
		t.Fatal(err)
	}
	waitView(t, b, "a reachable", reaches("a"))
	if err := a.Leave(time.Second); err != nil {
		t.Fatalf("Leave: %v", err)
	}
	waitView(t, b, "a gone after it left", lost("a"))
}

// A host without the key can neither join nor be reached: the others never count it.
func TestWrongKeyCannotJoin(t *testing.T) {
	a := start(t, "a", key)
	intruder := start(t, "intruder", []byte("fedcba9876543210fedcba9876543210"))
	err := intruder.Join(addrs(a))
	if err == nil {
		t.Error("a node with another key joined without an error")
	}
	time.Sleep(500 * time.Millisecond) // bounded: long enough for several probe and gossip rounds
	if _, known := a.View()["intruder"]; known {
		t.Errorf("a counts the intruder: %v", a.View())
	}
}

func TestNewRejects(t *testing.T) {
	tests := []struct {
		name string
		c    Config
		want string
	}{
		{"no key", Config{Name: "a", BindAddr: "127.0.0.1:7946"}, "a secret key is required"},
		{"short key", Config{Name: "a", BindAddr: "127.0.0.1:7946", SecretKey: []byte("short")}, "16, 24 or 32 bytes"},
		{"bad port", Config{Name: "a", BindAddr: "127.0.0.1:http0", SecretKey: key}, "bind address"},
		{"wildcard without an advertise address", Config{Name: "a", BindAddr: ":7946", SecretKey: key}, "advertise address"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(tt.c)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("New = %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

// BenchmarkDetection measures how long after a speaker crashes every other speaker of six
// finds it gone, with the default probe interval, on loopback (the benchmark's figure is the
// fast path's share of the failover time). Run: go test -run '^$' -bench Detection -benchtime 20x ./fastpath/
func BenchmarkDetection(b *testing.B) {
	var took []time.Duration
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		ds := make([]*Detector, 6)
		for j := range ds {
			ds[j] = start(b, fmt.Sprintf("n%d-%d", i, j), key)
		}
		for _, d := range ds {
			if err := d.Join(addrs(ds...)); err != nil {
				b.Fatal(err)
			}
		}
		names := make([]string, 0, len(ds))
		for _, d := range ds {
			names = append(names, d.self)
		}
		for _, d := range ds {
			waitView(b, d, "every other node reachable", reaches(slices.DeleteFunc(slices.Clone(names), func(n string) bool { return n == d.self })...))
		}
		b.StartTimer()
		victim := ds[i%len(ds)]
		_ = victim.Stop()
		var worst time.Duration
		for _, d := range ds {
			if d != victim {
				worst = max(worst, waitView(b, d, victim.self+" lost", lost(victim.self)))
			}
		}
		took = append(took, worst)
		b.StopTimer()
		for _, d := range ds {
			_ = d.Stop()
		}
	}
	sort.Slice(took, func(i, j int) bool { return took[i] < took[j] })
	b.ReportMetric(float64(took[len(took)/2].Milliseconds()), "p50-ms")
	b.ReportMetric(float64(took[(len(took)*99)/100].Milliseconds()), "p99-ms")
	b.ReportMetric(float64(took[len(took)-1].Milliseconds()), "max-ms")
}

// A node this one cannot join, and never reached, counts as unreachable; once it runs and
// joins it is reachable.
func TestJoinFailureMarksUnreachable(t *testing.T) {
	a := start(t, "a", key)
	ghost := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	if err := a.Join(map[string]string{"ghost": ghost}); err == nil || !strings.Contains(err.Error(), "ghost") {
		t.Fatalf("Join of a node that is not there = %v, want an error naming it", err)
	}
	if r, known := a.View()["ghost"]; !known || r.Reachable {
		t.Fatalf("view of ghost = %+v (known %v), want unreachable", r, known)
	}
	g, err := New(Config{Name: "ghost", BindAddr: ghost, SecretKey: key, Logger: logr.Discard()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = g.Stop() })
	if err := a.Join(map[string]string{"ghost": ghost}); err != nil {
		t.Fatalf("Join once it runs: %v", err)
	}
	waitView(t, a, "ghost reachable", reaches("ghost"))
}
