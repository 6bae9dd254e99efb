// Package bgp is Herald's BGP announcer: it embeds GoBGP (github.com/osrg/gobgp/v4), keeps one
// session per configured peer (with BFD where a profile asks for it), and advertises the
// desired addresses (host routes, or aggregates per aggregationLength) with their communities
// and local preference. Each peer's problems (bad configuration, unreachable, wrong ASN or
// password) stay in that peer's status and never disturb the others. It imports no Kubernetes
// package; GoBGP is reached only through the Speaker adapter in gobgp.go.
package bgp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/herald-lb/herald/announcers"
	"github.com/herald-lb/herald/announcers/bgp/bfd"
)

// Announcer implements announcers.Announcer for BGP.
type Announcer struct {
	log     hclog.Logger
	version string
	events  announcers.EventHub
	slog    *slog.Logger
	bfdLog  *slog.Logger
	dials   *dialErrors

	mu      sync.Mutex
	speaker *Speaker
	global  GlobalConfig
	// startErr is why the speaker could not start, shown in Status.
	startErr string
	peers    map[string]*peer // by name
	table    *announcers.Table
	// announced is what the speaker originates now, by prefix.
	announced map[netip.Prefix]*route
	denied    map[netip.Addr][]netip.Prefix // export filters installed, by peer address
	// bfd runs the BFD sessions; nil until a peer with a BFD profile first establishes.
	bfd    *bfd.Server
	bfdErr string // why bfd could not start
}

// peer is one configured BGPPeer and what we know of its session.
type peer struct {
	spec announcers.BGPPeer
	cfg  PeerConfig
	// configErr is set when the peer's configuration cannot be honoured; it is not added then.
	configErr string
	added     bool
	state     SessionFSM
	reason    string
	// retries counts reconnects since the session was last established (the backoff level);
	// retry is the pending one.
	retries int
	retry   *time.Timer
}

// New returns a BGP announcer; nothing connects before Configure names peers.
func New(log hclog.Logger, version string) *Announcer {
	a := &Announcer{
		log:       log,
		version:   version,
		peers:     map[string]*peer{},
		announced: map[netip.Prefix]*route{},
		denied:    map[netip.Addr][]netip.Prefix{},
		dials:     &dialErrors{last: map[string]string{}},
	}
	a.slog = slog.New(&hclogHandler{log: log.Named("gobgp"), dials: a.dials})
	a.bfdLog = slog.New(&hclogHandler{log: log.Named("bfd"), dials: &dialErrors{last: map[string]string{}}})
	a.table = announcers.NewTable(func(an announcers.Announcement) error {
		_, err := routeOf(an)
		return err
	})
	return a
}

// Info implements announcers.Announcer.
func (a *Announcer) Info(context.Context) (announcers.Info, error) {
	return announcers.Info{
		ProtocolVersion: announcers.ProtocolVersion,
		Kind:            announcers.KindBGP,
		Version:         a.version,
		Capabilities: []announcers.Capability{announcers.CapabilityIPv4, announcers.CapabilityIPv6,
			announcers.CapabilityBGP, announcers.CapabilityBFD},
	}, nil
}

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

// SetDesired implements announcers.Announcer.
func (a *Announcer) SetDesired(ctx context.Context, set announcers.DesiredSet) (announcers.ApplyResult, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	res := a.table.SetDesired(set)
	a.reconcileLocked(ctx, &res)
	a.logRejected(res)
	return res, nil
}

// Apply implements announcers.Announcer.
func (a *Announcer) Apply(ctx context.Context, d announcers.Delta) (announcers.ApplyResult, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	res, err := a.table.Apply(d)
	if err != nil {
		return res, err
	}
	a.reconcileLocked(ctx, &res)
	a.logRejected(res)
	return res, nil
}

func (a *Announcer) logRejected(res announcers.ApplyResult) {
	for _, r := range res.Rejected {
		a.log.Warn("announcement rejected", "id", r.ID, "reason", r.Reason)
	}
}

// reconcileLocked makes the speaker originate what the table wants: export filters first (so a
// path is never sent to a peer it is restricted from), then changed paths, then withdrawals.
// Failures are reported in res when given.
func (a *Announcer) reconcileLocked(ctx context.Context, res *announcers.ApplyResult) {
	if a.speaker == nil {
		return
	}
	want, owners := mergeRoutes(a.table.Announcements())
	peerAddr := map[string]netip.Addr{}
	for n, p := range a.peers {
		if p.added {
			peerAddr[n] = p.cfg.Address
		}
	}
	// Export filters, per peer: the prefixes restricted to other peers. They are installed
	// before paths are added, so a new path never reaches a peer it is restricted from.
	var refresh []netip.Addr
	for name, addr := range peerAddr {
		var deny []netip.Prefix
		for pfx, r := range want {
			if !r.allows(name) {
				deny = append(deny, pfx)
			}
		}
		sortPrefixes(deny)
		if samePrefixes(deny, a.denied[addr]) {
			continue
		}
		if err := a.speaker.SetExportFilter(ctx, addr, deny); err != nil {
			a.log.Error("export filter", "peer", name, "error", err)
			a.events.Publish(announcers.Event{Time: time.Now(), Error: &announcers.EventError{Message: err.Error()}})
			continue
		}
		refresh = append(refresh, addr)
		if len(deny) == 0 {
			delete(a.denied, addr)
		} else {
			a.denied[addr] = deny
		}
	}
	// Paths already sent are re-evaluated against a changed filter by refreshing the peer.
	defer func() {
		for _, addr := range refresh {
			if err := a.speaker.RefreshPeer(ctx, addr); err != nil {
				a.log.Warn("refresh after export filter change", "address", addr, "error", err)
			}
		}
	}()

	var add []Path
	for pfx, r := range want {
		old := a.announced[pfx]
		if old == nil || !old.path.equal(r.path) {
			add = append(add, r.path)
		}
	}
	sort.Slice(add, func(i, j int) bool { return prefixLess(add[i].Prefix, add[j].Prefix) })
	ids, errs := a.speaker.AddPaths(add)
	for i, p := range add {
		if errs[i] != nil {
			delete(a.announced, p.Prefix)
			for _, id := range owners[p.Prefix] {
				if res != nil {
					res.Rejected = append(res.Rejected, announcers.Rejection{ID: id, Reason: errs[i].Error()})
				}
			}
			continue
		}
		r := want[p.Prefix]
		r.id = ids[i]
		a.announced[p.Prefix] = r
	}
	for pfx, r := range want {
		if cur := a.announced[pfx]; cur != nil && cur != r {
			r.id = cur.id
			a.announced[pfx] = r
		}
	}
	var gone []netip.Prefix
	var goneIDs []PathID
	for pfx, r := range a.announced {
		if want[pfx] == nil {
			gone = append(gone, pfx)
			goneIDs = append(goneIDs, r.id)
		}
	}
	if err := a.speaker.DeletePaths(goneIDs, gone); err != nil {
		a.log.Error("withdraw", "error", err)
		a.events.Publish(announcers.Event{Time: time.Now(), Error: &announcers.EventError{Message: err.Error()}})
		return
	}
	for _, p := range gone {
		delete(a.announced, p)
	}
}

