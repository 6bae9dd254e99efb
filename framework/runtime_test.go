package framework_test

import (
	"k8s.io/apimachinery/pkg/util/validation/field"

	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"reflect"
	"strings"
	"testing"

	"github.com/go-logr/logr/funcr"

	"github.com/herald-lb/herald/framework"
	"github.com/herald-lb/herald/framework/frameworktest"
)

func newFramework(t testing.TB, spec framework.ProfileSpec, plugins ...framework.Plugin) *framework.Framework {
	t.Helper()
	f, err := framework.NewFramework(frameworktest.Registry(plugins...), spec, nil)
	if err != nil {
		t.Fatalf("NewFramework: %v", err)
	}
	return f
}

func TestCycleFilterAndSelect(t *testing.T) {
	notReady := &frameworktest.Filter{PluginName: "Ready", Fn: frameworktest.RejectNodes(framework.Unschedulable, "node(s) not ready", "node-00", "node-01", "node-02", "node-03")}
	noEndpoint := &frameworktest.Filter{PluginName: "Endpoints", Fn: frameworktest.RejectNodes(framework.UnschedulableAndUnresolvable, "node(s) have no local endpoint", "node-03", "node-04", "node-05", "node-06", "node-07", "node-08", "node-09", "node-10", "node-11", "node-12")}
	label := &frameworktest.Score{PluginName: "Label", Fn: func(n *framework.NodeInfo) (int64, *framework.Status) {
		return map[string]int64{"node-04": 10, "node-05": 50}[n.Name], nil
	}}
	tests := []struct {
		name         string
		nodes        int
		mode         framework.Mode
		filters      []string
		wantSelected []string
		wantFeasible int
		wantSummary  string
	}{
		{
			name: "no node qualifies", nodes: 13, mode: framework.ModeL2, filters: []string{"Ready", "Endpoints"},
			wantSelected: []string{},
			wantSummary:  "0/13 nodes can announce 192.0.2.10: 9 node(s) have no local endpoint, 4 node(s) not ready",
		},
		{
			name: "L2 picks the best score", nodes: 13, mode: framework.ModeL2, filters: []string{"Ready"},
			wantSelected: []string{"node-05"}, wantFeasible: 9,
			wantSummary: "9/13 nodes can announce 192.0.2.10: 4 node(s) not ready; selected node-05",
		},
		{
			name: "BGP picks every feasible node", nodes: 6, mode: framework.ModeBGP, filters: []string{"Ready"},
			wantSelected: []string{"node-04", "node-05"}, wantFeasible: 2,
			wantSummary: "2/6 nodes can announce 192.0.2.10: 4 node(s) not ready; selected node-04, node-05",
		},
		{
			name: "no filters", nodes: 3, mode: framework.ModeBGP,
			wantSelected: []string{"node-00", "node-01", "node-02"}, wantFeasible: 3,
			wantSummary: "3/3 nodes can announce 192.0.2.10; selected node-00, node-01, node-02",
		},
		{
			name: "empty cluster", nodes: 0, mode: framework.ModeL2, filters: []string{"Ready"},
			wantSelected: []string{},
			wantSummary:  "0/0 nodes can announce 192.0.2.10",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			spec := framework.ProfileSpec{Name: "p", Filter: tc.filters, Score: []framework.WeightedPlugin{{Name: "Label", Weight: 1}}}
			f := newFramework(t, spec, notReady, noEndpoint, label)
			res := f.Schedule(context.Background(), framework.NewSnapshot(testTime, nodes(tc.nodes)), unit("192.0.2.10", tc.mode))
			if res.Err != nil {
				t.Fatalf("Err = %v", res.Err)
			}
			d := res.Diagnosis()
			if !reflect.DeepEqual(d.Selected, tc.wantSelected) {
				t.Errorf("Diagnosis.Selected = %v, want %v", d.Selected, tc.wantSelected)
			}
			if len(res.Selected) != len(tc.wantSelected) || (len(res.Selected) > 0 && !reflect.DeepEqual(res.Selected, tc.wantSelected)) {
				t.Errorf("Selected = %v, want %v", res.Selected, tc.wantSelected)
			}
			if d.FeasibleCount != tc.wantFeasible {
				t.Errorf("FeasibleCount = %d, want %d", d.FeasibleCount, tc.wantFeasible)
			}
			if d.Summary != tc.wantSummary {
				t.Errorf("Summary =\n  %q\nwant\n  %q", d.Summary, tc.wantSummary)
			}
		})
	}
}

