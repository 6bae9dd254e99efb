package ipam

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/labels"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func svc(ns, name string, mods ...func(*Service)) Service {
	s := Service{Key: ServiceKey{ns, name}, Ports: []Port{{"TCP", 80}}, Families: []Family{IPv4}}
	for _, m := range mods {
		m(&s)
	}
	return s
}

func withKey(k string) func(*Service)      { return func(s *Service) { s.SharingKey = k } }
func withIPs(ips ...string) func(*Service) { return func(s *Service) { s.RequestedIPs = ips } }
func withPool(p string) func(*Service)     { return func(s *Service) { s.RequestedPool = p } }
func withPorts(ps ...Port) func(*Service)  { return func(s *Service) { s.Ports = ps } }
func withLocal(sel map[string]string) func(*Service) {
	return func(s *Service) { s.TrafficPolicy = TrafficLocal; s.Selector = sel }
}
func withSelector(sel map[string]string) func(*Service) {
	return func(s *Service) { s.Selector = sel }
}
func withFamilies(p FamilyPolicy, f ...Family) func(*Service) {
	return func(s *Service) { s.FamilyPolicy = p; s.Families = f }
}
func withLabels(l map[string]string) func(*Service) { return func(s *Service) { s.Labels = l } }
func withNSLabels(l map[string]string) func(*Service) {
	return func(s *Service) { s.NamespaceLabels = l }
}

func testPool(name string, addrs ...string) Pool {
	return Pool{Name: name, Created: t0, Addresses: addrs, AutoAssign: true}
}

func sel(t *testing.T, s string) labels.Selector {
	t.Helper()
	x, err := labels.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return x
}

func mustAssign(t *testing.T, a *Allocator, s Service) Assignment {
	t.Helper()
	res, err := a.Assign(s)
	if err != nil {
		t.Fatalf("Assign(%s): %v", s.Key, err)
	}
	return res
}

func addrs(ips []netip.Addr) string {
	s := make([]string, len(ips))
	for i, ip := range ips {
		s[i] = ip.String()
	}
	return strings.Join(s, ",")
}

