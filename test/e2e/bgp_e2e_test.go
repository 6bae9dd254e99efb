//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	metallbv1beta1 "github.com/herald-lb/herald/config/metallb/v1beta1"
	metallbv1beta2 "github.com/herald-lb/herald/config/metallb/v1beta2"
	"github.com/herald-lb/herald/framework"
	"github.com/herald-lb/herald/speaker/announce"
	"github.com/herald-lb/herald/test/frr"
	"github.com/herald-lb/herald/test/testbin"
)

// The lab's BGP: iBGP (one AS), so FRR keeps the local preference the nodes send.
const (
	bgpASN       = 64500
	bgpHoldTime  = 9 * time.Second
	bgpPeerName  = "router"
	bgpLocalPref = 150
)

// bgpCluster is a cluster whose speakers run the bgp announcer, with FRR as the router, a pool
// of 203.0.113.0/24 addresses covered only by a BGPAdvertisement (so its IPs have BGP units
// only), and one BGPPeer (the router) for every node.
type bgpCluster struct {
	*cluster
	router *frr.Router
	pool   string
}

// bgpOptions change the lab's BGP set-up.
type bgpOptions struct {
	// bfd turns BFD on at 300ms x 3: a BFDProfile on the BGPPeer and on FRR's neighbors.
	bfd bool
	// gracefulRestart sets enableGracefulRestart on the BGPPeer (FRR is a helper by default).
	gracefulRestart bool
}

// bfdInterval and bfdMultiplier are the BFD timers when BFD is on.
const (
	bfdInterval   = 300 * time.Millisecond
	bfdMultiplier = 3
)

func newBGPCluster(t testing.TB, nodes int, opts ...bgpOptions) *bgpCluster {
	var o bgpOptions
	if len(opts) > 0 {
		o = opts[0]
	}
	t.Helper()
	if os.Getenv("HERALD_E2E_PREBUILT") == "" {
		// The speakers look for the announcer beside herald: build it first.
		herald := testbin.Build(t, "./cmd/herald")
		if got := testbin.Build(t, "./cmd/herald-announcer-bgp"); filepath.Dir(got) != filepath.Dir(herald) {
			t.Fatalf("announcer %s is not beside herald (%s)", got, herald)
		}
	}
	c := newCluster(t, clusterOptions{nodes: nodes, announcers: []string{"arp", "ndp", "bgp"}})
	var neighbors []frr.Neighbor
	for _, n := range c.lab.Nodes {
		nb := frr.Neighbor{Address: n.IPv4, ASN: bgpASN, HoldTime: bgpHoldTime}
		if o.bfd {
			nb.BFD = &frr.BFD{ReceiveInterval: bfdInterval, TransmitInterval: bfdInterval, DetectMultiplier: bfdMultiplier}
		}
		neighbors = append(neighbors, nb)
	}
	bc := &bgpCluster{cluster: c, pool: c.lab.Prefix + "bgp"}
	bc.router = frr.Start(t, c.lab.Router.Netns, frr.Config{ASN: bgpASN, RouterID: c.lab.Router.IPv4, Neighbors: neighbors})
	bc.createBGPConfig(o)
	return bc
}

