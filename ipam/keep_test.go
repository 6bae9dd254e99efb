package ipam

import (
	"errors"
	"net/netip"
	"testing"

	"k8s.io/apimachinery/pkg/labels"
)

func ip(s string) netip.Addr { return netip.MustParseAddr(s) }

func withCurrent(ips ...string) func(*Service) {
	return func(s *Service) {
		for _, x := range ips {
			s.Current = append(s.Current, ip(x))
		}
	}
}

func restrictedTo(p Pool, namespaces ...string) Pool {
	p.Namespaces = namespaces
	return p
}

func withPriority(p Pool, prio int) Pool {
	p.Priority = prio
	return p
}

// TestPoolOrderAsMetalLB pins MetalLB's pool order: pools whose serviceAllocation selects
// the Service (by namespace, namespace labels or Service labels) before pools without a
// serviceAllocation, priority within each group (unset last), then name.
func TestPoolOrderAsMetalLB(t *testing.T) {
	tests := []struct {
		name   string
		pools  func(t *testing.T) []Pool
		before []Service
		svc    Service
		want   string // pool
	}{
		{
			// MetalLB's controller test "request IP for service from no priority namespace
			// specific ip pool".
			name: "namespace pool before unrestricted, no priorities",
			pools: func(*testing.T) []Pool {
				return []Pool{testPool("a-open", "192.0.2.0/28"), restrictedTo(testPool("z-team", "198.51.100.0/28"), "team")}
			},
			svc:  svc("team", "web"),
			want: "z-team",
		},
		{
			name: "namespaceSelectors pool before unrestricted",
			pools: func(t *testing.T) []Pool {
				p := testPool("z-sel", "198.51.100.0/28")
				p.NamespaceSelectors = []labels.Selector{sel(t, "tier=prod")}
				return []Pool{testPool("a-open", "192.0.2.0/28"), p}
			},
			svc:  svc("team", "web", withNSLabels(map[string]string{"tier": "prod"})),
			want: "z-sel",
		},
		{
			name: "serviceSelectors pool before unrestricted",
			pools: func(t *testing.T) []Pool {
				p := testPool("z-sel", "198.51.100.0/28")
				p.ServiceSelectors = []labels.Selector{sel(t, "app=web")}
				return []Pool{testPool("a-open", "192.0.2.0/28"), p}
			},
			svc:  svc("team", "web", withLabels(map[string]string{"app": "web"})),
			want: "z-sel",
		},
		{
			name: "empty serviceAllocation counts as restricted",
			pools: func(*testing.T) []Pool {
				p := testPool("z-empty", "198.51.100.0/28")
				p.ServiceAllocation = true
				return []Pool{testPool("a-open", "192.0.2.0/28"), p}
			},
			svc:  svc("team", "web"),
			want: "z-empty",
		},
		{
			name: "priority orders within the restricted group",
			pools: func(*testing.T) []Pool {
				return []Pool{
					testPool("a-open", "192.0.2.0/28"),
					withPriority(restrictedTo(testPool("b", "198.51.100.0/28"), "team"), 20),
					withPriority(restrictedTo(testPool("c", "198.51.100.16/28"), "team"), 10),
					restrictedTo(testPool("a-unset", "198.51.100.32/28"), "team"),
				}
			},
			svc:  svc("team", "web"),
			want: "c",
		},
		{
			name: "unset priority last within the restricted group",
			pools: func(*testing.T) []Pool {
				return []Pool{
					restrictedTo(testPool("a-unset", "198.51.100.32/28"), "team"),
					withPriority(restrictedTo(testPool("z-prio", "198.51.100.0/28"), "team"), 5),
				}
			},
			svc:  svc("team", "web"),
			want: "z-prio",
		},
		{
			name: "restricted pool of another namespace is not tried",
			pools: func(*testing.T) []Pool {
				return []Pool{testPool("z-open", "192.0.2.0/28"), restrictedTo(testPool("a-other", "198.51.100.0/28"), "other")}
			},
			svc:  svc("team", "web"),
			want: "z-open",
		},
		{
			name: "exhausted restricted group falls back to unrestricted",
			pools: func(*testing.T) []Pool {
				return []Pool{testPool("z-open", "192.0.2.0/28"), restrictedTo(testPool("a-team", "198.51.100.0/32"), "team")}
			},
			before: []Service{svc("team", "first")},
			svc:    svc("team", "web"),
			want:   "z-open",
		},
		{
			name: "unrestricted pools by name",
			pools: func(*testing.T) []Pool {
				return []Pool{testPool("b", "192.0.2.0/28"), testPool("a", "198.51.100.0/28")}
			},
			svc:  svc("team", "web"),
			want: "a",
		},
		{
			// MetalLB looks for a dual-stack pool within each group before settling for
			// one family, and never leaves a group that gave it one family.
			name: "PreferDualStack settles within the restricted group",
			pools: func(*testing.T) []Pool {
				return []Pool{testPool("a-dual", "192.0.2.0/28", "2001:db8::/120"), restrictedTo(testPool("z-v4", "198.51.100.0/28"), "team")}
			},
			svc:  svc("team", "web", withFamilies(PreferDualStack, IPv4, IPv6)),
			want: "z-v4",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a := New()
			if problems, _ := a.SetPools(tc.pools(t)); len(problems) > 0 {
				t.Fatalf("problems: %v", problems)
			}
			for _, b := range tc.before {
				mustAssign(t, a, b)
			}
			if got := mustAssign(t, a, tc.svc); got.Pool != tc.want {
				t.Fatalf("pool = %q (%s), want %q", got.Pool, addrs(got.IPs), tc.want)
			}
		})
	}
}

