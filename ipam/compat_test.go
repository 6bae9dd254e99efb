package ipam

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

// The MetalLB compatibility suite: MetalLB's allocator and controller test cases transcribed
// as data (testdata/metallb-compat/*.yaml: inputs and MetalLB's expected outcomes, no code),
// run through this package's API. A step either agrees with MetalLB or says, in `herald`, what
// Herald does instead and why; docs/allocation.md lists every such difference.

type compatFile struct {
	// Source names the MetalLB test the steps come from.
	Source string          `json:"source"`
	Pools  []compatPool    `json:"pools"`
	Steps  []compatStep    `json:"steps"`
	Cases  []compatFileSub `json:"cases"`
	// NotApplicable lists MetalLB cases about what the allocator does not decide (the
	// controller's handling of objects), with where Herald covers them.
	NotApplicable []struct {
		Desc string `json:"desc"`
		Why  string `json:"why"`
	} `json:"notApplicable"`
}

// compatFileSub is one independent case of a file whose cases each start from the file's
// pools and steps (MetalLB's table tests with a fresh allocator per row).
type compatFileSub struct {
	Desc  string       `json:"desc"`
	Steps []compatStep `json:"steps"`
}

type compatPool struct {
	Name              string `json:"name"`
	Addresses         []string
	AutoAssign        *bool `json:"autoAssign"`
	AvoidBuggyIPs     bool  `json:"avoidBuggyIPs"`
	ServiceAllocation *struct {
		Priority           int      `json:"priority"`
		Namespaces         []string `json:"namespaces"`
		NamespaceSelectors []string `json:"namespaceSelectors"`
		ServiceSelectors   []string `json:"serviceSelectors"`
	} `json:"serviceAllocation"`
}

type compatStep struct {
	Desc string `json:"desc"`
	// Op is assign (exactly IPs), allocate (from Pool if set, else any pool), unassign, or
	// setPools (Pools).
	Op              string            `json:"op"`
	Svc             string            `json:"svc"`
	Namespace       string            `json:"namespace"`
	NamespaceLabels map[string]string `json:"namespaceLabels"`
	Labels          map[string]string `json:"labels"`
	IPs             []string          `json:"ips"`
	Pool            string            `json:"pool"`
	// Family is IPv4 (default), IPv6, DualStack or IPv6DualStack (IPv6 first); Policy is the
	// ipFamilyPolicy (default SingleStack, RequireDualStack for a DualStack family).
	Family string   `json:"family"`
	Policy string   `json:"policy"`
	Ports  []string `json:"ports"`
	// SharingKey is allow-shared-ip. BackendKey is MetalLB's backend key: "" for Cluster
	// traffic policy, the pod selector for Local; Herald sees the policy and the selector.
	SharingKey string `json:"sharingKey"`
	BackendKey string `json:"backendKey"`
	// TrafficPolicy and Selector, when set, replace BackendKey's Cluster/Local mapping.
	TrafficPolicy string            `json:"trafficPolicy"`
	Selector      map[string]string `json:"selector"`
	// Current is the addresses in the Service's status before the step; by default what the
	// allocator holds for it.
	Current []string     `json:"current"`
	Pools   []compatPool `json:"pools"`
	compatExpect
	// Herald, when set, is what Herald does instead of MetalLB, on purpose, with why.
	Herald *compatExpect `json:"herald"`
}

type compatExpect struct {
	WantErr bool `json:"wantErr"`
	// WantIPs are exactly the addresses given; WantIn the addresses they must be among.
	WantIPs []string `json:"wantIPs"`
	WantIn  []string `json:"wantIn"`
	// WantPools maps Services to the pool they are in after the step ("" for none).
	WantPools map[string]string `json:"wantPools"`
	Why       string            `json:"why"`
}

func TestMetalLBCompat(t *testing.T) {
	files, err := filepath.Glob("testdata/metallb-compat/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no compatibility cases: %v", err)
	}
	agree, differ, na := 0, 0, 0
	for _, file := range files {
		raw, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		var f compatFile
		if err := yaml.UnmarshalStrict(raw, &f); err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		// uncounted is how many leading steps were counted already: a file's shared steps run
		// before every case but count once.
		run := func(name string, steps []compatStep, uncounted int) {
			t.Run(name, func(t *testing.T) {
				r := &compatRun{t: t, a: New()}
				r.setPools(f.Pools)
				for i, st := range steps {
					a, d := r.step(fmt.Sprintf("#%d %s", i+1, st.Desc), st)
					if i >= uncounted {
						agree, differ = agree+a, differ+d
					}
				}
			})
		}
		for _, n := range f.NotApplicable {
			if n.Why == "" {
				t.Errorf("%s: %q: a case left out must say why", file, n.Desc)
			}
		}
		na += len(f.NotApplicable)
		base := strings.TrimSuffix(filepath.Base(file), ".yaml")
		if len(f.Cases) == 0 {
			run(base, f.Steps, 0)
		}
		for i, c := range f.Cases {
			uncounted := 0
			if i > 0 {
				uncounted = len(f.Steps)
			}
			run(base+"/"+c.Desc, append(slices.Clone(f.Steps), c.Steps...), uncounted)
		}
	}
	t.Logf("MetalLB compatibility: %d checked steps agree, %d differ on purpose (docs/allocation.md), %d cases are about the controller's handling of objects, covered elsewhere", agree, differ, na)
}

type compatRun struct {
	t *testing.T
	a *Allocator
}

