package l2

import (
	"context"
	"net/netip"
	"time"

	"github.com/herald-lb/herald/announcers"
)

func (a *Announcer) restartRefreshLocked() {
	if a.refresh != nil {
		a.refresh()
	}
	ctx, cancel := context.WithCancel(context.Background())
	a.refresh = cancel
	go a.refreshLoop(ctx, a.cfg.RefreshInterval)
}

// refreshLoop re-announces every address so switch tables and neighbour caches stay fresh.
func (a *Announcer) refreshLoop(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		links := a.openLinks()
		for _, l := range links {
			for addr := range *l.owned.Load() {
				if err := l.proto.Announce(addr); err != nil {
					a.warn("refresh failed", "interface", l.name, "address", addr, "error", err)
				}
			}
		}
	}
}

// reburst sends the gratuitous burst again for every owned address (the link came back).
// Engine lock.
func (l *link) reburst(cfg announcers.L2Config) {
	for addr := range *l.owned.Load() {
		if cancel, ok := l.bursts[addr]; ok {
			cancel()
		}
		ctx, cancel := context.WithCancel(context.Background())
		l.bursts[addr] = cancel
		go l.burst(ctx, addr, cfg.GratuitousCount, cfg.GratuitousInterval)
	}
}

// burst probes addr once (conflict detection, see the package comment), then sends count
// gratuitous packets, interval apart, unless the address is withdrawn.
func (l *link) burst(ctx context.Context, addr netip.Addr, count int, interval time.Duration) {
	if err := l.proto.Probe(addr); err != nil {
		l.announcer.warn("conflict probe failed", "interface", l.name, "address", addr, "error", err)
	}
	t := time.NewTimer(0)
	defer t.Stop()
	for i := 0; i < count; i++ {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := l.proto.Announce(addr); err != nil {
			l.announcer.warn("gratuitous announce failed", "interface", l.name, "address", addr, "error", err)
		}
		t.Reset(interval)
	}
}
