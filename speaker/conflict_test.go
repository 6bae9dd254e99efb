package speaker

import (
	"net"
	"net/netip"
	"testing"
	"time"

	"k8s.io/client-go/tools/record"
	"k8s.io/component-base/metrics/legacyregistry"
	"k8s.io/component-base/metrics/testutil"
	"k8s.io/klog/v2/ktesting"

	"github.com/herald-lb/herald/announcers"
	"github.com/herald-lb/herald/announcers/manager"
	"github.com/herald-lb/herald/framework"
	"github.com/herald-lb/herald/snapshot"
	"github.com/herald-lb/herald/speaker/announce"
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

// A neighbour spraying forged MACs must not grow the metric: conflicts count per announcer,
// and every MAC still reaches the log and Events.
func TestConflictMetricHasNoLabelFromTheWire(t *testing.T) {
	conflictsTotal.Reset()
	_, ctx := ktesting.NewTestContext(t)
	s := &Speaker{o: Options{NodeName: "self"}, builder: snapshot.NewBuilder(func(snapshot.Change) {}),
		ledger: announce.NewLedger(nil, announce.StatusWriters{}, nil), recorder: record.NewFakeRecorder(10)}
	const macs = 1000
	for i := 0; i < macs; i++ {
		s.handleAnnouncerEvent(ctx, manager.Event{Announcer: "arp", Event: announcers.Event{Conflict: &announcers.Conflict{
			Address: netip.MustParseAddr("192.0.2.10"), Interface: "eth0",
			ForeignMAC: net.HardwareAddr{2, 0xaa, 0, 0, byte(i >> 8), byte(i)}.String(), Detail: "ARP reply from another MAC",
		}}})
	}
	families, err := legacyregistry.DefaultGatherer.Gather()
	if err != nil {
		t.Fatal(err)
	}
	series := -1
	for _, f := range families {
		if f.GetName() == "herald_speaker_address_conflicts_total" {
			series = len(f.GetMetric())
		}
	}
	if series != 1 {
		t.Errorf("%d series after conflicts from %d MACs, want 1", series, macs)
	}
	if v, err := testutil.GetCounterMetricValue(conflictsTotal.WithLabelValues("arp")); err != nil || v != macs {
		t.Errorf("conflicts counted %v (%v), want %d", v, err, macs)
	}
}
