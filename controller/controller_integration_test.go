//go:build integration

package controller

import (
	"context"
	"fmt"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	metallbv1beta1 "github.com/herald-lb/herald/config/metallb/v1beta1"
)

func noAutoAssign(p *metallbv1beta1.IPAddressPool) { f := false; p.Spec.AutoAssign = &f }

func TestIntegrationAllocateAndRefuse(t *testing.T) {
	f := newFixture(t)
	other := f.env.Namespace(t)
	f.pool("small", []string{"192.0.2.10/31"}, func(p *metallbv1beta1.IPAddressPool) {
		p.Spec.AllocateTo = &metallbv1beta1.ServiceAllocation{Namespaces: []string{f.ns}}
	})
	f.pool("manual", []string{"198.51.100.0/28"}, noAutoAssign)
	f.start("c1", nil)

	f.service("a")
	f.waitAllocated(f.ns, "a", "192.0.2.10", "small")
	f.waitEvent(f.ns, "a", corev1.EventTypeNormal, ReasonAllocated, `Assigned 192.0.2.10 from pool "small"`)
	f.service("b")
	f.waitAllocated(f.ns, "b", "192.0.2.11", "small")

	// Exhaustion names the pool and its usage.
	f.service("c")
	f.waitRefused(f.ns, "c", "PoolExhausted", `pool "small" is exhausted: 2 of 2 addresses in use`)

	// autoAssign false: only by request.
	f.service("d", annotate("metallb.io/address-pool", "manual"))
	f.waitAllocated(f.ns, "d", "198.51.100.0", "manual")

	// serviceAllocation.namespaces: the other namespace is refused by every auto-assign pool.
	f.service("e", inNamespace(other))
	f.waitRefused(other, "e", "NamespaceNotAllowed", fmt.Sprintf("no pool allows namespace %q", other))

	// Releasing on delete lets the refused Service in.
	if err := f.client.CoreV1().Services(f.ns).Delete(context.Background(), "a", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	f.waitAllocated(f.ns, "c", "192.0.2.10", "small")

	// Changing type releases: status and annotation cleared, the address reused.
	s := f.get(f.ns, "b")
	s.Spec.Type = corev1.ServiceTypeClusterIP
	s.Spec.LoadBalancerClass = nil
	if _, err := f.client.CoreV1().Services(f.ns).Update(context.Background(), s, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	f.waitFor("b released", func() (bool, string) {
		s := f.get(f.ns, "b")
		_, annotated := s.Annotations[AnnotationAllocatedFromPool]
		c := meta.FindStatusCondition(s.Status.Conditions, ConditionAddressAllocated)
		return ingressIPs(s) == "" && !annotated && c == nil, fmt.Sprintf("ingress %q annotated %v condition %v", ingressIPs(s), annotated, c)
	})
	f.service("g")
	f.waitAllocated(f.ns, "g", "192.0.2.11", "small")
}

func TestIntegrationSeed002SharedDNS(t *testing.T) {
	f := newFixture(t)
	f.pool("default", []string{"192.0.2.0/24"})
	f.start("c1", nil)
	dns := map[string]string{"app": "dns"}
	key := annotate("metallb.io/allow-shared-ip", "dns")
	ip := annotate("metallb.io/loadBalancerIPs", "192.0.2.53")
	f.service("dns-tcp", key, ip, ports(corev1.ProtocolTCP, 53), localPolicy(dns))
	f.service("dns-udp", key, ip, ports(corev1.ProtocolUDP, 53), localPolicy(dns))
	f.waitAllocated(f.ns, "dns-tcp", "192.0.2.53", "default")
	f.waitAllocated(f.ns, "dns-udp", "192.0.2.53", "default")

	// Without a requested IP, the same key joins the shared address too.
	f.service("dns-tcp-alt", key, ports(corev1.ProtocolTCP, 5353), localPolicy(dns))
	f.waitAllocated(f.ns, "dns-tcp-alt", "192.0.2.53", "default")

	// A different selector is refused, naming the rule and the other Service.
	f.service("dns-other", key, ip, ports(corev1.ProtocolUDP, 5353), localPolicy(map[string]string{"app": "other"}))
	f.waitRefused(f.ns, "dns-other", "SelectorMismatch", fmt.Sprintf(
		"Services sharing 192.0.2.53 with externalTrafficPolicy Local must have the same selector: %s/dns-tcp selects app=dns, this Service selects app=other", f.ns))

	// A different key is refused.
	f.service("dns-b", annotate("metallb.io/allow-shared-ip", "b"), ip, ports(corev1.ProtocolUDP, 54), localPolicy(dns))
	f.waitRefused(f.ns, "dns-b", "SharingKeyMismatch", fmt.Sprintf(`192.0.2.53 is used by %s/dns-tcp with sharing key "dns", this Service has key "b"`, f.ns))

	// A port collision is refused.
	f.service("dns-tcp2", key, ip, ports(corev1.ProtocolTCP, 53), localPolicy(dns))
	f.waitRefused(f.ns, "dns-tcp2", "PortConflict", fmt.Sprintf("port TCP/53 of 192.0.2.53 is already used by %s/dns-tcp", f.ns))

	// Mixing Cluster and Local is refused.
	f.service("dns-cluster", key, ip, ports(corev1.ProtocolTCP, 853))
	f.waitRefused(f.ns, "dns-cluster", "TrafficPolicyMismatch", fmt.Sprintf(
		"Services sharing 192.0.2.53 must have the same externalTrafficPolicy: %s/dns-tcp has Local, this Service has Cluster", f.ns))
}

func TestIntegrationMalformedAnnotations(t *testing.T) {
	f := newFixture(t)
	f.pool("default", []string{"192.0.2.0/24"})
	f.start("c1", nil)
	good := f.waitAllocated(f.ns, f.service("good").Name, "192.0.2.0", "default")

	cases := []struct {
		name, key, value, reason, message string
	}{
		{"bad-ip", "metallb.io/loadBalancerIPs", "192.0.2.300", "InvalidIP", "192.0.2.300 is not a valid IP"},
		{"outside", "metallb.universe.tf/loadBalancerIPs", "203.0.113.77", "NotInPool", "203.0.113.77 is not in any pool"},
		{"wrong-family", "metallb.io/loadBalancerIPs", "2001:db8::1", "WrongFamily", "2001:db8::1 is IPv6 but the Service's ipFamilies is [IPv4]"},
		{"unknown-pool", "metallb.universe.tf/address-pool", "nope", "UnknownPool", `pool "nope" does not exist`},
		{"taken", "metallb.io/loadBalancerIPs", "192.0.2.0", "IPInUse", fmt.Sprintf("192.0.2.0 is used by %s/good, which has no sharing key", f.ns)},
	}
	for _, tc := range cases {
		f.service(tc.name, annotate(tc.key, tc.value))
	}
	for _, tc := range cases {
		f.waitRefused(f.ns, tc.name, tc.reason, tc.message)
	}
	// A good request next to them still works, and the first Service was never written again.
	f.service("requested", annotate("metallb.io/loadBalancerIPs", "192.0.2.99"))
	f.waitAllocated(f.ns, "requested", "192.0.2.99", "default")
	if now := f.get(f.ns, "good"); now.ResourceVersion != good.ResourceVersion {
		t.Fatalf("good Service was modified: resourceVersion %s -> %s, ingress %s", good.ResourceVersion, now.ResourceVersion, ingressIPs(now))
	}
	// Fixing the annotation fixes the Service.
	s := f.get(f.ns, "bad-ip")
	s.Annotations["metallb.io/loadBalancerIPs"] = "192.0.2.30"
	if _, err := f.client.CoreV1().Services(f.ns).Update(context.Background(), s, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	f.waitAllocated(f.ns, "bad-ip", "192.0.2.30", "default")
}

func TestIntegrationOnlyOwnedServices(t *testing.T) {
	f := newFixture(t)
	f.pool("default", []string{"192.0.2.0/24"})
	f.start("c1", nil)
	foreign := f.service("foreign", class("example.com/other"))
	f.service("owned")
	f.waitAllocated(f.ns, "owned", "192.0.2.0", "default")
	// Give the controller time to have seen the foreign Service too: it was created first.
	time.Sleep(time.Second)
	now := f.get(f.ns, "foreign")
	if now.ResourceVersion != foreign.ResourceVersion || ingressIPs(now) != "" || len(now.Status.Conditions) != 0 {
		t.Fatalf("foreign Service touched: rv %s -> %s, ingress %q, conditions %v", foreign.ResourceVersion, now.ResourceVersion, ingressIPs(now), now.Status.Conditions)
	}
	if evs := f.events(f.ns, "foreign"); len(evs) != 0 {
		t.Fatalf("events on a foreign Service: %v", evs)
	}
}

func TestIntegrationPoolOverlap(t *testing.T) {
	f := newFixture(t)
	f.pool("first", []string{"192.0.2.0/25"})
	time.Sleep(1100 * time.Millisecond) // creationTimestamp has one-second resolution
	f.pool("second", []string{"192.0.2.100-192.0.2.200"})
	f.start("c1", nil)
	msg := `pool "second" (192.0.2.100-192.0.2.200) overlaps pool "first" (192.0.2.0-192.0.2.127), which was created earlier; pool "second" is not used`
	f.waitFor("overlap condition on the later pool", func() (bool, string) {
		p, err := f.mlb.MetallbV1beta1().IPAddressPools(f.ns).Get(context.Background(), "second", metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		c := meta.FindStatusCondition(p.Status.Conditions, ConditionPoolUsable)
		return c != nil && c.Status == metav1.ConditionFalse && c.Reason == "PoolOverlap" && c.Message == msg, fmt.Sprintf("%+v", c)
	})
	f.waitEvent(f.ns, "second", corev1.EventTypeWarning, "PoolOverlap", msg)
	// The earlier pool keeps working, also for the overlapped addresses.
	f.service("in-overlap", annotate("metallb.io/loadBalancerIPs", "192.0.2.110"))
	f.waitAllocated(f.ns, "in-overlap", "192.0.2.110", "first")
	f.service("wants-second", annotate("metallb.io/address-pool", "second"))
	f.waitRefused(f.ns, "wants-second", "PoolUnusable", `pool "second" is not in use: `+msg)
	f.waitFor("usage in the first pool's status", func() (bool, string) {
		p, _ := f.mlb.MetallbV1beta1().IPAddressPools(f.ns).Get(context.Background(), "first", metav1.GetOptions{})
		return p.Status.AssignedIPv4 == 1 && p.Status.AvailableIPv4 == 127, fmt.Sprintf("%+v", p.Status)
	})
	// Deleting the earlier pool makes the later one usable; the Services keep their addresses,
	// now in the later pool.
	if err := f.mlb.MetallbV1beta1().IPAddressPools(f.ns).Delete(context.Background(), "first", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	f.waitAllocated(f.ns, "in-overlap", "192.0.2.110", "second")
	f.waitAllocated(f.ns, "wants-second", "192.0.2.100", "second")
}

func TestIntegrationLeaderFailoverAndRestart(t *testing.T) {
	f := newFixture(t)
	f.pool("default", []string{"192.0.2.0/24"})
	stopA := f.start("a", nil)
	f.waitFor("a leads", func() (bool, string) { return f.leaseHolder() == "a", f.leaseHolder() })
	stopB := f.start("b", nil)
	const n = 20
	for i := range n {
		f.service(fmt.Sprintf("s%02d", i))
	}
	before := map[string]string{}
	for i := range n {
		name := fmt.Sprintf("s%02d", i)
		before[name] = f.waitAnyIP(f.ns, name)
	}
	// Free an address in the middle, so a new Service must not take a held one.
	if err := f.client.CoreV1().Services(f.ns).Delete(context.Background(), "s05", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	freed := before["s05"]
	delete(before, "s05")

	// The leader dies mid-run, while Services are still arriving.
	for i := n; i < 2*n; i++ {
		f.service(fmt.Sprintf("s%02d", i))
		if i == n+2 {
			stopA()
		}
	}
	f.waitFor("b leads", func() (bool, string) { return f.leaseHolder() == "b", f.leaseHolder() })
	holders := map[string]string{}
	for name, ip := range before {
		holders[ip] = name
	}
	for i := n; i < 2*n; i++ {
		name := fmt.Sprintf("s%02d", i)
		ip := f.waitAnyIP(f.ns, name)
		if other, dup := holders[ip]; dup {
			t.Fatalf("%s got %s, already held by %s", name, ip, other)
		}
		holders[ip] = name
		before[name] = ip
	}
	f.service("after-failover")
	got := f.waitAnyIP(f.ns, "after-failover")
	if other, dup := holders[got]; dup {
		t.Fatalf("after-failover got %s, already held by %s", got, other)
	}
	if _, reused := holders[freed]; !reused && got != freed {
		t.Fatalf("after-failover got %s; the freed %s is still free", got, freed)
	}
	assertUnchanged(t, f, before)

	// Restart: a fresh controller rebuilds from status and changes nothing.
	stopB()
	f.start("c", nil)
	f.waitFor("c leads", func() (bool, string) { return f.leaseHolder() == "c", f.leaseHolder() })
	f.service("after-restart")
	before["after-failover"] = got
	got = f.waitAnyIP(f.ns, "after-restart")
	for name, ip := range before {
		if ip == got {
			t.Fatalf("after-restart got %s, already held by %s", got, name)
		}
	}
	assertUnchanged(t, f, before)
}

func assertUnchanged(t *testing.T, f *fixture, want map[string]string) {
	t.Helper()
	for name, ip := range want {
		if got := ingressIPs(f.get(f.ns, name)); got != ip {
			t.Errorf("%s moved from %s to %s", name, ip, got)
		}
	}
}

func TestIntegrationServiceAllocation(t *testing.T) {
	f := newFixture(t)
	teamA := f.env.Namespace(t)
	ns, err := f.client.CoreV1().Namespaces().Get(context.Background(), teamA, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ns.Labels["team"] = "a"
	if _, err := f.client.CoreV1().Namespaces().Update(context.Background(), ns, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	f.pool("general", []string{"198.51.100.0/24"}, func(p *metallbv1beta1.IPAddressPool) { p.Spec.AvoidBuggyIPs = true })
	f.pool("team-a", []string{"192.0.2.0/28"}, func(p *metallbv1beta1.IPAddressPool) {
		p.Spec.AllocateTo = &metallbv1beta1.ServiceAllocation{
			Priority:           1,
			NamespaceSelectors: []metav1.LabelSelector{{MatchLabels: map[string]string{"team": "a"}}},
		}
	})
	f.pool("web-only", []string{"203.0.113.0/28"}, noAutoAssign, func(p *metallbv1beta1.IPAddressPool) {
		p.Spec.AllocateTo = &metallbv1beta1.ServiceAllocation{
			ServiceSelectors: []metav1.LabelSelector{{MatchLabels: map[string]string{"tier": "web"}}},
		}
	})
	f.start("c1", nil)

	// namespaceSelectors + priority: the team's namespace gets the prioritised pool.
	f.service("in-team", inNamespace(teamA))
	f.waitAllocated(teamA, "in-team", "192.0.2.0", "team-a")
	// Elsewhere the general pool, skipping .0 (avoidBuggyIPs).
	f.service("elsewhere")
	f.waitAllocated(f.ns, "elsewhere", "198.51.100.1", "general")
	// serviceSelectors: refused without the label, allowed with it.
	f.service("no-label", annotate("metallb.io/address-pool", "web-only"))
	f.waitRefused(f.ns, "no-label", "ServiceNotAllowed",
		fmt.Sprintf(`pool "web-only" does not allow Service %s/no-label: its labels {} match none of the pool's serviceSelectors`, f.ns))
	f.service("web", annotate("metallb.io/address-pool", "web-only"), func(s *corev1.Service) { s.Labels = map[string]string{"tier": "web"} })
	f.waitAllocated(f.ns, "web", "203.0.113.0", "web-only")
	// A requested .255 in the avoidBuggyIPs pool is refused with the rule.
	f.service("buggy", annotate("metallb.io/loadBalancerIPs", "198.51.100.255"))
	f.waitRefused(f.ns, "buggy", "BuggyIP", `198.51.100.255 is in pool "general", which has avoidBuggyIPs: addresses ending in .0 and .255 are not used`)
}