func TestAssignRules(t *testing.T) {
	dnsSel := map[string]string{"app": "dns"}
	tests := []struct {
		name  string
		pools func(t *testing.T) []Pool
		// before are assigned first and must succeed.
		before []Service
		svc    Service
		// wantIPs is the comma-separated assignment on success.
		wantIPs  string
		wantPool string
		// wantReason and wantMsg describe a refusal.
		wantReason Reason
		wantMsg    string
		wantOther  string
	}{
		{
			name:    "cidr first address",
			pools:   func(*testing.T) []Pool { return []Pool{testPool("default", "192.0.2.0/30")} },
			svc:     svc("default", "web"),
			wantIPs: "192.0.2.0", wantPool: "default",
		},
		{
			name:    "range",
			pools:   func(*testing.T) []Pool { return []Pool{testPool("default", "192.0.2.10-192.0.2.12")} },
			before:  []Service{svc("default", "a")},
			svc:     svc("default", "web"),
			wantIPs: "192.0.2.11", wantPool: "default",
		},
		{
			name: "avoidBuggyIPs skips .0",
			pools: func(*testing.T) []Pool {
				p := testPool("default", "192.0.2.0/24")
				p.AvoidBuggyIPs = true
				return []Pool{p}
			},
			svc:     svc("default", "web"),
			wantIPs: "192.0.2.1", wantPool: "default",
		},
		{
			name: "avoidBuggyIPs refuses requested .255",
			pools: func(*testing.T) []Pool {
				p := testPool("default", "192.0.2.0/24")
				p.AvoidBuggyIPs = true
				return []Pool{p}
			},
			svc:        svc("default", "web", withIPs("192.0.2.255")),
			wantReason: ReasonBuggyIP,
			wantMsg:    `192.0.2.255 is in pool "default", which has avoidBuggyIPs: addresses ending in .0 and .255 are not used`,
		},
		{
			name:    "ipv6 pool",
			pools:   func(*testing.T) []Pool { return []Pool{testPool("v6", "2001:db8::/64")} },
			svc:     svc("default", "web", withFamilies(SingleStack, IPv6)),
			wantIPs: "2001:db8::", wantPool: "v6",
		},
		{
			name:  "exhausted",
			pools: func(*testing.T) []Pool { return []Pool{testPool("default", "192.0.2.10/31")} },
			before: []Service{
				svc("default", "a"), svc("default", "b"),
			},
			svc:        svc("dev", "c"),
			wantReason: ReasonPoolExhausted,
			wantMsg:    `pool "default" is exhausted: 2 of 2 addresses in use`,
		},
		{
			name:  "exhausted several pools",
			pools: func(*testing.T) []Pool { return []Pool{testPool("a", "192.0.2.10/32"), testPool("b", "192.0.2.20/32")} },
			before: []Service{
				svc("default", "a"), svc("default", "b"),
			},
			svc:        svc("dev", "c"),
			wantReason: ReasonPoolExhausted,
			wantMsg:    `every pool allowed for this Service is exhausted: pool "a": 1 of 1 addresses in use; pool "b": 1 of 1 addresses in use`,
		},
		{
			name:       "no pools",
			pools:      func(*testing.T) []Pool { return nil },
			svc:        svc("default", "web"),
			wantReason: ReasonNoPools,
			wantMsg:    `no usable address pool is configured`,
		},
		{
			name: "autoAssign false is skipped",
			pools: func(*testing.T) []Pool {
				p := testPool("manual", "192.0.2.0/28")
				p.AutoAssign = false
				return []Pool{p, testPool("auto", "198.51.100.0/28")}
			},
			svc:     svc("default", "web"),
			wantIPs: "198.51.100.0", wantPool: "auto",
		},
		{
			name: "autoAssign false everywhere",
			pools: func(*testing.T) []Pool {
				p := testPool("manual", "192.0.2.0/28")
				p.AutoAssign = false
				return []Pool{p}
			},
			svc:        svc("default", "web"),
			wantReason: ReasonNoAutoAssignPool,
			wantMsg:    `no pool has autoAssign enabled; request one with the metallb.io/address-pool annotation`,
		},
		{
			name: "autoAssign false pool by request",
			pools: func(*testing.T) []Pool {
				p := testPool("manual", "192.0.2.0/28")
				p.AutoAssign = false
				return []Pool{p}
			},
			svc:     svc("default", "web", withPool("manual")),
			wantIPs: "192.0.2.0", wantPool: "manual",
		},
		{
			name: "priority lower number first, unset last",
			pools: func(*testing.T) []Pool {
				a, b, c := testPool("a", "192.0.2.0/28"), testPool("b", "198.51.100.0/28"), testPool("c", "203.0.113.0/28")
				b.Priority, c.Priority = 20, 10
				return []Pool{a, b, c}
			},
			svc:     svc("default", "web"),
			wantIPs: "203.0.113.0", wantPool: "c",
		},
		{
			name: "priority falls through when full",
			pools: func(*testing.T) []Pool {
				a, b := testPool("a", "192.0.2.0/32"), testPool("b", "198.51.100.0/28")
				a.Priority, b.Priority = 1, 2
				return []Pool{a, b}
			},
			before:  []Service{svc("default", "first")},
			svc:     svc("default", "web"),
			wantIPs: "198.51.100.0", wantPool: "b",
		},
		{
			name: "namespaces allows",
			pools: func(*testing.T) []Pool {
				p := testPool("prod", "192.0.2.0/28")
				p.Namespaces = []string{"prod"}
				return []Pool{p}
			},
			svc:     svc("prod", "web"),
			wantIPs: "192.0.2.0", wantPool: "prod",
		},
		{
			name: "namespaces refuses",
			pools: func(*testing.T) []Pool {
				p := testPool("prod", "192.0.2.0/28")
				p.Namespaces = []string{"prod"}
				return []Pool{p}
			},
			svc:        svc("dev", "web"),
			wantReason: ReasonNamespaceNotAllowed,
			wantMsg:    `no pool allows namespace "dev"`,
		},
		{
			name: "namespaceSelectors allows",
			pools: func(t *testing.T) []Pool {
				p := testPool("team", "192.0.2.0/28")
				p.NamespaceSelectors = []labels.Selector{sel(t, "team=a")}
				return []Pool{p}
			},
			svc:     svc("x", "web", withNSLabels(map[string]string{"team": "a"})),
			wantIPs: "192.0.2.0", wantPool: "team",
		},
		{
			name: "namespaceSelectors refuses requested pool",
			pools: func(t *testing.T) []Pool {
				p := testPool("team", "192.0.2.0/28")
				p.NamespaceSelectors = []labels.Selector{sel(t, "team=a")}
				return []Pool{p}
			},
			svc:        svc("x", "web", withPool("team"), withNSLabels(map[string]string{"team": "b"})),
			wantReason: ReasonNamespaceNotAllowed,
			wantMsg:    `pool "team" does not allow namespace "x"`,
		},
		{
			name: "serviceSelectors allows",
			pools: func(t *testing.T) []Pool {
				p := testPool("web", "192.0.2.0/28")
				p.ServiceSelectors = []labels.Selector{sel(t, "tier=web")}
				return []Pool{p}
			},
			svc:     svc("x", "web", withLabels(map[string]string{"tier": "web"})),
			wantIPs: "192.0.2.0", wantPool: "web",
		},
		{
			name: "serviceSelectors refuses",
			pools: func(t *testing.T) []Pool {
				p := testPool("web", "192.0.2.0/28")
				p.ServiceSelectors = []labels.Selector{sel(t, "tier=web")}
				return []Pool{p}
			},
			svc:        svc("x", "db", withLabels(map[string]string{"tier": "db"})),
			wantReason: ReasonServiceNotAllowed,
			wantMsg:    `no pool allows Service x/db: its labels {tier=db} match no pool's serviceSelectors`,
		},
		{
			name:    "requested IP",
			pools:   func(*testing.T) []Pool { return []Pool{testPool("default", "192.0.2.0/24")} },
			svc:     svc("default", "web", withIPs("192.0.2.77")),
			wantIPs: "192.0.2.77", wantPool: "default",
		},
		{
			name:       "requested IP invalid",
			pools:      func(*testing.T) []Pool { return []Pool{testPool("default", "192.0.2.0/24")} },
			svc:        svc("default", "web", withIPs("192.0.2.300")),
			wantReason: ReasonInvalidIP,
			wantMsg:    `192.0.2.300 is not a valid IP`,
		},
		{
			name:       "requested IP outside pools",
			pools:      func(*testing.T) []Pool { return []Pool{testPool("default", "198.51.100.0/24")} },
			svc:        svc("default", "web", withIPs("192.0.2.77")),
			wantReason: ReasonNotInPool,
			wantMsg:    `192.0.2.77 is not in any pool`,
		},
		{
			name:       "requested IP wrong family",
			pools:      func(*testing.T) []Pool { return []Pool{testPool("default", "2001:db8::/64")} },
			svc:        svc("default", "web", withIPs("2001:db8::1")),
			wantReason: ReasonWrongFamily,
			wantMsg:    `2001:db8::1 is IPv6 but the Service's ipFamilies is [IPv4]`,
		},
		{
			name:       "requested two IPv4",
			pools:      func(*testing.T) []Pool { return []Pool{testPool("default", "192.0.2.0/24")} },
			svc:        svc("default", "web", withIPs("192.0.2.1", "192.0.2.2")),
			wantReason: ReasonTooManyIPs,
			wantMsg:    `the Service requests two IPv4 addresses (192.0.2.1 and 192.0.2.2); at most one per family`,
		},
		{
			name: "requested IP in requested pool",
			pools: func(*testing.T) []Pool {
				return []Pool{testPool("a", "192.0.2.0/24"), testPool("b", "198.51.100.0/24")}
			},
			svc:     svc("default", "web", withIPs("198.51.100.9"), withPool("b")),
			wantIPs: "198.51.100.9", wantPool: "b",
		},
		{
			name: "requested IP not in requested pool",
			pools: func(*testing.T) []Pool {
				return []Pool{testPool("a", "192.0.2.0/24"), testPool("b", "198.51.100.0/24")}
			},
			svc:        svc("default", "web", withIPs("192.0.2.9"), withPool("b")),
			wantReason: ReasonNotInRequestedPool,
			wantMsg:    `192.0.2.9 is in pool "a", not in the requested pool "b"`,
		},
		{
			name: "requested pool",
			pools: func(*testing.T) []Pool {
				return []Pool{testPool("a", "192.0.2.0/24"), testPool("b", "198.51.100.0/24")}
			},
			svc:     svc("default", "web", withPool("b")),
			wantIPs: "198.51.100.0", wantPool: "b",
		},
		{
			name:       "requested pool unknown",
			pools:      func(*testing.T) []Pool { return []Pool{testPool("a", "192.0.2.0/24")} },
			svc:        svc("default", "web", withPool("nope")),
			wantReason: ReasonUnknownPool,
			wantMsg:    `pool "nope" does not exist`,
		},
		{
			name: "requested pool overlapping is unusable",
			pools: func(*testing.T) []Pool {
				b := testPool("b", "192.0.2.128/25")
				b.Created = t0.Add(time.Minute)
				return []Pool{testPool("a", "192.0.2.0/24"), b}
			},
			svc:        svc("default", "web", withPool("b")),
			wantReason: ReasonPoolUnusable,
			wantMsg:    `pool "b" is not in use: pool "b" (192.0.2.128-192.0.2.255) overlaps pool "a" (192.0.2.0-192.0.2.255), which was created earlier; pool "b" is not used`,
		},
		{
			name: "requested pool without the family",
			pools: func(*testing.T) []Pool {
				return []Pool{testPool("a", "192.0.2.0/24")}
			},
			svc:        svc("default", "web", withPool("a"), withFamilies(SingleStack, IPv6)),
			wantReason: ReasonNoPoolForFamily,
			wantMsg:    `pool "a" has no IPv6 addresses`,
		},
		{
			name: "no pool with family",
			pools: func(*testing.T) []Pool {
				return []Pool{testPool("a", "192.0.2.0/24"), testPool("b", "198.51.100.0/24")}
			},
			svc:        svc("default", "web", withFamilies(SingleStack, IPv6)),
			wantReason: ReasonNoPoolForFamily,
			wantMsg:    `no pool allowed for this Service has IPv6 addresses`,
		},
		{
			name: "require dual stack",
			pools: func(*testing.T) []Pool {
				return []Pool{testPool("v4", "192.0.2.0/24"), testPool("ds", "198.51.100.0/24", "2001:db8::/64")}
			},
			svc:      svc("default", "web", withFamilies(RequireDualStack, IPv6, IPv4)),
			wantIPs:  "2001:db8::,198.51.100.0",
			wantPool: "ds",
		},
		{
			name: "require dual stack refused",
			pools: func(*testing.T) []Pool {
				return []Pool{testPool("v4", "192.0.2.0/24"), testPool("v6", "2001:db8::/64")}
			},
			svc:        svc("default", "web", withFamilies(RequireDualStack, IPv4, IPv6)),
			wantReason: ReasonNoPoolForFamily,
			wantMsg:    `no pool allowed for this Service has both IPv4 and IPv6 addresses`,
		},
		{
			name: "prefer dual stack falls back to primary family",
			pools: func(*testing.T) []Pool {
				return []Pool{testPool("v4", "192.0.2.0/24"), testPool("v6", "2001:db8::/64")}
			},
			svc:      svc("default", "web", withFamilies(PreferDualStack, IPv4, IPv6)),
			wantIPs:  "192.0.2.0",
			wantPool: "v4",
		},
		{
			name:     "requested dual stack IPs",
			pools:    func(*testing.T) []Pool { return []Pool{testPool("ds", "192.0.2.0/24", "2001:db8::/64")} },
			svc:      svc("default", "web", withFamilies(RequireDualStack, IPv4, IPv6), withIPs("192.0.2.5", "2001:db8::5")),
			wantIPs:  "192.0.2.5,2001:db8::5",
			wantPool: "ds",
		},
		{
			name:       "requested dual stack IPs missing a family",
			pools:      func(*testing.T) []Pool { return []Pool{testPool("ds", "192.0.2.0/24", "2001:db8::/64")} },
			svc:        svc("default", "web", withFamilies(RequireDualStack, IPv4, IPv6), withIPs("192.0.2.5")),
			wantReason: ReasonMissingFamily,
			wantMsg:    `ipFamilyPolicy RequireDualStack needs one requested address of each family, the Service requests only IPv4`,
		},
		{
			name: "requested dual stack IPs in different pools",
			pools: func(*testing.T) []Pool {
				return []Pool{testPool("v4", "192.0.2.0/24"), testPool("v6", "2001:db8::/64")}
			},
			svc:        svc("default", "web", withFamilies(RequireDualStack, IPv4, IPv6), withIPs("192.0.2.5", "2001:db8::5")),
			wantReason: ReasonDifferentPools,
			wantMsg:    `192.0.2.5 is in pool "v4" but 2001:db8::5 is in pool "v6"; all addresses of a Service must come from one pool`,
		},
		{
			name:       "require dual stack with one family",
			pools:      func(*testing.T) []Pool { return []Pool{testPool("ds", "192.0.2.0/24", "2001:db8::/64")} },
			svc:        svc("default", "web", withFamilies(RequireDualStack, IPv4)),
			wantReason: ReasonInvalidService,
			wantMsg:    `spec.ipFamilyPolicy RequireDualStack needs two spec.ipFamilies, has [IPv4]`,
		},
		{
			name:     "sharing same key different ports",
			pools:    func(*testing.T) []Pool { return []Pool{testPool("default", "192.0.2.10/31")} },
			before:   []Service{svc("default", "dns-tcp", withKey("a"), withIPs("192.0.2.10"), withPorts(Port{"TCP", 53}))},
			svc:      svc("default", "dns-udp", withKey("a"), withIPs("192.0.2.10"), withPorts(Port{"UDP", 53})),
			wantIPs:  "192.0.2.10",
			wantPool: "default",
		},
		{
			name:     "sharing key joins the shared address automatically",
			pools:    func(*testing.T) []Pool { return []Pool{testPool("default", "192.0.2.10/30")} },
			before:   []Service{svc("default", "other"), svc("default", "dns-tcp", withKey("a"), withPorts(Port{"TCP", 53}))},
			svc:      svc("default", "dns-udp", withKey("a"), withPorts(Port{"UDP", 53})),
			wantIPs:  "192.0.2.9",
			wantPool: "default",
		},
		{
			name:       "sharing different keys",
			pools:      func(*testing.T) []Pool { return []Pool{testPool("default", "192.0.2.10/31")} },
			before:     []Service{svc("default", "dns-tcp", withKey("a"), withIPs("192.0.2.10"), withPorts(Port{"TCP", 53}))},
			svc:        svc("default", "dns-udp", withKey("b"), withIPs("192.0.2.10"), withPorts(Port{"UDP", 53})),
			wantReason: ReasonSharingKeyMismatch,
			wantMsg:    `192.0.2.10 is used by default/dns-tcp with sharing key "a", this Service has key "b"`,
			wantOther:  "default/dns-tcp",
		},
		{
			name:       "sharing without key on the holder",
			pools:      func(*testing.T) []Pool { return []Pool{testPool("default", "192.0.2.10/31")} },
			before:     []Service{svc("default", "web", withIPs("192.0.2.10"))},
			svc:        svc("default", "api", withKey("b"), withIPs("192.0.2.10"), withPorts(Port{"TCP", 443})),
			wantReason: ReasonIPInUse,
			wantMsg:    `192.0.2.10 is used by default/web, which has no sharing key`,
			wantOther:  "default/web",
		},
		{
			name:       "sharing without key on the newcomer",
			pools:      func(*testing.T) []Pool { return []Pool{testPool("default", "192.0.2.10/31")} },
			before:     []Service{svc("default", "web", withKey("a"), withIPs("192.0.2.10"))},
			svc:        svc("default", "api", withIPs("192.0.2.10"), withPorts(Port{"TCP", 443})),
			wantReason: ReasonIPInUse,
			wantMsg:    `192.0.2.10 is used by default/web with sharing key "a", this Service has no sharing key`,
		},
		{
			name:       "sharing port collision",
			pools:      func(*testing.T) []Pool { return []Pool{testPool("default", "192.0.2.10/31")} },
			before:     []Service{svc("default", "dns-tcp", withKey("a"), withIPs("192.0.2.10"), withPorts(Port{"TCP", 53}))},
			svc:        svc("default", "dns-tcp2", withKey("a"), withIPs("192.0.2.10"), withPorts(Port{"TCP", 53})),
			wantReason: ReasonPortConflict,
			wantMsg:    `port TCP/53 of 192.0.2.10 is already used by default/dns-tcp`,
			wantOther:  "default/dns-tcp",
		},
		{
			name:  "sharing Local same selector",
			pools: func(*testing.T) []Pool { return []Pool{testPool("default", "192.0.2.10/31")} },
			before: []Service{svc("default", "dns-tcp", withKey("a"), withIPs("192.0.2.10"),
				withPorts(Port{"TCP", 53}), withLocal(dnsSel))},
			svc:      svc("default", "dns-udp", withKey("a"), withIPs("192.0.2.10"), withPorts(Port{"UDP", 53}), withLocal(map[string]string{"app": "dns"})),
			wantIPs:  "192.0.2.10",
			wantPool: "default",
		},
		{
			name:  "sharing Local different selector",
			pools: func(*testing.T) []Pool { return []Pool{testPool("default", "192.0.2.10/31")} },
			before: []Service{svc("default", "dns-tcp", withKey("a"), withIPs("192.0.2.10"),
				withPorts(Port{"TCP", 53}), withLocal(dnsSel))},
			svc:        svc("default", "dns-udp", withKey("a"), withIPs("192.0.2.10"), withPorts(Port{"UDP", 53}), withLocal(map[string]string{"app": "other"})),
			wantReason: ReasonSelectorMismatch,
			wantMsg:    `Services sharing 192.0.2.10 with externalTrafficPolicy Local must have the same selector: default/dns-tcp selects app=dns, this Service selects app=other`,
			wantOther:  "default/dns-tcp",
		},
		{
			name:  "sharing Cluster different selectors",
			pools: func(*testing.T) []Pool { return []Pool{testPool("default", "192.0.2.10/31")} },
			before: []Service{svc("default", "dns-tcp", withKey("a"), withIPs("192.0.2.10"),
				withPorts(Port{"TCP", 53}), withSelector(dnsSel))},
			svc:      svc("default", "dns-udp", withKey("a"), withIPs("192.0.2.10"), withPorts(Port{"UDP", 53}), withSelector(map[string]string{"app": "other"})),
			wantIPs:  "192.0.2.10",
			wantPool: "default",
		},
		{
			name:  "sharing mixed Cluster and Local",
			pools: func(*testing.T) []Pool { return []Pool{testPool("default", "192.0.2.10/31")} },
			before: []Service{svc("default", "dns-tcp", withKey("a"), withIPs("192.0.2.10"),
				withPorts(Port{"TCP", 53}), withLocal(dnsSel))},
			svc:        svc("default", "dns-udp", withKey("a"), withIPs("192.0.2.10"), withPorts(Port{"UDP", 53}), withSelector(dnsSel)),
			wantReason: ReasonTrafficPolicyMix,
			wantMsg:    `Services sharing 192.0.2.10 must have the same externalTrafficPolicy: default/dns-tcp has Local, this Service has Cluster`,
			wantOther:  "default/dns-tcp",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a := New()
			if problems, _ := a.SetPools(tc.pools(t)); len(problems) > 0 && tc.wantReason != ReasonPoolUnusable {
				t.Fatalf("pool problems: %v", problems)
			}
			for _, b := range tc.before {
				mustAssign(t, a, b)
			}
			res, err := a.Assign(tc.svc)
			if tc.wantReason == "" {
				if err != nil {
					t.Fatalf("Assign: %v", err)
				}
				if got := addrs(res.IPs); got != tc.wantIPs || res.Pool != tc.wantPool {
					t.Fatalf("got %s from %q, want %s from %q", got, res.Pool, tc.wantIPs, tc.wantPool)
				}
				if l, ok := a.Lookup(tc.svc.Key); !ok || addrs(l.IPs) != tc.wantIPs {
					t.Fatalf("Lookup = %v, %v", l, ok)
				}
				return
			}
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("got %v (%T), want *Error %s", err, err, tc.wantReason)
			}
			if e.Reason != tc.wantReason || e.Message != tc.wantMsg {
				t.Fatalf("got %s: %q\nwant %s: %q", e.Reason, e.Message, tc.wantReason, tc.wantMsg)
			}
			if tc.wantOther != "" && (e.OtherService == nil || e.OtherService.String() != tc.wantOther) {
				t.Fatalf("OtherService = %v, want %s", e.OtherService, tc.wantOther)
			}
			if _, ok := a.Lookup(tc.svc.Key); ok {
				t.Fatalf("refused Service holds addresses")
			}
			for _, b := range tc.before {
				if _, ok := a.Lookup(b.Key); !ok {
					t.Fatalf("refusal disturbed %s", b.Key)
				}
			}
		})
	}
}