// TestPoolChangesKeepAddresses: a pool renamed, split, removed or narrowed never takes an
// address away; the address belongs to the pool that now contains it, or is kept with the
// reason when none does (or the one that does no longer allows the Service).
func TestPoolChangesKeepAddresses(t *testing.T) {
	buggy := func(p Pool) Pool { p.AvoidBuggyIPs = true; return p }
	tests := []struct {
		name  string
		after []Pool
		// restart rebuilds a new allocator from status (Current) instead of keeping memory.
		restart bool
		// x and y hold 192.0.2.0 and 192.0.2.1 from pool "a" 192.0.2.0/28 before the change.
		x, y     Service
		wantPool [2]string
		wantKept [2]Reason
		wantIPs  [2]string
	}{
		{
			name:     "rename",
			after:    []Pool{testPool("b", "192.0.2.0/28")},
			wantPool: [2]string{"b", "b"},
		},
		{
			name:     "rename seen by a new leader",
			after:    []Pool{testPool("b", "192.0.2.0/28")},
			restart:  true,
			wantPool: [2]string{"b", "b"},
		},
		{
			name:     "split",
			after:    []Pool{testPool("low", "192.0.2.0/32"), testPool("high", "192.0.2.1-192.0.2.15")},
			wantPool: [2]string{"low", "high"},
		},
		{
			name:     "removed: kept and reported",
			after:    nil,
			wantKept: [2]Reason{ReasonNotInPool, ReasonNotInPool},
		},
		{
			name:     "no pools visible to a new leader: kept",
			after:    nil,
			restart:  true,
			wantKept: [2]Reason{ReasonNotInPool, ReasonNotInPool},
		},
		{
			name:     "avoidBuggyIPs turned on: the .0 address is kept and reported",
			after:    []Pool{buggy(testPool("a", "192.0.2.0/28"))},
			wantPool: [2]string{"", "a"},
			wantKept: [2]Reason{ReasonBuggyIP, ""},
		},
		{
			name:     "namespace no longer allowed, no other pool: kept and reported",
			after:    []Pool{restrictedTo(testPool("a", "192.0.2.0/28"), "other")},
			wantPool: [2]string{"a", "a"},
			wantKept: [2]Reason{ReasonNamespaceNotAllowed, ReasonNamespaceNotAllowed},
		},
		{
			// MetalLB's controller does the same: the restriction is the operator's decision.
			name:     "namespace no longer allowed, another pool allows it: moved there",
			after:    []Pool{restrictedTo(testPool("a", "192.0.2.0/28"), "other"), testPool("b", "198.51.100.0/28")},
			wantPool: [2]string{"b", "b"},
			wantIPs:  [2]string{"198.51.100.1", "198.51.100.0"},
		},
		{
			name:     "a requested pool that no longer holds the address moves the Service",
			after:    []Pool{testPool("a", "192.0.2.1-192.0.2.15"), testPool("b", "192.0.2.0/32"), testPool("c", "198.51.100.0/28")},
			x:        svc("default", "x", withPool("c")),
			wantPool: [2]string{"c", "a"},
			wantIPs:  [2]string{"198.51.100.0", ""},
		},
		{
			name:     "requested IPs that changed move the Service",
			after:    []Pool{testPool("b", "192.0.2.0/28")},
			y:        svc("default", "y", withIPs("192.0.2.9")),
			wantPool: [2]string{"b", "b"},
			wantIPs:  [2]string{"", "192.0.2.9"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a := New()
			a.SetPools([]Pool{testPool("a", "192.0.2.0/28")})
			x0 := mustAssign(t, a, svc("default", "x"))
			y0 := mustAssign(t, a, svc("default", "y"))
			if addrs(x0.IPs) != "192.0.2.0" || addrs(y0.IPs) != "192.0.2.1" {
				t.Fatalf("setup: x=%s y=%s", addrs(x0.IPs), addrs(y0.IPs))
			}
			if tc.restart {
				a = New()
			}
			if problems, _ := a.SetPools(tc.after); len(problems) > 0 {
				t.Fatalf("problems: %v", problems)
			}
			x, y := tc.x, tc.y
			if x.Key.Name == "" {
				x = svc("default", "x")
			}
			if y.Key.Name == "" {
				y = svc("default", "y")
			}
			x.Current, y.Current = x0.IPs, y0.IPs
			// y first: a fresh allocation in queue order is how two Services swapped
			// addresses after a rename.
			got := [2]Assignment{}
			got[1] = mustAssign(t, a, y)
			got[0] = mustAssign(t, a, x)
			for i, was := range []Assignment{x0, y0} {
				wantIPs := addrs(was.IPs)
				if tc.wantIPs[i] != "" {
					wantIPs = tc.wantIPs[i]
				}
				if addrs(got[i].IPs) != wantIPs {
					t.Errorf("service %d: %s, want %s", i, addrs(got[i].IPs), wantIPs)
				}
				if got[i].Pool != tc.wantPool[i] {
					t.Errorf("service %d: pool %q, want %q", i, got[i].Pool, tc.wantPool[i])
				}
				var kept Reason
				if got[i].Kept != nil {
					kept = got[i].Kept.Reason
				}
				if kept != tc.wantKept[i] {
					t.Errorf("service %d: kept %q (%v), want %q", i, kept, got[i].Kept, tc.wantKept[i])
				}
			}
			// Nobody else gets a held address, kept or not.
			a.SetPools([]Pool{testPool("all", "192.0.2.0/30")})
			z := mustAssign(t, a, svc("default", "z"))
			if zip := addrs(z.IPs); zip == addrs(got[0].IPs) || zip == addrs(got[1].IPs) {
				t.Errorf("z got %s, held by x or y", zip)
			}
		})
	}
}

