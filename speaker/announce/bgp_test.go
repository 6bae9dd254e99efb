package announce

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/tools/record"

	"github.com/herald-lb/herald/announcers"
	"github.com/herald-lb/herald/announcers/manager"
	"github.com/herald-lb/herald/framework"
)

func bgpAdv(name string, attrs framework.BGPRouteAttributes, nodeSel string) *framework.Advertisement {
	a := &framework.Advertisement{Name: name, Mode: framework.ModeBGP, BGP: &attrs}
	if nodeSel != "" {
		a.NodeSelectors = []labels.Selector{labels.SelectorFromSet(labels.Set{"zone": nodeSel})}
	}
	return a
}

func bgpUnit(ip string, advs ...*framework.Advertisement) *framework.Unit {
	return &framework.Unit{
		IP: netip.MustParseAddr(ip), Mode: framework.ModeBGP, Pool: "pool",
		Services:       []*framework.ServiceInfo{{Key: framework.ServiceKey{Namespace: "default", Name: "web"}}},
		Advertisements: advs,
	}
}

func bgpState() *framework.CycleState {
	node := &framework.NodeInfo{Name: "node-a", Labels: map[string]string{"zone": "a"}}
	return framework.NewCycleState(framework.NewSnapshot(time.Unix(1, 0), []*framework.NodeInfo{node, {Name: "node-b"}}))
}

func TestRoutes(t *testing.T) {
	node := &framework.NodeInfo{Name: "node-a", Labels: map[string]string{"zone": "a"}}
	tests := []struct {
		name string
		ip   string
		advs []*framework.Advertisement
		want []announcers.Announcement
	}{{
		name: "host route with attributes, large community split out",
		ip:   "203.0.113.10",
		advs: []*framework.Advertisement{bgpAdv("one", framework.BGPRouteAttributes{AggregationLength: 32, AggregationLengthV6: 128, LocalPref: 200,
			Communities: []string{"64500:100", "large:64500:1:2"}, Peers: []string{"r1"}}, "")},
		want: []announcers.Announcement{{ID: "203.0.113.10/BGP#one", Prefix: netip.MustParsePrefix("203.0.113.10/32"),
			BGP: &announcers.BGPRoute{LocalPref: ptr(uint32(200)), Communities: []string{"64500:100"}, LargeCommunities: []string{"64500:1:2"}, Peers: []string{"r1"}}}},
	}, {
		name: "aggregation length of the IP's family; other node's advertisement left out",
		ip:   "2001:db8::10",
		advs: []*framework.Advertisement{
			bgpAdv("agg", framework.BGPRouteAttributes{AggregationLength: 24, AggregationLengthV6: 64}, "a"),
			bgpAdv("elsewhere", framework.BGPRouteAttributes{AggregationLength: 32, AggregationLengthV6: 128}, "b"),
		},
		want: []announcers.Announcement{{ID: "2001:db8::10/BGP#agg", Prefix: netip.MustParsePrefix("2001:db8::10/128"),
			BGP: &announcers.BGPRoute{AggregationLength: 64}}},
	}, {
		name: "two advertisements, same name in two namespaces",
		ip:   "203.0.113.10",
		advs: []*framework.Advertisement{
			bgpAdv("x", framework.BGPRouteAttributes{AggregationLength: 32}, ""),
			bgpAdv("x", framework.BGPRouteAttributes{AggregationLength: 24}, ""),
		},
		want: []announcers.Announcement{
			{ID: "203.0.113.10/BGP#x", Prefix: netip.MustParsePrefix("203.0.113.10/32"), BGP: &announcers.BGPRoute{}},
			{ID: "203.0.113.10/BGP#x#1", Prefix: netip.MustParsePrefix("203.0.113.10/32"), BGP: &announcers.BGPRoute{AggregationLength: 24}},
		},
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			u := bgpUnit(tc.ip, tc.advs...)
			got := Routes(u, node, tc.advs)
			if !sameRoutes(got, tc.want) {
				t.Fatalf("Routes =\n%s\nwant\n%s", dump(got), dump(tc.want))
			}
		})
	}
}

func TestRoutePeers(t *testing.T) {
	r := func(peers ...string) announcers.Announcement {
		return announcers.Announcement{BGP: &announcers.BGPRoute{Peers: peers}}
	}
	tests := []struct {
		routes     []announcers.Announcement
		configured []string
		want       []string
	}{
		{[]announcers.Announcement{r()}, []string{"r1", "r2"}, []string{"r1", "r2"}},
		{[]announcers.Announcement{r("r2", "r9")}, []string{"r1", "r2"}, []string{"r2"}},
		{[]announcers.Announcement{r("r2"), r("r1")}, []string{"r1", "r2", "r3"}, []string{"r1", "r2"}},
		{[]announcers.Announcement{r()}, nil, nil},
	}
	for i, tc := range tests {
		if got := RoutePeers(tc.routes, tc.configured); !slices.Equal(got, tc.want) {
			t.Errorf("%d: RoutePeers = %v, want %v", i, got, tc.want)
		}
	}
}

