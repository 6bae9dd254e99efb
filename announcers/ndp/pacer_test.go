package ndp

import (
	"net/netip"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// sendLog records what a pacer sent and when, in the bubble's fake time.
type sendLog struct {
	mu    sync.Mutex
	addrs []netip.Addr
	at    []time.Duration
	start time.Time
}

func (s *sendLog) send(a netip.Addr) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.addrs = append(s.addrs, a)
	s.at = append(s.at, time.Since(s.start))
}

func addrs(n int) []netip.Addr {
	out := make([]netip.Addr, n)
	for i := range out {
		out[i] = netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 14: byte(i >> 8), 15: byte(i)})
	}
	return out
}

func all(netip.Addr) bool { return true }

func TestPacerSendsInOrderOnceEach(t *testing.T) {
	a := addrs(4)
	head, a := a[3], a[:3]
	tests := []struct {
		name    string
		enqueue []netip.Addr
		owns    func(netip.Addr) bool
		want    []netip.Addr
	}{
		{name: "in order", enqueue: a, owns: all, want: a},
		{name: "a repeat asked while waiting goes to the back", enqueue: []netip.Addr{a[0], a[1], a[0], a[2], a[1]}, owns: all, want: []netip.Addr{a[0], a[1], a[2], a[0], a[1]}},
		{name: "at most pacerMaxPending owed", enqueue: slices.Repeat(a[:1], pacerMaxPending+5), owns: all, want: slices.Repeat(a[:1], pacerMaxPending)},
		{name: "withdrawn while waiting is skipped", enqueue: a, owns: func(x netip.Addr) bool { return x != a[1] }, want: []netip.Addr{a[0], a[2]}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				log := &sendLog{start: time.Now()}
				// Batch 1: head goes out at once and the rest queue behind it for a second.
				p := newPacer(tt.owns, log.send, 1, time.Second)
				defer p.stop()
				p.enqueue(head)
				synctest.Wait()
				for _, x := range tt.enqueue {
					p.enqueue(x)
				}
				time.Sleep(10 * time.Second)
				synctest.Wait()
				if want := append([]netip.Addr{head}, tt.want...); !slices.Equal(log.addrs, want) {
					t.Errorf("sent %v, want %v", log.addrs, want)
				}
			})
		})
	}
}

func TestPacerBoundsTheRate(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		log := &sendLog{start: time.Now()}
		p := newPacer(all, log.send, 100, 10*time.Millisecond)
		defer p.stop()
		for _, x := range addrs(1000) {
			p.enqueue(x)
		}
		time.Sleep(time.Second)
		synctest.Wait()
		if len(log.at) != 1000 {
			t.Fatalf("sent %d, want 1000", len(log.at))
		}
		// The pacer may start sending while the queue is still being filled, so the first tick
		// can carry fewer than 100; what must hold is the bound per tick, sends only on ticks,
		// and no stall: 1,000 at 100 per tick are out by the eleventh tick.
		perTick := map[time.Duration]int{}
		for i, at := range log.at {
			if at%(10*time.Millisecond) != 0 || (i > 0 && at < log.at[i-1]) {
				t.Fatalf("advertisement %d sent at %s: not on a tick, or out of order", i, at)
			}
			if perTick[at]++; perTick[at] > 100 {
				t.Fatalf("more than 100 advertisements in the tick at %s", at)
			}
		}
		if last := log.at[len(log.at)-1]; last > 100*time.Millisecond {
			t.Fatalf("last advertisement at %s, want by 100ms", last)
		}
	})
}

func TestPacerSendsAtOnceWhenIdle(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		log := &sendLog{start: time.Now()}
		p := newPacer(all, log.send, 100, 10*time.Millisecond)
		defer p.stop()
		a := addrs(2)
		p.enqueue(a[0])
		synctest.Wait()
		time.Sleep(time.Hour)
		p.enqueue(a[1])
		synctest.Wait()
		if want := []time.Duration{0, time.Hour}; !slices.Equal(log.at, want) {
			t.Errorf("sent at %v, want %v", log.at, want)
		}
	})
}

func TestPacerStopDropsTheQueue(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		log := &sendLog{start: time.Now()}
		p := newPacer(all, log.send, 1, time.Second)
		for _, x := range addrs(5) {
			p.enqueue(x)
		}
		synctest.Wait()
		p.stop()
		p.stop() // a second stop is harmless
		p.enqueue(addrs(6)[5])
		time.Sleep(time.Minute)
		synctest.Wait()
		if len(log.addrs) != 1 {
			t.Errorf("sent %d after stop, want only the 1 sent before", len(log.addrs))
		}
	})
}

func TestPacerSpacesRepeatsByATick(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		log := &sendLog{start: time.Now()}
		p := newPacer(all, log.send, 100, 10*time.Millisecond)
		defer p.stop()
		a := addrs(2)
		p.enqueue(a[1])
		synctest.Wait() // a[1] goes at once; a burst for a[0] arrives within the tick
		for range 3 {
			p.enqueue(a[0])
		}
		time.Sleep(time.Second)
		synctest.Wait()
		ms := time.Millisecond
		if want := []time.Duration{0, 10 * ms, 20 * ms, 30 * ms}; !slices.Equal(log.at, want) {
			t.Errorf("sent at %v, want %v", log.at, want)
		}
	})
}