func TestDiagnosisDetails(t *testing.T) {
	notReady := &frameworktest.Filter{PluginName: "Ready", Fn: frameworktest.RejectNodes(framework.Unschedulable, "node(s) not ready", "node-00")}
	second := &frameworktest.Filter{PluginName: "Second", Fn: frameworktest.RejectNodes(framework.UnschedulableAndUnresolvable, "node(s) excluded", "node-00", "node-01")}
	a := &frameworktest.Score{PluginName: "A", Fn: frameworktest.ScoreByName(map[string]int64{"node-02": 20, "node-03": 40}),
		Normalize: func(s framework.NodeScoreList) *framework.Status {
			for i := range s {
				s[i].Score = s[i].Score * 100 / 40
			}
			return nil
		}}
	spec := framework.ProfileSpec{Name: "p", Filter: []string{"Ready", "Second"}, Score: []framework.WeightedPlugin{{Name: "A", Weight: 3}}}
	f := newFramework(t, spec, notReady, second, a)
	d := f.Schedule(context.Background(), framework.NewSnapshot(testTime, nodes(4)), unit("192.0.2.10", framework.ModeL2)).Diagnosis()

	want := []framework.NodeDiagnosis{
		{Name: "node-00", Rejection: &framework.Verdict{Plugin: "Ready", Code: "Unschedulable", Reasons: []string{"node(s) not ready"}, Detail: "detail for node-00"}},
		{Name: "node-01", Rejection: &framework.Verdict{Plugin: "Second", Code: "UnschedulableAndUnresolvable", Reasons: []string{"node(s) excluded"}, Detail: "detail for node-01"}},
		{Name: "node-02", Feasible: true, Scores: []framework.PluginScore{{Plugin: "A", Raw: 20, Normalized: 50, Weight: 3, Weighted: 150}}, Total: 150},
		{Name: "node-03", Feasible: true, Scores: []framework.PluginScore{{Plugin: "A", Raw: 40, Normalized: 100, Weight: 3, Weighted: 300}}, Total: 300, Selected: true},
	}
	if !reflect.DeepEqual(d.Nodes, want) {
		got, _ := json.MarshalIndent(d.Nodes, "", " ")
		t.Errorf("Nodes =\n%s", got)
	}
	if second.Calls() != 3 {
		t.Errorf("Second filter ran %d times, want 3 (not after Ready rejected node-00)", second.Calls())
	}
	if d.Summary != "2/4 nodes can announce 192.0.2.10: 1 node(s) excluded, 1 node(s) not ready; selected node-03" {
		t.Errorf("Summary = %q", d.Summary)
	}

	// The JSON form uses the documented field names.
	raw, err := json.Marshal(d)
	if err != nil {
		t.Fatal(err)
	}
	var generic map[string]any
	if err := json.Unmarshal(raw, &generic); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"profile", "unit", "ip", "mode", "nodeCount", "feasibleCount", "nodes", "selected", "summary"} {
		if _, ok := generic[k]; !ok {
			t.Errorf("JSON lacks %q: %s", k, raw)
		}
	}
	node3 := generic["nodes"].([]any)[3].(map[string]any)
	score := node3["scores"].([]any)[0].(map[string]any)
	for _, k := range []string{"plugin", "raw", "normalized", "weight", "weighted"} {
		if _, ok := score[k]; !ok {
			t.Errorf("score JSON lacks %q: %v", k, score)
		}
	}
	var back framework.Diagnosis
	if err := json.Unmarshal(raw, &back); err != nil || !reflect.DeepEqual(&back, d) {
		t.Errorf("Diagnosis does not survive a JSON round trip (err %v)", err)
	}
}

