package speaker

import (
	"net/netip"
	"testing"

	"k8s.io/client-go/rest"
	"k8s.io/klog/v2/ktesting"

	"github.com/herald-lb/herald/config"
	"github.com/herald-lb/herald/framework"
	"github.com/herald-lb/herald/test/testbin"
)

// A custom announcer configured under a name of its own is used for the kind it reports:
// routing by name, a custom BGP announcer was started and never given a peer or a route, and
// a custom ARP announcer left the node unavailable for IPv4 (issue 17).
func TestSpeakerRoutesAnnouncersByKind(t *testing.T) {
	exe := testbin.Build(t, "./announcers/manager/testdata/testannouncer")
	t.Setenv("TESTANNOUNCER_KIND", "bgp")
	cfg := &config.SpeakerConfiguration{Announcers: []config.Announcer{{Name: "arp"}, {Name: "corp-bgp", Path: exe}}}
	_, ctx := ktesting.NewTestContext(t)
	s, err := newSpeaker(ctx, Options{NodeName: "node-a", Config: cfg, KubeConfig: &rest.Config{Host: "https://127.0.0.1:1"}, AnnouncerDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if got := s.bgpAnnouncer(); got != "corp-bgp" {
		t.Errorf("BGP announcer = %q, want corp-bgp", got)
	}
	for _, tc := range []struct{ ip, want string }{{"192.0.2.1", "arp"}, {"2001:db8::1", ""}} {
		l2 := &framework.Unit{IP: netip.MustParseAddr(tc.ip), Mode: framework.ModeL2}
		if got := (announcerRoutes{s}).AnnouncerFor(l2.AnnouncerKind()); got != tc.want {
			t.Errorf("announcer for %s = %q, want %q", tc.ip, got, tc.want)
		}
	}
	s.ready.mu.Lock()
	bgp := s.ready.kinds[framework.AnnouncerKindBGP]
	s.ready.mu.Unlock()
	if bgp == nil || bgp.announcer != "corp-bgp" {
		t.Errorf("readiness of the BGP kind tracks %+v, want announcer corp-bgp", bgp)
	}
}
