package interfaces

import (
	"context"
	"net/netip"
	"slices"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/labels"

	"github.com/herald-lb/herald/framework"
)

func itf(name string, up bool, prefixes ...string) framework.Interface {
	out := framework.Interface{Name: name, Up: up}
	for _, p := range prefixes {
		out.Prefixes = append(out.Prefixes, netip.MustParsePrefix(p))
	}
	return out
}

func boolPtr(b bool) *bool { return &b }

func TestFilterAndFor(t *testing.T) {
	zoneA := labels.SelectorFromSet(labels.Set{"zone": "a"})
	zoneB := labels.SelectorFromSet(labels.Set{"zone": "b"})
	tests := []struct {
		name          string
		ip            string
		mode          framework.Mode
		requireSubnet *bool
		advs          []*framework.Advertisement
		itfs          []framework.Interface
		noSpeaker     bool
		wantReason    string
		wantFor       []string
	}{
		{name: "no restriction, on subnet", ip: "192.0.2.10",
			advs:    []*framework.Advertisement{{Name: "a", Mode: framework.ModeL2}},
			itfs:    []framework.Interface{itf("eth0", true, "192.0.2.1/24"), itf("eth1", true, "198.51.100.1/24")},
			wantFor: []string{"eth0"}},
		{name: "no restriction, no interface on subnet", ip: "203.0.113.10",
			advs:       []*framework.Advertisement{{Name: "a", Mode: framework.ModeL2}},
			itfs:       []framework.Interface{itf("eth0", true, "192.0.2.1/24")},
			wantReason: ReasonNotOnSubnet},
		{name: "no restriction, subnet not required", ip: "203.0.113.10", requireSubnet: boolPtr(false),
			advs:    []*framework.Advertisement{{Name: "a", Mode: framework.ModeL2}},
			itfs:    []framework.Interface{itf("eth1", true), itf("eth0", true, "192.0.2.1/24"), itf("eth2", false)},
			wantFor: []string{"eth0", "eth1"}},
		{name: "allowed interface up and on subnet", ip: "192.0.2.10",
			advs:    []*framework.Advertisement{{Name: "a", Mode: framework.ModeL2, Interfaces: []string{"eth1"}}},
			itfs:    []framework.Interface{itf("eth0", true, "192.0.2.1/24"), itf("eth1", true, "192.0.2.2/24")},
			wantFor: []string{"eth1"}},
		{name: "allowed interface missing", ip: "192.0.2.10",
			advs:       []*framework.Advertisement{{Name: "a", Mode: framework.ModeL2, Interfaces: []string{"eth1"}}},
			itfs:       []framework.Interface{itf("eth0", true, "192.0.2.1/24")},
			wantReason: ReasonNoAllowedInterface},
		{name: "allowed interface down", ip: "192.0.2.10",
			advs:       []*framework.Advertisement{{Name: "a", Mode: framework.ModeL2, Interfaces: []string{"eth1"}}},
			itfs:       []framework.Interface{itf("eth0", true, "192.0.2.1/24"), itf("eth1", false, "192.0.2.2/24")},
			wantReason: ReasonNoAllowedInterface},
		{name: "allowed interface on another subnet", ip: "192.0.2.10",
			advs:       []*framework.Advertisement{{Name: "a", Mode: framework.ModeL2, Interfaces: []string{"eth1"}}},
			itfs:       []framework.Interface{itf("eth0", true, "192.0.2.1/24"), itf("eth1", true, "198.51.100.2/24")},
			wantReason: ReasonNotOnSubnet},
		{name: "union of the advertisements selecting the node", ip: "2001:db8::10",
			advs: []*framework.Advertisement{
				{Name: "a", Mode: framework.ModeL2, Interfaces: []string{"eth1"}},
				{Name: "b", Mode: framework.ModeL2, Interfaces: []string{"eth2"}, NodeSelectors: []labels.Selector{zoneA}},
				{Name: "c", Mode: framework.ModeL2, Interfaces: []string{"eth3"}, NodeSelectors: []labels.Selector{zoneB}},
			},
			itfs:    []framework.Interface{itf("eth1", true, "2001:db8::1/64"), itf("eth2", true, "2001:db8::2/64"), itf("eth3", true, "2001:db8::3/64")},
			wantFor: []string{"eth1", "eth2"}},
		{name: "an advertisement without interfaces allows all", ip: "192.0.2.10",
			advs: []*framework.Advertisement{
				{Name: "a", Mode: framework.ModeL2, Interfaces: []string{"eth1"}},
				{Name: "b", Mode: framework.ModeL2},
			},
			itfs:    []framework.Interface{itf("eth0", true, "192.0.2.1/24")},
			wantFor: []string{"eth0"}},
		{name: "advertisement not covering the pool does not restrict", ip: "192.0.2.10",
			advs: []*framework.Advertisement{
				{Name: "a", Mode: framework.ModeL2, Interfaces: []string{"eth1"}, IPAddressPools: []string{"other"}},
				{Name: "b", Mode: framework.ModeL2, Interfaces: []string{"eth0"}},
			},
			itfs:    []framework.Interface{itf("eth0", true, "192.0.2.1/24"), itf("eth1", true, "192.0.2.2/24")},
			wantFor: []string{"eth0"}},
		{name: "no heartbeat", ip: "192.0.2.10", noSpeaker: true,
			advs:       []*framework.Advertisement{{Name: "a", Mode: framework.ModeL2}},
			wantReason: ReasonNoInterfaces},
		{name: "no published interfaces", ip: "192.0.2.10",
			advs:       []*framework.Advertisement{{Name: "a", Mode: framework.ModeL2}},
			wantReason: ReasonNoInterfaces},
		{name: "BGP is not restricted", ip: "192.0.2.10", mode: framework.ModeBGP,
			advs: []*framework.Advertisement{{Name: "a", Mode: framework.ModeBGP}},
			itfs: []framework.Interface{itf("eth0", false)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mode := tt.mode
			if mode == "" {
				mode = framework.ModeL2
			}
			args := &InterfacesArgs{RequireSubnet: tt.requireSubnet}
			args.Default()
			pl, err := New(args, nil)
			if err != nil {
				t.Fatal(err)
			}
			p := pl.(*Plugin)
			node := &framework.NodeInfo{Name: "n1", Labels: map[string]string{"zone": "a"}}
			if !tt.noSpeaker {
				node.Speaker = &framework.SpeakerInfo{Interfaces: tt.itfs}
			}
			unit := &framework.Unit{IP: netip.MustParseAddr(tt.ip), Mode: mode, Pool: "prod", Advertisements: tt.advs}
			state := framework.NewCycleState(framework.NewSnapshot(time.Now(), []*framework.NodeInfo{node}))
			pre := p.PreFilter(context.Background(), state, unit)
			if mode == framework.ModeBGP {
				if !pre.IsSkip() {
					t.Fatalf("PreFilter = %v for BGP, want Skip", pre.Code())
				}
				if got, ok := framework.ChosenInterfaces(state, unit, node); ok || got != nil {
					t.Fatalf("chosen interfaces = %v (recorded %v) for BGP, want none", got, ok)
				}
				return
			}
			st := p.Filter(context.Background(), state, unit, node)
			got, ok := framework.ChosenInterfaces(state, unit, node)
			if !ok {
				t.Fatal("PreFilter recorded no interface choice for an L2 unit")
			}
			if tt.wantReason != "" {
				if st.Code() != framework.Unschedulable || st.Reasons()[0] != tt.wantReason {
					t.Fatalf("Filter = %v %q, want Unschedulable %q", st.Code(), st.Reasons(), tt.wantReason)
				}
				if len(got) != 0 {
					t.Fatalf("For = %v for a rejected node, want none", got)
				}
				return
			}
			if !st.IsSuccess() {
				t.Fatalf("Filter rejected: %s", st.Message())
			}
			if !slices.Equal(got, tt.wantFor) {
				t.Fatalf("For = %v, want %v", got, tt.wantFor)
			}
		})
	}
}
