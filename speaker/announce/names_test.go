package announce

import (
	"net/netip"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/herald-lb/herald/framework"
)

// TestStatusNamesAreValidAndDistinct: the status objects of every Service share the speakers'
// namespace, so their names must never collide across Service namespaces, and must be valid
// object names however long the inputs.
func TestStatusNamesAreValidAndDistinct(t *testing.T) {
	long := strings.Repeat("a", 63)
	v4, v6 := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("2001:db8::1")
	keys := []framework.ServiceKey{
		{Namespace: "a-b", Name: "c"}, {Namespace: "a", Name: "b-c"}, {Namespace: "a", Name: "b"},
		{Namespace: "web", Name: "ipv6"}, {Namespace: "default", Name: "web-ipv6"}, {Namespace: "default", Name: "web"},
		{Namespace: long, Name: long},
	}
	nodes := []string{"n1", "n1.example.com", strings.Repeat("node.", 40) + "x"}
	seen := map[string]string{}
	check := func(name, what string) {
		t.Helper()
		if errs := validation.IsDNS1123Subdomain(name); len(errs) > 0 {
			t.Errorf("%s: %q is not a valid object name: %v", what, name, errs)
		}
		if prev, ok := seen[name]; ok {
			t.Errorf("%s and %s share the name %q", prev, what, name)
		}
		seen[name] = what
	}
	for _, k := range keys {
		check(StatusName(k, v4), "L2 "+k.String()+" IPv4")
		check(StatusName(k, v6), "L2 "+k.String()+" IPv6")
		for _, n := range nodes {
			check(BGPStatusName(k, n), "BGP "+k.String()+" on "+n)
		}
	}
}
