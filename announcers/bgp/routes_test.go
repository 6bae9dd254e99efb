package bgp

import (
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/herald-lb/herald/announcers"
)

func TestRouteOf(t *testing.T) {
	lp := uint32(200)
	tests := []struct {
		name       string
		an         announcers.Announcement
		wantPrefix string
		wantErr    string
		check      func(t *testing.T, r *route)
	}{
		{name: "host route", an: announcers.Announcement{Prefix: netip.MustParsePrefix("192.0.2.10/32")}, wantPrefix: "192.0.2.10/32"},
		{name: "v6 host route", an: announcers.Announcement{Prefix: netip.MustParsePrefix("2001:db8::10/128")}, wantPrefix: "2001:db8::10/128"},
		{name: "aggregate /24", an: announcers.Announcement{Prefix: netip.MustParsePrefix("203.0.113.77/32"), BGP: &announcers.BGPRoute{AggregationLength: 24}}, wantPrefix: "203.0.113.0/24"},
		{name: "aggregate v6 /64", an: announcers.Announcement{Prefix: netip.MustParsePrefix("2001:db8:1::5/128"), BGP: &announcers.BGPRoute{AggregationLength: 64}}, wantPrefix: "2001:db8:1::/64"},
		{name: "aggregation too long", an: announcers.Announcement{Prefix: netip.MustParsePrefix("192.0.2.1/32"), BGP: &announcers.BGPRoute{AggregationLength: 33}}, wantErr: "aggregationLength"},
		{name: "attributes", an: announcers.Announcement{Prefix: netip.MustParsePrefix("192.0.2.10/32"), BGP: &announcers.BGPRoute{
			LocalPref: &lp, Communities: []string{"65535:65282", "64500:1", "64500:1"}, LargeCommunities: []string{"64500:1:2"},
			ExtendedCommunities: []string{"route-target:64500:100"}, Peers: []string{"a"}}},
			wantPrefix: "192.0.2.10/32",
			check: func(t *testing.T, r *route) {
				if !slices.Equal(r.path.Communities, []uint32{64500<<16 | 1, 65535<<16 | 65282}) {
					t.Errorf("communities = %v", r.path.Communities)
				}
				if !slices.Equal(r.path.LargeCommunities, [][3]uint32{{64500, 1, 2}}) || len(r.path.ExtendedCommunities) != 1 {
					t.Errorf("large/extended = %v %v", r.path.LargeCommunities, r.path.ExtendedCommunities)
				}
				if *r.path.LocalPref != 200 || !r.allows("a") || r.allows("b") {
					t.Errorf("local pref or peers wrong: %+v", r)
				}
			}},
		{name: "bad community", an: announcers.Announcement{Prefix: netip.MustParsePrefix("192.0.2.10/32"), BGP: &announcers.BGPRoute{Communities: []string{"70000:1"}}}, wantErr: "bgp.communities[0]"},
		{name: "bad large community", an: announcers.Announcement{Prefix: netip.MustParsePrefix("192.0.2.10/32"), BGP: &announcers.BGPRoute{LargeCommunities: []string{"1:2"}}}, wantErr: "bgp.largeCommunities[0]"},
		{name: "bad extended community", an: announcers.Announcement{Prefix: netip.MustParsePrefix("192.0.2.10/32"), BGP: &announcers.BGPRoute{ExtendedCommunities: []string{"color:1"}}}, wantErr: "bgp.extendedCommunities[0]"},
		{name: "multicast", an: announcers.Announcement{Prefix: netip.MustParsePrefix("224.0.0.1/32")}, wantErr: "unicast"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := routeOf(tt.an)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("routeOf() error = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("routeOf() error = %v", err)
			}
			if r.path.Prefix.String() != tt.wantPrefix {
				t.Fatalf("prefix = %s, want %s", r.path.Prefix, tt.wantPrefix)
			}
			if tt.check != nil {
				tt.check(t, r)
			}
		})
	}
}

func TestMergeRoutes(t *testing.T) {
	lp1, lp2 := uint32(100), uint32(300)
	anns := []announcers.Announcement{
		{ID: "a", Prefix: netip.MustParsePrefix("203.0.113.1/32"), BGP: &announcers.BGPRoute{AggregationLength: 24, Communities: []string{"1:1"}, LocalPref: &lp1, Peers: []string{"p1"}}},
		{ID: "b", Prefix: netip.MustParsePrefix("203.0.113.2/32"), BGP: &announcers.BGPRoute{AggregationLength: 24, Communities: []string{"2:2"}, LocalPref: &lp2, Peers: []string{"p2"}}},
		{ID: "c", Prefix: netip.MustParsePrefix("192.0.2.5/32"), BGP: &announcers.BGPRoute{Peers: []string{"p1"}}},
		{ID: "d", Prefix: netip.MustParsePrefix("192.0.2.5/32")},
	}
	routes, owners := mergeRoutes(anns)
	if len(routes) != 2 {
		t.Fatalf("got %d routes, want 2: %v", len(routes), routes)
	}
	agg := routes[netip.MustParsePrefix("203.0.113.0/24")]
	if agg == nil || !slices.Equal(agg.path.Communities, []uint32{1<<16 | 1, 2<<16 | 2}) || *agg.path.LocalPref != 300 {
		t.Fatalf("aggregate = %+v", agg)
	}
	if !agg.allows("p1") || !agg.allows("p2") || agg.allows("p3") {
		t.Errorf("aggregate peers = %v, want p1 and p2", agg.peers)
	}
	host := routes[netip.MustParsePrefix("192.0.2.5/32")]
	if !host.allows("p3") {
		t.Errorf("an unrestricted announcement of the same prefix should open it to every peer: %v", host.peers)
	}
	if got := owners[netip.MustParsePrefix("203.0.113.0/24")]; !slices.Equal(got, []string{"a", "b"}) {
		t.Errorf("owners = %v", got)
	}
}

func TestSymmetricDiff(t *testing.T) {
	a := []netip.Prefix{netip.MustParsePrefix("192.0.2.1/32"), netip.MustParsePrefix("192.0.2.2/32")}
	b := []netip.Prefix{netip.MustParsePrefix("192.0.2.2/32"), netip.MustParsePrefix("192.0.2.3/32")}
	got := symmetricDiff(a, b)
	sortPrefixes(got)
	want := []netip.Prefix{netip.MustParsePrefix("192.0.2.1/32"), netip.MustParsePrefix("192.0.2.3/32")}
	if !slices.Equal(got, want) {
		t.Fatalf("symmetricDiff = %v, want %v", got, want)
	}
}
