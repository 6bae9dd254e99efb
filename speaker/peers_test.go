package speaker

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/tools/record"
	"k8s.io/klog/v2/ktesting"

	"github.com/herald-lb/herald/announcers"
	metallbv1beta1 "github.com/herald-lb/herald/config/metallb/v1beta1"
	metallbv1beta2 "github.com/herald-lb/herald/config/metallb/v1beta2"
)

const (
	testNS     = "herald-system"
	testSecret = "s3cr3t-value"
)

func testPeer(name string, mutate func(*metallbv1beta2.BGPPeerSpec)) *metallbv1beta2.BGPPeer {
	p := &metallbv1beta2.BGPPeer{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: testNS},
		Spec: metallbv1beta2.BGPPeerSpec{MyASN: 64500, ASN: 64501, Address: "192.0.2.1"}}
	if mutate != nil {
		mutate(&p.Spec)
	}
	return p
}

func testInputs(peers ...*metallbv1beta2.BGPPeer) peerInputs {
	three, ms := uint32(3), uint32(300)
	secrets := map[string]*corev1.Secret{
		"good":     {Type: corev1.SecretTypeBasicAuth, Data: map[string][]byte{"password": []byte(testSecret)}},
		"opaque":   {Type: corev1.SecretTypeOpaque, Data: map[string][]byte{"password": []byte(testSecret)}},
		"nopasswd": {Type: corev1.SecretTypeBasicAuth, Data: map[string][]byte{"username": []byte("x")}},
	}
	return peerInputs{
		Namespace:  testNS,
		NodeLabels: map[string]string{"zone": "a", "kubernetes.io/hostname": "node-a"},
		Peers:      peers,
		BFD: map[string]*metallbv1beta1.BFDProfile{"fast": {ObjectMeta: metav1.ObjectMeta{Name: "fast"},
			Spec: metallbv1beta1.BFDProfileSpec{ReceiveInterval: &ms, TransmitInterval: &ms, DetectMultiplier: &three}}},
		Secret: func(name string) (*corev1.Secret, error) {
			if s, ok := secrets[name]; ok {
				return s, nil
			}
			return nil, apierrors.NewNotFound(schema.GroupResource{Resource: "secrets"}, name)
		},
	}
}

