package bgp

// This file and gobgp_filters.go are the only ones that import GoBGP: everything the
// announcer needs from it goes through Speaker, in the terms of adapter.go, so GoBGP's API
// churn stays here.

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/osrg/gobgp/v4/api"
	"github.com/osrg/gobgp/v4/pkg/apiutil"
	gobgp "github.com/osrg/gobgp/v4/pkg/packet/bgp"
	"github.com/osrg/gobgp/v4/pkg/server"
)

// PathID identifies an originated path for deletion.
type PathID = uuid.UUID

// Speaker is an embedded GoBGP server that connects out only.
type Speaker struct {
	srv *server.BgpServer

	mu      sync.Mutex
	filters map[netip.Addr]bool                  // peers with an export filter installed
	denied  map[netip.Addr]map[netip.Prefix]bool // what each peer's filter holds now
}

// StartSpeaker starts GoBGP with ListenPort -1 (connect out only, so no CAP_NET_BIND_SERVICE
// and no clash with a CNI's BGP on port 179) and calls onPeer on every session state change.
func StartSpeaker(ctx context.Context, g GlobalConfig, log *slog.Logger, onPeer func(PeerState)) (*Speaker, error) {
	lvl := &slog.LevelVar{}
	lvl.Set(slog.LevelWarn)
	srv := server.NewBgpServer(server.LoggerOption(log, lvl))
	go srv.Serve()
	if err := srv.StartBgp(ctx, &api.StartBgpRequest{Global: &api.Global{
		Asn:        g.ASN,
		RouterId:   g.RouterID.String(),
		ListenPort: -1,
	}}); err != nil {
		srv.Stop()
		return nil, fmt.Errorf("start BGP (asn %d, router id %s): %w", g.ASN, g.RouterID, err)
	}
	s := &Speaker{srv: srv, filters: map[netip.Addr]bool{}, denied: map[netip.Addr]map[netip.Prefix]bool{}}
	if err := srv.WatchEvent(context.Background(), server.WatchEventMessageCallbacks{
		OnPeerUpdate: func(ev *apiutil.WatchEventMessage_PeerEvent, _ time.Time) {
			if ev.Type != apiutil.PEER_EVENT_STATE || onPeer == nil {
				return
			}
			st := ev.Peer.State
			ps := PeerState{Address: st.NeighborAddress, State: fsmFrom(st.SessionState)}
			if st.DisconnectMessage != "" || st.DisconnectReason != api.PeerState_DISCONNECT_REASON_UNSPECIFIED {
				ps.Reason = reasonText(st.DisconnectReason, st.DisconnectMessage)
			}
			onPeer(ps)
		},
	}, server.WatchPeer()); err != nil {
		srv.Stop()
		return nil, fmt.Errorf("watch peer events: %w", err)
	}
	return s, nil
}

// Stop ends every session and the server.
func (s *Speaker) Stop() {
	_ = s.srv.StopBgp(context.Background(), &api.StopBgpRequest{})
	s.srv.Stop()
}

func fsmFrom(st gobgp.FSMState) SessionFSM {
	switch st {
	case gobgp.BGP_FSM_IDLE:
		return FSMIdle
	case gobgp.BGP_FSM_CONNECT:
		return FSMConnect
	case gobgp.BGP_FSM_ACTIVE:
		return FSMActive
	case gobgp.BGP_FSM_OPENSENT:
		return FSMOpenSent
	case gobgp.BGP_FSM_OPENCONFIRM:
		return FSMOpenConfirm
	case gobgp.BGP_FSM_ESTABLISHED:
		return FSMEstablished
	}
	return FSMUnknown
}

func fsmFromAPI(st api.PeerState_SessionState) SessionFSM {
	switch st {
	case api.PeerState_SESSION_STATE_IDLE:
		return FSMIdle
	case api.PeerState_SESSION_STATE_CONNECT:
		return FSMConnect
	case api.PeerState_SESSION_STATE_ACTIVE:
		return FSMActive
	case api.PeerState_SESSION_STATE_OPENSENT:
		return FSMOpenSent
	case api.PeerState_SESSION_STATE_OPENCONFIRM:
		return FSMOpenConfirm
	case api.PeerState_SESSION_STATE_ESTABLISHED:
		return FSMEstablished
	}
	return FSMUnknown
}

func reasonText(r api.PeerState_DisconnectReason, msg string) string {
	name := strings.ToLower(strings.TrimPrefix(r.String(), "DISCONNECT_REASON_"))
	name = strings.ReplaceAll(name, "_", " ")
	if msg == "" {
		return name
	}
	return name + ": " + msg
}

