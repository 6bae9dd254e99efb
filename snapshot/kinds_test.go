package snapshot

import (
	"fmt"
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	metallbv1beta1 "github.com/herald-lb/herald/config/metallb/v1beta1"
	"github.com/herald-lb/herald/framework"
	"github.com/herald-lb/herald/heartbeat"
)

// kindObjects holds one object of every kind, with the typed setter and deleter that Set and
// Delete must reach for it.
func kindObjects(t *testing.T) map[Kind]struct {
	obj      any
	set, del func(*Builder)
} {
	lease, err := heartbeat.Encode(heartbeat.Heartbeat{NodeName: "n1", RenewTime: time.Date(2026, 12, 7, 0, 0, 0, 0, time.UTC), LeaseDuration: 10 * time.Second,
		Interfaces: []framework.Interface{{Name: "eth0", Up: true, Prefixes: []netip.Prefix{netip.MustParsePrefix("192.0.2.1/24")}}}}, "herald-system")
	if err != nil {
		t.Fatal(err)
	}
	n := node("n1", corev1.ConditionTrue, false, nil)
	svc := lbService("ns", "web", "prod", true, "192.0.2.10")
	es := slice("ns", "web-1", "web", ep("n1", ptr(true), nil, nil))
	pool := &metallbv1beta1.IPAddressPool{ObjectMeta: metav1.ObjectMeta{Name: "prod"}, Spec: metallbv1beta1.IPAddressPoolSpec{Addresses: []string{"192.0.2.10-192.0.2.19"}}}
	l2 := &metallbv1beta1.L2Advertisement{ObjectMeta: metav1.ObjectMeta{Namespace: "mlb", Name: "l2"}}
	bgp := &metallbv1beta1.BGPAdvertisement{ObjectMeta: metav1.ObjectMeta{Namespace: "mlb", Name: "bgp"}}
	comm := &metallbv1beta1.Community{ObjectMeta: metav1.ObjectMeta{Namespace: "mlb", Name: "c"},
		Spec: metallbv1beta1.CommunitySpec{Communities: []metallbv1beta1.CommunityAlias{{Name: "no-export", Value: "65535:65281"}}}}
	l2s := &metallbv1beta1.ServiceL2Status{ObjectMeta: metav1.ObjectMeta{Namespace: "herald-system", Name: "l2-abc"},
		Status: metallbv1beta1.MetalLBServiceL2Status{Node: "n1", ServiceNamespace: "ns", ServiceName: "web"}}
	bgps := &metallbv1beta1.ServiceBGPStatus{ObjectMeta: metav1.ObjectMeta{Namespace: "herald-system", Name: "bgp-abc"},
		Status: metallbv1beta1.MetalLBServiceBGPStatus{Node: "n1", ServiceNamespace: "ns", ServiceName: "web"}}
	type entry = struct {
		obj      any
		set, del func(*Builder)
	}
	return map[Kind]entry{
		KindNode:             {n, func(b *Builder) { b.SetNode(n) }, func(b *Builder) { b.DeleteNode("n1") }},
		KindLease:            {lease, func(b *Builder) { b.SetLease(lease) }, func(b *Builder) { b.DeleteLease(lease.Namespace, lease.Name) }},
		KindService:          {svc, func(b *Builder) { b.SetService(svc) }, func(b *Builder) { b.DeleteService("ns", "web") }},
		KindEndpointSlice:    {es, func(b *Builder) { b.SetEndpointSlice(es) }, func(b *Builder) { b.DeleteEndpointSlice("ns", "web-1", "web") }},
		KindPool:             {pool, func(b *Builder) { b.SetPool(pool) }, func(b *Builder) { b.DeletePool("prod") }},
		KindL2Advertisement:  {l2, func(b *Builder) { b.SetL2Advertisement(l2) }, func(b *Builder) { b.DeleteL2Advertisement("mlb", "l2") }},
		KindBGPAdvertisement: {bgp, func(b *Builder) { b.SetBGPAdvertisement(bgp) }, func(b *Builder) { b.DeleteBGPAdvertisement("mlb", "bgp") }},
		KindCommunity:        {comm, func(b *Builder) { b.SetCommunity(comm) }, func(b *Builder) { b.DeleteCommunity("mlb", "c") }},
		KindL2Status:         {l2s, func(b *Builder) { b.SetL2Status(l2s) }, func(b *Builder) { b.DeleteL2Status("herald-system", "l2-abc") }},
		KindBGPStatus:        {bgps, func(b *Builder) { b.SetBGPStatus(bgps) }, func(b *Builder) { b.DeleteBGPStatus("herald-system", "bgp-abc") }},
	}
}

