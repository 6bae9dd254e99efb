package bgp

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sort"
	"strings"
	"time"

	"github.com/herald-lb/herald/announcers"
)

// Configure implements announcers.Announcer: it reconciles the peers. A peer whose
// configuration cannot be honoured is left out and its status says why; the others proceed.
func (a *Announcer) Configure(ctx context.Context, cfg announcers.Config) error {
	var specs []announcers.BGPPeer
	if cfg.BGP != nil {
		specs = cfg.BGP.Peers
	}
	a.mu.Lock()
	defer a.mu.Unlock()

	wanted := map[string]*peer{}
	names := make([]string, 0, len(specs))
	for i, s := range specs {
		p := &peer{spec: s}
		pc, err := peerConfig(s)
		switch {
		case s.Name == "":
			err = fmt.Errorf("peers[%d].name: must not be empty", i)
			p.spec.Name = fmt.Sprintf("peers[%d]", i)
		case wanted[s.Name] != nil:
			err = fmt.Errorf("peers[%d].name: duplicate peer %q", i, s.Name)
			p.spec.Name = fmt.Sprintf("peers[%d]", i)
		}
		if err != nil {
			p.configErr = fmt.Sprintf("peer %q: %v", p.spec.Name, err)
		}
		p.cfg = pc
		wanted[p.spec.Name] = p
		names = append(names, p.spec.Name)
	}
	sort.Strings(names)
	global, gerr := a.chooseGlobal(names, wanted)
	addrs := map[netip.Addr]string{}
	for _, n := range names {
		p := wanted[n]
		if p.configErr != "" {
			continue
		}
		if other, dup := addrs[p.cfg.Address]; dup {
			p.configErr = fmt.Sprintf("peer %q: address %s is already used by peer %q", n, p.cfg.Address, other)
			continue
		}
		addrs[p.cfg.Address] = n
		if gerr != nil {
			p.configErr = fmt.Sprintf("peer %q: %v", n, gerr)
		} else if p.spec.RouterID != "" && netip.MustParseAddr(p.spec.RouterID) != global.RouterID {
			p.configErr = fmt.Sprintf("peer %q: routerID %s differs from %s used by the other peers; one BGP speaker has one router id", n, p.spec.RouterID, global.RouterID)
		}
	}

	if err := a.ensureSpeaker(ctx, global, len(addrs) > 0); err != nil {
		a.startErr = err.Error()
	} else {
		a.startErr = ""
	}

	// Remove peers that are gone or changed address, then add or update the rest.
	for name, old := range a.peers {
		nw := wanted[name]
		if !old.added {
			continue
		}
		if nw == nil || nw.configErr != "" || nw.cfg.Address != old.cfg.Address || a.speaker == nil {
			if a.speaker != nil {
				if err := a.speaker.DeletePeer(ctx, old.cfg.Address); err != nil {
					a.log.Warn("delete peer", "peer", name, "error", err)
				}
				delete(a.denied, old.cfg.Address)
			}
			old.added = false
		}
	}
	for _, n := range names {
		p := wanted[n]
		old := a.peers[n]
		if old != nil && old.added && old.cfg.Address == p.cfg.Address {
			p.added, p.state, p.reason, p.retries = true, old.state, old.reason, old.retries
		}
		if p.configErr != "" || a.speaker == nil {
			continue
		}
		if !p.added {
			if err := a.speaker.AddPeer(ctx, p.cfg); err != nil {
				p.configErr = fmt.Sprintf("peer %q: %v", n, err)
				continue
			}
			p.added, p.state = true, FSMIdle
			continue
		}
		if !samePeerConfig(old.cfg, p.cfg) {
			if err := a.speaker.UpdatePeer(ctx, p.cfg); err != nil {
				p.configErr = fmt.Sprintf("peer %q: %v", n, err)
				continue
			}
			if old.cfg.Password != p.cfg.Password {
				// A new MD5 key only takes effect on a new TCP connection.
				if err := a.speaker.RestartPeer(ctx, p.cfg); err != nil {
					a.log.Warn("reconnect after password change", "peer", n, "error", err)
				}
			}
		}
	}
	a.peers = wanted
	a.reconcileBFDLocked()
	for _, n := range names {
		if p := wanted[n]; p.configErr != "" {
			a.log.Warn("peer not configured", "peer", n, "reason", p.configErr)
		}
	}
	a.log.Info("configured", "peers", len(names), "asn", a.global.ASN, "routerID", a.global.RouterID)
	// Peer restrictions name peers, so the routes' export filters may have changed.
	a.reconcileLocked(ctx, nil)
	return nil
}

// samePeerConfig reports whether GoBGP's view of the peer is unchanged (BFD is not GoBGP's).
func samePeerConfig(a, b PeerConfig) bool {
	a.BFD, b.BFD = nil, nil
	return a == b
}

// chooseGlobal picks the speaker's ASN and router id from the first valid peer (by name):
// GoBGP has one of each per server, and each peer may override its local ASN.
func (a *Announcer) chooseGlobal(names []string, peers map[string]*peer) (GlobalConfig, error) {
	for _, n := range names {
		p := peers[n]
		if p.configErr != "" {
			continue
		}
		g := GlobalConfig{ASN: p.spec.MyASN}
		if p.spec.RouterID != "" {
			g.RouterID = netip.MustParseAddr(p.spec.RouterID)
			return g, nil
		}
		id, err := defaultRouterID(p.cfg)
		if err != nil {
			return g, err
		}
		g.RouterID = id
		return g, nil
	}
	return GlobalConfig{}, nil
}

