package framework

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"k8s.io/component-base/metrics/testutil"
)

type countingFilter struct{}

func (countingFilter) Name() string { return "MetricsFilter" }
func (countingFilter) Filter(_ context.Context, _ *CycleState, _ *Unit, n *NodeInfo) *Status {
	if n.Name == "b" {
		return NewStatus(Unschedulable, "node(s) named b")
	}
	return nil
}

func TestMetricsCountVerdictsAndCycles(t *testing.T) {
	RegisterMetrics()
	// The counters are process-wide; start from zero so repeated runs (-count) see only theirs.
	pluginVerdicts.Reset()
	reg := Registry{}
	if err := reg.Register("MetricsFilter", Registration{Factory: func(PluginArgs, Handle) (Plugin, error) { return countingFilter{}, nil }}); err != nil {
		t.Fatal(err)
	}
	f, err := NewFramework(reg, ProfileSpec{Name: "m", Filter: []string{"MetricsFilter"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	snap := NewSnapshot(time.Now(), []*NodeInfo{{Name: "a"}, {Name: "b"}, {Name: "c"}})
	u := &Unit{IP: netip.MustParseAddr("192.0.2.1"), Mode: ModeL2}
	const cycles = 3
	for i := 0; i < cycles; i++ {
		f.Schedule(context.Background(), snap, u)
	}
	ok, err := testutil.GetCounterMetricValue(pluginVerdicts.WithLabelValues("MetricsFilter", PointFilter, "Success"))
	if err != nil || ok != 2*cycles {
		t.Errorf("Success verdicts = %v (%v), want %d", ok, err, 2*cycles)
	}
	rej, err := testutil.GetCounterMetricValue(pluginVerdicts.WithLabelValues("MetricsFilter", PointFilter, "Unschedulable"))
	if err != nil || rej != cycles {
		t.Errorf("Unschedulable verdicts = %v (%v), want %d", rej, err, cycles)
	}
	n, err := testutil.GetHistogramMetricCount(cycleDuration.WithLabelValues("L2", CycleSelected))
	if err != nil || n < cycles {
		t.Errorf("cycle count = %v (%v), want >= %d", n, err, cycles)
	}
	// The first cycle of a framework is sampled, so its filter calls were timed.
	d, err := testutil.GetHistogramMetricCount(pluginDuration.WithLabelValues("MetricsFilter", PointFilter, "Success"))
	if err != nil || d < 2 {
		t.Errorf("sampled durations = %v (%v), want >= 2", d, err)
	}
}
