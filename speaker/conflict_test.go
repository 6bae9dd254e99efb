package speaker

import (
	"testing"
	"time"

	"github.com/herald-lb/herald/framework"
)

func TestHeraldPeerWithMAC(t *testing.T) {
	now := time.Now()
	withMAC := func(name, mac string, renew time.Time) *framework.NodeInfo {
		return &framework.NodeInfo{Name: name, Speaker: &framework.SpeakerInfo{RenewTime: renew, LeaseDuration: 2 * time.Second,
			Interfaces: []framework.Interface{{Name: "eth0", Up: true}, {Name: "eth1", Up: true, MAC: mac}}}}
	}
	snap := framework.NewSnapshot(now, []*framework.NodeInfo{
		withMAC("self", "02:00:00:00:00:01", now),
		withMAC("alive", "02:00:00:00:00:0a", now),
		withMAC("dead", "02:00:00:00:00:03", now.Add(-time.Minute)),
		{Name: "no-speaker"},
	})
	tests := []struct {
		mac       string
		wantNode  string
		wantAlive bool
	}{
		{mac: "02:00:00:00:00:0a", wantNode: "alive", wantAlive: true},
		{mac: "02:00:00:00:00:0A", wantNode: "alive", wantAlive: true}, // MACs match whatever their case
		{mac: "02:00:00:00:00:03", wantNode: "dead"},
		{mac: "02:00:00:00:00:01"}, // this node's own MAC is nobody else's
		{mac: "02:aa:bb:cc:dd:ee"}, // a foreign responder
	}
	for _, tt := range tests {
		got := heraldPeerWithMAC(snap, "self", tt.mac)
		switch {
		case tt.wantNode == "" && got != nil:
			t.Errorf("%s: got node %s, want none", tt.mac, got.Name)
		case tt.wantNode != "" && (got == nil || got.Name != tt.wantNode):
			t.Errorf("%s: got %v, want node %s", tt.mac, got, tt.wantNode)
		case got != nil && got.Speaker.AliveAt(snap.Time) != tt.wantAlive:
			t.Errorf("%s: alive %v, want %v", tt.mac, !tt.wantAlive, tt.wantAlive)
		}
	}
}
