package announce

import (
	"context"
	"net/netip"
	"runtime"
	"sync"
	"testing"

	"github.com/herald-lb/herald/framework"
)

// Units come and go all day (Services created and deleted); the plugin's per-unit state must
// follow the units that exist, not every unit it ever saw. Binding, withdrawing and
// forgetting a thousand units, from several workers at once, leaves nothing behind.
func TestPerUnitStateDoesNotGrow(t *testing.T) {
	e := newEnv()
	e.p.deps.Recorder = nil // a thousand Events would fill the fake recorder's buffer
	unit := func(i int) *framework.Unit {
		u := testUnit()
		u.IP = netip.AddrFrom4([4]byte{192, 0, 2, byte(i % 250)})
		u.Services = []*framework.ServiceInfo{{Key: framework.ServiceKey{Namespace: "default", Name: "svc"}}}
		return u
	}
	const units, workers = 1000, 4
	var wg sync.WaitGroup
	var mu sync.Mutex // the fakes are not safe for concurrent use
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := w; i < units; i += workers {
				u := unit(i)
				mu.Lock()
				e.p.Bind(context.Background(), testState(), u, []string{"node-a"})
				if i%2 == 0 {
					e.p.Bind(context.Background(), testState(), u, []string{"node-b"})
				} else {
					_ = e.p.ledger.Forget(context.Background(), u.Key())
				}
				mu.Unlock()
			}
		}(w)
	}
	wg.Wait()
	if n := e.p.ledger.units.len(); n != 0 {
		t.Fatalf("%d unit locks left after every unit went, want 0", n)
	}
	if a := e.p.ledger.List(); len(a) != 0 {
		t.Fatalf("%d units still recorded as announced", len(a))
	}
}

// The lock still serialises one key: a second locker waits for the first, and the entry
// lives until the last one is done.
func TestUnitLocksSerialise(t *testing.T) {
	var l unitLocks
	unlock := l.lock("k")
	got := make(chan struct{})
	go func() {
		u := l.lock("k")
		close(got)
		u()
	}()
	select {
	case <-got:
		t.Fatal("a second locker got the key while the first held it")
	default:
	}
	if l.len() != 1 {
		t.Fatalf("%d keys, want 1", l.len())
	}
	unlock()
	<-got
	for i := 0; l.len() != 0; i++ {
		if i == 1e6 {
			t.Fatalf("%d keys left after both lockers were done", l.len())
		}
		runtime.Gosched() // the second locker unlocks right after it closed got
	}
}
