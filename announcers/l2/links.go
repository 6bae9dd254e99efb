package l2

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync/atomic"
	"time"

	"github.com/herald-lb/herald/announcers"
)

// Resync intervals: how often the interfaces are re-read without a kernel notification, and
// the backoff for reopening a link that failed.
const (
	resyncInterval = 10 * time.Second
	reopenMin      = 100 * time.Millisecond
	reopenMax      = 5 * time.Second
	// settle lets the burst of notifications one change makes (link, then addresses) arrive
	// before the interfaces are read.
	settle = 20 * time.Millisecond
)

func (a *Announcer) closeLocked(name string, l *link) {
	l.close()
	a.malformed += l.malformed.Load()
	delete(a.links, name)
}

// openLinks returns the links open now, for loops that send on each without the engine lock.
func (a *Announcer) openLinks() []*link {
	a.mu.Lock()
	defer a.mu.Unlock()
	links := make([]*link, 0, len(a.links))
	for _, l := range a.links {
		links = append(links, l)
	}
	return links
}

// reconcileLocked makes the links answer for exactly the desired addresses on the interfaces
// as the kernel has them now. It reports whether a link it needs failed to open (the link
// loop then retries with backoff).
func (a *Announcer) reconcileLocked() (retry bool) {
	want, ifaces, problems := a.wantedLocked()
	a.problems = problems
	for name, l := range a.links {
		ifi, wanted := ifaces[name]
		_, hasAddrs := want[name]
		switch {
		case !wanted || !hasAddrs:
			a.closeLocked(name, l)
		case l.dead.Load():
			a.log.Info("reopening link", "interface", name, "error", l.deadErr())
			a.closeLocked(name, l)
		case ifi.Index != l.index || string(ifi.HardwareAddr) != string(l.mac):
			// The interface was deleted and created again under the same name, or its MAC
			// changed: the socket is bound to the old one, or answers with the old MAC.
			a.log.Info("interface changed, reopening link", "interface", name, "index", ifi.Index, "mac", ifi.HardwareAddr.String())
			a.closeLocked(name, l)
		}
	}
	for name, addrs := range want {
		l, ok := a.links[name]
		if !ok {
			var err error
			if l, err = a.openLocked(ifaces[name]); err != nil {
				a.problems["link/"+name] = err.Error()
				a.log.Error("cannot open link", "interface", name, "error", err)
				retry = true
				continue
			}
		}
		running := ifaces[name].Flags&net.FlagRunning != 0
		if running && !l.running {
			// The carrier came back while the link stayed open (a cable, a switch port, a
			// veth peer): neighbours may have lost us, so announce everything again.
			l.reburst(a.cfg)
		}
		l.running = running
		l.set(addrs, a.cfg)
		for addr, err := range l.unwatched {
			a.problems["watch/"+name+"/"+addr.String()] = fmt.Sprintf("interface %s: address %s: %v", name, addr, err)
		}
	}
	return retry
}

// reconcileRetryLocked reconciles for a change of the desired set; a link that fails to open
// is retried by the link loop.
func (a *Announcer) reconcileRetryLocked() {
	if a.reconcileLocked() {
		a.Resync()
	}
}

// linkLoop re-reads the interfaces and reconciles the links when the kernel reports a change
// (Resync), every resyncInterval in case a notification was lost, and with backoff while a
// link cannot be opened.
func (a *Announcer) linkLoop(ctx context.Context) {
	reopen := doubling(reopenMin, reopenMax)
	t := time.NewTimer(resyncInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-a.kick:
		case <-t.C:
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(settle):
		}
		select { // notifications that arrived while settling are covered by this pass
		case <-a.kick:
		default:
		}
		a.mu.Lock()
		if ctx.Err() != nil { // Close ran while we waited: open nothing again
			a.mu.Unlock()
			return
		}
		retry := a.reconcileLocked()
		a.mu.Unlock()
		next := resyncInterval
		if retry {
			next = reopen.NextBackOff()
		} else {
			reopen.Reset()
		}
		if !t.Stop() {
			select {
			case <-t.C:
			default:
			}
		}
		t.Reset(next)
	}
}

func (a *Announcer) openLocked(ifi net.Interface) (*link, error) {
	name := ifi.Name
	var err error
	l := &link{name: name, index: ifi.Index, mac: ifi.HardwareAddr, announcer: a, bursts: map[netip.Addr]context.CancelFunc{},
		unwatched: map[netip.Addr]error{}, running: ifi.Flags&net.FlagRunning != 0}
	empty := map[netip.Addr]struct{}{}
	l.owned.Store(&empty)
	if l.proto, err = a.driver.Open(&ifi, l); err != nil {
		return nil, fmt.Errorf("interface %s: %w", name, err)
	}
	// The burst probes every address now; the periodic cycle starts one interval later.
	l.probe.cycle = time.Now()
	a.links[name] = l
	go a.serve(l)
	a.log.Info("link opened", "interface", name, "mac", ifi.HardwareAddr.String())
	return l, nil
}