// Status implements announcers.Announcer.
func (a *Announcer) Status(ctx context.Context) (announcers.Status, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	st := announcers.Status{Generation: a.table.Generation(), Health: announcers.HealthHealthy}
	var problems []string
	if a.startErr != "" {
		problems = append(problems, a.startErr)
		st.Health = announcers.HealthUnhealthy
	}
	names := make([]string, 0, len(a.peers))
	for n := range a.peers {
		names = append(names, n)
	}
	sort.Strings(names)
	established := map[string]bool{}
	for _, n := range names {
		p := a.peers[n]
		ps := announcers.PeerStatus{Name: n, Address: p.spec.Address, State: p.state.public(), BFDUp: a.bfdUp(p)}
		switch {
		case p.configErr != "":
			ps.Message = p.configErr
		case p.state != FSMEstablished:
			ps.Message = a.notEstablished(p)
		}
		if p.spec.BFD != nil && p.state == FSMEstablished && !ps.BFDUp {
			ps.Message = fmt.Sprintf("BFD (profile %q) is not up", p.spec.BFD.Name)
			if a.bfdErr != "" {
				ps.Message += ": " + a.bfdErr
			}
		}
		if ps.Message != "" {
			problems = append(problems, ps.Message)
		}
		established[n] = p.state == FSMEstablished
		st.Peers = append(st.Peers, ps)
	}
	if len(problems) > 0 && st.Health == announcers.HealthHealthy {
		st.Health = announcers.HealthDegraded
	}
	st.Message = strings.Join(problems, "; ")
	for pfx, r := range a.announced {
		ap := announcers.AnnouncedPrefix{Prefix: pfx}
		for _, n := range names {
			if established[n] && r.allows(n) {
				ap.Peers = append(ap.Peers, n)
			}
		}
		st.Announced = append(st.Announced, ap)
	}
	sort.Slice(st.Announced, func(i, j int) bool { return prefixLess(st.Announced[i].Prefix, st.Announced[j].Prefix) })
	return st, nil
}

// notEstablished explains a session that is not up, naming the last reason we know.
func (a *Announcer) notEstablished(p *peer) string {
	port := p.cfg.Port
	if port == 0 {
		port = 179
	}
	msg := fmt.Sprintf("peer %q: session to %s port %d is %s", p.spec.Name, p.cfg.Address, port, p.state.public())
	var why []string
	if p.reason != "" {
		why = append(why, "last disconnect: "+p.reason)
	}
	if n := a.dials.getNotification(p.cfg.Address.String()); n != "" {
		why = append(why, "last "+n)
	}
	if d := a.dials.get(p.cfg.Address.String()); d != "" {
		why = append(why, "last connect attempt: "+d)
	}
	if p.cfg.Password != "" && p.reason == "" {
		// A TCP MD5 mismatch is silent: the peer's kernel drops our SYNs, so connects time out.
		why = append(why, "if connects time out, check the password: a TCP MD5 mismatch drops the connection silently")
	}
	if len(why) > 0 {
		msg += " (" + strings.Join(why, "; ") + ")"
	}
	return msg
}

// Events implements announcers.Announcer.
func (a *Announcer) Events(ctx context.Context) (<-chan announcers.Event, error) {
	return a.events.Subscribe(ctx), nil
}

// Drain implements announcers.Announcer: it withdraws every path; sessions stay up.
func (a *Announcer) Drain(ctx context.Context) (int, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	n := a.table.Clear()
	if a.speaker != nil {
		if err := a.speaker.DeleteAllPaths(); err != nil {
			return n, fmt.Errorf("drain: %w", err)
		}
	}
	a.announced = map[netip.Prefix]*route{}
	a.reconcileLocked(ctx, nil)
	a.log.Info("drained", "withdrawn", n)
	return n, nil
}

// Close stops the speaker, ending every session.
func (a *Announcer) Close() {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.closeBFDLocked()
	if a.speaker != nil {
		a.speaker.Stop()
		a.speaker = nil
	}
}
