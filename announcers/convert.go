package announcers

import (
	"fmt"
	"net/netip"
	"time"

	pb "github.com/herald-lb/herald/announcers/announcerv1"
)

var capabilityToProto = map[Capability]pb.Capability{
	CapabilityIPv4:              pb.Capability_CAPABILITY_IPV4,
	CapabilityIPv6:              pb.Capability_CAPABILITY_IPV6,
	CapabilityL2:                pb.Capability_CAPABILITY_L2,
	CapabilityBGP:               pb.Capability_CAPABILITY_BGP,
	CapabilityBFD:               pb.Capability_CAPABILITY_BFD,
	CapabilityConflictDetection: pb.Capability_CAPABILITY_CONFLICT_DETECTION,
}

func infoToProto(i Info) *pb.InfoResponse {
	out := &pb.InfoResponse{ProtocolVersion: uint32(i.ProtocolVersion), Kind: i.Kind, Version: i.Version}
	for _, c := range i.Capabilities {
		if p, ok := capabilityToProto[c]; ok {
			out.Capabilities = append(out.Capabilities, p)
		}
	}
	return out
}

func infoFromProto(p *pb.InfoResponse) Info {
	out := Info{ProtocolVersion: int(p.GetProtocolVersion()), Kind: p.GetKind(), Version: p.GetVersion()}
	for _, c := range p.GetCapabilities() {
		for goCap, protoCap := range capabilityToProto {
			if protoCap == c {
				out.Capabilities = append(out.Capabilities, goCap)
			}
		}
	}
	return out
}

func ms(d time.Duration) int64        { return d.Milliseconds() }
func fromMS(v int64) time.Duration    { return time.Duration(v) * time.Millisecond }
func ms32(d time.Duration) uint32     { return uint32(d.Milliseconds()) }
func fromMS32(v uint32) time.Duration { return time.Duration(v) * time.Millisecond }

func configToProto(c Config) *pb.ConfigureRequest {
	out := &pb.ConfigureRequest{}
	if c.L2 != nil {
		out.L2 = &pb.L2Config{
			RefreshIntervalMs:        ms(c.L2.RefreshInterval),
			GratuitousCount:          uint32(c.L2.GratuitousCount),
			GratuitousIntervalMs:     ms(c.L2.GratuitousInterval),
			ConflictReportIntervalMs: ms(c.L2.ConflictReportInterval),
		}
	}
	if c.BGP != nil {
		out.Bgp = &pb.BGPConfig{}
		for _, p := range c.BGP.Peers {
			out.Bgp.Peers = append(out.Bgp.Peers, peerToProto(p))
		}
	}
	return out
}

func configFromProto(p *pb.ConfigureRequest) Config {
	var out Config
	if l2 := p.GetL2(); l2 != nil {
		out.L2 = &L2Config{
			RefreshInterval:        fromMS(l2.GetRefreshIntervalMs()),
			GratuitousCount:        int(l2.GetGratuitousCount()),
			GratuitousInterval:     fromMS(l2.GetGratuitousIntervalMs()),
			ConflictReportInterval: fromMS(l2.GetConflictReportIntervalMs()),
		}
	}
	if bgp := p.GetBgp(); bgp != nil {
		out.BGP = &BGPConfig{}
		for _, peer := range bgp.GetPeers() {
			out.BGP.Peers = append(out.BGP.Peers, peerFromProto(peer))
		}
	}
	return out
}