func TestWeightsChangeTheWinner(t *testing.T) {
	// A prefers node-00, B prefers node-01: the heavier weight wins.
	a := &frameworktest.Score{PluginName: "A", Fn: frameworktest.ScoreByName(map[string]int64{"node-00": 100, "node-01": 0})}
	b := &frameworktest.Score{PluginName: "B", Fn: frameworktest.ScoreByName(map[string]int64{"node-00": 0, "node-01": 60})}
	tests := []struct {
		wa, wb int64
		want   string
	}{
		{1, 1, "node-00"},  // 100 vs 60
		{1, 2, "node-01"},  // 100 vs 120
		{5, 10, "node-01"}, // 500 vs 600
		{10, 5, "node-00"},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprintf("%d-%d", tc.wa, tc.wb), func(t *testing.T) {
			spec := framework.ProfileSpec{Name: "p", Score: []framework.WeightedPlugin{{Name: "A", Weight: tc.wa}, {Name: "B", Weight: tc.wb}}}
			res := newFramework(t, spec, a, b).Schedule(context.Background(), framework.NewSnapshot(testTime, nodes(2)), unit("192.0.2.10", framework.ModeL2))
			if res.Err != nil || len(res.Selected) != 1 || res.Selected[0] != tc.want {
				t.Fatalf("Selected = %v (err %v), want %s", res.Selected, res.Err, tc.want)
			}
		})
	}
}

// referenceHash is the documented tie-break hash, computed with the standard library's FNV
// and MurmurHash3's published finalizer constants.
func referenceHash(node, ip string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(node + "/" + ip))
	x := h.Sum64()
	x ^= x >> 33
	x *= 0xff51afd7ed558ccd
	x ^= x >> 33
	x *= 0xc4ceb9fe1a85ec53
	x ^= x >> 33
	return x
}

func TestTiesBreakOnTheHash(t *testing.T) {
	flat := &frameworktest.Score{PluginName: "Flat", Fn: constScore(50)}
	spec := framework.ProfileSpec{Name: "p", Score: []framework.WeightedPlugin{{Name: "Flat", Weight: 1}}}
	f := newFramework(t, spec, flat)
	ns := nodes(5)
	winners := map[string]int{}
	for i := 1; i <= 60; i++ {
		ip := fmt.Sprintf("192.0.2.%d", i)
		want, best := "", uint64(0)
		for _, n := range ns {
			if framework.TieBreakHash(n.Name, ip) != referenceHash(n.Name, ip) {
				t.Fatalf("TieBreakHash(%s, %s) differs from the reference", n.Name, ip)
			}
			if h := referenceHash(n.Name, ip); want == "" || h > best {
				want, best = n.Name, h
			}
		}
		for run := 0; run < 2; run++ {
			// Reversed input order: the snapshot sorts, the answer must not move.
			rev := append([]*framework.NodeInfo(nil), ns...)
			if run == 1 {
				for a, b := 0, len(rev)-1; a < b; a, b = a+1, b-1 {
					rev[a], rev[b] = rev[b], rev[a]
				}
			}
			res := f.Schedule(context.Background(), framework.NewSnapshot(testTime, rev), unit(ip, framework.ModeL2))
			if len(res.Selected) != 1 || res.Selected[0] != want {
				t.Fatalf("%s run %d: Selected = %v, want %s", ip, run, res.Selected, want)
			}
			if n := res.Diagnosis().TiedNodes; n != len(ns) {
				t.Fatalf("%s: TiedNodes = %d, want %d", ip, n, len(ns))
			}
		}
		winners[want]++
	}
	if len(winners) < 4 {
		t.Errorf("60 tied IPs landed on only %d of 5 nodes: %v", len(winners), winners)
	}
	// A higher score beats any hash.
	boost := &frameworktest.Score{PluginName: "Boost", Fn: frameworktest.ScoreByName(map[string]int64{"node-02": 1})}
	spec.Score = append(spec.Score, framework.WeightedPlugin{Name: "Boost", Weight: 1})
	res := newFramework(t, spec, flat, boost).Schedule(context.Background(), framework.NewSnapshot(testTime, ns), unit("192.0.2.1", framework.ModeL2))
	if len(res.Selected) != 1 || res.Selected[0] != "node-02" || res.Diagnosis().TiedNodes != 0 {
		t.Errorf("Selected = %v (TiedNodes %d), want node-02 without a tie", res.Selected, res.Diagnosis().TiedNodes)
	}
}