// createBGPConfig creates the pool, a Community alias, the BGPAdvertisement (local preference,
// a standard community and the alias of a large one) and the router's BGPPeer.
func (c *bgpCluster) createBGPConfig(o bgpOptions) {
	c.t.Helper()
	ctx := context.Background()
	m := c.mlb.MetallbV1beta1()
	lp := uint32(bgpLocalPref)
	ms, mult := uint32(bfdInterval.Milliseconds()), uint32(bfdMultiplier)
	peerSpec := func(s *metallbv1beta2.BGPPeerSpec) {
		if o.bfd {
			s.BFDProfile = c.pool
		}
		s.EnableGracefulRestart = o.gracefulRestart
	}
	objs := []struct {
		what   string
		create func() error
		del    func() error
	}{{
		"pool", func() error {
			_, err := m.IPAddressPools(speakerNamespace).Create(ctx, &metallbv1beta1.IPAddressPool{ObjectMeta: metav1.ObjectMeta{Name: c.pool, Namespace: speakerNamespace},
				Spec: metallbv1beta1.IPAddressPoolSpec{Addresses: []string{"203.0.113.0/24"}, AutoAssign: bgpPtr(false)}}, metav1.CreateOptions{})
			return err
		}, func() error { return m.IPAddressPools(speakerNamespace).Delete(ctx, c.pool, metav1.DeleteOptions{}) },
	}, {
		"community", func() error {
			_, err := m.Communities(speakerNamespace).Create(ctx, &metallbv1beta1.Community{ObjectMeta: metav1.ObjectMeta{Name: c.pool, Namespace: speakerNamespace},
				Spec: metallbv1beta1.CommunitySpec{Communities: []metallbv1beta1.CommunityAlias{{Name: "lab-large", Value: "large:64500:7:8"}}}}, metav1.CreateOptions{})
			return err
		}, func() error { return m.Communities(speakerNamespace).Delete(ctx, c.pool, metav1.DeleteOptions{}) },
	}, {
		"bgpadvertisement", func() error {
			_, err := m.BGPAdvertisements(speakerNamespace).Create(ctx, &metallbv1beta1.BGPAdvertisement{ObjectMeta: metav1.ObjectMeta{Name: c.pool, Namespace: speakerNamespace},
				Spec: metallbv1beta1.BGPAdvertisementSpec{IPAddressPools: []string{c.pool}, LocalPref: lp, Communities: []string{"64500:100", "lab-large"}}}, metav1.CreateOptions{})
			return err
		}, func() error { return m.BGPAdvertisements(speakerNamespace).Delete(ctx, c.pool, metav1.DeleteOptions{}) },
	}, {
		"bfdprofile", func() error {
			if !o.bfd {
				return nil
			}
			_, err := m.BFDProfiles(speakerNamespace).Create(ctx, &metallbv1beta1.BFDProfile{ObjectMeta: metav1.ObjectMeta{Name: c.pool, Namespace: speakerNamespace},
				Spec: metallbv1beta1.BFDProfileSpec{ReceiveInterval: &ms, TransmitInterval: &ms, DetectMultiplier: &mult}}, metav1.CreateOptions{})
			return err
		}, func() error { return m.BFDProfiles(speakerNamespace).Delete(ctx, c.pool, metav1.DeleteOptions{}) },
	}, {
		"bgppeer", func() error { return c.createPeer(bgpPeerName, peerSpec) },
		func() error {
			return c.mlb.MetallbV1beta2().BGPPeers(speakerNamespace).Delete(ctx, c.lab.Prefix+bgpPeerName, metav1.DeleteOptions{})
		},
	}}
	for _, o := range objs {
		if err := o.create(); err != nil {
			c.t.Fatalf("creating %s: %v", o.what, err)
		}
		c.t.Cleanup(func() { _ = o.del() })
	}
}

// createPeer creates a BGPPeer named prefix+name towards the router, changed by mutate.
func (c *bgpCluster) createPeer(name string, mutate func(*metallbv1beta2.BGPPeerSpec)) error {
	spec := metallbv1beta2.BGPPeerSpec{MyASN: bgpASN, ASN: bgpASN, Address: c.lab.Router.IPv4.String(),
		HoldTime: &metav1.Duration{Duration: bgpHoldTime}, ConnectTime: &metav1.Duration{Duration: 2 * time.Second}}
	if mutate != nil {
		mutate(&spec)
	}
	_, err := c.mlb.MetallbV1beta2().BGPPeers(speakerNamespace).Create(context.Background(),
		&metallbv1beta2.BGPPeer{ObjectMeta: metav1.ObjectMeta{Name: c.lab.Prefix + name, Namespace: speakerNamespace}, Spec: spec}, metav1.CreateOptions{})
	return err
}

// nodeAddrs returns the IPv4 addresses of the lab nodes with the given indexes, sorted.
func (c *bgpCluster) nodeAddrs(idx ...int) []netip.Addr {
	var out []netip.Addr
	for _, i := range idx {
		out = append(out, c.lab.Nodes[i].IPv4)
	}
	slices.SortFunc(out, netip.Addr.Compare)
	return out
}

// waitNexthops waits until FRR installs ip/32 through exactly the given nodes.
func (c *bgpCluster) waitNexthops(ip netip.Addr, timeout time.Duration, nodes ...int) {
	c.t.Helper()
	want := c.nodeAddrs(nodes...)
	pfx := netip.PrefixFrom(ip, 32)
	eventually(c.t, timeout, func() (bool, string) {
		rt, ok, err := c.router.Route(pfx)
		if err != nil {
			return false, err.Error()
		}
		got := slices.Clone(rt.Nexthops)
		slices.SortFunc(got, netip.Addr.Compare)
		if len(want) == 0 {
			return !ok, fmt.Sprintf("FRR still routes %s via %v", pfx, got)
		}
		return ok && rt.Installed && slices.Equal(got, want), fmt.Sprintf("FRR routes %s via %v (installed %v), want %v", pfx, got, rt.Installed, want)
	})
}

