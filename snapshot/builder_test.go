package snapshot

import (
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	metallbv1beta1 "github.com/herald-lb/herald/config/metallb/v1beta1"
	"github.com/herald-lb/herald/framework"
	"github.com/herald-lb/herald/heartbeat"
)

func ptr[T any](v T) *T { return &v }

func node(name string, ready corev1.ConditionStatus, cordoned bool, lbls map[string]string) *corev1.Node {
	return &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: lbls},
		Spec:       corev1.NodeSpec{Unschedulable: cordoned},
		Status: corev1.NodeStatus{Conditions: []corev1.NodeCondition{
			{Type: corev1.NodeReady, Status: ready},
			{Type: corev1.NodeNetworkUnavailable, Status: corev1.ConditionFalse},
		}},
	}
}

func lbService(ns, name, pool string, local bool, ips ...string) *corev1.Service {
	s := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: map[string]string{"app": name}},
		Spec:       corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer, ExternalTrafficPolicy: corev1.ServiceExternalTrafficPolicyCluster},
	}
	if pool != "" {
		s.Annotations = map[string]string{AnnotationAllocatedFromPool: pool}
	}
	if local {
		s.Spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyLocal
	}
	for _, ip := range ips {
		s.Status.LoadBalancer.Ingress = append(s.Status.LoadBalancer.Ingress, corev1.LoadBalancerIngress{IP: ip})
	}
	return s
}

func slice(ns, name, svc string, eps ...discoveryv1.Endpoint) *discoveryv1.EndpointSlice {
	return &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: map[string]string{discoveryv1.LabelServiceName: svc}},
		Endpoints:  eps,
	}
}

func ep(node string, ready, serving, terminating *bool) discoveryv1.Endpoint {
	e := discoveryv1.Endpoint{Conditions: discoveryv1.EndpointConditions{Ready: ready, Serving: serving, Terminating: terminating}}
	if node != "" {
		e.NodeName = &node
	}
	return e
}

func TestServingByNode(t *testing.T) {
	yes, no := ptr(true), ptr(false)
	es := slice("ns", "s", "svc",
		ep("a", yes, yes, no),  // ready
		ep("a", nil, nil, nil), // unknown ready counts as ready
		ep("b", no, yes, no),   // serving, not terminating
		ep("b", no, yes, yes),  // serving but terminating
		ep("c", no, no, no),    // not ready, not serving
		ep("c", no, nil, nil),  // not ready, serving unknown reads as not ready
		ep("", yes, nil, nil),  // no node
	)
	got := ServingByNode(es)
	want := map[string]int{"a": 2, "b": 1, "": 1}
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Fatalf("got %v, want %v", got, want)
		}
	}
}