func TestPreFilter(t *testing.T) {
	skipper := &skippingPlugin{filter: frameworktest.Filter{PluginName: "Skipper", Fn: frameworktest.RejectNodes(framework.Unschedulable, "node(s) skipped badly", "node-00", "node-01")}}
	t.Run("Skip skips the plugin's Filter and Score", func(t *testing.T) {
		spec := framework.ProfileSpec{Name: "p", PreFilter: []string{"Skipper"}, Filter: []string{"Skipper"}, Score: []framework.WeightedPlugin{{Name: "Skipper", Weight: 1}}}
		res := newFramework(t, spec, skipper).Schedule(context.Background(), framework.NewSnapshot(testTime, nodes(2)), unit("192.0.2.10", framework.ModeBGP))
		if res.Err != nil || len(res.Selected) != 2 {
			t.Fatalf("Selected = %v, Err = %v; want both nodes", res.Selected, res.Err)
		}
		if c := skipper.filter.Calls() + skipper.scoreCalls.Load(); c != 0 {
			t.Errorf("skipped plugin was called %d times", c)
		}
		d := res.Diagnosis()
		if len(d.PreFilter) != 1 || d.PreFilter[0].Code != "Skip" || d.PreFilter[0].Plugin != "Skipper" {
			t.Errorf("PreFilter verdicts = %+v", d.PreFilter)
		}
		if len(d.Nodes[0].Scores) != 0 {
			t.Errorf("skipped score plugin in the diagnosis: %+v", d.Nodes[0].Scores)
		}
	})
	t.Run("rejection rejects every node", func(t *testing.T) {
		noEP := &frameworktest.PreFilter{PluginName: "NoEP", Fn: func(*framework.Unit) *framework.Status {
			return framework.NewStatus(framework.Unschedulable, "node(s) have no serving endpoint anywhere")
		}}
		filter := &frameworktest.Filter{PluginName: "F", Fn: frameworktest.RejectNodes(framework.Unschedulable, "x")}
		spec := framework.ProfileSpec{Name: "p", PreFilter: []string{"NoEP"}, Filter: []string{"F"}}
		res := newFramework(t, spec, noEP, filter).Schedule(context.Background(), framework.NewSnapshot(testTime, nodes(3)), unit("192.0.2.10", framework.ModeL2))
		if res.Err != nil || len(res.Selected) != 0 || filter.Calls() != 0 {
			t.Fatalf("Selected %v Err %v filter calls %d", res.Selected, res.Err, filter.Calls())
		}
		if got, want := res.Diagnosis().Summary, "0/3 nodes can announce 192.0.2.10: 3 node(s) have no serving endpoint anywhere"; got != want {
			t.Errorf("Summary = %q, want %q", got, want)
		}
	})
}