func TestSetPoolsProblems(t *testing.T) {
	later := testPool("later", "192.0.2.100-192.0.2.110")
	later.Created = t0.Add(time.Hour)
	earlier := testPool("earlier", "192.0.2.0/25")
	sameTimeB := testPool("b", "198.51.100.0/24")
	sameTimeA := testPool("a", "198.51.100.128/25")
	a := New()
	problems, _ := a.SetPools([]Pool{later, earlier, sameTimeB, sameTimeA, testPool("bad", "192.0.2.300/24"), testPool("v6ok", "2001:db8::/126")})
	got := map[string]*Error{}
	for _, p := range problems {
		got[p.Pool] = p
	}
	if len(got) != 3 {
		t.Fatalf("problems = %v", problems)
	}
	if e := got["later"]; e.Reason != ReasonPoolOverlap || e.OtherPool != "earlier" ||
		e.Message != `pool "later" (192.0.2.100-192.0.2.110) overlaps pool "earlier" (192.0.2.0-192.0.2.127), which was created earlier; pool "later" is not used` {
		t.Errorf("later: %+v", e)
	}
	if e := got["b"]; e.Reason != ReasonPoolOverlap || e.OtherPool != "a" {
		t.Errorf("same creation time must fall back to name order: %+v", e)
	}
	if e := got["bad"]; e.Reason != ReasonInvalidPool || e.Message != `pool "bad": spec.addresses[0]: "192.0.2.300/24" is not a valid CIDR` {
		t.Errorf("bad: %+v", e)
	}
	// The earlier pool keeps working, including the overlapped part.
	res, err := a.Assign(svc("default", "web", withIPs("192.0.2.105")))
	if err != nil || res.Pool != "earlier" {
		t.Fatalf("Assign = %v, %v", res, err)
	}
	stats := a.Stats()
	want := []string{"a 128/0 usable", "b 0/0 not usable", "bad 0/0 not usable", "earlier 128/1 usable", "later 0/0 not usable", "v6ok 4/0 usable"}
	for i, s := range stats {
		usable := "usable"
		if !s.Usable {
			usable = "not usable"
		}
		if got := fmt.Sprintf("%s %d/%d %s", s.Name, s.Size, s.Used, usable); i >= len(want) || got != want[i] {
			t.Errorf("stats[%d] = %s, want %v", i, got, want)
		}
		if s.Free != s.Size-s.Used {
			t.Errorf("stats[%d] free = %d", i, s.Free)
		}
	}
}