// bgpStatuses returns, for a Service, the nodes named by its ServiceBGPStatus objects (sorted)
// and each object's peers.
func (c *bgpCluster) bgpStatuses(svc string) ([]string, map[string][]string) {
	c.t.Helper()
	list, err := c.mlb.MetallbV1beta1().ServiceBGPStatuses(speakerNamespace).List(context.Background(), statusesOf(c.ns))
	if err != nil {
		c.t.Fatalf("listing servicebgpstatuses: %v", err)
	}
	var nodes []string
	peers := map[string][]string{}
	for _, s := range list.Items {
		if s.Status.ServiceName != svc {
			continue
		}
		nodes = append(nodes, s.Status.Node)
		peers[s.Status.Node] = s.Status.Peers
	}
	slices.Sort(nodes)
	return nodes, peers
}

// waitBGPStatuses waits until the Service's ServiceBGPStatus objects name exactly the nodes
// with the given indexes, each listing the router's peer.
func (c *bgpCluster) waitBGPStatuses(svc string, timeout time.Duration, idx ...int) {
	c.t.Helper()
	var want []string
	for _, i := range idx {
		want = append(want, c.nodes[i])
	}
	slices.Sort(want)
	eventually(c.t, timeout, func() (bool, string) {
		nodes, peers := c.bgpStatuses(svc)
		if !slices.Equal(nodes, want) {
			return false, fmt.Sprintf("ServiceBGPStatus of %s names %v, want %v", svc, nodes, want)
		}
		for n, p := range peers {
			if !slices.Equal(p, []string{c.lab.Prefix + bgpPeerName}) {
				return false, fmt.Sprintf("ServiceBGPStatus of %s on %s lists peers %v", svc, n, p)
			}
		}
		return true, ""
	})
}

// metric returns the value of one sample of node i's speaker metrics ("" when absent).
func (c *bgpCluster) metric(i int, sample string) string {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	out, err := c.lab.Nodes[i].Command(ctx, "curl", "-s", "http://127.0.0.1:7472/metrics").Output()
	if err != nil {
		return ""
	}
	for _, line := range strings.Split(string(out), "\n") {
		if v, ok := strings.CutPrefix(line, sample+" "); ok {
			return v
		}
	}
	return ""
}