func (c PeerConfig) toAPI() *api.Peer {
	p := &api.Peer{
		Conf: &api.PeerConf{
			NeighborAddress: c.Address.String(),
			PeerAsn:         c.PeerASN,
			LocalAsn:        c.LocalASN,
			AuthPassword:    c.Password,
		},
		Timers: &api.Timers{Config: &api.TimersConfig{
			HoldTime:          seconds(c.HoldTime),
			KeepaliveInterval: seconds(c.Keepalive),
			ConnectRetry:      seconds(c.ConnectRetry),
			// GoBGP waits this long before reconnecting after a reset it sent (30 s by
			// default); the announcer paces reconnects itself.
			IdleHoldTimeAfterReset: 1,
		}},
		Transport: &api.Transport{RemotePort: uint32(c.Port)},
	}
	if c.DualStack || c.Address.Is4() {
		p.AfiSafis = append(p.AfiSafis, afiSafi(gobgp.AFI_IP))
	}
	if c.DualStack || c.Address.Is6() {
		p.AfiSafis = append(p.AfiSafis, afiSafi(gobgp.AFI_IP6))
	}
	if c.SourceAddress.IsValid() {
		p.Transport.LocalAddress = c.SourceAddress.String()
	}
	if c.EBGPMultihop {
		p.EbgpMultihop = &api.EbgpMultihop{Enabled: true, MultihopTtl: 255}
	}
	if c.GracefulRestart {
		// RFC 4724: the router keeps our paths (as stale) for restartTime after the session
		// drops without a NOTIFICATION (a process that restarts), until the new session
		// has re-sent them. A Drain withdraws first, so a planned stop is not affected; a
		// reset we send (BFD down, reconfiguration) carries a NOTIFICATION and flushes.
		//
		// Every session opens as a restarting speaker's (LocalRestarting), as FRR's does with
		// preserve-fw-state, MetalLB's FRR mode: it is the only way GoBGP sets the Forwarding
		// State bit, and without it the router deletes the paths it kept the moment the
		// session is up (RFC 4724 4.2), racing the re-sent ones: FRR lets the re-sent path
		// cancel the deletion only while it has not processed it yet (50 ms), so a slow
		// announcer lost the path on the router until the path came. The bit holds: the
		// node's forwarding is not in the announcer. A restarting GoBGP sends nothing until
		// the router's End-of-RIB or the deferral; the paths, then End-of-RIB, follow.
		p.GracefulRestart = &api.GracefulRestart{Enabled: true, RestartTime: gracefulRestartTime,
			LocalRestarting: true, DeferralTime: gracefulRestartDeferral}
		for _, af := range p.AfiSafis {
			af.MpGracefulRestart = &api.MpGracefulRestart{Config: &api.MpGracefulRestartConfig{Enabled: true}}
		}
	}
	return p
}

func afiSafi(afi uint16) *api.AfiSafi {
	return &api.AfiSafi{Config: &api.AfiSafiConfig{
		Family:  &api.Family{Afi: api.Family_Afi(afi), Safi: api.Family_SAFI_UNICAST},
		Enabled: true,
	}}
}

// seconds rounds up: BGP timers are whole seconds on the wire.
func seconds(d time.Duration) uint64 {
	if d <= 0 {
		return 0
	}
	return uint64((d + time.Second - 1) / time.Second)
}

// gracefulRestartTime is the restart time advertised with graceful restart, in seconds: FRR's
// default, which MetalLB's FRR mode uses.
const gracefulRestartTime = 120

// gracefulRestartDeferral bounds, in seconds, how long a new graceful-restart session waits
// for the router's End-of-RIB before sending the paths (GoBGP waits for every graceful-restart
// peer's, so one router that is down would hold the others' for GoBGP's default 360 s). The
// announcer learns nothing from routers, so there is no selection to defer: the wait only
// delays path changes by up to this, while the router keeps the paths of the last session.
const gracefulRestartDeferral = 1

// AddPeer adds a neighbor; the session starts connecting at once.
func (s *Speaker) AddPeer(ctx context.Context, c PeerConfig) error {
	if err := s.srv.AddPeer(ctx, &api.AddPeerRequest{Peer: c.toAPI()}); err != nil {
		return fmt.Errorf("add peer %s: %w", c.Address, err)
	}
	return nil
}

// UpdatePeer changes a neighbor's configuration; GoBGP resets the session when needed.
func (s *Speaker) UpdatePeer(ctx context.Context, c PeerConfig) error {
	rsp, err := s.srv.UpdatePeer(ctx, &api.UpdatePeerRequest{Peer: c.toAPI()})
	if err != nil {
		return fmt.Errorf("update peer %s: %w", c.Address, err)
	}
	if rsp.NeedsSoftResetIn {
		_ = s.srv.ResetPeer(ctx, &api.ResetPeerRequest{Address: c.Address.String(), Soft: true, Direction: api.ResetPeerRequest_DIRECTION_IN})
	}
	return nil
}