func TestCycleAborts(t *testing.T) {
	boom := errors.New("boom")
	okFilter := &frameworktest.Filter{PluginName: "OK", Fn: frameworktest.RejectNodes(framework.Unschedulable, "x")}
	tests := []struct {
		name    string
		plugin  framework.Plugin
		spec    framework.ProfileSpec
		wantErr string
	}{
		{
			name:    "PreFilter error",
			plugin:  &frameworktest.PreFilter{PluginName: "P", Fn: func(*framework.Unit) *framework.Status { return framework.AsStatus(boom) }},
			spec:    framework.ProfileSpec{PreFilter: []string{"P"}},
			wantErr: `unit 192.0.2.10/L2: plugin "P" at PreFilter: boom`,
		},
		{
			name:    "Filter error on one node",
			plugin:  &frameworktest.Filter{PluginName: "P", Fn: frameworktest.RejectNodes(framework.Error, "disk on fire", "node-02", "node-03")},
			spec:    framework.ProfileSpec{Filter: []string{"OK", "P"}},
			wantErr: `unit 192.0.2.10/L2: plugin "P" at Filter for node "node-02": disk on fire: detail for node-02`,
		},
		{
			name:    "Filter returning Skip",
			plugin:  &frameworktest.Filter{PluginName: "P", Fn: frameworktest.RejectNodes(framework.Skip, "huh", "node-01")},
			spec:    framework.ProfileSpec{Filter: []string{"P"}},
			wantErr: `plugin "P" at Filter for node "node-01": status Skip is not allowed here`,
		},
		{
			name:    "Filter panic",
			plugin:  &frameworktest.Filter{PluginName: "P", Fn: func(n *framework.NodeInfo) *framework.Status { panic("nil map in " + n.Name) }},
			spec:    framework.ProfileSpec{Filter: []string{"P"}},
			wantErr: `plugin "P" at Filter for node "node-00": panic in plugin "P" at Filter: nil map in node-00`,
		},
		{
			name:    "Score error",
			plugin:  &frameworktest.Score{PluginName: "P", Fn: func(*framework.NodeInfo) (int64, *framework.Status) { return 0, framework.AsStatus(boom) }},
			spec:    framework.ProfileSpec{Score: []framework.WeightedPlugin{{Name: "P", Weight: 1}}},
			wantErr: `plugin "P" at Score for node "node-00": boom`,
		},
		{
			name:    "Score panic",
			plugin:  &frameworktest.Score{PluginName: "P", Fn: func(*framework.NodeInfo) (int64, *framework.Status) { panic("index out of range") }},
			spec:    framework.ProfileSpec{Score: []framework.WeightedPlugin{{Name: "P", Weight: 1}}},
			wantErr: `panic in plugin "P" at Score: index out of range`,
		},
		{
			name:    "raw score above 100 without NormalizeScore",
			plugin:  &frameworktest.Score{PluginName: "P", Fn: frameworktest.ScoreByName(map[string]int64{"node-03": 101})},
			spec:    framework.ProfileSpec{Score: []framework.WeightedPlugin{{Name: "P", Weight: 1}}},
			wantErr: `plugin "P": score 101 for node "node-03" is outside 0..100`,
		},
		{
			name: "NormalizeScore leaving a negative score",
			plugin: &frameworktest.Score{PluginName: "P", Fn: constScore(5), Normalize: func(s framework.NodeScoreList) *framework.Status {
				s[1].Score = -1
				return nil
			}},
			spec:    framework.ProfileSpec{Score: []framework.WeightedPlugin{{Name: "P", Weight: 1}}},
			wantErr: `plugin "P": score -1 for node "node-01" is outside 0..100`,
		},
		{
			name: "NormalizeScore panic",
			plugin: &frameworktest.Score{PluginName: "P", Fn: constScore(5), Normalize: func(framework.NodeScoreList) *framework.Status {
				panic("oops")
			}},
			spec:    framework.ProfileSpec{Score: []framework.WeightedPlugin{{Name: "P", Weight: 1}}},
			wantErr: `plugin "P" at NormalizeScore: panic in plugin "P" at NormalizeScore: oops`,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFramework(t, tc.spec, tc.plugin, okFilter)
			res := f.Schedule(context.Background(), framework.NewSnapshot(testTime, nodes(4)), unit("192.0.2.10", framework.ModeL2))
			if res.Err == nil || !strings.Contains(res.Err.Error(), tc.wantErr) {
				t.Fatalf("Err = %v, want it to contain %q", res.Err, tc.wantErr)
			}
			if len(res.Selected) != 0 {
				t.Errorf("aborted cycle selected %v", res.Selected)
			}
			d := res.Diagnosis()
			if d.Error == "" || len(d.Selected) != 0 || !strings.HasPrefix(d.Summary, "cannot schedule 192.0.2.10: ") {
				t.Errorf("Diagnosis: Error %q Selected %v Summary %q", d.Error, d.Selected, d.Summary)
			}
		})
	}
}