func TestBuildPeers(t *testing.T) {
	sel := func(k, v string) []metav1.LabelSelector {
		return []metav1.LabelSelector{{MatchLabels: map[string]string{k: v}}}
	}
	tests := []struct {
		name    string
		peer    *metallbv1beta2.BGPPeer
		want    func(announcers.BGPPeer) string // "" when right
		problem string                          // substring of the problem, "" for none
		skipped bool                            // neither used nor a problem
	}{{
		name: "plain peer with timers",
		peer: testPeer("r1", func(s *metallbv1beta2.BGPPeerSpec) {
			s.HoldTime = &metav1.Duration{Duration: 9 * time.Second}
			s.ConnectTime = &metav1.Duration{Duration: 2 * time.Second}
			s.Port = 1790
		}),
		want: func(p announcers.BGPPeer) string {
			if p.Name != "r1" || p.MyASN != 64500 || p.PeerASN != 64501 || p.Address != "192.0.2.1" || p.HoldTime != 9*time.Second ||
				p.ConnectTime != 2*time.Second || p.Port != 1790 || p.BFD != nil {
				return fmt.Sprintf("%+v", p)
			}
			return ""
		},
	}, {
		name: "node selector matches",
		peer: testPeer("r1", func(s *metallbv1beta2.BGPPeerSpec) { s.NodeSelectors = sel("zone", "a") }),
		want: func(announcers.BGPPeer) string { return "" },
	}, {
		name:    "node selector does not match",
		peer:    testPeer("r1", func(s *metallbv1beta2.BGPPeerSpec) { s.NodeSelectors = sel("zone", "b") }),
		skipped: true,
	}, {
		name: "invalid node selector",
		peer: testPeer("r1", func(s *metallbv1beta2.BGPPeerSpec) {
			s.NodeSelectors = []metav1.LabelSelector{{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "zone", Operator: "Bogus"}}}}
		}),
		problem: "spec.nodeSelectors[0]",
	}, {
		name: "password from the Secret",
		peer: testPeer("r1", func(s *metallbv1beta2.BGPPeerSpec) { s.PasswordSecret = &corev1.SecretReference{Name: "good"} }),
		want: func(p announcers.BGPPeer) string {
			if p.Password.Reveal() != testSecret {
				return "password not read"
			}
			return ""
		},
	}, {
		name: "Secret in another namespace",
		peer: testPeer("r1", func(s *metallbv1beta2.BGPPeerSpec) {
			s.PasswordSecret = &corev1.SecretReference{Name: "good", Namespace: "tenant"}
		}),
		problem: "spec.passwordSecret.namespace",
	}, {
		name:    "Secret missing",
		peer:    testPeer("r1", func(s *metallbv1beta2.BGPPeerSpec) { s.PasswordSecret = &corev1.SecretReference{Name: "nope"} }),
		problem: "spec.passwordSecret.name: Not found",
	}, {
		name:    "Secret of the wrong type",
		peer:    testPeer("r1", func(s *metallbv1beta2.BGPPeerSpec) { s.PasswordSecret = &corev1.SecretReference{Name: "opaque"} }),
		problem: `want "kubernetes.io/basic-auth"`,
	}, {
		name:    "Secret without a password key",
		peer:    testPeer("r1", func(s *metallbv1beta2.BGPPeerSpec) { s.PasswordSecret = &corev1.SecretReference{Name: "nopasswd"} }),
		problem: `has no "password" key`,
	}, {
		name: "password and passwordSecret",
		peer: testPeer("r1", func(s *metallbv1beta2.BGPPeerSpec) {
			s.Password = "inline"
			s.PasswordSecret = &corev1.SecretReference{Name: "good"}
		}),
		problem: "spec.password: Forbidden",
	}, {
		name: "BFD profile resolved",
		peer: testPeer("r1", func(s *metallbv1beta2.BGPPeerSpec) { s.BFDProfile = "fast" }),
		want: func(p announcers.BGPPeer) string {
			if p.BFD == nil || p.BFD.ReceiveInterval != 300*time.Millisecond || p.BFD.DetectMultiplier != 3 || p.BFD.EchoMode {
				return fmt.Sprintf("BFD %+v", p.BFD)
			}
			return ""
		},
	}, {
		name:    "BFD profile missing",
		peer:    testPeer("r1", func(s *metallbv1beta2.BGPPeerSpec) { s.BFDProfile = "slow" }),
		problem: "spec.bfdProfile: Not found",
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			good := testPeer("other", nil)
			peers, problems := buildPeers(testInputs(tc.peer, good))
			var got *announcers.BGPPeer
			for i := range peers {
				if peers[i].Name == tc.peer.Name {
					got = &peers[i]
				}
			}
			if !slices.ContainsFunc(peers, func(p announcers.BGPPeer) bool { return p.Name == "other" }) {
				t.Fatalf("the good peer was disturbed: %v", peers)
			}
			for _, pr := range problems {
				if strings.Contains(pr.Err.Error(), testSecret) {
					t.Fatalf("problem leaks the password: %v", pr.Err)
				}
			}
			switch {
			case tc.problem != "":
				if got != nil || len(problems) != 1 || !strings.Contains(problems[0].Err.Error(), tc.problem) {
					t.Fatalf("peer %v, problems %v; want a problem with %q", got, problems, tc.problem)
				}
			case tc.skipped:
				if got != nil || len(problems) != 0 {
					t.Fatalf("peer %v, problems %v; want it skipped", got, problems)
				}
			default:
				if got == nil || len(problems) != 0 {
					t.Fatalf("peer missing, problems %v", problems)
				}
				if why := tc.want(*got); why != "" {
					t.Fatalf("peer: %s", why)
				}
			}
		})
	}
}

func TestBuildPeersIgnoresOtherNamespaces(t *testing.T) {
	p := testPeer("r1", nil)
	p.Namespace = "tenant"
	if peers, problems := buildPeers(testInputs(p)); len(peers) != 0 || len(problems) != 0 {
		t.Fatalf("peers %v problems %v", peers, problems)
	}
}

type fakeConfigurer struct{ calls []announcers.Config }

func (f *fakeConfigurer) Configure(_ context.Context, _ string, cfg announcers.Config) error {
	f.calls = append(f.calls, cfg)
	return nil
}