// DeletePeer removes a neighbor (and its export filter).
func (s *Speaker) DeletePeer(ctx context.Context, addr netip.Addr) error {
	if err := s.srv.DeletePeer(ctx, &api.DeletePeerRequest{Address: addr.String()}); err != nil {
		return fmt.Errorf("delete peer %s: %w", addr, err)
	}
	return s.removeFilter(ctx, addr)
}

// RestartPeer ends the neighbor's session, if any, and starts a new one that connects at
// once (GoBGP's own path back from Idle waits at least 5 s, and 30 s after a reset it sent).
// Paths and the peer's export filter are kept. The peer must exist.
func (s *Speaker) RestartPeer(ctx context.Context, c PeerConfig) error {
	if err := s.srv.DeletePeer(ctx, &api.DeletePeerRequest{Address: c.Address.String()}); err != nil {
		return fmt.Errorf("restart peer %s: %w", c.Address, err)
	}
	return s.AddPeer(ctx, c)
}

// ResetPeer hard-resets a neighbor's session, e.g. after its password changed. Only for an
// established session: GoBGP queues the notification of a session that is not established
// and delivers it when the next one establishes, resetting that one.
func (s *Speaker) ResetPeer(ctx context.Context, addr netip.Addr, why string) error {
	return s.srv.ResetPeer(ctx, &api.ResetPeerRequest{Address: addr.String(), Communication: why})
}

// RefreshPeer re-sends the peer everything through the export policy (a soft reset out):
// paths the policy now allows are advertised, and paths it now rejects are withdrawn.
func (s *Speaker) RefreshPeer(ctx context.Context, addr netip.Addr) error {
	if err := s.srv.ResetPeer(ctx, &api.ResetPeerRequest{Address: addr.String(), Soft: true, Direction: api.ResetPeerRequest_DIRECTION_OUT}); err != nil {
		return fmt.Errorf("refresh peer %s: %w", addr, err)
	}
	return nil
}

// Peers reports every neighbor's session.
func (s *Speaker) Peers(ctx context.Context) ([]PeerState, error) {
	var out []PeerState
	err := s.srv.ListPeer(ctx, &api.ListPeerRequest{}, func(p *api.Peer) {
		if p.State == nil || p.Conf == nil {
			return
		}
		addr, err := netip.ParseAddr(p.Conf.NeighborAddress)
		if err != nil {
			return
		}
		ps := PeerState{Address: addr, State: fsmFromAPI(p.State.SessionState)}
		if p.State.DisconnectReason != api.PeerState_DISCONNECT_REASON_UNSPECIFIED || p.State.DisconnectMessage != "" {
			ps.Reason = reasonText(p.State.DisconnectReason, p.State.DisconnectMessage)
		}
		out = append(out, ps)
	})
	return out, err
}

func family(p netip.Prefix) gobgp.Family {
	if p.Addr().Is4() {
		return gobgp.RF_IPv4_UC
	}
	return gobgp.RF_IPv6_UC
}

func (p Path) toAPI(withdraw bool) (*apiutil.Path, error) {
	nlri, err := gobgp.NewIPAddrPrefix(p.Prefix)
	if err != nil {
		return nil, fmt.Errorf("prefix %s: %w", p.Prefix, err)
	}
	fam := family(p.Prefix)
	attrs := []gobgp.PathAttributeInterface{gobgp.NewPathAttributeOrigin(gobgp.BGP_ORIGIN_ATTR_TYPE_IGP)}
	// An unspecified next hop makes GoBGP put the session's local address in its place.
	if fam == gobgp.RF_IPv4_UC {
		nh, err := gobgp.NewPathAttributeNextHop(netip.IPv4Unspecified())
		if err != nil {
			return nil, err
		}
		attrs = append(attrs, nh)
	} else {
		mp, err := gobgp.NewPathAttributeMpReachNLRI(fam, []gobgp.PathNLRI{{NLRI: nlri}}, netip.IPv6Unspecified())
		if err != nil {
			return nil, err
		}
		attrs = append(attrs, mp)
	}
	if p.LocalPref != nil {
		attrs = append(attrs, gobgp.NewPathAttributeLocalPref(*p.LocalPref))
	}
	if len(p.Communities) > 0 {
		attrs = append(attrs, gobgp.NewPathAttributeCommunities(p.Communities))
	}
	if len(p.LargeCommunities) > 0 {
		lcs := make([]*gobgp.LargeCommunity, len(p.LargeCommunities))
		for i, c := range p.LargeCommunities {
			lcs[i] = gobgp.NewLargeCommunity(c[0], c[1], c[2])
		}
		attrs = append(attrs, gobgp.NewPathAttributeLargeCommunities(lcs))
	}
	if len(p.ExtendedCommunities) > 0 {
		ecs := make([]gobgp.ExtendedCommunityInterface, len(p.ExtendedCommunities))
		for i, c := range p.ExtendedCommunities {
			ec, err := ParseExtCommunity(c)
			if err != nil {
				return nil, err
			}
			ecs[i] = ec
		}
		attrs = append(attrs, gobgp.NewPathAttributeExtendedCommunities(ecs))
	}
	return &apiutil.Path{Family: fam, Nlri: nlri, Attrs: attrs, Withdrawal: withdraw}, nil
}

