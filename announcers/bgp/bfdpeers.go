package bgp

import (
	"context"
	"net/netip"
	"time"

	"github.com/herald-lb/herald/announcers/bgp/bfd"
)

// The peers' BFD sessions. A session is started when the peer's BGP session first
// establishes and runs until the peer is removed or loses its BFD profile, across BGP
// reconnects. Only a BFD session that goes from Up to Down resets BGP (RFC 5882 section 3.2:
// a session that never came up, or that the remote system took down administratively, says
// nothing about the path).

// bfdListenPort is the port BFD listens on and sends to; tests may change it.
var bfdListenPort = bfd.Port

func bfdTimers(c *BFDConfig) bfd.Config {
	return bfd.Config{DesiredMinTx: c.DesiredMinTx, RequiredMinRx: c.RequiredMinRx, DetectMult: uint8(c.DetectMultiplier)}
}

// startBFDLocked starts (or re-times) the BFD session of a peer with a BFD profile.
func (a *Announcer) startBFDLocked(name string, p *peer) {
	if p.cfg.BFD == nil {
		return
	}
	if a.bfd == nil {
		srv, err := bfd.Listen(a.bfdLog, bfdListenPort, bfdListenPort, a.onBFD)
		if err != nil {
			a.bfdErr = err.Error()
			a.log.Error("BFD cannot start", "error", err)
			return
		}
		a.bfd, a.bfdErr = srv, ""
	}
	if err := a.bfd.Add(p.cfg.Address, p.cfg.SourceAddress, bfdTimers(p.cfg.BFD)); err != nil {
		a.log.Error("BFD session", "peer", name, "error", err)
	}
}

// reconcileBFDLocked ends the BFD sessions of peers that are gone, changed address or lost
// their profile, and re-times those whose profile changed.
func (a *Announcer) reconcileBFDLocked() {
	if a.bfd == nil {
		return
	}
	want := map[netip.Addr]*peer{}
	for _, p := range a.peers {
		if p.added && p.cfg.BFD != nil {
			want[p.cfg.Address] = p
		}
	}
	for _, addr := range a.bfd.Peers() {
		p := want[addr]
		if p == nil {
			a.bfd.Remove(addr)
			continue
		}
		if err := a.bfd.Add(addr, p.cfg.SourceAddress, bfdTimers(p.cfg.BFD)); err != nil {
			a.log.Error("BFD session", "peer", p.spec.Name, "error", err)
		}
	}
}

func (a *Announcer) closeBFDLocked() {
	if a.bfd != nil {
		a.bfd.Close()
		a.bfd = nil
	}
}

func (a *Announcer) bfdUp(p *peer) bool {
	if a.bfd == nil || p.cfg.BFD == nil || !p.added {
		return false
	}
	st, ok := a.bfd.SessionState(p.cfg.Address)
	return ok && st == bfd.Up
}

// onBFD handles a BFD state change: a session that was Up and went Down (not by the remote's
// administrative action) takes the BGP session down with it, which withdraws this node's
// paths on the router as fast as BFD detected the failure.
func (a *Announcer) onBFD(ev bfd.Event) {
	a.mu.Lock()
	defer a.mu.Unlock()
	var name string
	var p *peer
	for n, q := range a.peers {
		if q.added && q.cfg.Address == ev.Peer {
			name, p = n, q
			break
		}
	}
	if p == nil {
		return
	}
	log := a.log.With("peer", name, "address", ev.Peer, "from", ev.From.String(), "to", ev.To.String(), "diag", ev.Diag.String())
	switch {
	case ev.To == bfd.Up:
		log.Info("BFD up")
	case ev.From != bfd.Up:
		log.Debug("BFD state")
	case ev.RemoteAdminDown:
		log.Info("BFD taken down administratively by the peer; BGP session left alone")
	case ev.To == bfd.Down:
		if p.state != FSMEstablished || a.speaker == nil {
			log.Warn("BFD down")
			return
		}
		log.Warn("BFD down: resetting the BGP session")
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := a.speaker.RestartPeer(ctx, p.cfg); err != nil {
			log.Error("reset after BFD down", "error", err)
		}
	}
}
