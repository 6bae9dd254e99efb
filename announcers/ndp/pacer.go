package ndp

import (
	"net/netip"
	"sync"
	"time"
)

// Pacing of unsolicited advertisements: at most pacerBatch every pacerTick per link, i.e.
// 10,000 a second. Announcing 10,000 addresses at once would otherwise put 10,000 frames on
// the wire in a few milliseconds, more than a receiving host queues (net.core.netdev_max_backlog
// is 1,000 by default) or a switch port buffers, so most would be dropped, and every burst
// and refresh repeat would be dropped the same way.
const (
	pacerBatch = 100
	pacerTick  = 10 * time.Millisecond
)

// pacer sends unsolicited advertisements from one goroutine at a bounded rate, in the
// order they were asked for. An address already waiting is not queued twice: when the queue
// is long, a second request would only send the same frame twice in a row. Each address is
// checked when its turn comes, so a withdrawn address is never advertised.
type pacer struct {
	owns  func(netip.Addr) bool // whether the address is still announced
	send  func(netip.Addr)      // sends one advertisement
	batch int
	tick  time.Duration

	mu      sync.Mutex
	queue   []netip.Addr
	waiting map[netip.Addr]struct{}
	wake    chan struct{}
	done    chan struct{}
	stopped chan struct{}
	once    sync.Once
}

func newPacer(owns func(netip.Addr) bool, send func(netip.Addr), batch int, tick time.Duration) *pacer {
	p := &pacer{
		owns: owns, send: send, batch: batch, tick: tick,
		waiting: map[netip.Addr]struct{}{},
		wake:    make(chan struct{}, 1), done: make(chan struct{}), stopped: make(chan struct{}),
	}
	go p.run()
	return p
}

// enqueue asks for one advertisement of addr; it never blocks.
func (p *pacer) enqueue(addr netip.Addr) {
	p.mu.Lock()
	if _, ok := p.waiting[addr]; !ok {
		p.waiting[addr] = struct{}{}
		p.queue = append(p.queue, addr)
	}
	p.mu.Unlock()
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// next removes and returns up to n queued addresses.
func (p *pacer) next(n int) []netip.Addr {
	p.mu.Lock()
	defer p.mu.Unlock()
	n = min(n, len(p.queue))
	out := make([]netip.Addr, n)
	copy(out, p.queue)
	for _, a := range out {
		delete(p.waiting, a)
	}
	p.queue = p.queue[n:]
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
		batch := p.next(p.batch - sent)
		if len(batch) == 0 {
			select {
			case <-p.done:
				return
			case <-p.wake:
				continue
			}
		}
		for _, a := range batch {
			if p.owns(a) { // else withdrawn while it waited
				p.send(a)
				sent++
			}
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