func TestParseRange(t *testing.T) {
	tests := []struct {
		in, want string
		size     uint64
		buggy    uint64
		err      string
	}{
		{in: "192.0.2.0/24", want: "192.0.2.0-192.0.2.255", size: 256, buggy: 254},
		{in: "192.0.2.7/24", want: "192.0.2.0-192.0.2.255", size: 256, buggy: 254},
		{in: "192.0.2.0/23", want: "192.0.2.0-192.0.3.255", size: 512, buggy: 508},
		{in: "192.0.2.250-192.0.3.5", want: "192.0.2.250-192.0.3.5", size: 12, buggy: 10},
		{in: "192.0.2.10-192.0.2.10", want: "192.0.2.10", size: 1, buggy: 1},
		{in: "2001:db8::/120", want: "2001:db8::-2001:db8::ff", size: 256, buggy: 256},
		{in: "2001:db8::/32", want: "2001:db8::-2001:db8:ffff:ffff:ffff:ffff:ffff:ffff", size: ^uint64(0), buggy: ^uint64(0)},
		{in: "192.0.2.0/33", err: `"192.0.2.0/33" is not a valid CIDR`},
		{in: "192.0.2.9-192.0.2.1", err: `range "192.0.2.9-192.0.2.1" ends before it starts`},
		{in: "192.0.2.1-2001:db8::1", err: `range "192.0.2.1-2001:db8::1" mixes IPv4 and IPv6`},
		{in: "192.0.2.1-x", err: `range "192.0.2.1-x": "x" is not a valid IP`},
		{in: "192.0.2.1", err: `"192.0.2.1" is neither a CIDR nor a range like 192.0.2.10-192.0.2.20`},
		// Special addresses are refused, also when a range only spans them.
		{in: "0.0.0.0/0", err: `0.0.0.0-255.255.255.255 contains the unspecified address (0.0.0.0/32), which cannot be load-balancer addresses`},
		{in: "127.0.0.0/8", err: `127.0.0.0-127.255.255.255 contains loopback addresses (127.0.0.0/8), which cannot be load-balancer addresses`},
		{in: "126.255.255.250-128.0.0.5", err: `126.255.255.250-128.0.0.5 contains loopback addresses (127.0.0.0/8), which cannot be load-balancer addresses`},
		{in: "169.254.1.0/24", err: `169.254.1.0-169.254.1.255 contains link-local addresses (169.254.0.0/16), which cannot be load-balancer addresses`},
		{in: "224.0.0.1-224.0.0.5", err: `224.0.0.1-224.0.0.5 contains multicast addresses (224.0.0.0/4), which cannot be load-balancer addresses`},
		{in: "255.255.255.0/24", err: `255.255.255.0-255.255.255.255 contains the broadcast address (255.255.255.255/32), which cannot be load-balancer addresses`},
		{in: "::/0", err: `::-ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff contains the unspecified address (::/128), which cannot be load-balancer addresses`},
		{in: "::1/128", err: `::1 contains the loopback address (::1/128), which cannot be load-balancer addresses`},
		{in: "::ffff:192.0.2.0/120", err: `::ffff:192.0.2.0-::ffff:192.0.2.255 contains IPv4-mapped IPv6 addresses (::ffff:0.0.0.0/96), which cannot be load-balancer addresses`},
		{in: "::ffff:192.0.2.1-::ffff:192.0.2.5", err: `::ffff:192.0.2.1-::ffff:192.0.2.5 contains IPv4-mapped IPv6 addresses (::ffff:0.0.0.0/96), which cannot be load-balancer addresses`},
		{in: "fe80::/64", err: `fe80::-fe80::ffff:ffff:ffff:ffff contains link-local addresses (fe80::/10), which cannot be load-balancer addresses`},
		{in: "ff02::1-ff02::5", err: `ff02::1-ff02::5 contains multicast addresses (ff00::/8), which cannot be load-balancer addresses`},
		// Messages quote user input shortened.
		{in: strings.Repeat("1", 300), err: `"` + strings.Repeat("1", 64) + `"… (300 bytes) is neither a CIDR nor a range like 192.0.2.10-192.0.2.20`},
		{in: "192.0.2.1-" + strings.Repeat("x", 1000), err: `range "192.0.2.1-` + strings.Repeat("x", 54) + `"… (1010 bytes): "` + strings.Repeat("x", 64) + `"… (1000 bytes) is not a valid IP`},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			r, err := parseRange(tc.in)
			if tc.err != "" {
				if err == nil || err.Error() != tc.err {
					t.Fatalf("err = %v, want %s", err, tc.err)
				}
				return
			}
			if err != nil || r.String() != tc.want {
				t.Fatalf("got %v, %v; want %s", r, err, tc.want)
			}
			if got := rangeSize(r, false); got != tc.size {
				t.Errorf("size = %d, want %d", got, tc.size)
			}
			if got := rangeSize(r, true); got != tc.buggy {
				t.Errorf("size avoiding buggy IPs = %d, want %d", got, tc.buggy)
			}
		})
	}
}