func TestSetPoolsRepoolsAndRecounts(t *testing.T) {
	a := New()
	a.SetPools([]Pool{testPool("a", "192.0.2.0/28"), testPool("b", "198.51.100.0/28")})
	mustAssign(t, a, svc("default", "x", withPool("a")))
	mustAssign(t, a, svc("default", "y", withPool("b")))
	_, repooled := a.SetPools([]Pool{testPool("b", "198.51.100.0/28"), testPool("renamed", "192.0.2.0/28")})
	if len(repooled) != 1 || repooled[0].String() != "default/x" {
		t.Fatalf("repooled = %v", repooled)
	}
	if got, ok := a.Lookup(ServiceKey{"default", "x"}); !ok || got.Pool != "renamed" {
		t.Fatalf("x = %+v, %v", got, ok)
	}
	for _, st := range a.Stats() {
		if st.Used != 1 {
			t.Errorf("pool %s: used %d, want 1", st.Name, st.Used)
		}
	}
	a.SetPools([]Pool{testPool("b", "198.51.100.0/28")})
	if got, ok := a.Lookup(ServiceKey{"default", "x"}); !ok || got.Pool != "" || got.Kept == nil || got.Kept.Reason != ReasonNotInPool {
		t.Fatalf("x after its pool went = %+v, %v", got, ok)
	}
	if name, err := a.PoolOf(ip("198.51.100.3")); name != "b" || err != nil {
		t.Fatalf("PoolOf = %q, %v", name, err)
	}
}

// TestGivenUpAddressesWaitForSettle: an address a Service gives up stays reserved until
// Settle confirms the status write that removed it; deletion frees at once.
func TestGivenUpAddressesWaitForSettle(t *testing.T) {
	a := New()
	a.SetPools([]Pool{testPool("a", "192.0.2.0/30")})
	x := ServiceKey{"default", "x"}
	mustAssign(t, a, svc("default", "x"))
	moved := mustAssign(t, a, svc("default", "x", withIPs("192.0.2.3"), withCurrent("192.0.2.0")))
	if addrs(moved.IPs) != "192.0.2.3" {
		t.Fatalf("x = %s", addrs(moved.IPs))
	}
	if got := mustAssign(t, a, svc("default", "y")); addrs(got.IPs) != "192.0.2.1" {
		t.Fatalf("y got %s, want 192.0.2.1: 192.0.2.0 is still in x's status", addrs(got.IPs))
	}
	_, err := a.Assign(svc("default", "z", withIPs("192.0.2.0")))
	var e *Error
	if !errors.As(err, &e) || e.Reason != ReasonIPInUse || e.OtherService == nil || *e.OtherService != x {
		t.Fatalf("z requesting x's old address = %v", err)
	}
	if a.Settle(x, []netip.Addr{ip("192.0.2.0"), ip("192.0.2.3")}) {
		t.Fatal("Settle freed an address still in the status")
	}
	if !a.Settle(x, []netip.Addr{ip("192.0.2.3")}) {
		t.Fatal("Settle freed nothing")
	}
	mustAssign(t, a, svc("default", "z", withIPs("192.0.2.0")))

	// Unassign (no longer a LoadBalancer) reserves until settled; Release (deleted) frees.
	if !a.Unassign(x) {
		t.Fatal("Unassign: x held nothing")
	}
	if _, err := a.Assign(svc("default", "w", withIPs("192.0.2.3"))); err == nil {
		t.Fatal("w got x's address before x's status was cleared")
	}
	a.Release(x)
	mustAssign(t, a, svc("default", "w", withIPs("192.0.2.3")))
}

