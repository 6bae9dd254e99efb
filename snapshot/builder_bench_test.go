package snapshot

import (
	"fmt"
	"net/netip"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	metallbv1beta1 "github.com/herald-lb/herald/config/metallb/v1beta1"
	"github.com/herald-lb/herald/heartbeat"
)

// bigBuilder is 1,000 nodes with heartbeats and 10,000 LoadBalancer Services, each on its own
// IPv6 address with one EndpointSlice, and one L2Advertisement.
func bigBuilder(b *testing.B) (*Builder, []netip.Addr) {
	bl := NewBuilder(nil)
	now := time.Now()
	for i := 0; i < 1000; i++ {
		name := fmt.Sprintf("node-%04d", i)
		bl.SetNode(node(name, corev1.ConditionTrue, false, map[string]string{"zone": fmt.Sprint(i % 3)}))
		l, err := heartbeat.Encode(heartbeat.Heartbeat{NodeName: name, RenewTime: now, LeaseDuration: time.Minute}, "hs")
		if err != nil {
			b.Fatal(err)
		}
		bl.SetLease(l)
	}
	bl.SetPool(&metallbv1beta1.IPAddressPool{ObjectMeta: metav1.ObjectMeta{Namespace: "mlb", Name: "pool"},
		Spec: metallbv1beta1.IPAddressPoolSpec{Addresses: []string{"2001:db8::/96"}}})
	bl.SetL2Advertisement(&metallbv1beta1.L2Advertisement{ObjectMeta: metav1.ObjectMeta{Namespace: "mlb", Name: "l2"}})
	ips := make([]netip.Addr, 10000)
	ip := netip.MustParseAddr("2001:db8::1:0")
	for i := range ips {
		ips[i] = ip
		name := fmt.Sprintf("svc-%05d", i)
		bl.SetService(lbService("ns", name, "pool", i%2 == 0, ip.String()))
		bl.SetEndpointSlice(slice("ns", name+"-1", name, ep(fmt.Sprintf("node-%04d", i%1000), ptr(true), nil, nil)))
		ip = ip.Next()
	}
	bl.Units() // warm the unit cache
	return bl, ips
}

// BenchmarkEndpointChange is the common event: one EndpointSlice changes and the speaker
// rebuilds the units of that Service's IP.
func BenchmarkEndpointChange(b *testing.B) {
	bl, ips := bigBuilder(b)
	i := 0
	for b.Loop() {
		n := i % len(ips)
		name := fmt.Sprintf("svc-%05d", n)
		bl.SetEndpointSlice(slice("ns", name+"-1", name, ep(fmt.Sprintf("node-%04d", (i*7)%1000), ptr(true), nil, nil)))
		if len(bl.UnitsFor(ips[n])) != 1 {
			b.Fatal("unit missing")
		}
		i++
	}
}

// BenchmarkNodeChange is a Node (or heartbeat) update followed by taking the next snapshot.
func BenchmarkNodeChange(b *testing.B) {
	bl, _ := bigBuilder(b)
	i := 0
	for b.Loop() {
		bl.SetNode(node(fmt.Sprintf("node-%04d", i%1000), corev1.ConditionTrue, i%2 == 0, nil))
		if len(bl.Snapshot(time.Now()).Nodes()) != 1000 {
			b.Fatal("nodes missing")
		}
		i++
	}
}

// BenchmarkAdvertisementChange is the rare global change: every unit is rebuilt.
func BenchmarkAdvertisementChange(b *testing.B) {
	bl, _ := bigBuilder(b)
	for b.Loop() {
		bl.SetL2Advertisement(&metallbv1beta1.L2Advertisement{ObjectMeta: metav1.ObjectMeta{Namespace: "mlb", Name: "l2"}})
		if len(bl.Units()) != 10000 {
			b.Fatal("units missing")
		}
	}
}
