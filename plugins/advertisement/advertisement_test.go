package advertisement

import (
	"context"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/labels"

	"github.com/herald-lb/herald/framework"
)

func sel(t *testing.T, s string) labels.Selector {
	t.Helper()
	l, err := labels.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func TestPreFilterAndFilter(t *testing.T) {
	node := &framework.NodeInfo{Name: "n1", Labels: map[string]string{"zone": "a", "role": "edge"}}
	web := &framework.ServiceInfo{Key: framework.ServiceKey{Namespace: "ns", Name: "web"}, Labels: map[string]string{"app": "web"}}
	dns := &framework.ServiceInfo{Key: framework.ServiceKey{Namespace: "ns", Name: "dns"}, Labels: map[string]string{"app": "dns"}}

	tests := []struct {
		name     string
		mode     framework.Mode
		services []*framework.ServiceInfo
		advs     func(t *testing.T) []*framework.Advertisement
		// wantUnit is the PreFilter reason when the unit is rejected.
		wantUnit string
		// wantNode is the Filter reason when the node is rejected.
		wantNode string
	}{
		{name: "no advertisement at all", mode: framework.ModeL2, advs: func(*testing.T) []*framework.Advertisement { return nil }, wantUnit: ReasonNoL2Advertisement},
		{name: "empty advertisement covers every pool and node", mode: framework.ModeL2, advs: func(*testing.T) []*framework.Advertisement {
			return []*framework.Advertisement{{Name: "all", Mode: framework.ModeL2}}
		}},
		{name: "advertisement of the other mode does not cover", mode: framework.ModeBGP, advs: func(*testing.T) []*framework.Advertisement {
			return []*framework.Advertisement{{Name: "l2", Mode: framework.ModeL2}}
		}, wantUnit: ReasonNoBGPAdvertisement},
		{name: "pool named", mode: framework.ModeL2, advs: func(*testing.T) []*framework.Advertisement {
			return []*framework.Advertisement{{Name: "a", Mode: framework.ModeL2, IPAddressPools: []string{"other", "prod"}}}
		}},
		{name: "other pool named", mode: framework.ModeL2, advs: func(*testing.T) []*framework.Advertisement {
			return []*framework.Advertisement{{Name: "a", Mode: framework.ModeL2, IPAddressPools: []string{"other"}}}
		}, wantUnit: ReasonNoL2Advertisement},
		{name: "pool selector matches pool labels", mode: framework.ModeL2, advs: func(t *testing.T) []*framework.Advertisement {
			return []*framework.Advertisement{{Name: "a", Mode: framework.ModeL2, IPAddressPools: []string{"other"}, IPAddressPoolSelectors: []labels.Selector{sel(t, "tier=prod")}}}
		}},
		{name: "pool selector misses", mode: framework.ModeL2, advs: func(t *testing.T) []*framework.Advertisement {
			return []*framework.Advertisement{{Name: "a", Mode: framework.ModeL2, IPAddressPoolSelectors: []labels.Selector{sel(t, "tier=dev")}}}
		}, wantUnit: ReasonNoL2Advertisement},
		{name: "service selector matching one Service of a shared IP covers it", mode: framework.ModeL2, services: []*framework.ServiceInfo{dns, web}, advs: func(t *testing.T) []*framework.Advertisement {
			return []*framework.Advertisement{{Name: "a", Mode: framework.ModeL2, ServiceSelectors: []labels.Selector{sel(t, "app=web")}}}
		}},
		{name: "service selector matching no Service", mode: framework.ModeL2, services: []*framework.ServiceInfo{dns}, advs: func(t *testing.T) []*framework.Advertisement {
			return []*framework.Advertisement{{Name: "a", Mode: framework.ModeL2, ServiceSelectors: []labels.Selector{sel(t, "app=web")}}}
		}, wantUnit: ReasonNoL2Advertisement},
		{name: "node selector matches", mode: framework.ModeBGP, advs: func(t *testing.T) []*framework.Advertisement {
			return []*framework.Advertisement{{Name: "a", Mode: framework.ModeBGP, NodeSelectors: []labels.Selector{sel(t, "zone=b"), sel(t, "role=edge")}}}
		}},
		{name: "node selector misses", mode: framework.ModeL2, advs: func(t *testing.T) []*framework.Advertisement {
			return []*framework.Advertisement{{Name: "a", Mode: framework.ModeL2, NodeSelectors: []labels.Selector{sel(t, "zone=b")}}}
		}, wantNode: ReasonNodeNotSelected},
		{name: "second covering advertisement selects the node", mode: framework.ModeL2, advs: func(t *testing.T) []*framework.Advertisement {
			return []*framework.Advertisement{
				{Name: "a", Mode: framework.ModeL2, NodeSelectors: []labels.Selector{sel(t, "zone=b")}},
				{Name: "b", Mode: framework.ModeL2, IPAddressPools: []string{"prod"}, NodeSelectors: []labels.Selector{sel(t, "zone=a")}},
			}
		}},
		{name: "selecting advertisement does not cover the pool", mode: framework.ModeL2, advs: func(t *testing.T) []*framework.Advertisement {
			return []*framework.Advertisement{
				{Name: "a", Mode: framework.ModeL2, NodeSelectors: []labels.Selector{sel(t, "zone=b")}},
				{Name: "b", Mode: framework.ModeL2, IPAddressPools: []string{"other"}, NodeSelectors: []labels.Selector{sel(t, "zone=a")}},
			}
		}, wantNode: ReasonNodeNotSelected},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			services := tt.services
			if services == nil {
				services = []*framework.ServiceInfo{web}
			}
			unit := &framework.Unit{Mode: tt.mode, Pool: "prod", PoolLabels: map[string]string{"tier": "prod"}, Services: services, Advertisements: tt.advs(t)}
			state := framework.NewCycleState(framework.NewSnapshot(time.Now(), []*framework.NodeInfo{node}))
			p := &Plugin{}
			st := p.PreFilter(context.Background(), state, unit)
			if tt.wantUnit != "" {
				if st.Code() != framework.UnschedulableAndUnresolvable || len(st.Reasons()) != 1 || st.Reasons()[0] != tt.wantUnit {
					t.Fatalf("PreFilter = %v %q, want UnschedulableAndUnresolvable %q", st.Code(), st.Reasons(), tt.wantUnit)
				}
				if !strings.Contains(st.Detail(), `pool "prod"`) {
					t.Fatalf("detail %q does not name the pool", st.Detail())
				}
				return
			}
			if !st.IsSuccess() {
				t.Fatalf("PreFilter rejected: %s", st.Message())
			}
			st = p.Filter(context.Background(), state, unit, node)
			if tt.wantNode == "" {
				if !st.IsSuccess() {
					t.Fatalf("Filter rejected: %s", st.Message())
				}
				return
			}
			if st.Code() != framework.Unschedulable || st.Reasons()[0] != tt.wantNode {
				t.Fatalf("Filter = %v %q, want Unschedulable %q", st.Code(), st.Reasons(), tt.wantNode)
			}
			// Without the PreFilter's state the Filter reaches the same verdict.
			if st2 := p.Filter(context.Background(), nil, unit, node); st2.Code() != st.Code() {
				t.Fatalf("Filter without state = %v, with state %v", st2.Code(), st.Code())
			}
		})
	}
}