func TestCancelledContextAborts(t *testing.T) {
	f := newFramework(t, framework.ProfileSpec{Filter: []string{"F"}}, &frameworktest.Filter{PluginName: "F", Fn: frameworktest.RejectNodes(framework.Unschedulable, "x")})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	res := f.Schedule(ctx, framework.NewSnapshot(testTime, nodes(3)), unit("192.0.2.10", framework.ModeL2))
	if !errors.Is(res.Err, context.Canceled) || len(res.Selected) != 0 {
		t.Fatalf("Err = %v Selected = %v, want context.Canceled and nothing", res.Err, res.Selected)
	}
}

func TestBind(t *testing.T) {
	skip := &frameworktest.Bind{PluginName: "Skip", Fn: func([]string) *framework.Status { return framework.NewStatus(framework.Skip) }}
	announce := &frameworktest.Bind{PluginName: "Announce", Fn: func([]string) *framework.Status { return nil }}
	failing := &frameworktest.Bind{PluginName: "Failing", Fn: func([]string) *framework.Status { return framework.AsStatus(errors.New("announcer down")) }}
	panicking := &frameworktest.Bind{PluginName: "Panicking", Fn: func([]string) *framework.Status { panic("bad") }}
	flat := &frameworktest.Score{PluginName: "Flat", Fn: constScore(1)}
	tests := []struct {
		name       string
		binds      []string
		wantPlugin string
		wantCode   framework.Code
		wantErr    string
	}{
		{"first non-Skip handles it", []string{"Skip", "Announce", "Failing"}, "Announce", framework.Success, ""},
		{"bind error fails the cycle", []string{"Failing", "Announce"}, "Failing", framework.Error, "announcer down"},
		{"bind panic fails the cycle", []string{"Panicking"}, "Panicking", framework.Error, `panic in plugin "Panicking" at Bind: bad`},
		{"nobody binds", []string{"Skip"}, "", framework.Skip, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := len(announce.Calls())
			spec := framework.ProfileSpec{Score: []framework.WeightedPlugin{{Name: "Flat", Weight: 1}}, Bind: tc.binds}
			f := newFramework(t, spec, skip, announce, failing, panicking, flat)
			res := f.RunCycle(context.Background(), framework.NewSnapshot(testTime, nodes(3)), unit("192.0.2.10", framework.ModeBGP))
			if res.BindStatus.Code() != tc.wantCode || res.BindStatus.Plugin() != tc.wantPlugin {
				t.Fatalf("BindStatus = %v from %q, want %v from %q", res.BindStatus.Code(), res.BindStatus.Plugin(), tc.wantCode, tc.wantPlugin)
			}
			if tc.wantErr == "" && res.Err != nil || tc.wantErr != "" && (res.Err == nil || !strings.Contains(res.Err.Error(), tc.wantErr)) {
				t.Fatalf("Err = %v, want %q", res.Err, tc.wantErr)
			}
			if calls := announce.Calls()[before:]; tc.wantPlugin == "Announce" && (len(calls) != 1 || !reflect.DeepEqual(calls[0], []string{"node-00", "node-01", "node-02"})) {
				t.Errorf("Announce got selections %v", calls)
			}
			if d := res.Diagnosis(); d.Bind == nil || d.Bind.Code != tc.wantCode.String() {
				t.Errorf("Diagnosis.Bind = %+v", d.Bind)
			}
		})
	}
}

type filterOnly struct{ name string }

func (p filterOnly) Name() string { return p.name }
func (p filterOnly) Filter(context.Context, *framework.CycleState, *framework.Unit, *framework.NodeInfo) *framework.Status {
	return nil
}

