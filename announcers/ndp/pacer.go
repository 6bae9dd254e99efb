package ndp

import (
	"net/netip"
	"sync"
	"time"
)

// Pacing of unsolicited advertisements: at most pacerBatch every pacerTick per link, i.e.
// 10,000 a second (about 9 Mbit/s of frames). Announcing 10,000 addresses at once otherwise
// writes the 30,000 frames of the gratuitous bursts as fast as the sender can: the lab's veth
// links take that (unpaced, BenchmarkE2ENDPUnsolicited10k saw all of them arrive within
// 0.65 s), but a switch port, a busy receiving host (net.core.netdev_max_backlog is 1,000)
// or a congested uplink need not, and the refresh repeats it every interval. The cost is
// time: the first advertisement of the 10,000th address leaves about a second after the
// Apply, the last of the bursts about three seconds after it.
const (
	pacerBatch = 100
	pacerTick  = 10 * time.Millisecond
	// pacerMaxPending bounds the advertisements one address can have waiting, so a churning
	// set cannot grow the work without bound; it is above the default burst count (3).
	pacerMaxPending = 8
)

// pacer sends unsolicited advertisements from one goroutine at a bounded rate, in the
// order they were asked for. The queue holds each address once with the number of
// advertisements it is owed; after one is sent the address goes to the back of the queue if
// more are owed, so a burst asked for while the queue is long is spread out, not dropped,
// and the queue is never longer than the set of addresses. Each address is checked when its
// turn comes, so a withdrawn address is never advertised.
type pacer struct {
	owns  func(netip.Addr) bool // whether the address is still announced
	send  func(netip.Addr)      // sends one advertisement
	batch int
	tick  time.Duration

	mu      sync.Mutex
	queue   []netip.Addr
	pending map[netip.Addr]int // advertisements owed to each queued address
	wake    chan struct{}
	done    chan struct{}
	stopped chan struct{}
	once    sync.Once
}

func newPacer(owns func(netip.Addr) bool, send func(netip.Addr), batch int, tick time.Duration) *pacer {
	p := &pacer{
		owns: owns, send: send, batch: batch, tick: tick,
		pending: map[netip.Addr]int{},
		wake:    make(chan struct{}, 1), done: make(chan struct{}), stopped: make(chan struct{}),
	}
	go p.run()
	return p
}

// enqueue asks for one advertisement of addr; it never blocks.
func (p *pacer) enqueue(addr netip.Addr) {
	p.mu.Lock()
	switch n := p.pending[addr]; {
	case n == 0:
		p.queue = append(p.queue, addr)
		p.pending[addr] = 1
	case n < pacerMaxPending:
		p.pending[addr] = n + 1
	}
	p.mu.Unlock()
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// next takes up to n addresses still announced from the head of the queue, putting back at
// the tail those owed more, and forgets withdrawn ones.
func (p *pacer) next(n int) []netip.Addr {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []netip.Addr
	// Only the addresses queued now: one put back goes out in a later tick, not twice in a row.
	for waiting := len(p.queue); len(out) < n && waiting > 0; waiting-- {
		a := p.queue[0]
		p.queue = p.queue[1:]
		if !p.owns(a) {
			delete(p.pending, a)
			continue
		}
		out = append(out, a)
		if p.pending[a]--; p.pending[a] > 0 {
			p.queue = append(p.queue, a)
		} else {
			delete(p.pending, a)
		}
	}
	if len(p.queue) == 0 {
		p.queue = nil // let the backing array of a large burst go
	}
	return out
}

func (p *pacer) run() {
	defer close(p.stopped)
	var window time.Time // start of the current tick
	sent := 0            // advertisements sent in it
	for {
		now := time.Now()
		if now.Sub(window) >= p.tick {
			window, sent = now, 0
		}
		if sent >= p.batch {
			if !p.sleep(window.Add(p.tick).Sub(now)) {
				return
			}
			continue
		}
		want := p.batch - sent
		batch := p.next(want)
		if len(batch) == 0 {
			select {
			case <-p.done:
				return
			case <-p.wake:
				continue
			}
		}
		for _, a := range batch {
			p.send(a)
		}
		sent += len(batch)
		if len(batch) < want {
			// The queue ran dry: what is in it now was put back after being sent, and
			// waits for the next tick.
			sent = p.batch
		}
	}
}

// sleep waits d and reports false if the pacer stopped meanwhile.
func (p *pacer) sleep(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-p.done:
		return false
	case <-t.C:
		return true
	}
}

// stop ends the goroutine; queued addresses are dropped.
func (p *pacer) stop() {
	p.once.Do(func() { close(p.done) })
	<-p.stopped
}
