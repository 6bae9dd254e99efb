package speaker

import (
	"net"
	"net/netip"
	"slices"
	"testing"

	"github.com/herald-lb/herald/framework"
)

func TestLocalInterfacesSkipsLoopbackAndReadsPrefixes(t *testing.T) {
	itfs, err := LocalInterfaces()
	if err != nil {
		t.Fatal(err)
	}
	for _, itf := range itfs {
		if itf.Name == "lo" {
			t.Fatalf("loopback published: %+v", itf)
		}
		for _, p := range itf.Prefixes {
			if !p.IsValid() || p.Addr().Is4In6() || p.IsSingleIP() {
				t.Fatalf("interface %s: bad prefix %v", itf.Name, p)
			}
		}
	}
}

func TestPublishable(t *testing.T) {
	mac, _ := net.ParseMAC("02:00:00:00:00:01")
	pfx := func(ss ...string) []netip.Prefix {
		var out []netip.Prefix
		for _, s := range ss {
			out = append(out, netip.MustParsePrefix(s))
		}
		return out
	}
	tests := []struct {
		name  string
		links []*link
		want  []framework.Interface
	}{{
		name: "loopback and NOARP interfaces are left out",
		links: []*link{
			{name: "lo", up: true, loopback: true, prefixes: pfx("127.0.0.1/8")},
			{name: "kube-ipvs0", noARP: true, prefixes: pfx("198.19.0.1/32", "192.0.2.10/32")},
			{name: "eth0", up: true, mac: mac, prefixes: pfx("192.0.2.2/24")},
		},
		want: []framework.Interface{{Name: "eth0", Up: true, MAC: mac.String(), Prefixes: pfx("192.0.2.2/24")}},
	}, {
		name: "host and link-local prefixes are left out, subnets sorted",
		links: []*link{{name: "eth0", up: true, mac: mac, prefixes: pfx(
			"2001:db8::2/64", "192.0.2.10/32", "fe80::1/64", "2001:db8::10/128", "192.0.2.2/24", "169.254.1.1/16")}},
		want: []framework.Interface{{Name: "eth0", Up: true, MAC: mac.String(), Prefixes: pfx("192.0.2.2/24", "2001:db8::2/64")}},
	}, {
		name: "an interface without addresses is kept (requireSubnet: false may use it), sorted by name",
		links: []*link{
			{name: "eth1", up: false, mac: mac},
			{name: "bond0", up: true, mac: mac, prefixes: pfx("198.51.100.2/24")},
		},
		want: []framework.Interface{
			{Name: "bond0", Up: true, MAC: mac.String(), Prefixes: pfx("198.51.100.2/24")},
			{Name: "eth1", MAC: mac.String()},
		},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := publishable(tt.links)
			if !slices.EqualFunc(got, tt.want, func(a, b framework.Interface) bool {
				return a.Name == b.Name && a.Up == b.Up && a.MAC == b.MAC && slices.Equal(a.Prefixes, b.Prefixes)
			}) {
				t.Fatalf("publishable:\n got %+v\nwant %+v", got, tt.want)
			}
		})
	}
}
