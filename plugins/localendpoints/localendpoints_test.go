package localendpoints

import (
	"context"
	"testing"
	"time"

	"github.com/herald-lb/herald/framework"
)

func svc(name string, local bool, eps map[string]int) *framework.ServiceInfo {
	return &framework.ServiceInfo{Key: framework.ServiceKey{Namespace: "ns", Name: name}, TrafficPolicyLocal: local, ServingEndpoints: eps}
}

func TestLocalEndpoints(t *testing.T) {
	nodes := []string{"n1", "n2", "n3"}
	tests := []struct {
		name     string
		services []*framework.ServiceInfo
		// wantPre is the PreFilter's code; for Success, wantFeasible and wantScores apply.
		wantPre      framework.Code
		wantReason   string
		wantFeasible []string
		wantScores   map[string]int64
	}{
		{name: "cluster policy with endpoints is skipped", services: []*framework.ServiceInfo{svc("a", false, map[string]int{"n1": 1})}, wantPre: framework.Skip},
		{name: "cluster policy without endpoints rejects the unit", services: []*framework.ServiceInfo{svc("a", false, nil)}, wantPre: framework.Unschedulable, wantReason: ReasonNoServingEndpoint},
		{name: "local policy without endpoints rejects the unit", services: []*framework.ServiceInfo{svc("a", true, map[string]int{"n1": 0})}, wantPre: framework.Unschedulable, wantReason: ReasonNoServingEndpoint},
		{name: "local policy keeps only endpoint nodes, scored by count",
			services:     []*framework.ServiceInfo{svc("a", true, map[string]int{"n1": 1, "n3": 3})},
			wantFeasible: []string{"n1", "n3"}, wantScores: map[string]int64{"n1": 33, "n3": 100}},
		{name: "shared IP: every Local Service needs a local endpoint",
			services: []*framework.ServiceInfo{
				svc("tcp", true, map[string]int{"n1": 1, "n2": 1}),
				svc("udp", true, map[string]int{"n2": 2, "n3": 1}),
			},
			wantFeasible: []string{"n2"}, wantScores: map[string]int64{"n2": 100}},
		{name: "shared IP: a Cluster Service does not restrict",
			services: []*framework.ServiceInfo{
				svc("local", true, map[string]int{"n2": 1}),
				svc("cluster", false, map[string]int{"n1": 5, "n3": 5}),
			},
			wantFeasible: []string{"n2"}, wantScores: map[string]int64{"n2": 100}},
		{name: "shared IP: a Local Service without endpoints does not block the others",
			services: []*framework.ServiceInfo{
				svc("empty", true, nil),
				svc("cluster", false, map[string]int{"n1": 5}),
			},
			wantPre: framework.Skip},
		{name: "endpoints without a node count as existing but are local nowhere",
			services:     []*framework.ServiceInfo{svc("a", true, map[string]int{"": 2})},
			wantFeasible: []string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var infos []*framework.NodeInfo
			for _, n := range nodes {
				infos = append(infos, &framework.NodeInfo{Name: n})
			}
			snap := framework.NewSnapshot(time.Now(), infos)
			state := framework.NewCycleState(snap)
			unit := &framework.Unit{Mode: framework.ModeL2, Services: tt.services}
			p := &Plugin{}
			ctx := context.Background()
			st := p.PreFilter(ctx, state, unit)
			if st.Code() != tt.wantPre {
				t.Fatalf("PreFilter = %v %q, want %v", st.Code(), st.Message(), tt.wantPre)
			}
			if tt.wantReason != "" && (len(st.Reasons()) != 1 || st.Reasons()[0] != tt.wantReason) {
				t.Fatalf("PreFilter reasons %q, want [%q]", st.Reasons(), tt.wantReason)
			}
			if tt.wantPre != framework.Success {
				return
			}
			feasible := []string{}
			var scores framework.NodeScoreList
			for _, n := range snap.Nodes() {
				fst := p.Filter(ctx, state, unit, n)
				if !fst.IsSuccess() {
					if fst.Reasons()[0] != ReasonNoLocalEndpoint {
						t.Fatalf("node %s rejected with %q", n.Name, fst.Reasons())
					}
					continue
				}
				feasible = append(feasible, n.Name)
				s, sst := p.Score(ctx, state, unit, n)
				if !sst.IsSuccess() {
					t.Fatal(sst.Message())
				}
				scores = append(scores, framework.NodeScore{Name: n.Name, Score: s})
			}
			if len(feasible) != len(tt.wantFeasible) {
				t.Fatalf("feasible %v, want %v", feasible, tt.wantFeasible)
			}
			for i := range feasible {
				if feasible[i] != tt.wantFeasible[i] {
					t.Fatalf("feasible %v, want %v", feasible, tt.wantFeasible)
				}
			}
			if st := p.NormalizeScore(ctx, state, unit, scores); !st.IsSuccess() {
				t.Fatal(st.Message())
			}
			for _, s := range scores {
				if s.Score != tt.wantScores[s.Name] {
					t.Fatalf("score of %s = %d, want %d", s.Name, s.Score, tt.wantScores[s.Name])
				}
			}
		})
	}
}