func TestStableAndRestore(t *testing.T) {
	pools := []Pool{testPool("default", "192.0.2.0/28")}
	a := New()
	a.SetPools(pools)
	mustAssign(t, a, svc("default", "a"))
	b := mustAssign(t, a, svc("default", "b"))
	a.Release(ServiceKey{"default", "a"})
	// Re-assigning b (e.g. on an unrelated update) keeps its address although a lower one is free.
	if again := mustAssign(t, a, svc("default", "b", withPorts(Port{"TCP", 8080}))); addrs(again.IPs) != addrs(b.IPs) {
		t.Fatalf("b moved from %s to %s", addrs(b.IPs), addrs(again.IPs))
	}
	// A new allocator rebuilt from status gives the same answers and refuses a status that
	// collides.
	r := New()
	r.SetPools(pools)
	if _, err := r.Restore(svc("default", "b"), b.IPs); err != nil {
		t.Fatal(err)
	}
	_, err := r.Restore(svc("default", "c"), b.IPs)
	var e *Error
	if !errors.As(err, &e) || e.Reason != ReasonIPInUse {
		t.Fatalf("Restore of a colliding status = %v", err)
	}
	if got := mustAssign(t, r, svc("default", "b")); addrs(got.IPs) != addrs(b.IPs) {
		t.Fatalf("restored b assigned %s, want %s", addrs(got.IPs), addrs(b.IPs))
	}
	// A Service whose request changed does not keep its old address.
	moved := mustAssign(t, r, svc("default", "b", withIPs("192.0.2.9")))
	if addrs(moved.IPs) != "192.0.2.9" {
		t.Fatalf("b = %s, want the newly requested 192.0.2.9", addrs(moved.IPs))
	}
	if _, err := r.Restore(svc("default", "x", withIPs("192.0.2.3")), b.IPs); err == nil {
		t.Fatal("Restore kept addresses that differ from the request")
	}
}