func TestBuilder(t *testing.T) {
	now := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	var changes []Change
	b := NewBuilder(func(c Change) { changes = append(changes, c) })

	b.SetNode(node("n1", corev1.ConditionTrue, false, map[string]string{"zone": "a"}))
	b.SetNode(node("n2", corev1.ConditionFalse, true, nil))
	lease, err := heartbeat.Encode(heartbeat.Heartbeat{NodeName: "n1", RenewTime: now, LeaseDuration: 10 * time.Second,
		Interfaces: []framework.Interface{{Name: "eth0", Up: true, Prefixes: []netip.Prefix{netip.MustParsePrefix("192.0.2.1/24")}}}}, "herald-system")
	if err != nil {
		t.Fatal(err)
	}
	b.SetLease(lease)

	snap := b.Snapshot(now)
	n1, n2 := snap.Node("n1"), snap.Node("n2")
	if n1 == nil || n1.Ready != framework.ConditionTrue || n1.Speaker == nil || !n1.Speaker.AliveAt(now) || n1.Speaker.Interfaces[0].Name != "eth0" {
		t.Fatalf("n1 = %+v", n1)
	}
	if n2 == nil || n2.Ready != framework.ConditionFalse || !n2.Unschedulable || n2.Speaker != nil || n2.NetworkUnavailable {
		t.Fatalf("n2 = %+v", n2)
	}

	b.SetPool(&metallbv1beta1.IPAddressPool{ObjectMeta: metav1.ObjectMeta{Name: "prod", Labels: map[string]string{"tier": "prod"}},
		Spec: metallbv1beta1.IPAddressPoolSpec{Addresses: []string{"192.0.2.10-192.0.2.19"}}})
	b.SetL2Advertisement(&metallbv1beta1.L2Advertisement{ObjectMeta: metav1.ObjectMeta{Namespace: "mlb", Name: "l2"},
		Spec: metallbv1beta1.L2AdvertisementSpec{IPAddressPools: []string{"prod"}, Interfaces: []string{"eth0"}}})
	b.SetCommunity(&metallbv1beta1.Community{ObjectMeta: metav1.ObjectMeta{Namespace: "mlb", Name: "c"},
		Spec: metallbv1beta1.CommunitySpec{Communities: []metallbv1beta1.CommunityAlias{{Name: "no-export", Value: "65535:65281"}}}})
	b.SetBGPAdvertisement(&metallbv1beta1.BGPAdvertisement{ObjectMeta: metav1.ObjectMeta{Namespace: "mlb", Name: "bgp"},
		Spec: metallbv1beta1.BGPAdvertisementSpec{IPAddressPoolSelectors: []metav1.LabelSelector{{MatchLabels: map[string]string{"tier": "prod"}}},
			Communities: []string{"no-export", "64500:1"}, LocalPref: 50}})

	// Two Services share 192.0.2.10 (TCP and UDP of one DNS server); one more has its own IP.
	b.SetService(lbService("ns", "dns-udp", "prod", true, "192.0.2.10"))
	b.SetService(lbService("ns", "dns-tcp", "prod", true, "192.0.2.10"))
	b.SetService(lbService("ns", "web", "", false, "192.0.2.20"))
	b.SetService(&corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "clusterip"}, Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeClusterIP}})
	b.SetEndpointSlice(slice("ns", "dns-tcp-1", "dns-tcp", ep("n1", ptr(true), nil, nil)))
	b.SetEndpointSlice(slice("ns", "dns-tcp-2", "dns-tcp", ep("n1", ptr(true), nil, nil), ep("n2", ptr(true), nil, nil)))
	b.SetL2Status(&metallbv1beta1.ServiceL2Status{ObjectMeta: metav1.ObjectMeta{Namespace: "herald-system", Name: "l2-abc"},
		Status: metallbv1beta1.MetalLBServiceL2Status{Node: "n1", ServiceNamespace: "ns", ServiceName: "dns-udp"}})

	units := b.Units()
	var keys []string
	for _, u := range units {
		keys = append(keys, u.Key())
	}
	if want := []string{"192.0.2.10/L2", "192.0.2.10/BGP", "192.0.2.20/L2"}; !slices.Equal(keys, want) {
		t.Fatalf("units %v, want %v", keys, want)
	}
	l2 := units[0]
	if l2.Pool != "prod" || l2.PoolLabels["tier"] != "prod" || len(l2.Services) != 2 || l2.Services[0].Key.Name != "dns-tcp" {
		t.Fatalf("unit %+v", l2)
	}
	if got := l2.Services[0].ServingEndpoints; got["n1"] != 2 || got["n2"] != 1 || !l2.Services[0].TrafficPolicyLocal {
		t.Fatalf("dns-tcp serving %v", got)
	}
	if !slices.Equal(l2.AnnouncingNodes, []string{"n1"}) || len(units[1].AnnouncingNodes) != 0 {
		t.Fatalf("announcers L2 %v BGP %v", l2.AnnouncingNodes, units[1].AnnouncingNodes)
	}
	bgp := units[1].Advertisements[0].BGP
	if !slices.Equal(bgp.Communities, []string{"65535:65281", "64500:1"}) || bgp.AggregationLength != 32 || bgp.AggregationLengthV6 != 128 || bgp.LocalPref != 50 {
		t.Fatalf("BGP attributes %+v", bgp)
	}
	// 192.0.2.20 is in no pool: the L2Advertisement names "prod" and the BGP one selects
	// prod's labels, so nothing covers it; it still gets an L2 unit to explain that.
	if u := units[2]; u.Mode != framework.ModeL2 || len(u.Advertisements) != 1 {
		t.Fatalf("uncovered unit %+v", u)
	}

	// An endpoint change touches only its Service's IP, and the cached unit is rebuilt.
	changes = nil
	b.SetEndpointSlice(slice("ns", "dns-tcp-2", "dns-tcp"))
	if len(changes) != 1 || changes[0].All || !slices.Equal(changes[0].IPs, []netip.Addr{netip.MustParseAddr("192.0.2.10")}) {
		t.Fatalf("changes %+v", changes)
	}
	if got := b.UnitsFor(netip.MustParseAddr("192.0.2.10"))[0].Services[0].ServingEndpoints; got["n1"] != 1 || got["n2"] != 0 {
		t.Fatalf("after update, serving %v", got)
	}
	if units[0].Services[0].ServingEndpoints["n2"] != 1 {
		t.Fatal("a unit handed out earlier was mutated")
	}
	// Deleting a slice leaves the other's endpoints; deleting both leaves none.
	b.DeleteEndpointSlice("ns", "dns-tcp-2", "dns-tcp")
	if got := b.UnitsFor(netip.MustParseAddr("192.0.2.10"))[0].Services[0].ServingEndpoints; got["n1"] != 1 {
		t.Fatalf("after deleting one slice, serving %v", got)
	}
	b.DeleteEndpointSlice("ns", "dns-tcp-1", "dns-tcp")
	if got := b.UnitsFor(netip.MustParseAddr("192.0.2.10"))[0].Services[0].ServingEndpoints; len(got) != 0 {
		t.Fatalf("after deleting every slice, serving %v", got)
	}
	b.SetEndpointSlice(slice("ns", "dns-tcp-1", "dns-tcp", ep("n1", ptr(true), nil, nil)))

	// Moving the status object to another node, then deleting it.
	b.SetL2Status(&metallbv1beta1.ServiceL2Status{ObjectMeta: metav1.ObjectMeta{Namespace: "herald-system", Name: "l2-abc"},
		Status: metallbv1beta1.MetalLBServiceL2Status{Node: "n2", ServiceNamespace: "ns", ServiceName: "dns-udp"}})
	if got := b.UnitsFor(netip.MustParseAddr("192.0.2.10"))[0].AnnouncingNodes; !slices.Equal(got, []string{"n2"}) {
		t.Fatalf("announcers %v, want [n2]", got)
	}
	b.DeleteL2Status("herald-system", "l2-abc")
	if got := b.UnitsFor(netip.MustParseAddr("192.0.2.10"))[0].AnnouncingNodes; len(got) != 0 {
		t.Fatalf("announcers %v after delete", got)
	}

	// A Service changing IP leaves its old unit.
	b.SetService(lbService("ns", "dns-udp", "prod", true, "192.0.2.11"))
	if got := b.UnitsFor(netip.MustParseAddr("192.0.2.10"))[0].Services; len(got) != 1 || got[0].Key.Name != "dns-tcp" {
		t.Fatalf("services on the old IP: %v", got)
	}
	b.DeleteService("ns", "dns-tcp")
	if got := b.UnitsFor(netip.MustParseAddr("192.0.2.10")); got != nil {
		t.Fatalf("units of an unused IP: %v", got)
	}

	// Losing the heartbeat.
	b.DeleteLease(lease.Namespace, lease.Name)
	if b.Snapshot(now).Node("n1").Speaker != nil {
		t.Fatal("heartbeat survived its Lease")
	}
	b.DeleteNode("n2")
	if len(b.Snapshot(now).Nodes()) != 1 {
		t.Fatal("deleted node still in the snapshot")
	}
}

