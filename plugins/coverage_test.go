package plugins_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"

	"k8s.io/apimachinery/pkg/labels"

	"github.com/herald-lb/herald/framework"
	"github.com/herald-lb/herald/framework/frameworktest"
	"github.com/herald-lb/herald/plugins"
)

// countingSelector counts how often coverage asks it about a pool.
type countingSelector struct {
	labels.Selector
	calls *atomic.Int64
}

func (s countingSelector) Matches(l labels.Labels) bool {
	s.calls.Add(1)
	return s.Selector.Matches(l)
}

// TestCoverageIsComputedOncePerUnit runs the default profile's filters (Advertisement and
// Interfaces both read the covering advertisements for every node) over a unit whose
// advertisements count each time their pool selector is evaluated: the unit resolves its
// coverage once when it is built, and no cycle, node or plugin computes it again.
func TestCoverageIsComputedOncePerUnit(t *testing.T) {
	var calls atomic.Int64
	sel := countingSelector{Selector: labels.SelectorFromSet(labels.Set{"tier": "prod"}), calls: &calls}
	ub := frameworktest.L2Unit("192.0.2.10").Pool("prod", map[string]string{"tier": "prod"}).Service("ns", "web", false, map[string]int{"node-00": 1})
	for _, name := range []string{"a", "b", "c"} {
		ub.Advertisement(framework.Advertisement{Name: name, IPAddressPoolSelectors: []labels.Selector{sel}, Interfaces: []string{"eth0"}})
	}
	unit := ub.Obj()
	if got := calls.Load(); got != 3 {
		t.Fatalf("building the unit evaluated pool selectors %d times, want 3 (once per advertisement)", got)
	}

	const n = 40
	nodes := make([]*framework.NodeInfo, n)
	for i := range nodes {
		nodes[i] = frameworktest.Node(fmt.Sprintf("node-%02d", i)).Interface("eth0", "192.0.2.1/24").Obj()
	}
	fw, err := framework.NewFramework(plugins.NewInTreeRegistry(), plugins.DefaultProfile(), nil)
	if err != nil {
		t.Fatal(err)
	}
	for cycle := 0; cycle < 3; cycle++ {
		res := fw.Schedule(context.Background(), frameworktest.Snapshot(nodes...), unit)
		if res.Err != nil || len(res.Selected) != 1 {
			t.Fatalf("cycle %d: selected %v, err %v: %s", cycle, res.Selected, res.Err, res.Diagnosis().Summary)
		}
		if d := res.Diagnosis(); d.FeasibleCount != n {
			t.Fatalf("cycle %d: %d feasible nodes, want %d (the filters must have run for every node): %s", cycle, d.FeasibleCount, n, d.Summary)
		}
		res.Release()
	}
	if got := calls.Load(); got != 3 {
		t.Fatalf("after 3 cycles over %d nodes, pool selectors were evaluated %d times in all, want still 3: a plugin recomputed coverage", n, got)
	}
}