func TestNewFrameworkRejectsBadProfiles(t *testing.T) {
	reg := frameworktest.Registry(filterOnly{"F"})
	failing := framework.Registration{Factory: func(framework.PluginArgs, framework.Handle) (framework.Plugin, error) {
		return nil, errors.New("bad args")
	}}
	if err := reg.Register("Broken", failing); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		spec    framework.ProfileSpec
		wantErr string
	}{
		{"unknown plugin", framework.ProfileSpec{Name: "p", Filter: []string{"Nope"}}, `profile "p": plugin "Nope" is not registered (known: [Broken F])`},
		{"not a score plugin", framework.ProfileSpec{Name: "p", Score: []framework.WeightedPlugin{{Name: "F", Weight: 1}}}, `plugin "F" does not implement Score`},
		{"not a bind plugin", framework.ProfileSpec{Name: "p", Bind: []string{"F"}}, `plugin "F" does not implement Bind`},
		{"not a prefilter plugin", framework.ProfileSpec{Name: "p", PreFilter: []string{"F"}}, `plugin "F" does not implement PreFilter`},
		{"factory fails", framework.ProfileSpec{Name: "p", Filter: []string{"Broken"}}, `profile "p": plugin "Broken": bad args`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := framework.NewFramework(reg, tc.spec, nil)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("err = %v, want %q", err, tc.wantErr)
			}
		})
	}
	score := &frameworktest.Score{PluginName: "S", Fn: constScore(1)}
	for _, w := range []int64{0, -1, 101} {
		_, err := framework.NewFramework(frameworktest.Registry(score), framework.ProfileSpec{Name: "p", Score: []framework.WeightedPlugin{{Name: "S", Weight: w}}}, nil)
		if err == nil || !strings.Contains(err.Error(), "not in 1..100") {
			t.Errorf("weight %d: err = %v", w, err)
		}
	}
}

// requiredArgs need a value; their defaults leave it empty.
type requiredArgs struct{ Value string }

func (a *requiredArgs) Default() {}
func (a *requiredArgs) Validate(path *field.Path) field.ErrorList {
	if a.Value == "" {
		return field.ErrorList{field.Required(path.Child("value"), "")}
	}
	return nil
}

// TestNewFrameworkDefaultsAndValidatesArgs: a factory of a plugin with NewArgs never sees nil
// or invalid args. Given none, it gets its defaults, validated; invalid args stop NewFramework
// before the factory runs.
func TestNewFrameworkDefaultsAndValidatesArgs(t *testing.T) {
	var got []framework.PluginArgs
	reg := framework.Registry{}
	if err := reg.Register("R", framework.Registration{
		NewArgs: func() framework.PluginArgs { return &requiredArgs{} },
		Factory: func(args framework.PluginArgs, _ framework.Handle) (framework.Plugin, error) {
			got = append(got, args)
			return filterOnly{"R"}, nil
		},
	}); err != nil {
		t.Fatal(err)
	}
	_, err := framework.NewFramework(reg, framework.ProfileSpec{Name: "p", Filter: []string{"R"}}, nil)
	if err == nil || !strings.Contains(err.Error(), "profiles[p].pluginConfig[R].args.value: Required value") {
		t.Fatalf("invalid default args: err = %v", err)
	}
	if len(got) != 0 {
		t.Fatalf("the factory ran with invalid args %v", got)
	}
	spec := framework.ProfileSpec{Name: "p", Filter: []string{"R"}, Args: map[string]framework.PluginArgs{"R": &requiredArgs{Value: "x"}}}
	if _, err := framework.NewFramework(reg, spec, nil); err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].(*requiredArgs).Value != "x" {
		t.Fatalf("factory got %v", got)
	}
}

// TestNewFrameworkNamesEachPluginsLogger: a plugin's lines carry its name without the
// plugin naming itself, and a plugin cannot log under another's name.
func TestNewFrameworkNamesEachPluginsLogger(t *testing.T) {
	var lines []string
	log := funcr.New(func(prefix, args string) { lines = append(lines, prefix+" "+args) }, funcr.Options{})
	reg := framework.Registry{}
	for _, name := range []string{"A", "B"} {
		if err := reg.Register(name, framework.Registration{
			Factory: func(_ framework.PluginArgs, h framework.Handle) (framework.Plugin, error) {
				h.Logger().Info("made")
				return filterOnly{name}, nil
			},
		}); err != nil {
			t.Fatal(err)
		}
	}
	spec := framework.ProfileSpec{Name: "p", Filter: []string{"A", "B"}}
	if _, err := framework.NewFramework(reg, spec, framework.NewHandle(log.WithName("plugins"))); err != nil {
		t.Fatal(err)
	}
	want := []string{`plugins/A "level"=0 "msg"="made"`, `plugins/B "level"=0 "msg"="made"`}
	if !reflect.DeepEqual(lines, want) {
		t.Errorf("lines %q, want %q", lines, want)
	}
}