// TestPoolIsDerivedFromTheIP: the user-writable metallb.io/ip-allocated-from-pool annotation
// picks nothing; the pool (and so the advertisements, interfaces and BGP peers) is the one
// containing the address, the earliest created where pools overlap.
func TestPoolIsDerivedFromTheIP(t *testing.T) {
	b := NewBuilder(nil)
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	pool := func(name, addrs string, created time.Time, lbls map[string]string) *metallbv1beta1.IPAddressPool {
		return &metallbv1beta1.IPAddressPool{ObjectMeta: metav1.ObjectMeta{Namespace: "hs", Name: name, Labels: lbls, CreationTimestamp: metav1.NewTime(created)},
			Spec: metallbv1beta1.IPAddressPoolSpec{Addresses: []string{addrs}}}
	}
	b.SetPool(pool("prod", "192.0.2.0/28", t0, map[string]string{"tier": "prod"}))
	b.SetPool(pool("lab", "198.51.100.0/24", t0, map[string]string{"tier": "lab"}))
	// "late" overlaps prod and was created after it: prod keeps the overlap, as in ipam.
	b.SetPool(pool("late", "192.0.2.8-192.0.2.20", t0.Add(time.Hour), nil))
	b.SetL2Advertisement(&metallbv1beta1.L2Advertisement{ObjectMeta: metav1.ObjectMeta{Namespace: "hs", Name: "prod-only"},
		Spec: metallbv1beta1.L2AdvertisementSpec{IPAddressPools: []string{"prod"}, Interfaces: []string{"eth0"}}})

	for _, tc := range []struct {
		name, annotation, ip, wantPool string
		covered                        bool
	}{
		{"honest", "prod", "192.0.2.1", "prod", true},
		{"claims another pool", "lab", "192.0.2.2", "prod", true},
		{"claims the advertised pool", "prod", "198.51.100.5", "lab", false},
		{"no annotation", "", "192.0.2.3", "prod", true},
		{"overlap: the earlier pool", "late", "192.0.2.9", "prod", true},
		{"only in the later pool", "prod", "192.0.2.20", "late", false},
		{"in no pool", "prod", "203.0.113.1", "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b.SetService(lbService("ns", "svc", tc.annotation, false, tc.ip))
			units := b.UnitsFor(netip.MustParseAddr(tc.ip))
			if len(units) != 1 {
				t.Fatalf("units %v", units)
			}
			u := units[0]
			covered := len(u.Covering()) > 0
			if u.Pool != tc.wantPool || covered != tc.covered {
				t.Fatalf("pool %q covered %v, want pool %q covered %v", u.Pool, covered, tc.wantPool, tc.covered)
			}
			if tc.wantPool != "" && u.PoolLabels["tier"] != map[string]string{"prod": "prod", "lab": "lab"}[tc.wantPool] {
				t.Fatalf("pool labels %v", u.PoolLabels)
			}
		})
	}
	b.SetService(lbService("ns", "svc", "", false, "192.0.2.9"))
	b.DeletePool("prod")
	if u := b.UnitsFor(netip.MustParseAddr("192.0.2.9"))[0]; u.Pool != "late" {
		t.Fatalf("after deleting prod, pool %q, want late", u.Pool)
	}
}

