package plugins_test

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/herald-lb/herald/framework"
	"github.com/herald-lb/herald/plugins"
)

// The stability figures: how many IPs change announcer when a node joins or leaves, with the
// default profile over a healthy cluster (every filter passes, so only the scores decide).

var benchTime = time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)

func healthyNode(i int) *framework.NodeInfo {
	return &framework.NodeInfo{
		Name:   fmt.Sprintf("node-%03d", i),
		Labels: map[string]string{"kubernetes.io/hostname": fmt.Sprintf("node-%03d", i)},
		Ready:  framework.ConditionTrue,
		Speaker: &framework.SpeakerInfo{
			RenewTime:     benchTime,
			LeaseDuration: time.Minute,
			Interfaces: []framework.Interface{{
				Name: "eth0", Up: true,
				Prefixes: []netip.Prefix{netip.MustParsePrefix("2001:db8::/64"), netip.MustParsePrefix("192.0.2.0/24")},
			}},
		},
	}
}

func testUnits(n int) []*framework.Unit {
	advs := []*framework.Advertisement{{Name: "l2", Mode: framework.ModeL2}}
	units := make([]*framework.Unit, n)
	base := netip.MustParseAddr("2001:db8::1000")
	ip := base
	for i := range units {
		units[i] = &framework.Unit{
			IP: ip, Mode: framework.ModeL2, Pool: "pool",
			Services: []*framework.ServiceInfo{{
				Key:              framework.ServiceKey{Namespace: "ns", Name: fmt.Sprintf("svc-%d", i)},
				ServingEndpoints: map[string]int{"node-000": 1},
			}},
			Advertisements: advs,
		}
		ip = ip.Next()
	}
	return units
}

// assign runs the cycle for every unit and returns each unit's announcer; it records the
// result in unit.AnnouncingNodes, as the status objects would.
func assign(tb testing.TB, fw *framework.Framework, nodes []*framework.NodeInfo, units []*framework.Unit) []string {
	tb.Helper()
	snap := framework.NewSnapshot(benchTime, nodes)
	out := make([]string, len(units))
	for i, u := range units {
		res := fw.Schedule(context.Background(), snap, u)
		if res.Err != nil || len(res.Selected) != 1 {
			tb.Fatalf("unit %s: selected %v, err %v", u.Key(), res.Selected, res.Err)
		}
		out[i] = res.Selected[0]
		res.Release()
		u.AnnouncingNodes = []string{out[i]}
	}
	return out
}

type stability struct {
	// joinMoved is the share of IPs that changed announcer when a node joined.
	joinMoved float64
	// joinTaken is how many IPs the new node took, and fair its share (ips/(n+1)).
	joinTaken int
	fair      float64
	// leaveMoved is the share of IPs that moved when a node left; leaveOthers counts the moved
	// IPs that were not on the leaving node (must be 0).
	leaveMoved  float64
	leaveOthers int
	// maxLoad and minLoad are the most and fewest IPs on a node at the start.
	maxLoad, minLoad int
}