// TestE2EBGPECMPWithAttributes: every node's speaker advertises the /32 to FRR with the
// advertisement's local preference and communities (one of them a Community alias for a large
// community); FRR installs an ECMP route through every node; each node publishes its own
// ServiceBGPStatus; a bad BGPPeer is reported with its field and disturbs nobody; killing a
// node's speaker takes its path away within the hold time.
func TestE2EBGPECMPWithAttributes(t *testing.T) {
	c := newBGPCluster(t, 3)
	c.createService(serviceOptions{name: "bgp-web", ip: "203.0.113.10"})
	ip := c.waitIP("bgp-web")
	c.waitNexthops(ip, 40*time.Second, 0, 1, 2)

	paths, err := c.router.Paths(netip.PrefixFrom(ip, 32))
	if err != nil {
		t.Fatal(err)
	}
	if len(paths) != 3 {
		t.Fatalf("FRR holds %d paths for %s, want one per node: %+v", len(paths), ip, paths)
	}
	for _, p := range paths {
		if p.LocalPref == nil || *p.LocalPref != bgpLocalPref || !slices.Equal(p.Communities, []string{"64500:100"}) ||
			!slices.Equal(p.LargeCommunities, []string{"64500:7:8"}) || !p.Valid {
			t.Fatalf("path from %s: local-pref %v, communities %v, large %v, valid %v", p.Peer, p.LocalPref, p.Communities, p.LargeCommunities, p.Valid)
		}
	}
	c.waitBGPStatuses("bgp-web", 10*time.Second, 0, 1, 2)
	if l2 := c.l2Statuses("bgp-web"); len(l2) != 0 {
		t.Fatalf("a BGP-only IP has ServiceL2Status objects: %+v", l2)
	}
	eventually(t, 10*time.Second, func() (bool, string) {
		up, ann := c.metric(0, `herald_speaker_bgp_session_up{peer="`+c.lab.Prefix+bgpPeerName+`"}`), c.metric(0, `herald_speaker_announcements_total{mode="BGP"}`)
		return up == "1" && ann != "" && ann != "0", fmt.Sprintf("session_up %q announcements_total %q", up, ann)
	})

	// Two bad peers: one the speaker cannot resolve (missing BFDProfile), one the announcer
	// refuses (a VRF). Both are reported with the field; the good session and route stay.
	sessions := map[netip.Addr]int{}
	for _, n := range c.lab.Nodes {
		st, err := c.router.Neighbor(n.IPv4)
		if err != nil {
			t.Fatal(err)
		}
		sessions[n.IPv4] = st.Established
	}
	if err := c.createPeer("no-bfd", func(s *metallbv1beta2.BGPPeerSpec) { s.Address = "192.0.2.251"; s.BFDProfile = "missing" }); err != nil {
		t.Fatal(err)
	}
	if err := c.createPeer("in-vrf", func(s *metallbv1beta2.BGPPeerSpec) { s.Address = "192.0.2.252"; s.VRFName = "red" }); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{"no-bfd", "in-vrf"} {
		t.Cleanup(func() {
			_ = c.mlb.MetallbV1beta2().BGPPeers(speakerNamespace).Delete(context.Background(), c.lab.Prefix+bad, metav1.DeleteOptions{})
		})
	}
	eventually(t, 20*time.Second, func() (bool, string) {
		bfd := c.peerEvents(c.lab.Prefix+"no-bfd", "InvalidBGPPeer")
		vrf := c.peerEvents(c.lab.Prefix+"in-vrf", "BGPPeerRejected")
		ok := len(bfd) > 0 && strings.Contains(bfd[0], "spec.bfdProfile") && len(vrf) > 0 && strings.Contains(vrf[0], "vrf")
		return ok, fmt.Sprintf("events: no-bfd %q, in-vrf %q", bfd, vrf)
	})
	c.waitNexthops(ip, 5*time.Second, 0, 1, 2)
	c.waitBGPStatuses("bgp-web", 5*time.Second, 0, 1, 2)
	for _, n := range c.lab.Nodes {
		st, err := c.router.Neighbor(n.IPv4)
		if err != nil || st.State != "Established" || st.Established != sessions[n.IPv4] {
			t.Fatalf("session with %s after the bad peers: %+v, %v (it must not have been reset)", n.Name, st, err)
		}
	}

	// Kill node 2's speaker (and its announcer, in its process group): its path goes.
	start := time.Now()
	if err := c.speaker(c.nodes[2]).Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	c.waitNexthops(ip, bgpHoldTime+2*time.Second, 0, 1)
	t.Logf("path of the killed node withdrawn after %s (hold time %s)", time.Since(start).Round(time.Millisecond), bgpHoldTime)

	// Freeze node 1's speaker and announcer: no FIN is sent, so FRR's hold timer is what
	// takes the path away. Thawed, the node reconnects and advertises again.
	frozen := c.speaker(c.nodes[1])
	start = time.Now()
	if err := frozen.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = frozen.Signal(syscall.SIGCONT) })
	c.waitNexthops(ip, bgpHoldTime+2*time.Second, 0)
	t.Logf("path of the frozen node withdrawn after %s (hold time %s)", time.Since(start).Round(time.Millisecond), bgpHoldTime)
	if err := frozen.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	c.waitNexthops(ip, 30*time.Second, 0, 1)
}

// TestE2EBGPLocalTrafficPolicy: with externalTrafficPolicy Local only the nodes with a local
// endpoint advertise, and the advertisement (route and ServiceBGPStatus) follows the endpoint;
// a speaker stopped with SIGTERM takes its route and its status object away.
func TestE2EBGPLocalTrafficPolicy(t *testing.T) {
	c := newBGPCluster(t, 3)
	c.createService(serviceOptions{name: "bgp-local", ip: "203.0.113.20", local: true, endpoints: []int{1}})
	ip := c.waitIP("bgp-local")
	c.waitNexthops(ip, 40*time.Second, 1)
	c.waitBGPStatuses("bgp-local", 10*time.Second, 1)

	c.setEndpoints("bgp-local", []int{0, 2})
	c.waitNexthops(ip, 10*time.Second, 0, 2)
	c.waitBGPStatuses("bgp-local", 10*time.Second, 0, 2)

	// A speaker stopped with SIGTERM withdraws its route and deletes its own status object.
	stopped := c.speaker(c.nodes[0])
	if err := stopped.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-stopped.Done():
	case <-time.After(30 * time.Second):
		t.Fatal("speaker did not stop within 30s of SIGTERM")
	}
	c.waitNexthops(ip, 10*time.Second, 2)
	c.waitBGPStatuses("bgp-local", 10*time.Second, 2)

	c.setEndpoints("bgp-local", nil)
	c.waitNexthops(ip, 10*time.Second)
	c.waitBGPStatuses("bgp-local", 10*time.Second)
}