func TestBadInputAffectsOnlyItself(t *testing.T) {
	b := NewBuilder(nil)
	b.SetL2Advertisement(&metallbv1beta1.L2Advertisement{ObjectMeta: metav1.ObjectMeta{Namespace: "mlb", Name: "bad"},
		Spec: metallbv1beta1.L2AdvertisementSpec{NodeSelectors: []metav1.LabelSelector{{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "zone", Operator: "Near"}}}}}})
	svc := lbService("ns", "web", "p", false, "192.0.2.1", "not-an-ip")
	b.SetService(svc)
	lease, _ := heartbeat.Encode(heartbeat.Heartbeat{NodeName: "n1", RenewTime: time.Now(), LeaseDuration: time.Minute}, "hs")
	lease.Annotations[heartbeat.AnnotationInterfaces] = "{"
	b.SetLease(lease)
	b.SetNode(node("n1", corev1.ConditionTrue, false, map[string]string{"zone": "a"}))

	errs := b.Errors()
	var msgs []string
	for _, e := range errs {
		msgs = append(msgs, e.Error())
	}
	all := strings.Join(msgs, "\n")
	for _, want := range []string{"L2Advertisement mlb/bad: spec.nodeSelectors[0]", "service ns/web: status.loadBalancer.ingress[1].ip", "lease hs/herald-speaker-n1"} {
		if !strings.Contains(all, want) {
			t.Errorf("errors %q lack %q", all, want)
		}
	}
	us := b.UnitsFor(netip.MustParseAddr("192.0.2.1"))
	if len(us) != 1 || us[0].Advertisements[0].NodeSelectors[0].Matches(labels.Set{"zone": "a"}) {
		t.Fatal("an invalid node selector matched a node")
	}
	if sp := b.Snapshot(time.Now()).Node("n1").Speaker; sp == nil || !sp.AliveAt(time.Now()) {
		t.Fatal("a malformed interfaces annotation cost the node its heartbeat")
	}
	b.DeleteL2Advertisement("mlb", "bad")
	if len(b.Errors()) != 2 {
		t.Fatalf("errors after delete: %v", b.Errors())
	}
}