func peerToProto(p BGPPeer) *pb.BGPPeer {
	out := &pb.BGPPeer{
		Name: p.Name, MyAsn: p.MyASN, PeerAsn: p.PeerASN, DynamicAsn: p.DynamicASN,
		Address: p.Address, Port: uint32(p.Port), SourceAddress: p.SourceAddress, RouterId: p.RouterID,
		HoldTimeMs: ms(p.HoldTime), KeepaliveTimeMs: ms(p.KeepaliveTime), ConnectTimeMs: ms(p.ConnectTime),
		EbgpMultihop: p.EBGPMultiHop, Password: p.Password.Reveal(), Vrf: p.VRF, Interface: p.Interface,
		EnableGracefulRestart: p.EnableGracefulRestart, DisableMp: p.DisableMP,
		DualStackAddressFamily: p.DualStackAddressFamily,
	}
	if b := p.BFD; b != nil {
		out.Bfd = &pb.BFDProfile{
			Name: b.Name, ReceiveIntervalMs: ms32(b.ReceiveInterval), TransmitIntervalMs: ms32(b.TransmitInterval),
			DetectMultiplier: b.DetectMultiplier, EchoIntervalMs: ms32(b.EchoInterval),
			EchoMode: b.EchoMode, PassiveMode: b.PassiveMode, MinimumTtl: b.MinimumTTL,
		}
	}
	return out
}

func peerFromProto(p *pb.BGPPeer) BGPPeer {
	out := BGPPeer{
		Name: p.GetName(), MyASN: p.GetMyAsn(), PeerASN: p.GetPeerAsn(), DynamicASN: p.GetDynamicAsn(),
		Address: p.GetAddress(), Port: uint16(p.GetPort()), SourceAddress: p.GetSourceAddress(), RouterID: p.GetRouterId(),
		HoldTime: fromMS(p.GetHoldTimeMs()), KeepaliveTime: fromMS(p.GetKeepaliveTimeMs()), ConnectTime: fromMS(p.GetConnectTimeMs()),
		EBGPMultiHop: p.GetEbgpMultihop(), Password: Secret(p.GetPassword()), VRF: p.GetVrf(), Interface: p.GetInterface(),
		EnableGracefulRestart: p.GetEnableGracefulRestart(), DisableMP: p.GetDisableMp(),
		DualStackAddressFamily: p.GetDualStackAddressFamily(),
	}
	if b := p.GetBfd(); b != nil {
		out.BFD = &BFDProfile{
			Name: b.GetName(), ReceiveInterval: fromMS32(b.GetReceiveIntervalMs()), TransmitInterval: fromMS32(b.GetTransmitIntervalMs()),
			DetectMultiplier: b.GetDetectMultiplier(), EchoInterval: fromMS32(b.GetEchoIntervalMs()),
			EchoMode: b.GetEchoMode(), PassiveMode: b.GetPassiveMode(), MinimumTTL: b.GetMinimumTtl(),
		}
	}
	return out
}

func announcementsToProto(as []Announcement) []*pb.Announcement {
	out := make([]*pb.Announcement, 0, len(as))
	for _, a := range as {
		p := &pb.Announcement{Id: a.ID, Prefix: a.Prefix.String(), Interfaces: a.Interfaces}
		if r := a.BGP; r != nil {
			p.Bgp = &pb.BGPRoute{
				AggregationLength: uint32(r.AggregationLength), Communities: r.Communities,
				LargeCommunities: r.LargeCommunities, ExtendedCommunities: r.ExtendedCommunities, Peers: r.Peers,
			}
			if r.LocalPref != nil {
				p.Bgp.HasLocalPref, p.Bgp.LocalPref = true, *r.LocalPref
			}
		}
		out = append(out, p)
	}
	return out
}

// announcementsFromProto converts what it can; an announcement whose prefix does not parse is
// rejected alone, so one bad entry never fails the whole set.
func announcementsFromProto(ps []*pb.Announcement) ([]Announcement, []Rejection) {
	out := make([]Announcement, 0, len(ps))
	var rejected []Rejection
	for i, p := range ps {
		prefix, err := netip.ParsePrefix(p.GetPrefix())
		if err != nil {
			id := p.GetId()
			if id == "" {
				id = p.GetPrefix()
			}
			rejected = append(rejected, Rejection{ID: id, Reason: fmt.Sprintf("announcements[%d].prefix: %v", i, err)})
			continue
		}
		a := Announcement{ID: p.GetId(), Prefix: prefix, Interfaces: p.GetInterfaces()}
		if r := p.GetBgp(); r != nil {
			a.BGP = &BGPRoute{
				AggregationLength: int(r.GetAggregationLength()), Communities: r.GetCommunities(),
				LargeCommunities: r.GetLargeCommunities(), ExtendedCommunities: r.GetExtendedCommunities(), Peers: r.GetPeers(),
			}
			if r.GetHasLocalPref() {
				lp := r.GetLocalPref()
				a.BGP.LocalPref = &lp
			}
		}
		out = append(out, a)
	}
	return out, rejected
}