// defaultRouterID is the IPv4 source address of the route towards the peer, as a BGP router
// id must be a 32-bit value. Dialing UDP sends nothing; it only asks the kernel for a route.
func defaultRouterID(c PeerConfig) (netip.Addr, error) {
	if c.SourceAddress.Is4() {
		return c.SourceAddress, nil
	}
	if c.Address.Is4() {
		conn, err := net.DialUDP("udp4", nil, net.UDPAddrFromAddrPort(netip.AddrPortFrom(c.Address, 179)))
		if err == nil {
			defer func() { _ = conn.Close() }()
			if la, ok := conn.LocalAddr().(*net.UDPAddr); ok {
				if addr, ok := netip.AddrFromSlice(la.IP); ok && addr.Unmap().Is4() {
					return addr.Unmap(), nil
				}
			}
		}
	}
	return netip.Addr{}, errors.New("routerID: not set and no IPv4 source address to derive it from; set routerID")
}

// ensureSpeaker starts the speaker when peers exist, and restarts it (re-adding every peer and
// path) when the global ASN or router id changes.
func (a *Announcer) ensureSpeaker(ctx context.Context, g GlobalConfig, needed bool) error {
	if a.speaker != nil && (!needed || g != a.global) {
		a.speaker.Stop()
		a.speaker = nil
		a.announced = map[netip.Prefix]*route{}
		a.denied = map[netip.Addr][]netip.Prefix{}
		for _, p := range a.peers {
			p.added, p.state = false, FSMUnknown
		}
		a.closeBFDLocked()
	}
	if a.speaker != nil || !needed {
		return nil
	}
	sp, err := StartSpeaker(ctx, g, a.slog, a.onPeerState)
	if err != nil {
		return err
	}
	a.speaker, a.global = sp, g
	return nil
}

// onPeerState records a session change and publishes it as an event. A session that comes
// up starts its BFD session; one that goes down is reconnected without GoBGP's idle wait.
func (a *Announcer) onPeerState(ps PeerState) {
	a.mu.Lock()
	var name string
	var changed bool
	for n, p := range a.peers {
		if p.added && p.cfg.Address == ps.Address {
			name = n
			old := p.state
			changed = p.state != ps.State
			p.state = ps.State
			if ps.Reason != "" && !strings.HasPrefix(ps.Reason, "idle timer expired") {
				// The idle hold timer only ends the pause before reconnecting; keep the
				// reason the session actually went down for.
				p.reason = ps.Reason
			}
			if changed {
				a.sessionChangedLocked(n, p, old)
			}
			break
		}
	}
	a.mu.Unlock()
	if name == "" || !changed {
		return
	}
	a.log.Info("session state", "peer", name, "address", ps.Address, "state", ps.State.public(), "reason", ps.Reason)
	a.events.Publish(announcers.Event{Time: time.Now(), Session: &announcers.SessionChange{
		Peer: name, Address: ps.Address.String(), State: ps.State.public(), Reason: ps.Reason,
	}})
}

// sessionChangedLocked reacts to a BGP session state change of peer p.
func (a *Announcer) sessionChangedLocked(name string, p *peer, old SessionFSM) {
	switch {
	case p.state == FSMEstablished:
		p.retries = 0
		if p.retry != nil {
			p.retry.Stop()
			p.retry = nil
		}
		// BFD starts once BGP is up, as FRR's bgpd does: bgpd re-keys its BFD session with
		// the session's local address when the TCP connection is made, and a BFD session
		// that came up before that is torn down (and bgpd resets BGP: "BFD down").
		a.startBFDLocked(name, p)
	case p.state == FSMIdle && old != FSMIdle && old != FSMUnknown:
		// GoBGP waits at least 5 s in Idle before connecting again; a new peer connects at
		// once. The first reconnect after an established session is immediate, later
		// ones back off.
		a.scheduleReconnectLocked(name, p)
	}
}

// Reconnect backoff: after a session that was established goes down the first reconnect is
// immediate; each later failed attempt doubles the wait, up to maxReconnectDelay. GoBGP adds
// its own first-connect delay of 1.5-2 s and retries refused connects every connect time.
const (
	baseReconnectDelay = time.Second
	maxReconnectDelay  = 30 * time.Second
)

func reconnectDelay(retries int) time.Duration {
	if retries == 0 {
		return 0
	}
	d := baseReconnectDelay << min(retries-1, 5)
	return min(d, maxReconnectDelay)
}

func (a *Announcer) scheduleReconnectLocked(name string, p *peer) {
	if p.retry != nil {
		return
	}
	d := reconnectDelay(p.retries)
	p.retries++
	p.retry = time.AfterFunc(d, func() { a.reconnect(name, p) })
}

// reconnect restarts a peer's session that is down, unless the peer changed or came back.
func (a *Announcer) reconnect(name string, p *peer) {
	a.mu.Lock()
	defer a.mu.Unlock()
	p.retry = nil
	if a.peers[name] != p || !p.added || a.speaker == nil {
		return
	}
	if p.state == FSMEstablished || p.state == FSMOpenSent || p.state == FSMOpenConfirm {
		// Back, or a connection is being set up: leave it (a failure brings it to Idle,
		// which schedules the next reconnect).
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := a.speaker.RestartPeer(ctx, p.cfg); err != nil {
		a.log.Warn("reconnect", "peer", name, "error", err)
		return
	}
	a.log.Debug("reconnecting", "peer", name, "attempt", p.retries)
}

func (s SessionFSM) public() announcers.SessionState {
	switch s {
	case FSMIdle:
		return announcers.SessionIdle
	case FSMConnect:
		return announcers.SessionConnect
	case FSMActive:
		return announcers.SessionActive
	case FSMOpenSent:
		return announcers.SessionOpenSent
	case FSMOpenConfirm:
		return announcers.SessionOpenConfirm
	case FSMEstablished:
		return announcers.SessionEstablished
	}
	return announcers.SessionUnknown
}