func TestLeaseRenewalReRunsUnitsOnlyWhenADecisionCanChange(t *testing.T) {
	now := time.Now()
	eth0 := []framework.Interface{{Name: "eth0", Up: true, Prefixes: []netip.Prefix{netip.MustParsePrefix("192.0.2.1/24")}}}
	eth1 := []framework.Interface{{Name: "eth1", Up: true, Prefixes: []netip.Prefix{netip.MustParsePrefix("192.0.2.1/24")}}}
	beat := func(renew time.Time, draining bool, itfs []framework.Interface) heartbeat.Heartbeat {
		return heartbeat.Heartbeat{NodeName: "n1", RenewTime: renew, LeaseDuration: 10 * time.Second, Draining: draining, Interfaces: itfs}
	}
	withHealth := func(hb heartbeat.Heartbeat, state framework.AnnouncerState, reason string) heartbeat.Heartbeat {
		hb.Announcers = map[framework.AnnouncerKind]framework.AnnouncerHealth{framework.AnnouncerKindL2v4: {State: state, Reason: reason}}
		return hb
	}
	tests := []struct {
		name      string
		prev, cur heartbeat.Heartbeat
		// seen is how long after prev the builder sees cur, on its own clock.
		seen    time.Duration
		wantAll bool
	}{
		{"renewal of a live heartbeat", beat(now.Add(-2*time.Second), false, eth0), beat(now, false, eth0), 2 * time.Second, false},
		{"interfaces changed", beat(now.Add(-2*time.Second), false, eth0), beat(now, false, eth1), 2 * time.Second, true},
		{"draining", beat(now.Add(-2*time.Second), false, eth0), beat(now, true, eth0), 2 * time.Second, true},
		{"revived after expiry", beat(now.Add(-time.Minute), false, eth0), beat(now, false, eth0), time.Minute, true},
		// The writer's clock is an hour behind the reader's: its renewals are renewals.
		{"renewal from a skewed clock", beat(now.Add(-time.Hour), false, eth0), beat(now.Add(-time.Hour+2*time.Second), false, eth0), 2 * time.Second, false},
		// The writer's renew times say it renewed, but the reader saw nothing for a minute.
		{"renewal seen after expiry on the reader's clock", beat(now.Add(-2*time.Second), false, eth0), beat(now, false, eth0), time.Minute, true},
		// Plugins read an announcer's state, not its reason.
		{"announcer reason changed, state the same",
			withHealth(beat(now.Add(-2*time.Second), false, eth0), framework.AnnouncerWarming, "watching the heartbeats for a lease duration"),
			withHealth(beat(now, false, eth0), framework.AnnouncerWarming, "announcing the IPs it is about to take over"), 2 * time.Second, false},
		{"announcer state changed",
			withHealth(beat(now.Add(-2*time.Second), false, eth0), framework.AnnouncerWarming, "announcing the IPs it is about to take over"),
			withHealth(beat(now, false, eth0), framework.AnnouncerReady, ""), 2 * time.Second, true},
		{"announcer kind added",
			withHealth(beat(now.Add(-2*time.Second), false, eth0), framework.AnnouncerReady, ""),
			func() heartbeat.Heartbeat {
				hb := withHealth(beat(now, false, eth0), framework.AnnouncerReady, "")
				hb.Announcers[framework.AnnouncerKindBGP] = framework.AnnouncerHealth{State: framework.AnnouncerReady}
				return hb
			}(), 2 * time.Second, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var last Change
			clock := now
			b := NewBuilder(func(c Change) { last = c })
			b.SetClock(func() time.Time { return clock })
			b.SetNode(node("n1", corev1.ConditionTrue, false, nil))
			for i, hb := range []heartbeat.Heartbeat{tt.prev, tt.cur} {
				lease, err := heartbeat.Encode(hb, "herald-system")
				if err != nil {
					t.Fatal(err)
				}
				if i == 1 {
					clock = clock.Add(tt.seen)
				}
				last = Change{}
				b.SetLease(lease)
				if i == 0 && !last.All {
					t.Fatalf("first heartbeat: got %+v, want All", last)
				}
			}
			if last.All != tt.wantAll {
				t.Fatalf("got All=%v, want %v", last.All, tt.wantAll)
			}
			// The snapshot always carries the latest renewal, whatever was signalled.
			if got := b.Snapshot(clock).Node("n1").Speaker.RenewTime; !got.Equal(tt.cur.RenewTime.Truncate(time.Microsecond)) && !got.Equal(tt.cur.RenewTime) {
				t.Fatalf("renew time %v, want %v", got, tt.cur.RenewTime)
			}
		})
	}
}