func TestPeerSyncConfiguresOnChangeAndReportsOnce(t *testing.T) {
	in := testInputs(testPeer("r1", nil), testPeer("bad", func(s *metallbv1beta2.BGPPeerSpec) { s.BFDProfile = "slow" }))
	fc := &fakeConfigurer{}
	rec := record.NewFakeRecorder(10)
	changed := 0
	_, ctx := ktesting.NewTestContext(t)
	ps := &peerSync{announcer: "bgp", mgr: fc, recorder: rec, changed: func() { changed++ },
		inputs: func() (peerInputs, error) { return in, nil }, trigger: make(chan struct{}, 1), reported: map[string]string{}}
	for i := 0; i < 2; i++ {
		if err := ps.sync(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if len(fc.calls) != 1 || len(fc.calls[0].BGP.Peers) != 1 || changed != 1 {
		t.Fatalf("configure calls %d, changed %d", len(fc.calls), changed)
	}
	if n := len(rec.Events); n != 1 {
		t.Fatalf("%d events, want 1 (once per distinct problem)", n)
	}
	if ev := <-rec.Events; !strings.Contains(ev, ReasonPeerInvalid) || !strings.Contains(ev, "spec.bfdProfile") {
		t.Fatalf("event %q", ev)
	}
	ps.reportStatus(ctx, testNS, announcers.Status{Peers: []announcers.PeerStatus{
		{Name: "r1", State: announcers.SessionUnknown, Message: `peer "r1": holdTime: 1s must be 0 or whole seconds of at least 3s`},
		{Name: "r2", State: announcers.SessionActive, Message: "connect refused"},
	}})
	ps.reportStatus(ctx, testNS, announcers.Status{Peers: []announcers.PeerStatus{
		{Name: "r1", State: announcers.SessionUnknown, Message: `peer "r1": holdTime: 1s must be 0 or whole seconds of at least 3s`},
	}})
	if n := len(rec.Events); n != 1 {
		t.Fatalf("%d events after announcer status, want 1", n)
	}
	if got := ps.Names(); len(got) != 0 || changed != 2 {
		t.Fatalf("after the announcer refused r1: Names %v, changed %d; a refused peer receives no route", got, changed)
	}
	if ev := <-rec.Events; !strings.Contains(ev, ReasonPeerRejected) || !strings.Contains(ev, "holdTime") {
		t.Fatalf("event %q", ev)
	}
}

// A restarted speaker's graceful-restart sessions must not open before its routes are in the
// announcer: the session would send End-of-RIB with none and the router would flush the paths
// it kept through the restart.
// With no peer at all, the release changes nothing either: an empty set sent once.
func TestPeerSyncReleaseWithoutPeersSendsNothingMore(t *testing.T) {
	fc := &fakeConfigurer{}
	_, ctx := ktesting.NewTestContext(t)
	ps := &peerSync{announcer: "bgp", mgr: fc,
		inputs: func() (peerInputs, error) { return testInputs(), nil }, trigger: make(chan struct{}, 1), reported: map[string]string{}}
	for _, step := range []func(){func() {}, ps.release} {
		step()
		if err := ps.sync(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if len(fc.calls) != 1 || len(fc.calls[0].BGP.Peers) != 0 {
		t.Fatalf("Configure calls %+v, want one with no peer", fc.calls)
	}
}

func TestPeerSyncHoldsGracefulRestartPeersUntilReleased(t *testing.T) {
	gr := testPeer("gr", func(s *metallbv1beta2.BGPPeerSpec) { s.EnableGracefulRestart = true; s.Address = "192.0.2.2" })
	in := testInputs(testPeer("plain", nil), gr)
	fc := &fakeConfigurer{}
	changed := 0
	_, ctx := ktesting.NewTestContext(t)
	ps := &peerSync{announcer: "bgp", mgr: fc, changed: func() { changed++ },
		inputs: func() (peerInputs, error) { return in, nil }, trigger: make(chan struct{}, 1), reported: map[string]string{}}
	configured := func() []string {
		var names []string
		for _, p := range fc.calls[len(fc.calls)-1].BGP.Peers {
			names = append(names, p.Name)
		}
		return names
	}
	steps := []struct {
		name      string
		do        func()
		wantCalls int
		wantPeers []string
		wantPoke  bool
	}{
		{"before release: the plain peer only", func() {}, 1, []string{"plain"}, false},
		{"an unchanged pass sends nothing", func() {}, 1, []string{"plain"}, false},
		{"release sends the held peer", ps.release, 2, []string{"gr", "plain"}, true},
		{"a second release changes nothing", ps.release, 2, []string{"gr", "plain"}, false},
	}
	for _, st := range steps {
		st.do()
		poked := len(ps.trigger) == 1
		if poked {
			<-ps.trigger
		}
		if poked != st.wantPoke {
			t.Fatalf("%s: poked %v, want %v", st.name, poked, st.wantPoke)
		}
		if err := ps.sync(ctx); err != nil {
			t.Fatal(err)
		}
		if len(fc.calls) != st.wantCalls || !slices.Equal(configured(), st.wantPeers) {
			t.Fatalf("%s: %d Configure calls, last with %v; want %d with %v", st.name, len(fc.calls), configured(), st.wantCalls, st.wantPeers)
		}
		// Routes name both peers from the start; shutdown keeps the paths for the held one.
		if got := ps.Names(); !slices.Equal(got, []string{"gr", "plain"}) || changed != 1 {
			t.Fatalf("%s: Names %v, changed %d", st.name, got, changed)
		}
		if !ps.GracefulRestart() {
			t.Fatalf("%s: GracefulRestart false with the held peer configured for it", st.name)
		}
	}
}
