package l2

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/herald-lb/herald/announcers"
)

// fakeHost is a kernel whose interfaces a test changes, then calls Resync as a netlink
// notification would.
type fakeHost struct {
	mu     sync.Mutex
	ifaces []Interface
}

func (h *fakeHost) interfaces() ([]Interface, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.ifaces), nil
}

// set replaces the interface with it.Name, or adds it.
func (h *fakeHost) set(it Interface) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for i := range h.ifaces {
		if h.ifaces[i].Name == it.Name {
			h.ifaces[i] = it
			return
		}
	}
	h.ifaces = append(h.ifaces, it)
}

func running(it Interface) Interface {
	it.Flags |= net.FlagRunning
	return it
}

func newHostAnnouncer(t *testing.T, ifaces ...Interface) (*Announcer, *fakeDriver, *fakeHost) {
	t.Helper()
	host := &fakeHost{ifaces: ifaces}
	d := &fakeDriver{links: map[string]*fakeLink{}, failOpen: map[string]bool{}, opens: map[string]int{}}
	a := New(d, hclog.NewNullLogger(), host.interfaces, "test")
	t.Cleanup(a.Close)
	if err := a.Configure(context.Background(), announcers.Config{L2: &announcers.L2Config{GratuitousCount: 2, GratuitousInterval: time.Millisecond}}); err != nil {
		t.Fatal(err)
	}
	return a, d, host
}