func (r *compatRun) setPools(in []compatPool) {
	r.t.Helper()
	var pools []Pool
	for _, p := range in {
		out := Pool{Name: p.Name, Created: t0, Addresses: p.Addresses, AutoAssign: p.AutoAssign == nil || *p.AutoAssign, AvoidBuggyIPs: p.AvoidBuggyIPs}
		if sa := p.ServiceAllocation; sa != nil {
			out.ServiceAllocation, out.Priority, out.Namespaces = true, sa.Priority, sa.Namespaces
			for _, s := range sa.NamespaceSelectors {
				out.NamespaceSelectors = append(out.NamespaceSelectors, sel(r.t, s))
			}
			for _, s := range sa.ServiceSelectors {
				out.ServiceSelectors = append(out.ServiceSelectors, sel(r.t, s))
			}
		}
		pools = append(pools, out)
	}
	// MetalLB's allocator tests bypass its configuration checks, which refuse overlapping
	// pools as Herald does; problems are expected where a file says so.
	r.a.SetPools(pools)
}

func (r *compatRun) service(st compatStep) Service {
	r.t.Helper()
	s := Service{Key: ServiceKey{Namespace: st.Namespace, Name: st.Svc}, Labels: st.Labels, NamespaceLabels: st.NamespaceLabels, SharingKey: st.SharingKey, RequestedPool: st.Pool}
	for _, p := range st.Ports {
		proto, port, _ := strings.Cut(p, "/")
		n, err := strconv.Atoi(port)
		if err != nil {
			r.t.Fatalf("port %q", p)
		}
		s.Ports = append(s.Ports, Port{Protocol: strings.ToUpper(proto), Port: int32(n)})
	}
	if st.BackendKey != "" {
		s.TrafficPolicy, s.Selector = TrafficLocal, map[string]string{"backend": st.BackendKey}
	}
	if st.TrafficPolicy != "" {
		s.TrafficPolicy, s.Selector = TrafficPolicy(st.TrafficPolicy), st.Selector
	}
	family := st.Family
	if st.Op == "assign" && family == "" {
		// MetalLB's Assign does not look at the Service's families; the addresses say them.
		switch {
		case len(st.IPs) == 2:
			family = "DualStack"
		case len(st.IPs) == 1 && strings.Contains(st.IPs[0], ":"):
			family = "IPv6"
		}
	}
	s.FamilyPolicy = FamilyPolicy(st.Policy)
	switch family {
	case "", "IPv4":
		s.Families = []Family{IPv4}
	case "IPv6":
		s.Families = []Family{IPv6}
	case "DualStack", "IPv6DualStack":
		s.Families = []Family{IPv4, IPv6}
		if family == "IPv6DualStack" {
			s.Families = []Family{IPv6, IPv4}
		}
		if s.FamilyPolicy == "" {
			s.FamilyPolicy = RequireDualStack
		}
	default:
		r.t.Fatalf("family %q", family)
	}
	if st.Op == "assign" {
		s.RequestedIPs = st.IPs
	}
	// The Service's status shows what it holds, as the controller passes it.
	if held, ok := r.a.Lookup(s.Key); ok {
		s.Current = held.IPs
	}
	if st.Current != nil {
		s.Current = nil
		for _, x := range st.Current {
			s.Current = append(s.Current, netip.MustParseAddr(x))
		}
	}
	return s
}

// step runs one step and checks it against MetalLB's outcome or Herald's stated difference.
func (r *compatRun) step(name string, st compatStep) (agree, differ int) {
	r.t.Helper()
	want := st.compatExpect
	checked := st.Op == "assign" || st.Op == "allocate" || len(want.WantPools) > 0 || st.Herald != nil
	switch {
	case st.Herald != nil:
		if st.Herald.Why == "" {
			r.t.Errorf("%s: a difference from MetalLB must say why", name)
		}
		want, differ = *st.Herald, 1
	case checked:
		agree = 1
	}
	var got []netip.Addr
	var err error
	switch st.Op {
	case "unassign":
		r.a.Release(ServiceKey{Namespace: st.Namespace, Name: st.Svc})
	case "setPools":
		r.setPools(st.Pools)
	case "assign", "allocate":
		s := r.service(st)
		var res Assignment
		res, err = r.a.Assign(s)
		got = res.IPs
		// The controller writes the status; what the Service gave up is free after that.
		r.a.Settle(s.Key, got)
	default:
		r.t.Fatalf("%s: unknown op %q", name, st.Op)
	}
	if st.Op == "assign" || st.Op == "allocate" {
		switch {
		case want.WantErr && err == nil:
			r.t.Errorf("%s: got %v, want a refusal", name, got)
		case !want.WantErr && err != nil:
			r.t.Errorf("%s: refused: %v", name, err)
		case err == nil && want.WantIPs != nil && !sameStrings(got, want.WantIPs):
			r.t.Errorf("%s: got %v, want %v", name, got, want.WantIPs)
		case err == nil && want.WantIn != nil:
			for _, ip := range got {
				if !slices.Contains(want.WantIn, ip.String()) {
					r.t.Errorf("%s: got %v, want addresses among %v", name, got, want.WantIn)
				}
			}
		}
	}
	for svcName, pool := range want.WantPools {
		ns, n, ok := strings.Cut(svcName, "/")
		if !ok {
			ns, n = "", svcName
		}
		res, _ := r.a.Lookup(ServiceKey{Namespace: ns, Name: n})
		if res.Pool != pool {
			r.t.Errorf("%s: %s is in pool %q, want %q", name, svcName, res.Pool, pool)
		}
	}
	return agree, differ
}

func sameStrings(ips []netip.Addr, want []string) bool {
	if len(ips) != len(want) {
		return false
	}
	for _, ip := range ips {
		if !slices.Contains(want, ip.String()) {
			return false
		}
	}
	return true
}
