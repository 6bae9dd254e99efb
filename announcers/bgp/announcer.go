// Package bgp is Herald's BGP announcer: it embeds GoBGP (github.com/osrg/gobgp/v4), keeps one
// session per configured peer (with BFD where a profile asks for it), and advertises the
// desired addresses (host routes, or aggregates per aggregationLength) with their communities
// and local preference. Each peer's problems (bad configuration, unreachable, wrong ASN or
// password) stay in that peer's status and never disturb the others. It imports no Kubernetes
// package; GoBGP is reached only through the Speaker adapter in gobgp.go.
//
// The files: announcer.go the protocol API and status, sessions.go the peers' configuration
// and sessions, bfdpeers.go BFD per peer, routes.go the routes the announcements ask for,
// reconcile.go making GoBGP originate them, gobgp.go and gobgp_filters.go the GoBGP adapter
// (adapter.go its types), communities.go parsing communities, config.go checking a peer and
// its BFD profile, log.go GoBGP's logs and the errors they reveal.
package bgp

import (
	"context"
	"fmt"
	"log/slog"
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
