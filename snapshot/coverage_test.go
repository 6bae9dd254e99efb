package snapshot

import (
	"context"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	metallbv1beta1 "github.com/herald-lb/herald/config/metallb/v1beta1"
	"github.com/herald-lb/herald/framework"
	"github.com/herald-lb/herald/framework/frameworktest"
)

// countingSelector counts how often coverage evaluates it.
type countingSelector struct {
	labels.Selector
	calls *atomic.Int64
}

func (s countingSelector) Matches(l labels.Labels) bool {
	s.calls.Add(1)
	return s.Selector.Matches(l)
}

// coveringFilter reads the unit's covering advertisements for every node, as the
// Advertisement and Interfaces filters do.
type coveringFilter struct{}

func (coveringFilter) Name() string { return "Covering" }
func (coveringFilter) Filter(_ context.Context, _ *framework.CycleState, u *framework.Unit, _ *framework.NodeInfo) *framework.Status {
	if len(u.Covering()) == 0 {
		return framework.NewStatus(framework.UnschedulableAndUnresolvable, "not covered")
	}
	return nil
}

// TestUnitsCarryTheirCoverage: the builder computes a unit's covering advertisements once,
// when it builds the unit (it needs them to know the IP's modes), and every later request for
// the unit and every cycle over it reads that record.
func TestUnitsCarryTheirCoverage(t *testing.T) {
	b := NewBuilder(nil)
	for _, n := range []string{"n1", "n2", "n3"} {
		b.SetNode(node(n, corev1.ConditionTrue, false, nil))
	}
	b.SetPool(&metallbv1beta1.IPAddressPool{ObjectMeta: metav1.ObjectMeta{Namespace: "hs", Name: "prod", Labels: map[string]string{"tier": "prod"}},
		Spec: metallbv1beta1.IPAddressPoolSpec{Addresses: []string{"192.0.2.0/28"}}})
	b.SetL2Advertisement(&metallbv1beta1.L2Advertisement{ObjectMeta: metav1.ObjectMeta{Namespace: "hs", Name: "l2"}})
	b.SetService(lbService("ns", "web", "", false, "192.0.2.1"))
	// The converted advertisement, with its pool selector counting (the conversion from
	// metallb.io is tested elsewhere); set as a pool change would, invalidating the units.
	var calls atomic.Int64
	b.mu.Lock()
	b.l2["hs/l2"] = &framework.Advertisement{Name: "l2", Mode: framework.ModeL2,
		IPAddressPoolSelectors: []labels.Selector{countingSelector{Selector: labels.SelectorFromSet(labels.Set{"tier": "prod"}), calls: &calls}}}
	b.invalidateAll()
	b.mu.Unlock()

	ip := netip.MustParseAddr("192.0.2.1")
	units := b.UnitsFor(ip)
	if len(units) != 1 || units[0].Mode != framework.ModeL2 || len(units[0].Covering()) != 1 {
		t.Fatalf("units %+v", units)
	}
	// Once for L2 (covered); the BGP unit has no advertisement to evaluate.
	if got := calls.Load(); got != 1 {
		t.Fatalf("building the units evaluated the pool selector %d times, want 1", got)
	}
	fw, err := framework.NewFramework(frameworktest.Registry(coveringFilter{}), framework.ProfileSpec{Name: "p", Filter: []string{"Covering"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		u := b.UnitsFor(ip)[0]
		res := fw.Schedule(context.Background(), b.Snapshot(time.Now()), u)
		if res.Err != nil || len(res.Selected) != 1 {
			t.Fatalf("cycle %d: selected %v, err %v", i, res.Selected, res.Err)
		}
		res.Release()
	}
	b.Units()
	if got := calls.Load(); got != 1 {
		t.Fatalf("after 3 cycles over 3 nodes the pool selector was evaluated %d times, want still 1", got)
	}
}