// state is what a builder shows of its contents: its summary, its snapshot's nodes and
// units, its problems and the changes it announced.
func state(b *Builder, changes []Change) string {
	now := time.Date(2026, 12, 7, 0, 0, 1, 0, time.UTC)
	snap := b.Snapshot(now)
	var s strings.Builder
	fmt.Fprintf(&s, "%s\n", b)
	for _, n := range snap.Nodes() {
		fmt.Fprintf(&s, "node %s speaker=%v\n", n.Name, n.Speaker != nil)
	}
	for _, u := range b.Units() {
		fmt.Fprintf(&s, "unit %s announcers %v", u.Key(), u.AnnouncingNodes)
		for _, svc := range u.Services {
			fmt.Fprintf(&s, " service %s endpoints %v", svc.Key, svc.ServingEndpoints)
		}
		for _, a := range u.Advertisements {
			fmt.Fprintf(&s, " advertisement %s %s", a.Name, a.Mode)
			if a.BGP != nil {
				fmt.Fprintf(&s, " %+v", *a.BGP)
			}
		}
		s.WriteString("\n")
	}
	fmt.Fprintf(&s, "problems %v errors %v changes %+v\n", b.Problems(), b.Errors(), changes)
	return s.String()
}

// TestSetAndDeleteReachTheKindsSetter: Set and Delete of every kind do what the kind's own
// setter and deleter do, on a builder that holds one object of every other kind (so a unit
// exists whose inputs each kind changes).
func TestSetAndDeleteReachTheKindsSetter(t *testing.T) {
	objs := kindObjects(t)
	if len(objs) != len(Kinds) {
		t.Fatalf("the test covers %d kinds, Kinds lists %d", len(objs), len(Kinds))
	}
	for _, k := range Kinds {
		t.Run(k.String(), func(t *testing.T) {
			var viaKind, viaTyped []Change
			byKind := NewBuilder(func(c Change) { viaKind = append(viaKind, c) })
			typed := NewBuilder(func(c Change) { viaTyped = append(viaTyped, c) })
			for _, other := range Kinds {
				if other != k {
					objs[other].set(byKind)
					objs[other].set(typed)
				}
			}
			viaKind, viaTyped = nil, nil
			if err := byKind.Set(k, objs[k].obj); err != nil {
				t.Fatal(err)
			}
			objs[k].set(typed)
			if got, want := state(byKind, viaKind), state(typed, viaTyped); got != want {
				t.Fatalf("after Set:\n%s\nwant (typed setter):\n%s", got, want)
			}
			if err := byKind.Delete(k, objs[k].obj); err != nil {
				t.Fatal(err)
			}
			objs[k].del(typed)
			if got, want := state(byKind, viaKind), state(typed, viaTyped); got != want {
				t.Fatalf("after Delete:\n%s\nwant (typed deleter):\n%s", got, want)
			}
		})
	}
}

// TestSetRefusesAnObjectOfAnotherKind: a wiring mistake (an informer of one kind fed to the
// handler of another) is an error naming both, and changes nothing.
func TestSetRefusesAnObjectOfAnotherKind(t *testing.T) {
	objs := kindObjects(t)
	for _, k := range Kinds {
		wrong := Kinds[(int(k)+1)%len(Kinds)]
		var changes []Change
		b := NewBuilder(func(c Change) { changes = append(changes, c) })
		before := state(b, nil)
		if err := b.Set(wrong, objs[k].obj); err == nil || !strings.Contains(err.Error(), k.String()) || !strings.Contains(err.Error(), wrong.String()) {
			t.Errorf("Set(%s, a %s object): err %v, want one naming both kinds", wrong, k, err)
		}
		if err := b.Delete(wrong, objs[k].obj); err == nil {
			t.Errorf("Delete(%s, a %s object): no error", wrong, k)
		}
		if after := state(b, changes); after != before || len(changes) != 0 {
			t.Errorf("a refused %s object changed the builder:\n%s", k, after)
		}
	}
	if err := NewBuilder(nil).Set(KindNode, "not an object"); err == nil {
		t.Error("Set of a string: no error")
	}
}

// TestKindNamesAreDistinct: the names appear in errors and `herald explain`'s messages.
func TestKindNamesAreDistinct(t *testing.T) {
	seen := map[string]Kind{}
	for _, k := range Kinds {
		if prev, ok := seen[k.String()]; ok || strings.HasPrefix(k.String(), "Kind(") {
			t.Errorf("kind %d is named %q, like %d", k, k, prev)
		}
		seen[k.String()] = k
	}
	if !reflect.DeepEqual(len(seen), len(kindNames)) {
		t.Errorf("%d names for %d kinds", len(kindNames), len(seen))
	}
}