// peerEvents returns the messages of the Events on a BGPPeer with the reason.
func (c *bgpCluster) peerEvents(peer, reason string) []string {
	c.t.Helper()
	list, err := c.client.CoreV1().Events(speakerNamespace).List(context.Background(), metav1.ListOptions{})
	if err != nil {
		c.t.Fatal(err)
	}
	var out []string
	for _, e := range list.Items {
		if e.InvolvedObject.Kind == "BGPPeer" && e.InvolvedObject.Name == peer && e.Reason == reason {
			out = append(out, e.Message)
		}
	}
	return out
}

func bgpPtr[T any](v T) *T { return &v }

// TestE2EBGPAggregationAndBFD: changing the BGPAdvertisement to aggregationLength 24 replaces
// the /32 with a /24 from every node; with BFD on (300ms x 3, from a BFDProfile), freezing a
// node's speaker takes its path away in BFD's detection time, well before the hold time.
func TestE2EBGPAggregationAndBFD(t *testing.T) {
	c := newBGPCluster(t, 3, bgpOptions{bfd: true})
	c.createService(serviceOptions{name: "bgp-agg", ip: "203.0.113.30"})
	ip := c.waitIP("bgp-agg")
	c.waitNexthops(ip, 40*time.Second, 0, 1, 2)
	c.waitBFDUp(10 * time.Second)
	eventually(t, 10*time.Second, func() (bool, string) {
		v := c.metric(0, `herald_speaker_bgp_bfd_up{peer="`+c.lab.Prefix+bgpPeerName+`"}`)
		return v == "1", fmt.Sprintf("herald_speaker_bgp_bfd_up %q", v)
	})

	advs := c.mlb.MetallbV1beta1().BGPAdvertisements(speakerNamespace)
	adv, err := advs.Get(context.Background(), c.pool, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	agg := int32(24)
	adv.Spec.AggregationLength = &agg
	if _, err := advs.Update(context.Background(), adv, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	aggregate := netip.MustParsePrefix("203.0.113.0/24")
	rt := c.router.WaitRoute(t, aggregate, 3, 20*time.Second)
	got := slices.Clone(rt.Nexthops)
	slices.SortFunc(got, netip.Addr.Compare)
	if want := c.nodeAddrs(0, 1, 2); !slices.Equal(got, want) {
		t.Fatalf("aggregate %s via %v, want %v", aggregate, got, want)
	}
	c.router.WaitRoute(t, netip.PrefixFrom(ip, 32), 0, 10*time.Second)

	frozen := c.speaker(c.nodes[1])
	start := time.Now()
	if err := frozen.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = frozen.Signal(syscall.SIGCONT) })
	// Far below the 9s hold time: only BFD can have taken the path away this fast.
	rt = c.router.WaitRoute(t, aggregate, 2, 4*time.Second)
	t.Logf("path of the frozen node withdrawn after %s (BFD %s x %d, hold time %s)", time.Since(start).Round(time.Millisecond), bfdInterval, bfdMultiplier, bgpHoldTime)
	if slices.Contains(rt.Nexthops, c.lab.Nodes[1].IPv4) {
		t.Fatalf("the frozen node is still a next hop: %v", rt.Nexthops)
	}
}