func measure(tb testing.TB, spec framework.ProfileSpec, nodeCount, ipCount int) stability {
	fw, err := framework.NewFramework(plugins.NewInTreeRegistry(), spec, nil)
	if err != nil {
		tb.Fatal(err)
	}
	nodes := make([]*framework.NodeInfo, nodeCount)
	for i := range nodes {
		nodes[i] = healthyNode(i)
	}
	units := testUnits(ipCount)
	before := assign(tb, fw, nodes, units)
	var s stability
	load := map[string]int{}
	for _, n := range before {
		load[n]++
	}
	s.minLoad = ipCount
	for _, n := range nodes {
		s.maxLoad = max(s.maxLoad, load[n.Name])
		s.minLoad = min(s.minLoad, load[n.Name])
	}
	// Settled: running again with the announcers recorded changes nothing.
	if again := assign(tb, fw, nodes, units); fmt.Sprint(again) != fmt.Sprint(before) {
		tb.Fatal("a second pass over an unchanged cluster moved IPs")
	}

	joined := append(append([]*framework.NodeInfo(nil), nodes...), healthyNode(nodeCount))
	after := assign(tb, fw, joined, units)
	moved := 0
	for i := range units {
		if after[i] != before[i] {
			moved++
			if after[i] == joined[nodeCount].Name {
				s.joinTaken++
			}
		}
	}
	s.joinMoved = float64(moved) / float64(ipCount)
	s.fair = float64(ipCount) / float64(nodeCount+1)

	// Back to the original cluster state, then one node leaves.
	for i, u := range units {
		u.AnnouncingNodes = []string{before[i]}
	}
	gone := nodes[nodeCount/2].Name
	left := append(append([]*framework.NodeInfo(nil), nodes[:nodeCount/2]...), nodes[nodeCount/2+1:]...)
	after = assign(tb, fw, left, units)
	moved = 0
	for i := range units {
		if after[i] != before[i] {
			moved++
			if before[i] != gone {
				s.leaveOthers++
			}
		}
	}
	s.leaveMoved = float64(moved) / float64(ipCount)
	return s
}

func TestDefaultProfileStability(t *testing.T) {
	const nodes, ips = 50, 3000
	s := measure(t, plugins.DefaultProfile(), nodes, ips)
	t.Logf("join: %.2f%% moved, new node took %d (fair %.0f); leave: %.2f%% moved, %d not from the leaving node; load %d..%d",
		100*s.joinMoved, s.joinTaken, s.fair, 100*s.leaveMoved, s.leaveOthers, s.minLoad, s.maxLoad)
	if s.joinMoved > 0.02+1.0/float64(nodes+1) {
		t.Errorf("a joining node moved %.2f%% of the IPs", 100*s.joinMoved)
	}
	if moved := int(s.joinMoved*ips + 0.5); moved != s.joinTaken {
		t.Errorf("a join moved %d IPs but the new node took %d: IPs moved between old nodes", moved, s.joinTaken)
	}
	if s.leaveOthers != 0 {
		t.Errorf("a leaving node moved %d IPs of other nodes", s.leaveOthers)
	}
	if s.leaveMoved == 0 {
		t.Error("a leaving node moved nothing: its IPs were not reassigned")
	}
	if mean := ips / nodes; s.maxLoad > 2*mean || s.minLoad < mean/3 {
		t.Errorf("uneven spread: %d..%d IPs per node, mean %d", s.minLoad, s.maxLoad, mean)
	}
}

// BenchmarkStability reports the stability figures for 100 nodes carrying 10,000 IPs:
// join-moved-% (the share of IPs that changed announcer when a node joined; ideal 1/101 =
// 0.99% without Sticky), join-share-% (what the new node took, against its fair 1/101),
// leave-moved-% and leave-others (IPs moved that were not on the leaving node; must be 0).
// "default" is the default profile; "spread-only" drops Sticky to show what it saves.
func BenchmarkStability(b *testing.B) {
	spreadOnly := plugins.DefaultProfile()
	spreadOnly.Score = slices.DeleteFunc(spreadOnly.Score, func(w framework.WeightedPlugin) bool { return w.Name == "Sticky" })
	for _, bc := range []struct {
		name string
		spec framework.ProfileSpec
	}{{"default", plugins.DefaultProfile()}, {"spread-only", spreadOnly}} {
		b.Run(bc.name, func(b *testing.B) {
			var s stability
			for b.Loop() {
				s = measure(b, bc.spec, 100, 10000)
			}
			b.ReportMetric(100*s.joinMoved, "join-moved-%")
			b.ReportMetric(100*float64(s.joinTaken)/s.fair, "join-share-%")
			b.ReportMetric(100*s.leaveMoved, "leave-moved-%")
			b.ReportMetric(float64(s.leaveOthers), "leave-others")
			b.ReportMetric(float64(s.minLoad), "min-load")
			b.ReportMetric(float64(s.maxLoad), "max-load")
		})
	}
}