// TestPreferDualStackOnePoolPerFamily: as in MetalLB, a Service's addresses come from one pool:
// with one pool per family PreferDualStack gets its primary family and says why, and
// RequireDualStack is refused; a later sync adds the missing family from the same pool when it
// has one free.
func TestPreferDualStackOnePoolPerFamily(t *testing.T) {
	a := New()
	a.SetPools([]Pool{testPool("v4", "192.0.2.0/28"), testPool("v6", "2001:db8::/124")})
	got := mustAssign(t, a, svc("default", "prefer", withFamilies(PreferDualStack, IPv6, IPv4)))
	if addrs(got.IPs) != "2001:db8::" || got.Pool != "v6" || got.Partial == nil || got.Partial.Reason != ReasonMissingFamily ||
		got.Partial.Message != "ipFamilyPolicy PreferDualStack, but the Service has only an IPv6 address: no pool allowed for this Service has a free address of each family; all addresses of a Service come from one pool, as in MetalLB" {
		t.Fatalf("PreferDualStack = %+v, partial %+v", got, got.Partial)
	}
	_, err := a.Assign(svc("default", "require", withFamilies(RequireDualStack, IPv4, IPv6)))
	var e *Error
	if !errors.As(err, &e) || e.Reason != ReasonNoPoolForFamily {
		t.Fatalf("RequireDualStack = %v", err)
	}

	// A dual-stack pool: a Service holding only its IPv4 address gets the IPv6 one added.
	b := New()
	b.SetPools([]Pool{testPool("dual", "192.0.2.0/30", "2001:db8::/126")})
	mustAssign(t, b, svc("default", "first", withFamilies(SingleStack, IPv6)))
	mustAssign(t, b, svc("default", "second", withFamilies(SingleStack, IPv6)))
	mustAssign(t, b, svc("default", "third", withFamilies(SingleStack, IPv6)))
	mustAssign(t, b, svc("default", "fourth", withFamilies(SingleStack, IPv6)))
	one := mustAssign(t, b, svc("default", "x", withFamilies(PreferDualStack, IPv4, IPv6)))
	if addrs(one.IPs) != "192.0.2.0" || one.Partial == nil {
		t.Fatalf("x with the IPv6 addresses all held = %s, partial %v", addrs(one.IPs), one.Partial)
	}
	b.Release(ServiceKey{"default", "third"})
	both := mustAssign(t, b, svc("default", "x", withFamilies(PreferDualStack, IPv4, IPv6), withCurrent("192.0.2.0")))
	if addrs(both.IPs) != "192.0.2.0,2001:db8::2" || both.Partial != nil {
		t.Fatalf("x after an IPv6 address was freed = %s, partial %v", addrs(both.IPs), both.Partial)
	}
}

// TestKeptAddressClearedByOperator: removing a kept address from the Service's status is the
// operator's decision: the Service is allocated again (and the old address is reserved until
// that status is written).
func TestKeptAddressClearedByOperator(t *testing.T) {
	a := New()
	a.SetPools([]Pool{testPool("a", "192.0.2.0/28")})
	mustAssign(t, a, svc("default", "x"))
	a.SetPools([]Pool{testPool("b", "198.51.100.0/28")})
	kept := mustAssign(t, a, svc("default", "x", withCurrent("192.0.2.0")))
	if addrs(kept.IPs) != "192.0.2.0" || kept.Kept == nil {
		t.Fatalf("x = %s, kept %v", addrs(kept.IPs), kept.Kept)
	}
	// A sync that still sees the address keeps it; one that does not allocates again.
	if again := mustAssign(t, a, svc("default", "x", withCurrent("192.0.2.0"))); addrs(again.IPs) != "192.0.2.0" {
		t.Fatalf("x = %s", addrs(again.IPs))
	}
	moved := mustAssign(t, a, svc("default", "x"))
	if addrs(moved.IPs) != "198.51.100.0" || moved.Kept != nil || moved.Pool != "b" {
		t.Fatalf("x after its status was cleared = %+v", moved)
	}
}