type bgpEnv struct {
	*env
	bgpStatus *fakeStatus
	peers     []string
	observed  []string
}

func newBGPEnv() *bgpEnv {
	e := &bgpEnv{env: &env{ann: &fakeAnnouncer{}, status: &fakeStatus{}, rec: record.NewFakeRecorder(10), claim: true, leave: true},
		bgpStatus: &fakeStatus{}, peers: []string{"r1", "r2"}}
	e.p = New("node-a", Deps{
		Ledger: NewLedger(e.ann, StatusWriters{L2: e.status, BGP: e.bgpStatus}, e.env),
		Router: fakeRouter{e: e.env, names: map[framework.AnnouncerKind]string{
			framework.AnnouncerKindL2v4: "arp", framework.AnnouncerKindL2v6: "arp", framework.AnnouncerKindBGP: "bgp"}},
		Peers:    e,
		Observer: e,
		Recorder: e.rec,
	})
	return e
}

func (e *bgpEnv) Names() []string { return e.peers }

func (e *bgpEnv) Announced(m framework.Mode, takeover bool) {
	e.observed = append(e.observed, string(m)+map[bool]string{true: "+takeover", false: ""}[takeover])
}

func TestBindBGPAdvertisesAndWithdraws(t *testing.T) {
	e := newBGPEnv()
	ctx := context.Background()
	restricted := bgpAdv("to-r2", framework.BGPRouteAttributes{AggregationLength: 32, AggregationLengthV6: 128, LocalPref: 150, Peers: []string{"r2"}}, "")
	u := bgpUnit("203.0.113.10", restricted)
	if st := e.p.Bind(ctx, bgpState(), u, []string{"node-a", "node-b"}); !st.IsSuccess() {
		t.Fatalf("Bind: %v", st.AsError())
	}
	if len(e.ann.upserts) != 1 || e.ann.upserts[0].ID != "203.0.113.10/BGP#to-r2" || *e.ann.upserts[0].BGP.LocalPref != 150 {
		t.Fatalf("upserts = %s", dump(e.ann.upserts))
	}
	if want := []string{"default/web@203.0.113.10=r2"}; !slices.Equal(e.bgpStatus.published, want) || len(e.status.published) != 0 {
		t.Fatalf("BGP status %v (want %v), L2 status %v", e.bgpStatus.published, want, e.status.published)
	}
	if !slices.Equal(e.observed, []string{"BGP"}) {
		t.Fatalf("observed %v", e.observed)
	}
	// The same cycle again sends nothing.
	e.p.Bind(ctx, bgpState(), u, []string{"node-a", "node-b"})
	if len(e.ann.upserts) != 1 || len(e.observed) != 1 {
		t.Fatalf("repeat cycle resent: %s", dump(e.ann.upserts))
	}
	// The advertisement is replaced by an unrestricted one: new route in, old one out, status
	// lists every peer.
	u = bgpUnit("203.0.113.10", bgpAdv("all", framework.BGPRouteAttributes{AggregationLength: 32}, ""))
	e.p.Bind(ctx, bgpState(), u, []string{"node-a"})
	if len(e.ann.upserts) != 2 || e.ann.upserts[1].ID != "203.0.113.10/BGP#all" || !slices.Equal(e.ann.removes, []string{"203.0.113.10/BGP#to-r2"}) {
		t.Fatalf("upserts %s removes %v", dump(e.ann.upserts), e.ann.removes)
	}
	if got := e.bgpStatus.published[len(e.bgpStatus.published)-1]; got != "default/web@203.0.113.10=r1,r2" {
		t.Fatalf("status = %s", got)
	}
	// Not selected any more (e.g. its last local endpoint left): withdrawn, BGP status retracted.
	e.p.Bind(ctx, bgpState(), u, []string{"node-b"})
	if !slices.Equal(e.ann.removes, []string{"203.0.113.10/BGP#to-r2", "203.0.113.10/BGP#all"}) {
		t.Fatalf("removes = %v", e.ann.removes)
	}
	if !slices.Equal(e.bgpStatus.retracted, []string{"default/web@203.0.113.10"}) || len(e.status.retracted) != 0 || len(e.p.ledger.List()) != 0 {
		t.Fatalf("BGP retracted %v, L2 retracted %v, announced %v", e.bgpStatus.retracted, e.status.retracted, e.p.ledger.List())
	}
}