func TestExhaustionAndReuse(t *testing.T) {
	a := New()
	p := testPool("default", "192.0.2.0/28")
	p.AvoidBuggyIPs = true
	a.SetPools([]Pool{p})
	for i := range 15 {
		mustAssign(t, a, svc("default", fmt.Sprint(i)))
	}
	_, err := a.Assign(svc("default", "extra"))
	if err == nil || err.Error() != `pool "default" is exhausted: 15 of 15 addresses in use` {
		t.Fatalf("err = %v", err)
	}
	a.Release(ServiceKey{"default", "3"})
	got := mustAssign(t, a, svc("default", "extra"))
	if addrs(got.IPs) != "192.0.2.4" {
		t.Fatalf("got %s, want the released 192.0.2.4", addrs(got.IPs))
	}
}

func BenchmarkAssign10000(b *testing.B) {
	services := make([]Service, 10000)
	for i := range services {
		services[i] = svc(fmt.Sprintf("ns%d", i%10), fmt.Sprintf("svc-%d", i), withFamilies(SingleStack, IPv6))
	}
	for b.Loop() {
		a := New()
		a.SetPools([]Pool{testPool("bench", "2001:db8::/112")})
		for _, s := range services {
			if _, err := a.Assign(s); err != nil {
				b.Fatal(err)
			}
		}
	}
}