// A heartbeat lives for its lease duration after the reader saw it change, on the reader's
// clock: the writer's renew time, however far off, does not count, and a resync of the same
// renewal does not extend it.
func TestHeartbeatExpiresOnTheObserversClock(t *testing.T) {
	t0 := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	lease := 2500 * time.Millisecond
	tests := []struct {
		name string
		// writer is the writer's clock minus the reader's.
		writer time.Duration
	}{
		{"same clock", 0},
		{"writer a minute ahead", time.Minute},
		{"writer a minute behind", -time.Minute},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock := t0
			b := NewBuilder(nil)
			b.SetClock(func() time.Time { return clock })
			b.SetNode(node("n1", corev1.ConditionTrue, false, nil))
			l, err := heartbeat.Encode(heartbeat.Heartbeat{NodeName: "n1", RenewTime: t0.Add(tt.writer), LeaseDuration: lease}, "herald-system")
			if err != nil {
				t.Fatal(err)
			}
			b.SetLease(l)
			clock = t0.Add(2 * time.Second)
			b.SetLease(l.DeepCopy()) // a resync: the same renewal again
			checks := []struct {
				at    time.Duration
				alive bool
			}{{0, true}, {lease - time.Millisecond, true}, {lease, false}, {time.Hour, false}}
			for _, c := range checks {
				if got := b.Snapshot(t0.Add(c.at)).Node("n1").Speaker.AliveAt(t0.Add(c.at)); got != c.alive {
					t.Errorf("alive %s after it was seen: %v, want %v", c.at, got, c.alive)
				}
			}
		})
	}
}