// waitFor polls cond every 5ms for up to 2s (the link loop settles 20ms after a Resync).
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after 2s waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func health(t *testing.T, a *Announcer) announcers.Status {
	t.Helper()
	st, err := a.Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// The kernel's view drives the links: down closes, up reopens and re-announces, a new
// interface is used, a re-created one (new index) is reopened.
func TestLinksFollowTheKernel(t *testing.T) {
	vip := netip.MustParseAddr("192.0.2.50")
	eth0 := running(iface("eth0", 2, true, "192.0.2.10/24"))
	a, d, host := newHostAnnouncer(t, eth0)
	announce(t, a, 1, ip("192.0.2.50/32", "eth0", "eth9"))
	first := d.link("eth0")
	waitFor(t, "the first burst", func() bool { return first.count(vip) == 2 })
	if st := health(t, a); st.Health != announcers.HealthDegraded || !strings.Contains(st.Message, `"eth9" is missing`) {
		t.Fatalf("with eth9 absent: %s %q, want degraded naming eth9", st.Health, st.Message)
	}

	// Link down: the link is closed and the announcer says so.
	host.set(iface("eth0", 2, false, "192.0.2.10/24"))
	a.Resync()
	waitFor(t, "eth0 closed after going down", func() bool {
		select {
		case <-first.closed:
			return true
		default:
			return false
		}
	})
	if st := health(t, a); !strings.Contains(st.Message, `"eth0" is missing, down`) {
		t.Errorf("with eth0 down: %q, want it named", st.Message)
	}

	// Link up: reopened, answering, and the burst is sent again.
	host.set(eth0)
	a.Resync()
	waitFor(t, "eth0 reopened", func() bool { return d.openCount("eth0") == 2 })
	second := d.link("eth0")
	if !second.h.Owns(vip) {
		t.Error("the reopened link does not answer for the address")
	}
	waitFor(t, "the burst on the returned link", func() bool { return second.count(vip) == 2 })
	if second.probes(vip) != 1 {
		t.Errorf("returned link probed %s %d times before announcing, want 1", vip, second.probes(vip))
	}

	// An interface created after start is used.
	host.set(running(iface("eth9", 7, true, "198.51.100.10/24")))
	a.Resync()
	waitFor(t, "eth9 opened", func() bool { return d.link("eth9") != nil && d.link("eth9").h.Owns(vip) })
	waitFor(t, "healthy with both links", func() bool { return health(t, a).Health == announcers.HealthHealthy })

	// eth9 deleted and created again (a new index): the old socket is bound to the old one.
	host.set(running(iface("eth9", 8, true, "198.51.100.10/24")))
	a.Resync()
	waitFor(t, "eth9 reopened at its new index", func() bool { return d.openCount("eth9") == 2 })
}

// A read loop that fails (ENETDOWN, any socket error) is not the end: the announcer reports
// degraded, reopens the link with backoff while opening fails, and announces again.
func TestFailedLinkIsReopened(t *testing.T) {
	vip := netip.MustParseAddr("192.0.2.50")
	a, d, _ := newHostAnnouncer(t, running(iface("eth0", 2, true, "192.0.2.10/24")))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	events, _ := a.Events(ctx)
	announce(t, a, 1, ip("192.0.2.50/32"))
	first := d.link("eth0")

	d.mu.Lock()
	d.failOpen["eth0"] = true // the first reopen attempts fail too
	d.mu.Unlock()
	first.fail <- errors.New("recvfrom: network is down")
	select {
	case e := <-events:
		if e.Error == nil || !strings.Contains(e.Error.Message, "network is down") {
			t.Errorf("event %v, want the link's error", e)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("no error event within 2s of the read loop failing")
	}
	waitFor(t, "degraded while the link cannot be reopened", func() bool {
		st := health(t, a)
		return st.Health == announcers.HealthDegraded && strings.Contains(st.Message, "operation not permitted")
	})
	d.mu.Lock()
	d.failOpen["eth0"] = false
	d.mu.Unlock()
	waitFor(t, "eth0 reopened after the backoff", func() bool { return d.openCount("eth0") == 2 })
	second := d.link("eth0")
	waitFor(t, "the burst on the reopened link", func() bool { return second.count(vip) == 2 })
	waitFor(t, "healthy again", func() bool { return health(t, a).Health == announcers.HealthHealthy })
}

// Carrier loss with the link left open (a cable, a switch port): when the carrier returns the
// burst goes out again on the same socket.
func TestCarrierReturnResendsTheBurst(t *testing.T) {
	vip := netip.MustParseAddr("192.0.2.50")
	eth0 := running(iface("eth0", 2, true, "192.0.2.10/24"))
	a, d, host := newHostAnnouncer(t, eth0)
	announce(t, a, 1, ip("192.0.2.50/32"))
	l := d.link("eth0")
	waitFor(t, "the first burst", func() bool { return l.count(vip) == 2 })
	host.set(iface("eth0", 2, true, "192.0.2.10/24")) // up, no carrier
	a.Resync()
	time.Sleep(100 * time.Millisecond)
	if n := l.count(vip); n != 2 {
		t.Fatalf("%d announcements while the carrier was down, want still 2", n)
	}
	host.set(eth0)
	a.Resync()
	waitFor(t, "a second burst when the carrier returned", func() bool { return l.count(vip) == 4 })
	if d.openCount("eth0") != 1 {
		t.Errorf("the link was reopened %d times; a carrier change needs no new socket", d.openCount("eth0")-1)
	}
}

// Malformed frames are counted per link and the count survives the link being closed.
func TestMalformedFramesAreCounted(t *testing.T) {
	a, d, host := newHostAnnouncer(t, running(iface("eth0", 2, true, "192.0.2.10/24")))
	announce(t, a, 1, ip("192.0.2.50/32"))
	l := d.link("eth0")
	for i := 0; i < 1000; i++ {
		l.h.Malformed(fmt.Errorf("malformed frame %d", i))
	}
	if n := a.Malformed(); n != 1000 {
		t.Errorf("Malformed() = %d, want 1000", n)
	}
	host.set(iface("eth0", 2, false, "192.0.2.10/24"))
	a.Resync()
	waitFor(t, "eth0 closed", func() bool {
		select {
		case <-l.closed:
			return true
		default:
			return false
		}
	})
	if n := a.Malformed(); n != 1000 {
		t.Errorf("after the link closed Malformed() = %d, want 1000", n)
	}
}

// Every address is probed before its first gratuitous packet on a link.
func TestProbeBeforeFirstAnnouncement(t *testing.T) {
	a, d, _ := newHostAnnouncer(t, running(iface("eth0", 2, true, "192.0.2.10/24")))
	announce(t, a, 1, ip("192.0.2.50/32"))
	l := d.link("eth0")
	waitFor(t, "the burst", func() bool { return l.count(netip.MustParseAddr("192.0.2.50")) == 2 })
	l.mu.Lock()
	order := slices.Clone(l.order)
	l.mu.Unlock()
	want := []string{"probe 192.0.2.50", "announce 192.0.2.50", "announce 192.0.2.50"}
	if !slices.Equal(order, want) {
		t.Errorf("sent %v, want %v", order, want)
	}
}

func TestProberSpreadsProbesAtABoundedRate(t *testing.T) {
	ticks := int(probeInterval / probeTick)
	for _, tc := range []struct {
		name    string
		owned   int
		perTick int
		// cycle is how many ticks one cycle takes to probe every address.
		cycle int
	}{
		{"nothing owned", 0, 0, 0},
		{"fewer addresses than ticks: one a tick", 10, 1, 10},
		{"spread over the interval", 900, 30, 30},
		{"capped: the cycle stretches", 10000, maxProbesPerTick, 10000 / maxProbesPerTick},
	} {
		t.Run(tc.name, func(t *testing.T) {
			owned := map[netip.Addr]struct{}{}
			a := netip.MustParseAddr("192.0.2.0")
			for i := 0; i < tc.owned; i++ {
				a = a.Next()
				owned[a] = struct{}{}
			}
			var p prober
			start := time.Unix(1e9, 0)
			at := func(tick int) time.Time { return start.Add(time.Duration(tick) * probeTick) }
			seen := map[netip.Addr]int{}
			for tick := 0; tick < tc.cycle; tick++ {
				got := p.next(at(tick), owned)
				if len(got) != tc.perTick && !(tick == tc.cycle-1 && len(got) > 0) {
					t.Fatalf("tick %d probes %d, want %d", tick, len(got), tc.perTick)
				}
				for _, a := range got {
					seen[a]++
				}
			}
			if len(seen) != tc.owned {
				t.Errorf("probed %d distinct addresses in a cycle, want all %d", len(seen), tc.owned)
			}
			for a, k := range seen {
				if k != 1 {
					t.Errorf("%s probed %d times in one cycle", a, k)
				}
			}
			next := p.next(at(tc.cycle), owned)
			switch {
			case tc.owned == 0 && len(next) != 0:
				t.Errorf("probes with nothing owned: %v", next)
			case tc.owned > 0 && tc.cycle < ticks && len(next) != 0:
				t.Errorf("a new cycle began %d ticks into the interval: %d probes", tc.cycle, len(next))
			case tc.owned > 0 && tc.cycle >= ticks && len(next) != tc.perTick:
				t.Errorf("a stretched cycle is followed at once by the next: got %d probes, want %d", len(next), tc.perTick)
			}
			if tc.owned > 0 && tc.cycle < ticks {
				if got := p.next(at(ticks), owned); len(got) != tc.perTick {
					t.Errorf("one interval after the cycle began: %d probes, want %d", len(got), tc.perTick)
				}
			}
		})
	}
}

// The conflict limiter forgets reports once their interval has passed, so its map is
// bounded by the reports of one interval, and by maxConflictMACs per address.
func TestConflictLimiterIsBounded(t *testing.T) {
	var c conflictLimiter
	every := 10 * time.Second
	now := time.Unix(1e9, 0)
	a := netip.MustParseAddr("192.0.2.0")
	for i := 0; i < 100_000; i++ {
		a = a.Next()
		now = now.Add(time.Millisecond) // 1,000 addresses a second: 10,000 per interval
		if !c.allow(a, "02:00:00:00:00:01", now, every) {
			t.Fatalf("first report for %s refused", a)
		}
		if n := c.tracked(); n > 2*10_000 {
			t.Fatalf("limiter holds %d reports after %d, want at most 2 intervals' worth", n, i+1)
		}
	}
	if c.allow(a, "02:00:00:00:00:01", now.Add(time.Second), every) {
		t.Error("a second report within the interval was allowed")
	}
	if !c.allow(a, "02:00:00:00:00:01", now.Add(every), every) {
		t.Error("a report after the interval was refused")
	}
}

// Another MAC claiming an address already reported within the interval is reported too (a
// foreign host after a Herald peer's hand-over), up to maxConflictMACs MACs per address.
func TestConflictLimiterPerMAC(t *testing.T) {
	var c conflictLimiter
	every := 10 * time.Second
	now := time.Unix(1e9, 0)
	a := netip.MustParseAddr("192.0.2.10")
	for i := 0; i < 100; i++ {
		mac := fmt.Sprintf("02:00:00:00:00:%02x", i)
		if got, want := c.allow(a, mac, now, every), i < maxConflictMACs; got != want {
			t.Fatalf("MAC %d: allowed %v, want %v", i, got, want)
		}
	}
	if n := c.tracked(); n != maxConflictMACs {
		t.Fatalf("limiter holds %d reports, want %d", n, maxConflictMACs)
	}
	if !c.allow(a, "02:00:00:00:00:63", now.Add(every), every) {
		t.Error("a new MAC after the interval was refused")
	}
}
