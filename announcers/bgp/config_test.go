package bgp

import (
	"strings"
	"testing"
	"time"

	"github.com/herald-lb/herald/announcers"
)

func TestBFDConfig(t *testing.T) {
	tests := []struct {
		name     string
		profile  *announcers.BFDProfile
		multihop bool
		want     *BFDConfig
		wantErr  []string
	}{
		{name: "off", profile: nil},
		{name: "defaults", profile: &announcers.BFDProfile{Name: "p"},
			want: &BFDConfig{DesiredMinTx: 300 * time.Millisecond, RequiredMinRx: 300 * time.Millisecond, DetectMultiplier: 3}},
		{name: "fast, echo interval and minimum ttl accepted on single hop",
			profile: &announcers.BFDProfile{Name: "fast", TransmitInterval: 100 * time.Millisecond, ReceiveInterval: 200 * time.Millisecond, DetectMultiplier: 5, EchoInterval: 50 * time.Millisecond, MinimumTTL: 254},
			want:    &BFDConfig{DesiredMinTx: 100 * time.Millisecond, RequiredMinRx: 200 * time.Millisecond, DetectMultiplier: 5}},
		{name: "echo mode rejected", profile: &announcers.BFDProfile{Name: "e", EchoMode: true}, wantErr: []string{`bfdProfile "e": echoMode`}},
		{name: "passive mode rejected", profile: &announcers.BFDProfile{Name: "p", PassiveMode: true}, wantErr: []string{"passiveMode"}},
		{name: "multihop rejected", profile: &announcers.BFDProfile{Name: "m"}, multihop: true, wantErr: []string{"ebgpMultiHop"}},
		{name: "interval out of range", profile: &announcers.BFDProfile{Name: "r", TransmitInterval: 5 * time.Millisecond}, wantErr: []string{"transmitInterval"}},
		{name: "multiplier out of range", profile: &announcers.BFDProfile{Name: "r", DetectMultiplier: 1}, wantErr: []string{"detectMultiplier"}},
		{name: "every problem reported", profile: &announcers.BFDProfile{Name: "all", EchoMode: true, PassiveMode: true}, multihop: true,
			wantErr: []string{"echoMode", "passiveMode", "ebgpMultiHop"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := bfdConfig(tt.profile, tt.multihop)
			if len(tt.wantErr) > 0 {
				if err == nil {
					t.Fatalf("bfdConfig() = %+v, want an error", got)
				}
				for _, w := range tt.wantErr {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q does not mention %q", err, w)
					}
				}
				return
			}
			if err != nil {
				t.Fatalf("bfdConfig() error = %v", err)
			}
			if (got == nil) != (tt.want == nil) || got != nil && *got != *tt.want {
				t.Fatalf("bfdConfig() = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestPeerConfig(t *testing.T) {
	good := announcers.BGPPeer{Name: "r", MyASN: 64500, PeerASN: 64501, Address: "192.0.2.1", HoldTime: 9 * time.Second, Password: "s3cret"}
	tests := []struct {
		name    string
		mutate  func(*announcers.BGPPeer)
		wantErr string
		check   func(t *testing.T, c PeerConfig)
	}{
		{name: "valid; keepalive defaults to a third of hold", check: func(t *testing.T, c PeerConfig) {
			if c.Keepalive != 3*time.Second || c.Password != "s3cret" || c.Address.String() != "192.0.2.1" {
				t.Errorf("got %+v", c)
			}
		}},
		{name: "bad address", mutate: func(p *announcers.BGPPeer) { p.Address = "router" }, wantErr: "address"},
		{name: "no peer asn", mutate: func(p *announcers.BGPPeer) { p.PeerASN = 0 }, wantErr: "peerASN"},
		{name: "dynamic asn", mutate: func(p *announcers.BGPPeer) { p.PeerASN, p.DynamicASN = 0, "external" }},
		{name: "dynamic asn and peer asn", mutate: func(p *announcers.BGPPeer) { p.DynamicASN = "internal" }, wantErr: "dynamicASN"},
		{name: "hold time too short", mutate: func(p *announcers.BGPPeer) { p.HoldTime = time.Second }, wantErr: "holdTime"},
		{name: "keepalive above hold", mutate: func(p *announcers.BGPPeer) { p.KeepaliveTime = 30 * time.Second }, wantErr: "keepaliveTime"},
		{name: "vrf refused", mutate: func(p *announcers.BGPPeer) { p.VRF = "red" }, wantErr: "vrf"},
		{name: "source of other family", mutate: func(p *announcers.BGPPeer) { p.SourceAddress = "2001:db8::1" }, wantErr: "sourceAddress"},
		{name: "bfd echo refused", mutate: func(p *announcers.BGPPeer) { p.BFD = &announcers.BFDProfile{Name: "x", EchoMode: true} }, wantErr: "echoMode"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := good
			if tt.mutate != nil {
				tt.mutate(&p)
			}
			c, err := peerConfig(p)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("peerConfig() error = %v, want one about %s", err, tt.wantErr)
				}
				if strings.Contains(err.Error(), "s3cret") {
					t.Fatalf("error leaks the password: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("peerConfig() error = %v", err)
			}
			if tt.check != nil {
				tt.check(t, c)
			}
		})
	}
}
