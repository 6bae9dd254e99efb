package nodeready

import (
	"context"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/herald-lb/herald/framework"
)

func boolPtr(b bool) *bool { return &b }

func TestFilter(t *testing.T) {
	now := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	alive := &framework.SpeakerInfo{RenewTime: now.Add(-5 * time.Second), LeaseDuration: 15 * time.Second}
	stale := &framework.SpeakerInfo{RenewTime: now.Add(-20 * time.Second), LeaseDuration: 15 * time.Second}
	draining := &framework.SpeakerInfo{RenewTime: now.Add(-time.Second), LeaseDuration: 15 * time.Second, Draining: true}
	healthy := framework.NodeInfo{Name: "n", Ready: framework.ConditionTrue, Speaker: alive}
	withAnnouncers := func(anns map[framework.AnnouncerKind]framework.AnnouncerHealth) func(n *framework.NodeInfo) {
		return func(n *framework.NodeInfo) {
			s := *alive
			s.Announcers = anns
			n.Speaker = &s
		}
	}
	arpRefused := map[framework.AnnouncerKind]framework.AnnouncerHealth{
		framework.AnnouncerKindL2v4: {State: framework.AnnouncerUnavailable, Reason: "announcer arp refused: checksum mismatch"},
		framework.AnnouncerKindL2v6: {State: framework.AnnouncerReady},
		framework.AnnouncerKindBGP:  {State: framework.AnnouncerWarming, Reason: "informers not synced"},
	}
	v4 := &framework.Unit{IP: netip.MustParseAddr("192.0.2.10"), Mode: framework.ModeL2}
	v6 := &framework.Unit{IP: netip.MustParseAddr("2001:db8::10"), Mode: framework.ModeL2}
	bgp := &framework.Unit{IP: netip.MustParseAddr("192.0.2.10"), Mode: framework.ModeBGP}

	tests := []struct {
		name       string
		args       *NodeReadyArgs
		unit       *framework.Unit
		mutate     func(n *framework.NodeInfo)
		wantReason string
		wantDetail string
	}{
		{name: "healthy node passes"},
		{name: "ready false", mutate: func(n *framework.NodeInfo) { n.Ready = framework.ConditionFalse }, wantReason: ReasonNotReady, wantDetail: "Ready=False"},
		{name: "ready unknown", mutate: func(n *framework.NodeInfo) { n.Ready = framework.ConditionUnknown }, wantReason: ReasonNotReady, wantDetail: "Ready=Unknown"},
		{name: "ready absent", mutate: func(n *framework.NodeInfo) { n.Ready = "" }, wantReason: ReasonNotReady, wantDetail: "Ready=absent"},
		{name: "network unavailable", mutate: func(n *framework.NodeInfo) { n.NetworkUnavailable = true }, wantReason: ReasonNetworkUnavailable},
		{name: "no heartbeat", mutate: func(n *framework.NodeInfo) { n.Speaker = nil }, wantReason: ReasonNoHeartbeat, wantDetail: "no speaker heartbeat"},
		{name: "stale heartbeat", mutate: func(n *framework.NodeInfo) { n.Speaker = stale }, wantReason: ReasonNoHeartbeat, wantDetail: "expired at 11:59:55"},
		{name: "heartbeat expiring exactly now is stale", mutate: func(n *framework.NodeInfo) {
			n.Speaker = &framework.SpeakerInfo{RenewTime: now.Add(-15 * time.Second), LeaseDuration: 15 * time.Second}
		}, wantReason: ReasonNoHeartbeat},
		{name: "unreachable on the fast path, heartbeat still valid", mutate: func(n *framework.NodeInfo) {
			n.Speaker = &framework.SpeakerInfo{RenewTime: now, LeaseDuration: 15 * time.Second,
				Unreachable: now.Add(-time.Second), UnreachableWhy: "dead on the fast path"}
		}, wantReason: ReasonUnreachable, wantDetail: "unreachable on the fast path since 11:59:59.000: dead on the fast path"},
		{name: "unreachable later than the snapshot: still a candidate", mutate: func(n *framework.NodeInfo) {
			n.Speaker = &framework.SpeakerInfo{RenewTime: now, LeaseDuration: 15 * time.Second, Unreachable: now.Add(time.Second)}
		}},
		{name: "held by the fast path: not for a unit it does not announce", mutate: func(n *framework.NodeInfo) {
			n.Speaker = &framework.SpeakerInfo{RenewTime: now, LeaseDuration: 15 * time.Second, Held: true}
		}, wantReason: ReasonHeld, wantDetail: "keeps what it announces and takes nothing new"},
		{name: "held by the fast path: a unit it announces", unit: &framework.Unit{IP: netip.MustParseAddr("192.0.2.10"), Mode: framework.ModeL2, AnnouncingNodes: []string{"n"}}, mutate: func(n *framework.NodeInfo) {
			n.Speaker = &framework.SpeakerInfo{RenewTime: now, LeaseDuration: 15 * time.Second, Held: true}
		}},
		{name: "draining", mutate: func(n *framework.NodeInfo) { n.Speaker = draining }, wantReason: ReasonDraining},
		{name: "cordoned excluded by default", mutate: func(n *framework.NodeInfo) { n.Unschedulable = true }, wantReason: ReasonCordoned},
		{name: "cordoned allowed by args", args: &NodeReadyArgs{ExcludeCordoned: boolPtr(false)}, mutate: func(n *framework.NodeInfo) { n.Unschedulable = true }},
		{name: "not ready and cordoned reports not ready first, detail lists both", mutate: func(n *framework.NodeInfo) {
			n.Ready = framework.ConditionFalse
			n.Unschedulable = true
			n.Speaker = nil
		}, wantReason: ReasonNotReady, wantDetail: "Ready=False; no speaker heartbeat seen; cordoned"},
		{name: "IPv4 L2 on a node whose ARP announcer is refused", unit: v4, mutate: withAnnouncers(arpRefused),
			wantReason: ReasonAnnouncer, wantDetail: "l2-v4 announcer unavailable: announcer arp refused: checksum mismatch"},
		{name: "IPv6 L2 on the same node: NDP is ready", unit: v6, mutate: withAnnouncers(arpRefused)},
		{name: "BGP on the same node: warming up", unit: bgp, mutate: withAnnouncers(arpRefused),
			wantReason: ReasonWarming, wantDetail: "bgp announcer warming up: informers not synced"},
		{name: "a kind the speaker does not report: no opinion", unit: v4, mutate: withAnnouncers(map[framework.AnnouncerKind]framework.AnnouncerHealth{})},
		{name: "draining comes before announcer health", unit: v4, mutate: func(n *framework.NodeInfo) {
			withAnnouncers(arpRefused)(n)
			n.Speaker.Draining = true
		}, wantReason: ReasonDraining},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := &NodeReadyArgs{}
			if tt.args != nil {
				args = tt.args
			}
			args.Default()
			p, err := New(args, nil)
			if err != nil {
				t.Fatal(err)
			}
			node := healthy
			if tt.mutate != nil {
				tt.mutate(&node)
			}
			state := framework.NewCycleState(framework.NewSnapshot(now, []*framework.NodeInfo{&node}))
			unit := tt.unit
			if unit == nil {
				unit = v4
			}
			st := p.(framework.FilterPlugin).Filter(context.Background(), state, unit, &node)
			if tt.wantReason == "" {
				if !st.IsSuccess() {
					t.Fatalf("got %v %q, want success", st.Code(), st.Message())
				}
				return
			}
			if st.Code() != framework.Unschedulable {
				t.Fatalf("code %v, want Unschedulable", st.Code())
			}
			if r := st.Reasons(); len(r) != 1 || r[0] != tt.wantReason {
				t.Fatalf("reasons %q, want [%q]", r, tt.wantReason)
			}
			if !strings.Contains(st.Detail(), tt.wantDetail) {
				t.Fatalf("detail %q does not contain %q", st.Detail(), tt.wantDetail)
			}
		})
	}
}

func TestNewRejectsForeignArgs(t *testing.T) {
	if _, err := New(&wrongArgs{}, nil); err == nil {
		t.Fatal("New accepted args of another type")
	}
}

type wrongArgs struct{ NodeReadyArgs }