func TestBindBGPWithoutPeersPublishesNoStatus(t *testing.T) {
	e := newBGPEnv()
	e.peers = nil
	u := bgpUnit("203.0.113.10", bgpAdv("all", framework.BGPRouteAttributes{AggregationLength: 32}, ""))
	e.p.Bind(context.Background(), bgpState(), u, []string{"node-a"})
	if len(e.ann.upserts) != 1 || len(e.bgpStatus.published) != 0 || len(e.bgpStatus.retracted) != 1 {
		t.Fatalf("upserts %d published %v retracted %v", len(e.ann.upserts), e.bgpStatus.published, e.bgpStatus.retracted)
	}
}

func TestBindBGPForgetAndClaimRules(t *testing.T) {
	e := newBGPEnv()
	e.claim = false
	u := bgpUnit("203.0.113.10", bgpAdv("all", framework.BGPRouteAttributes{AggregationLength: 32}, ""))
	e.p.Bind(context.Background(), bgpState(), u, []string{"node-a"})
	if len(e.ann.upserts) != 0 {
		t.Fatalf("advertised while MayClaim is false")
	}
	e.claim = true
	e.p.Bind(context.Background(), bgpState(), u, []string{"node-a"})
	if err := e.p.ledger.Forget(context.Background(), u.Key()); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(e.ann.removes, []string{"203.0.113.10/BGP#all"}) || len(e.bgpStatus.retracted) != 1 {
		t.Fatalf("Forget: removes %v retracted %v", e.ann.removes, e.bgpStatus.retracted)
	}
}

func TestBindL2CountsTakeover(t *testing.T) {
	e := newBGPEnv()
	e.p.Bind(context.Background(), testState(), testUnit("node-b"), []string{"node-a"})
	e.p.Bind(context.Background(), testState(), &framework.Unit{IP: netip.MustParseAddr("192.0.2.11"), Mode: framework.ModeL2,
		Services: testUnit().Services}, []string{"node-a"})
	if !slices.Equal(e.observed, []string{"L2+takeover", "L2"}) {
		t.Fatalf("observed %v", e.observed)
	}
}

func ptr[T any](v T) *T { return &v }

func dump(as []announcers.Announcement) string {
	var b strings.Builder
	for _, a := range as {
		b.WriteString(a.ID + " " + a.Prefix.String())
		if a.BGP != nil {
			b.WriteString(" " + strings.Join(a.BGP.Communities, ",") + " large=" + strings.Join(a.BGP.LargeCommunities, ","))
		}
		b.WriteString("\n")
	}
	return b.String()
}

// The speaker's workers may bind one unit twice at once; it is sent and counted once.
func TestBindSameUnitConcurrently(t *testing.T) {
	e := newBGPEnv()
	u := bgpUnit("203.0.113.10", bgpAdv("all", framework.BGPRouteAttributes{AggregationLength: 32}, ""))
	var wg sync.WaitGroup
	for i := 0; i < 2; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			e.p.Bind(context.Background(), bgpState(), u, []string{"node-a"})
		}()
	}
	wg.Wait()
	if len(e.ann.upserts) != 1 || len(e.observed) != 1 {
		t.Fatalf("upserts %d, announcements counted %d; want 1 and 1", len(e.ann.upserts), len(e.observed))
	}
}

// A BGP unit kept while the announcer starts, or advertised ahead of being a candidate, is
// counted and logged when this node claims it, once.
func TestBindBGPCountsTheClaimAfterPendingOrQuiet(t *testing.T) {
	u := bgpUnit("203.0.113.10", bgpAdv("all", framework.BGPRouteAttributes{AggregationLength: 32}, ""))
	for _, tc := range []struct {
		name  string
		first func(e *bgpEnv) *framework.CycleState
	}{
		{"announcer starting", func(e *bgpEnv) *framework.CycleState {
			e.ann.err = fmt.Errorf("bgp: %w", manager.ErrUnavailable)
			return bgpState()
		}},
		{"ahead of being a candidate", func(e *bgpEnv) *framework.CycleState {
			st := bgpState()
			WithoutClaim(st)
			return st
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newBGPEnv()
			e.p.Bind(context.Background(), tc.first(e), u, []string{"node-a"})
			if len(e.observed) != 0 || len(e.bgpStatus.published) != 0 {
				t.Fatalf("before the claim: observed %v published %v", e.observed, e.bgpStatus.published)
			}
			e.ann.err = nil
			for i := 0; i < 2; i++ {
				if st := e.p.Bind(context.Background(), bgpState(), u, []string{"node-a"}); !st.IsSuccess() {
					t.Fatalf("Bind %d: %v", i, st.AsError())
				}
			}
			if !slices.Equal(e.observed, []string{"BGP"}) || len(e.bgpStatus.published) == 0 {
				t.Fatalf("after the claim: observed %v published %v, want one BGP announcement counted and a status", e.observed, e.bgpStatus.published)
			}
		})
	}
}