// ParseExtCommunity checks an extended community value such as "65000:100" or "192.0.2.1:7".
func ParseExtCommunity(c ExtCommunity) (gobgp.ExtendedCommunityInterface, error) {
	sub := gobgp.EC_SUBTYPE_ROUTE_TARGET
	if c.Origin {
		sub = gobgp.EC_SUBTYPE_ROUTE_ORIGIN
	}
	ec, err := gobgp.ParseExtendedCommunity(sub, c.Value)
	if err != nil {
		return nil, fmt.Errorf("extended community %q: %w", c.Value, err)
	}
	return ec, nil
}

// AddPaths originates paths (replacing any earlier path for the same prefix). It returns one
// ID per path (zero when that path failed) and one error per path.
func (s *Speaker) AddPaths(paths []Path) ([]PathID, []error) {
	ids := make([]PathID, len(paths))
	errs := make([]error, len(paths))
	req := apiutil.AddPathRequest{}
	index := make([]int, 0, len(paths))
	for i, p := range paths {
		ap, err := p.toAPI(false)
		if err != nil {
			errs[i] = err
			continue
		}
		req.Paths = append(req.Paths, ap)
		index = append(index, i)
	}
	if len(req.Paths) == 0 {
		return ids, errs
	}
	rsp, err := s.srv.AddPath(req)
	if err != nil && len(rsp) == 0 {
		// GoBGP drops every response when one path fails (the others are added), so add
		// them one by one to learn which failed and get the others' IDs.
		for j, ap := range req.Paths {
			i := index[j]
			one, err := s.srv.AddPath(apiutil.AddPathRequest{Paths: []*apiutil.Path{ap}})
			if err != nil || len(one) == 0 {
				errs[i] = fmt.Errorf("add path %s: %w", paths[i].Prefix, err)
				continue
			}
			ids[i] = one[0].UUID
		}
		return ids, errs
	}
	for j, r := range rsp {
		i := index[j]
		if r.Error != nil {
			errs[i] = fmt.Errorf("add path %s: %w", paths[i].Prefix, r.Error)
			continue
		}
		ids[i] = r.UUID
	}
	return ids, errs
}

// uuidDeleteLimit bounds deletion by UUID: GoBGP scans its whole RIB once per UUID, so large
// batches are withdrawn by prefix instead.
const uuidDeleteLimit = 32

// DeletePaths withdraws originated paths, by the IDs AddPaths returned when the batch is small,
// by prefix otherwise.
func (s *Speaker) DeletePaths(ids []PathID, prefixes []netip.Prefix) error {
	if len(prefixes) == 0 {
		return nil
	}
	if len(ids) == len(prefixes) && len(ids) <= uuidDeleteLimit && !slicesHasZero(ids) {
		if err := s.srv.DeletePath(apiutil.DeletePathRequest{UUIDs: ids}); err != nil {
			return fmt.Errorf("withdraw %d paths: %w", len(ids), err)
		}
		return nil
	}
	req := apiutil.DeletePathRequest{}
	for _, p := range prefixes {
		ap, err := Path{Prefix: p}.toAPI(true)
		if err != nil {
			return err
		}
		req.Paths = append(req.Paths, ap)
	}
	if err := s.srv.DeletePath(req); err != nil {
		return fmt.Errorf("withdraw %d paths: %w", len(prefixes), err)
	}
	return nil
}

func slicesHasZero(ids []PathID) bool {
	for _, id := range ids {
		if id == (PathID{}) {
			return true
		}
	}
	return false
}

// DeleteAllPaths withdraws every originated path.
func (s *Speaker) DeleteAllPaths() error {
	return s.srv.DeletePath(apiutil.DeletePathRequest{DeleteAll: true})
}

// notificationText names a BGP NOTIFICATION error, e.g. "open message error / bad peer AS".
func notificationText(code, subcode uint8) string {
	return gobgp.NewNotificationErrorCode(code, subcode).String()
}