// TestE2EBGPStaleStatusSIGKILL: a SIGKILLed speaker cannot delete its own status objects;
// exactly one live speaker (the sweeper) deletes them once the dead node's heartbeat lapses,
// within the liveness failover budget (the 2.5 s lease plus a margin): its ServiceBGPStatus
// objects, and the ServiceL2Status of an ETP Local Service whose only endpoint is on the dead
// node (no other node takes that IP over, so only the sweeper can remove the object).
func TestE2EBGPStaleStatusSIGKILL(t *testing.T) {
	c := newBGPCluster(t, 3)
	const dead = 2
	var names []string
	for i := range 2 {
		name := fmt.Sprintf("bgp-stale-%d", i)
		names = append(names, name)
		c.createService(serviceOptions{name: name, ip: fmt.Sprintf("203.0.113.%d", 80+i)})
	}
	c.createService(serviceOptions{name: "l2-stale", local: true, endpoints: []int{dead}})
	for _, name := range names {
		c.waitIP(name)
		c.waitBGPStatuses(name, 40*time.Second, 0, 1, 2)
	}
	l2IP := c.waitIP("l2-stale")
	if got := c.waitAnnouncer("l2-stale", 40*time.Second); got != c.nodes[dead] {
		t.Fatalf("l2-stale announced by %s, want %s (its only endpoint)", got, c.nodes[dead])
	}
	start := time.Now()
	if err := c.speaker(c.nodes[dead]).Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	const budget = 2500*time.Millisecond + 2*time.Second
	for _, name := range names {
		c.waitBGPStatuses(name, budget, 0, 1)
	}
	eventually(t, budget, func() (bool, string) {
		l2 := c.l2Statuses("l2-stale")
		return len(l2) == 0, fmt.Sprintf("ServiceL2Status objects of l2-stale: %+v", l2)
	})
	took := time.Since(start)
	t.Logf("status objects of the killed node gone %s after SIGKILL (lease 2.5 s)", took.Round(time.Millisecond))

	// One party acted on each object: the sweeper logs every deletion it attempts, also one
	// the API server turned away, so a second sweeper would show here.
	time.Sleep(time.Second) // a second sweeper, if any, would have acted by now
	objs := []string{announce.StatusName(framework.ServiceKey{Namespace: c.ns, Name: "l2-stale"}, l2IP)}
	for _, name := range names {
		objs = append(objs, announce.BGPStatusName(framework.ServiceKey{Namespace: c.ns, Name: name}, c.nodes[dead]))
	}
	for _, obj := range objs {
		var by []string
		for _, n := range c.nodes[:dead] {
			for _, line := range strings.Split(c.speaker(n).Output(), "\n") {
				if strings.Contains(line, "status object of a node whose speaker is not alive") && strings.Contains(line, `name="`+obj+`"`) {
					by = append(by, n)
					break
				}
			}
		}
		if len(by) != 1 {
			t.Errorf("%s acted on by %v, want exactly one live speaker", obj, by)
		}
	}
}

// TestE2EBGPFrozenNodeBack: with BFD 300 ms x 3, a node whose speaker and announcer are frozen
// (SIGSTOP) loses its path by BFD, and once resumed (SIGCONT) is back in ECMP within seconds:
// its session reconnects at once instead of after GoBGP's 30 s reset timer.
func TestE2EBGPFrozenNodeBack(t *testing.T) {
	c := newBGPCluster(t, 3, bgpOptions{bfd: true})
	c.createService(serviceOptions{name: "bgp-freeze", ip: "203.0.113.90"})
	ip := c.waitIP("bgp-freeze")
	c.waitNexthops(ip, 40*time.Second, 0, 1, 2)
	c.waitBGPStatuses("bgp-freeze", 10*time.Second, 0, 1, 2)
	// BFD comes up a second or so after BGP: a node frozen before that is only dropped by
	// the 9 s hold time.
	c.waitBFDUp(10 * time.Second)
	frozen := c.speaker(c.nodes[1])
	if err := frozen.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = frozen.Signal(syscall.SIGCONT) })
	c.waitNexthops(ip, 4*time.Second, 0, 2)
	eventually(t, 10*time.Second, func() (bool, string) {
		st, err := c.router.Neighbor(c.lab.Nodes[1].IPv4)
		return err == nil && st.State != "Established", fmt.Sprintf("FRR's session with the frozen node: %+v, %v", st, err)
	})
	time.Sleep(3 * time.Second) // its heartbeat lapses too
	start := time.Now()
	if err := frozen.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	c.waitNexthops(ip, 30*time.Second, 0, 1, 2)
	back := time.Since(start)
	t.Logf("frozen node back in ECMP %s after SIGCONT", back.Round(time.Millisecond))
	if back > 5*time.Second {
		t.Errorf("back in ECMP after %s, want within 5 s", back)
	}
	// The sweeper deleted its ServiceBGPStatus while it was frozen; it writes it again.
	c.waitBGPStatuses("bgp-freeze", 10*time.Second, 0, 1, 2)
}

// waitBFDUp waits until FRR's BFD session with every node is up.
func (c *bgpCluster) waitBFDUp(timeout time.Duration) {
	c.t.Helper()
	for _, n := range c.lab.Nodes {
		eventually(c.t, timeout, func() (bool, string) {
			st, err := c.router.BFDStatus(n.IPv4)
			return err == nil && st == "up", fmt.Sprintf("FRR's BFD session with %s: %q, %v", n.Name, st, err)
		})
	}
}