// A renewal the reader's watch delivers late (a backlog after the watch was cut off) is paced:
// seen as it would have been had it come as promptly as the one before, by the gap between
// the writer's renew times, whatever the writer's clock says; a prompt one is not, and ends
// the pace, as does a gap of a lease duration in the writer's renewals.
func TestHeartbeatPacedWhenDeliveredLate(t *testing.T) {
	t0 := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	type delivery struct {
		renew, seen time.Duration // the writer's renew time (plus its offset) and when the reader saw it
	}
	tests := []struct {
		name string
		// writer is the writer's clock minus the reader's.
		writer     time.Duration
		deliveries []delivery
		wantPaced  time.Duration // after t0; -1: zero
	}{
		{name: "prompt renewals", deliveries: []delivery{{0, 100 * time.Millisecond}, {time.Second, 1100 * time.Millisecond}}, wantPaced: -1},
		{name: "a little late: jitter", deliveries: []delivery{{0, 100 * time.Millisecond}, {time.Second, 1300 * time.Millisecond}}, wantPaced: -1},
		{name: "in a backlog", deliveries: []delivery{{0, 100 * time.Millisecond}, {time.Second, 3 * time.Second}}, wantPaced: 1100 * time.Millisecond},
		{name: "a backlog of two", deliveries: []delivery{{0, 100 * time.Millisecond}, {time.Second, 3 * time.Second}, {2 * time.Second, 3 * time.Second}},
			wantPaced: 2100 * time.Millisecond},
		{name: "in a backlog, writer a minute ahead", writer: time.Minute,
			deliveries: []delivery{{0, 100 * time.Millisecond}, {time.Second, 3 * time.Second}}, wantPaced: 1100 * time.Millisecond},
		{name: "prompt again after a backlog", deliveries: []delivery{{0, 100 * time.Millisecond}, {time.Second, 3 * time.Second},
			{3 * time.Second, 3100 * time.Millisecond}}, wantPaced: -1},
		{name: "writer's clock stepped back", deliveries: []delivery{{0, 100 * time.Millisecond}, {-time.Second, 3 * time.Second}}, wantPaced: -1},
		{name: "first seen", deliveries: []delivery{{0, 3 * time.Second}}, wantPaced: -1},
		// The writer renewed nothing for a lease duration (cut off too, or restarted): its
		// next write may simply have been slow, so it sets no pace.
		{name: "after the writer's own gap", deliveries: []delivery{{0, 100 * time.Millisecond}, {10 * time.Second, 12 * time.Second}}, wantPaced: -1},
		{name: "paced again after the writer's gap", deliveries: []delivery{{0, 100 * time.Millisecond}, {10 * time.Second, 12 * time.Second},
			{11 * time.Second, 15 * time.Second}}, wantPaced: 13 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var clock time.Time
			b := NewBuilder(nil)
			b.SetClock(func() time.Time { return clock })
			b.SetNode(node("n1", corev1.ConditionTrue, false, nil))
			for _, d := range tt.deliveries {
				l, err := heartbeat.Encode(heartbeat.Heartbeat{NodeName: "n1", RenewTime: t0.Add(tt.writer + d.renew), LeaseDuration: 2500 * time.Millisecond}, "herald-system")
				if err != nil {
					t.Fatal(err)
				}
				clock = t0.Add(d.seen)
				b.SetLease(l)
			}
			got := b.Snapshot(clock).Node("n1").Speaker.Paced
			want := time.Time{}
			if tt.wantPaced >= 0 {
				want = t0.Add(tt.wantPaced)
			}
			if !got.Equal(want) {
				t.Errorf("paced %s, want %s", got, want)
			}
		})
	}
}

// A renewal after the writer renewed nothing for a lease duration marks when it came back
// (framework.SpeakerInfo.Returned), unless the writer says it is warming (a restart); prompt
// renewals keep the mark.
func TestHeartbeatReturned(t *testing.T) {
	t0 := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	type renewal struct {
		at      time.Duration // renew time and when the reader saw it
		warming bool
	}
	tests := []struct {
		name     string
		renewals []renewal
		want     time.Duration // after t0; -1: zero
	}{
		{name: "steady", renewals: []renewal{{0, false}, {time.Second, false}, {2 * time.Second, false}}, want: -1},
		{name: "first seen", renewals: []renewal{{0, false}}, want: -1},
		{name: "back after a gap", renewals: []renewal{{0, false}, {10 * time.Second, false}}, want: 10 * time.Second},
		{name: "kept by prompt renewals", renewals: []renewal{{0, false}, {10 * time.Second, false}, {11 * time.Second, false}}, want: 10 * time.Second},
		{name: "restarted", renewals: []renewal{{0, false}, {10 * time.Second, true}, {11 * time.Second, false}}, want: -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var clock time.Time
			b := NewBuilder(nil)
			b.SetClock(func() time.Time { return clock })
			b.SetNode(node("n1", corev1.ConditionTrue, false, nil))
			for _, r := range tt.renewals {
				state := framework.AnnouncerReady
				if r.warming {
					state = framework.AnnouncerWarming
				}
				l, err := heartbeat.Encode(heartbeat.Heartbeat{NodeName: "n1", RenewTime: t0.Add(r.at), LeaseDuration: 2500 * time.Millisecond,
					Announcers: map[framework.AnnouncerKind]framework.AnnouncerHealth{framework.AnnouncerKindL2v4: {State: state}}}, "herald-system")
				if err != nil {
					t.Fatal(err)
				}
				clock = t0.Add(r.at)
				b.SetLease(l)
			}
			got := b.Snapshot(clock).Node("n1").Speaker.Returned
			want := time.Time{}
			if tt.want >= 0 {
				want = t0.Add(tt.want)
			}
			if !got.Equal(want) {
				t.Errorf("returned %s, want %s", got, want)
			}
		})
	}
}
