package l2

import (
	"context"
	"net"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/herald-lb/herald/announcers"
)

// Probing: every owned address on every link is probed about once per probeInterval, spread
// evenly over it, at most maxProbesPerTick per link per probeTick (so a link with many
// addresses stretches the cycle rather than bursting).
const (
	probeInterval    = 30 * time.Second
	probeTick        = time.Second
	maxProbesPerTick = 50
)

// probeLoop sends each link's conflict probes: every probeTick, the next share of the link's
// queue, so every owned address is probed about once per probeInterval at a bounded rate.
func (a *Announcer) probeLoop(ctx context.Context) {
	t := time.NewTicker(probeTick)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		links := a.openLinks()
		now := time.Now()
		for _, l := range links {
			for _, addr := range l.probe.next(now, *l.owned.Load()) {
				if !l.Owns(addr) {
					continue // withdrawn since the cycle began
				}
				if err := l.proto.Probe(addr); err != nil {
					a.warn("conflict probe failed", "interface", l.name, "address", addr, "error", err)
				}
			}
		}
	}
}

// prober is one link's probe schedule. Only the probe loop uses it.
type prober struct {
	queue []netip.Addr
	batch int
	cycle time.Time // when the current cycle began
}

// next returns the addresses to probe now: a new cycle (a sorted snapshot of owned) starts
// once the last one is done and probeInterval has passed since it began; each call takes
// the cycle's share for one tick, at most maxProbesPerTick.
func (p *prober) next(now time.Time, owned map[netip.Addr]struct{}) []netip.Addr {
	if len(p.queue) == 0 {
		if now.Sub(p.cycle) < probeInterval || len(owned) == 0 {
			return nil
		}
		p.cycle = now
		p.queue = make([]netip.Addr, 0, len(owned))
		for addr := range owned {
			p.queue = append(p.queue, addr)
		}
		slices.SortFunc(p.queue, netip.Addr.Compare)
		ticks := int(probeInterval / probeTick)
		p.batch = min(max((len(p.queue)+ticks-1)/ticks, 1), maxProbesPerTick)
	}
	n := min(p.batch, len(p.queue))
	out := p.queue[:n]
	p.queue = p.queue[n:]
	return out
}

// foreign turns a foreign claim into a conflict event, at most one per address and MAC per
// interval.
func (a *Announcer) foreign(l *link, addr netip.Addr, mac net.HardwareAddr, detail string) {
	a.mu.Lock()
	every := a.cfg.ConflictReportInterval
	a.mu.Unlock()
	if !a.conflict.allow(addr, mac.String(), time.Now(), every) {
		return
	}
	a.log.Warn("address conflict", "address", addr, "interface", l.name, "foreignMAC", mac.String(), "detail", detail)
	a.events.Publish(announcers.Event{Time: time.Now(), Conflict: &announcers.Conflict{
		Address: addr, Interface: l.name, ForeignMAC: mac.String(), Detail: detail,
	}})
}

// conflictLimiter allows one conflict report per address and foreign MAC per interval: a
// Herald peer answering during a hand-over (the speaker drops that report) must not hide a
// foreign host claiming the same address a moment later. Its map holds only reports of the
// last interval (older entries are swept once an interval), at most maxConflictMACs MACs per
// address, and only announced addresses are ever reported, so it is bounded by the desired
// set whatever the wire sends.
type conflictLimiter struct {
	mu      sync.Mutex
	last    map[conflictKey]time.Time
	perAddr map[netip.Addr]int
	swept   time.Time
}

type conflictKey struct {
	addr netip.Addr
	mac  string
}

// maxConflictMACs bounds the MACs reported for one address within an interval (a neighbour
// spraying random MACs gets that many reports, not one per frame).
const maxConflictMACs = 4

func (c *conflictLimiter) allow(addr netip.Addr, mac string, now time.Time, every time.Duration) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.last == nil {
		c.last, c.perAddr = map[conflictKey]time.Time{}, map[netip.Addr]int{}
	}
	if now.Sub(c.swept) >= every {
		for k, t := range c.last {
			if now.Sub(t) >= every {
				delete(c.last, k)
				if c.perAddr[k.addr]--; c.perAddr[k.addr] <= 0 {
					delete(c.perAddr, k.addr)
				}
			}
		}
		c.swept = now
	}
	k := conflictKey{addr, mac}
	t, ok := c.last[k]
	if ok && now.Sub(t) < every || !ok && c.perAddr[addr] >= maxConflictMACs {
		return false
	}
	if !ok {
		c.perAddr[addr]++
	}
	c.last[k] = now
	return true
}

// tracked is how many reports the limiter holds (for tests).
func (c *conflictLimiter) tracked() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.last)
}

// Foreign implements Handler; frames from this link's own MAC (our own sends, looped back
// to the packet socket) are not foreign.
func (l *link) Foreign(addr netip.Addr, mac net.HardwareAddr, detail string) {
	if string(mac) == string(l.mac) {
		return
	}
	l.announcer.foreign(l, addr, mac, detail)
}