func resultToProto(r ApplyResult) *pb.ApplyResponse {
	out := &pb.ApplyResponse{Generation: r.Generation}
	for _, rej := range r.Rejected {
		out.Rejected = append(out.Rejected, &pb.Rejection{Id: rej.ID, Reason: rej.Reason})
	}
	return out
}

func resultFromProto(p *pb.ApplyResponse) ApplyResult {
	out := ApplyResult{Generation: p.GetGeneration()}
	for _, rej := range p.GetRejected() {
		out.Rejected = append(out.Rejected, Rejection{ID: rej.GetId(), Reason: rej.GetReason()})
	}
	return out
}

func statusToProto(s Status) *pb.StatusResponse {
	out := &pb.StatusResponse{Generation: s.Generation, Health: pb.HealthState(s.Health), Message: s.Message}
	for _, a := range s.Announced {
		out.Announced = append(out.Announced, &pb.AnnouncedPrefix{Prefix: a.Prefix.String(), Interfaces: a.Interfaces, Peers: a.Peers})
	}
	for _, p := range s.Peers {
		out.Peers = append(out.Peers, &pb.PeerStatus{Name: p.Name, Address: p.Address, State: pb.SessionState(p.State), BfdUp: p.BFDUp, Message: p.Message})
	}
	return out
}

func statusFromProto(p *pb.StatusResponse) Status {
	out := Status{Generation: p.GetGeneration(), Health: HealthState(p.GetHealth()), Message: p.GetMessage()}
	for _, a := range p.GetAnnounced() {
		prefix, _ := netip.ParsePrefix(a.GetPrefix()) // produced by statusToProto from a valid prefix
		out.Announced = append(out.Announced, AnnouncedPrefix{Prefix: prefix, Interfaces: a.GetInterfaces(), Peers: a.GetPeers()})
	}
	for _, peer := range p.GetPeers() {
		out.Peers = append(out.Peers, PeerStatus{Name: peer.GetName(), Address: peer.GetAddress(), State: SessionState(peer.GetState()), BFDUp: peer.GetBfdUp(), Message: peer.GetMessage()})
	}
	return out
}

func eventToProto(e Event) *pb.Event {
	out := &pb.Event{UnixNano: e.Time.UnixNano()}
	switch {
	case e.Conflict != nil:
		c := e.Conflict
		out.Kind = &pb.Event_Conflict{Conflict: &pb.Conflict{Address: c.Address.String(), Interface: c.Interface, ForeignMac: c.ForeignMAC, Detail: c.Detail}}
	case e.Session != nil:
		s := e.Session
		out.Kind = &pb.Event_Session{Session: &pb.SessionChange{Peer: s.Peer, Address: s.Address, State: pb.SessionState(s.State), Reason: s.Reason}}
	case e.Error != nil:
		out.Kind = &pb.Event_Error{Error: &pb.Error{Message: e.Error.Message}}
	}
	return out
}

func eventFromProto(p *pb.Event) Event {
	out := Event{Time: time.Unix(0, p.GetUnixNano())}
	if c := p.GetConflict(); c != nil {
		addr, _ := netip.ParseAddr(c.GetAddress())
		out.Conflict = &Conflict{Address: addr, Interface: c.GetInterface(), ForeignMAC: c.GetForeignMac(), Detail: c.GetDetail()}
	}
	if s := p.GetSession(); s != nil {
		out.Session = &SessionChange{Peer: s.GetPeer(), Address: s.GetAddress(), State: SessionState(s.GetState()), Reason: s.GetReason()}
	}
	if e := p.GetError(); e != nil {
		out.Error = &EventError{Message: e.GetMessage()}
	}
	return out
}
