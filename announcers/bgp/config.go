package bgp

import (
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/herald-lb/herald/announcers"
)

// BFD limits, as in metallb.io BFDProfile.
const (
	minBFDInterval       = 10 * time.Millisecond
	maxBFDInterval       = 60000 * time.Millisecond
	defaultBFDInterval   = 300 * time.Millisecond
	defaultBFDMultiplier = 3
	// defaultConnectRetry is the wait between connection attempts when connectTime is unset
	// (GoBGP's default is 120 s): a router that comes back is reached within seconds. It is
	// GoBGP's minimum. Sessions that go down are also reconnected with backoff by the
	// announcer (reconnectDelay).
	defaultConnectRetry = 2 * time.Second
)

// peerConfig checks one BGPPeer and turns it into the Speaker's terms. Every error names the
// field; settings GoBGP cannot honour are errors rather than being ignored.
func peerConfig(s announcers.BGPPeer) (PeerConfig, error) {
	c := PeerConfig{
		Port:            s.Port,
		LocalASN:        s.MyASN,
		PeerASN:         s.PeerASN,
		HoldTime:        s.HoldTime,
		Keepalive:       s.KeepaliveTime,
		ConnectRetry:    s.ConnectTime,
		EBGPMultihop:    s.EBGPMultiHop,
		Password:        s.Password.Reveal(),
		GracefulRestart: s.EnableGracefulRestart,
		DualStack:       s.DualStackAddressFamily,
	}
	var errs []error
	if s.Interface != "" {
		errs = append(errs, errors.New("interface: BGP unnumbered is not supported by this announcer; set address"))
	}
	addr, err := netip.ParseAddr(s.Address)
	if err != nil {
		errs = append(errs, fmt.Errorf("address: %q is not an IP address", s.Address))
	}
	c.Address = addr
	if s.MyASN == 0 {
		errs = append(errs, errors.New("myASN: must be set"))
	}
	switch s.DynamicASN {
	case "":
		if s.PeerASN == 0 {
			errs = append(errs, errors.New("peerASN: must be set (or dynamicASN)"))
		}
	case "internal", "external":
		if s.PeerASN != 0 {
			errs = append(errs, errors.New("dynamicASN: must not be set together with peerASN"))
		}
		// GoBGP accepts any ASN when peerASN is 0; whether it matches internal or external
		// is not enforced by GoBGP, which we accept as MetalLB's FRR mode also learns it.
	default:
		errs = append(errs, fmt.Errorf("dynamicASN: %q is neither internal nor external", s.DynamicASN))
	}
	if s.SourceAddress != "" {
		src, err := netip.ParseAddr(s.SourceAddress)
		if err != nil {
			errs = append(errs, fmt.Errorf("sourceAddress: %q is not an IP address", s.SourceAddress))
		} else if addr.IsValid() && src.Is4() != addr.Is4() {
			errs = append(errs, fmt.Errorf("sourceAddress: %s and address %s are of different families", src, addr))
		}
		c.SourceAddress = src
	}
	if s.RouterID != "" {
		if id, err := netip.ParseAddr(s.RouterID); err != nil || !id.Is4() {
			errs = append(errs, fmt.Errorf("routerID: %q is not an IPv4 address", s.RouterID))
		}
	}
	if s.HoldTime != 0 && (s.HoldTime < 3*time.Second || s.HoldTime%time.Second != 0) {
		errs = append(errs, fmt.Errorf("holdTime: %s must be 0 or whole seconds of at least 3s", s.HoldTime))
	}
	if s.KeepaliveTime < 0 || s.KeepaliveTime%time.Second != 0 {
		errs = append(errs, fmt.Errorf("keepaliveTime: %s must be whole seconds", s.KeepaliveTime))
	} else if s.KeepaliveTime != 0 && s.HoldTime != 0 && s.KeepaliveTime > s.HoldTime {
		errs = append(errs, fmt.Errorf("keepaliveTime: %s must not exceed holdTime %s", s.KeepaliveTime, s.HoldTime))
	}
	if s.HoldTime != 0 && s.KeepaliveTime == 0 {
		c.Keepalive = s.HoldTime / 3
	}
	if s.ConnectTime < 0 || s.ConnectTime%time.Second != 0 {
		errs = append(errs, fmt.Errorf("connectTime: %s must be whole seconds", s.ConnectTime))
	}
	if s.ConnectTime == 0 {
		c.ConnectRetry = defaultConnectRetry
	}
	if s.VRF != "" {
		errs = append(errs, fmt.Errorf("vrf: %q: peering inside a Linux VRF is not supported by this announcer", s.VRF))
	}
	if s.DisableMP {
		// GoBGP negotiates both families on one session; separate sessions per family are not
		// what GoBGP does, so refuse rather than pretend.
		errs = append(errs, errors.New("disableMP: separate sessions per address family are not supported"))
	}
	bfd, err := bfdConfig(s.BFD, s.EBGPMultiHop)
	if err != nil {
		errs = append(errs, err)
	}
	c.BFD = bfd
	return c, errors.Join(errs...)
}

// bfdConfig checks a BFD profile against what the announcer's BFD (package bfd) honours: single-hop
// asynchronous mode with transmit/receive intervals and a detection multiplier. Echo mode and
// passive mode do not exist there, and BFD over a multi-hop session is not implemented, so a
// profile asking for them is rejected. echoInterval matters only in echo mode and minimumTtl
// only on multi-hop sessions (as in metallb.io), so on a single-hop session without echo
// they change nothing and are accepted.
func bfdConfig(p *announcers.BFDProfile, multihop bool) (*BFDConfig, error) {
	if p == nil {
		return nil, nil
	}
	field := func(f string) string { return fmt.Sprintf("bfdProfile %q: %s", p.Name, f) }
	var errs []error
	if p.EchoMode {
		errs = append(errs, fmt.Errorf("%s: this announcer's BFD has no echo function; set echoMode false", field("echoMode")))
	}
	if p.PassiveMode {
		errs = append(errs, fmt.Errorf("%s: this announcer's BFD always sends control packets and cannot wait passively; set passiveMode false", field("passiveMode")))
	}
	if multihop {
		errs = append(errs, fmt.Errorf("%s: this announcer implements single-hop BFD only (RFC 5881); BFD with ebgpMultiHop is not supported", field("ebgpMultiHop")))
	}
	c := &BFDConfig{DesiredMinTx: p.TransmitInterval, RequiredMinRx: p.ReceiveInterval, DetectMultiplier: p.DetectMultiplier}
	if c.DesiredMinTx == 0 {
		c.DesiredMinTx = defaultBFDInterval
	}
	if c.RequiredMinRx == 0 {
		c.RequiredMinRx = defaultBFDInterval
	}
	if c.DetectMultiplier == 0 {
		c.DetectMultiplier = defaultBFDMultiplier
	}
	for name, d := range map[string]time.Duration{"transmitInterval": c.DesiredMinTx, "receiveInterval": c.RequiredMinRx} {
		if d < minBFDInterval || d > maxBFDInterval || d%time.Millisecond != 0 {
			errs = append(errs, fmt.Errorf("%s: %s must be whole milliseconds in [10ms, 60000ms]", field(name), d))
		}
	}
	if c.DetectMultiplier < 2 || c.DetectMultiplier > 255 {
		errs = append(errs, fmt.Errorf("%s: %d must be in [2, 255]", field("detectMultiplier"), c.DetectMultiplier))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return c, nil
}