// serve runs the link's read loop. If it ends with an error (ENETDOWN when the link went
// down, or any socket failure) the link is marked dead, the announcer reports degraded, and
// the link loop reopens it: a responder never stays stopped.
func (a *Announcer) serve(l *link) {
	err := l.proto.Serve()
	if l.closed.Load() {
		return
	}
	if err == nil {
		err = errors.New("read loop ended")
	}
	l.deadReason.Store(&err)
	l.dead.Store(true)
	a.mu.Lock()
	if a.links[l.name] == l {
		a.problems["link/"+l.name] = fmt.Sprintf("interface %s: %v (reopening)", l.name, err)
	}
	a.mu.Unlock()
	a.log.Error("link stopped, reopening", "interface", l.name, "error", err)
	a.events.Publish(announcers.Event{Time: time.Now(), Error: &announcers.EventError{Message: fmt.Sprintf("interface %s: %v (reopening)", l.name, err)}})
	a.Resync()
}

// link is one interface's state. owned is read on every packet without the engine lock.
type link struct {
	name      string
	index     int
	mac       net.HardwareAddr
	announcer *Announcer
	proto     Link
	owned     atomic.Pointer[map[netip.Addr]struct{}]
	answered  atomic.Uint64
	malformed atomic.Uint64
	closed    atomic.Bool
	// dead is set when Serve ended on its own; the link loop then reopens the link.
	dead       atomic.Bool
	deadReason atomic.Pointer[error]
	running    bool                              // the interface had carrier at the last reconcile; engine lock
	probe      prober                            // probe loop only
	bursts     map[netip.Addr]context.CancelFunc // guarded by the engine lock
	// unwatched holds addresses whose Watch failed (e.g. too many multicast groups on the
	// socket); they are retried on every change and reported in status. Engine lock.
	unwatched map[netip.Addr]error
}

// Owns implements Handler.
func (l *link) Owns(addr netip.Addr) bool {
	_, ok := (*l.owned.Load())[addr]
	return ok
}

// Answered implements Handler.
func (l *link) Answered() { l.answered.Add(1) }

// Malformed implements Handler: the frame is counted and skipped; the log gets one line a
// second at most (see warn).
func (l *link) Malformed(err error) {
	n := l.malformed.Add(1)
	l.announcer.warn("dropped a malformed frame", "interface", l.name, "reason", err, "droppedOnLink", n)
}

func (l *link) deadErr() error {
	if p := l.deadReason.Load(); p != nil {
		return *p
	}
	return nil
}

// set makes the link answer for exactly addrs: withdrawn addresses stop being answered at
// once, new ones get a gratuitous burst.
func (l *link) set(addrs map[netip.Addr]struct{}, cfg announcers.L2Config) {
	old := *l.owned.Load()
	next := make(map[netip.Addr]struct{}, len(addrs))
	for addr := range addrs {
		next[addr] = struct{}{}
	}
	l.owned.Store(&next)
	for addr := range l.unwatched {
		if _, ok := next[addr]; !ok {
			continue // withdrawn below
		}
		if err := l.proto.Watch(addr); err == nil {
			delete(l.unwatched, addr)
		} else {
			l.unwatched[addr] = err
		}
	}
	for addr := range old {
		if _, ok := next[addr]; ok {
			continue
		}
		if cancel, ok := l.bursts[addr]; ok {
			cancel()
			delete(l.bursts, addr)
		}
		if _, failed := l.unwatched[addr]; failed {
			delete(l.unwatched, addr)
			continue
		}
		if err := l.proto.Unwatch(addr); err != nil {
			l.announcer.warn("unwatch failed", "interface", l.name, "address", addr, "error", err)
		}
	}
	for addr := range next {
		if _, ok := old[addr]; ok {
			continue
		}
		if err := l.proto.Watch(addr); err != nil {
			l.unwatched[addr] = err
			l.announcer.warn("watch failed", "interface", l.name, "address", addr, "error", err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		l.bursts[addr] = cancel
		go l.burst(ctx, addr, cfg.GratuitousCount, cfg.GratuitousInterval)
	}
}

func (l *link) close() {
	l.closed.Store(true)
	for addr, cancel := range l.bursts {
		cancel()
		delete(l.bursts, addr)
	}
	empty := map[netip.Addr]struct{}{}
	l.owned.Store(&empty)
	if err := l.proto.Close(); err != nil {
		l.announcer.log.Warn("closing link", "interface", l.name, "error", err)
	}
	l.announcer.log.Info("link closed", "interface", l.name)
}
