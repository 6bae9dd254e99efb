package frameworktest_test

import (
	"testing"

	"github.com/herald-lb/herald/framework"
	"github.com/herald-lb/herald/framework/frameworktest"
	"github.com/herald-lb/herald/plugins/advertisement"
	"github.com/herald-lb/herald/plugins/interfaces"
	"github.com/herald-lb/herald/plugins/localendpoints"
	"github.com/herald-lb/herald/plugins/nodeready"
	"github.com/herald-lb/herald/plugins/sticky"
)

// TestBuildersSayWhatPluginsRead runs in-tree plugins over built nodes and units: each
// builder method must produce what the plugin reading that field rejects or prefers.
func TestBuildersSayWhatPluginsRead(t *testing.T) {
	nodeReady := framework.Registration{Factory: nodeready.New, NewArgs: nodeready.NewArgs}
	ifaces := framework.Registration{Factory: interfaces.New, NewArgs: interfaces.NewArgs}
	adv := framework.Advertisement{Name: "l2"}
	l2 := frameworktest.L2Unit("192.0.2.10").Pool("default", map[string]string{"tier": "gold"}).Advertisement(adv)
	tests := []struct {
		name   string
		reg    framework.Registration
		node   *frameworktest.NodeBuilder
		unit   *frameworktest.UnitBuilder
		reason string // "" when the node must pass
	}{
		{"a new node is ready", nodeReady, frameworktest.Node("n"), l2, ""},
		{"Ready(False)", nodeReady, frameworktest.Node("n").Ready(framework.ConditionFalse), l2, nodeready.ReasonNotReady},
		{"Cordoned", nodeReady, frameworktest.Node("n").Cordoned(), l2, nodeready.ReasonCordoned},
		{"NoHeartbeat", nodeReady, frameworktest.Node("n").NoHeartbeat(), l2, nodeready.ReasonNoHeartbeat},
		{"Announcer unavailable for the unit's kind", nodeReady,
			frameworktest.Node("n").Announcer(framework.AnnouncerKindL2v4, framework.AnnouncerUnavailable, "crashed"), l2, nodeready.ReasonAnnouncer},
		{"Interface on the IP's subnet", ifaces, frameworktest.Node("n").Interface("eth0", "192.0.2.5/24"), l2, ""},
		{"Interface off the subnet", ifaces, frameworktest.Node("n").Interface("eth0", "198.51.100.5/24"), l2, interfaces.ReasonNotOnSubnet},
		{"a Local Service's endpoint on the node", framework.Registration{Factory: localendpoints.New}, frameworktest.Node("n"),
			frameworktest.L2Unit("192.0.2.10").Service("web", "a", true, map[string]int{"n": 1}).Service("web", "b", false, map[string]int{"m": 1}), ""},
		{"a Local Service's endpoint elsewhere", framework.Registration{Factory: localendpoints.New}, frameworktest.Node("n"),
			frameworktest.L2Unit("192.0.2.10").Service("web", "a", true, map[string]int{"m": 1}), localendpoints.ReasonNoLocalEndpoint},
		{"a BGP unit's advertisement takes its mode", framework.Registration{Factory: advertisement.New}, frameworktest.Node("n"),
			frameworktest.BGPUnit("192.0.2.10").Advertisement(adv), ""},
		{"a unit without advertisements is rejected for every node", framework.Registration{Factory: advertisement.New}, frameworktest.Node("n"),
			frameworktest.BGPUnit("192.0.2.10"), advertisement.ReasonNoBGPAdvertisement},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := frameworktest.Run(t, tt.reg, nil, frameworktest.Snapshot(tt.node.Obj()), tt.unit.Obj())
			rej := out.Rejection("n")
			switch {
			case tt.reason == "" && rej != nil:
				t.Errorf("rejected: %+v", rej)
			case tt.reason != "" && (rej == nil || rej.Reasons[0] != tt.reason):
				t.Errorf("rejection %+v, want %q", rej, tt.reason)
			}
		})
	}

	stick := framework.Registration{Factory: sticky.New}
	out := frameworktest.Run(t, stick, nil, frameworktest.Snapshot(frameworktest.Node("a").Obj(), frameworktest.Node("b").Obj()),
		frameworktest.L2Unit("192.0.2.10").AnnouncedBy("b").Obj())
	if out.Score("a") != 0 || out.Score("b") != 100 {
		t.Errorf("AnnouncedBy(b): Sticky scores a=%d b=%d", out.Score("a"), out.Score("b"))
	}
}
