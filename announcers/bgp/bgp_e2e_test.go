//go:build e2e

package bgp_test

import (
	"bytes"
	"context"
	"net/netip"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"

	"github.com/herald-lb/herald/announcers"
	"github.com/herald-lb/herald/test/frr"
	"github.com/herald-lb/herald/test/lab"
	"github.com/herald-lb/herald/test/testbin"
)

const (
	routerASN = 64500
	nodeASN   = 64501 // eBGP unless a test says otherwise
)

// syncBuffer collects a plugin's log for assertions.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// plug is the real herald-announcer-bgp running as a go-plugin inside a node's namespace.
type plug struct {
	announcers.Announcer
	client *plugin.Client
	pid    int
	log    *syncBuffer
}

// startPlugin runs herald-announcer-bgp inside h's namespace through go-plugin, as the speaker
// does, and returns the announcer and its process id (so a test can SIGKILL it).
func startPlugin(t testing.TB, h *lab.Host) *plug {
	t.Helper()
	bin := testbin.Build(t, "./cmd/herald-announcer-bgp")
	buf := &syncBuffer{}
	c := plugin.NewClient(&plugin.ClientConfig{
		HandshakeConfig:  announcers.Handshake,
		Plugins:          announcers.PluginMap,
		Cmd:              h.Command(context.Background(), bin),
		AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC},
		AutoMTLS:         true,
		Logger:           hclog.New(&hclog.LoggerOptions{Name: "bgp-" + h.Name, Output: buf, Level: hclog.Debug}),
	})
	t.Cleanup(c.Kill)
	rpc, err := c.Client()
	if err != nil {
		t.Fatalf("start announcer on %s: %v", h.Name, err)
	}
	raw, err := rpc.Dispense(announcers.PluginName)
	if err != nil {
		t.Fatalf("dispense on %s: %v", h.Name, err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			for _, line := range strings.Split(buf.String(), "\n") {
				if strings.Contains(line, "[ERROR]") || strings.Contains(line, "[WARN]") || strings.HasPrefix(line, "  ") {
					t.Logf("announcer on %s: %s", h.Name, line)
				}
			}
		}
	})
	return &plug{Announcer: raw.(announcers.Announcer), client: c, pid: c.ReattachConfig().Pid, log: buf}
}

func (p *plug) kill(t testing.TB) {
	t.Helper()
	if err := syscall.Kill(p.pid, syscall.SIGKILL); err != nil {
		t.Fatalf("kill announcer: %v", err)
	}
}

func waitFor(t testing.TB, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func peerStatus(t testing.TB, a announcers.Announcer, name string) announcers.PeerStatus {
	t.Helper()
	st, err := a.Status(context.Background())
	if err != nil {
		t.Fatalf("status: %v", err)
	}
	for _, p := range st.Peers {
		if p.Name == name {
			return p
		}
	}
	t.Fatalf("no peer %q in status %+v", name, st)
	return announcers.PeerStatus{}
}

func waitEstablished(t testing.TB, a announcers.Announcer, name string, timeout time.Duration) {
	t.Helper()
	waitFor(t, "peer "+name+" established", timeout, func() bool {
		return peerStatus(t, a, name).State == announcers.SessionEstablished
	})
}

func configure(t testing.TB, a announcers.Announcer, peers ...announcers.BGPPeer) {
	t.Helper()
	if err := a.Configure(context.Background(), announcers.Config{BGP: &announcers.BGPConfig{Peers: peers}}); err != nil {
		t.Fatalf("configure: %v", err)
	}
}

func announce(t testing.TB, a announcers.Announcer, gen uint64, anns ...announcers.Announcement) {
	t.Helper()
	res, err := a.SetDesired(context.Background(), announcers.DesiredSet{Generation: gen, Announcements: anns})
	if err != nil || len(res.Rejected) > 0 {
		t.Fatalf("SetDesired = %+v, %v", res, err)
	}
}

func routerPeer(l *lab.Lab, h *lab.Host, myASN uint32) announcers.BGPPeer {
	return announcers.BGPPeer{Name: "router", MyASN: myASN, PeerASN: routerASN, Address: l.Router.IPv4.String(),
		RouterID: h.IPv4.String(), HoldTime: 9 * time.Second, ConnectTime: 2 * time.Second}
}

func nodeAddrs(nodes []*lab.Host, v6 bool) []netip.Addr {
	var out []netip.Addr
	for _, n := range nodes {
		if v6 {
			out = append(out, n.IPv6)
		} else {
			out = append(out, n.IPv4)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Less(out[j]) })
	return out
}

func sortedAddrs(a []netip.Addr) []netip.Addr {
	out := slices.Clone(a)
	sort.Slice(out, func(i, j int) bool { return out[i].Less(out[j]) })
	return out
}

// TestE2EECMPWithAttributes: over iBGP (IPv4 and IPv6 sessions) every node advertises the
// /32 and /128 with communities and local preference; FRR installs ECMP routes through every
// node and sees the attributes; aggregationLength 24 turns the /32 into a /24.
func TestE2EECMPWithAttributes(t *testing.T) {
	l := lab.New(t, lab.Options{Nodes: 3})
	var neighbors []frr.Neighbor
	for _, n := range l.Nodes {
		neighbors = append(neighbors, frr.Neighbor{Address: n.IPv4, ASN: routerASN}, frr.Neighbor{Address: n.IPv6, ASN: routerASN})
	}
	r := frr.Start(t, l.Router.Netns, frr.Config{ASN: routerASN, RouterID: l.Router.IPv4, Neighbors: neighbors})

	vip4 := netip.MustParseAddr("203.0.113.10")
	vip6 := netip.MustParseAddr("2001:db8:ff::10")
	lp := uint32(250)
	attrs := &announcers.BGPRoute{LocalPref: &lp, Communities: []string{"64500:100"},
		LargeCommunities: []string{"64500:1:2"}, ExtendedCommunities: []string{"route-target:64500:7"}}
	var plugs []*plug
	for _, n := range l.Nodes {
		p := startPlugin(t, n)
		plugs = append(plugs, p)
		v4 := routerPeer(l, n, routerASN)
		v6 := v4
		v6.Name, v6.Address = "router-v6", l.Router.IPv6.String()
		configure(t, p, v4, v6)
		announce(t, p, 1,
			announcers.Announcement{Prefix: netip.PrefixFrom(vip4, 32), BGP: attrs},
			announcers.Announcement{Prefix: netip.PrefixFrom(vip6, 128), BGP: attrs})
	}
	for _, p := range plugs {
		waitEstablished(t, p, "router", 20*time.Second)
		waitEstablished(t, p, "router-v6", 20*time.Second)
	}
	rt := r.WaitRoute(t, netip.PrefixFrom(vip4, 32), 3, 15*time.Second)
	if got, want := sortedAddrs(rt.Nexthops), nodeAddrs(l.Nodes, false); !slices.Equal(got, want) {
		t.Errorf("ECMP next hops of %s = %v, want every node %v", vip4, got, want)
	}
	rt6 := r.WaitRoute(t, netip.PrefixFrom(vip6, 128), 3, 15*time.Second)
	if got, want := sortedAddrs(rt6.Nexthops), nodeAddrs(l.Nodes, true); !slices.Equal(got, want) {
		t.Errorf("ECMP next hops of %s = %v, want every node %v", vip6, got, want)
	}
	for _, pfx := range []netip.Prefix{netip.PrefixFrom(vip4, 32), netip.PrefixFrom(vip6, 128)} {
		paths, err := r.Paths(pfx)
		if err != nil {
			t.Fatal(err)
		}
		if len(paths) != 3 {
			t.Fatalf("FRR holds %d paths for %s, want 3: %+v", len(paths), pfx, paths)
		}
		for _, p := range paths {
			if p.LocalPref == nil || *p.LocalPref != 250 {
				t.Errorf("%s from %s: local-pref %v, want 250", pfx, p.Peer, p.LocalPref)
			}
			if !slices.Contains(p.Communities, "64500:100") || !slices.Contains(p.LargeCommunities, "64500:1:2") ||
				!slices.Contains(p.ExtendedCommunities, "RT:64500:7") {
				t.Errorf("%s from %s: communities %v large %v extended %v", pfx, p.Peer, p.Communities, p.LargeCommunities, p.ExtendedCommunities)
			}
		}
	}
	st, err := plugs[0].Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Announced) != 2 || !slices.Contains(st.Announced[0].Peers, "router") {
		t.Errorf("status announced = %+v", st.Announced)
	}

	// Aggregation: the same address with aggregationLength 24 is advertised as the /24.
	agg := &announcers.BGPRoute{AggregationLength: 24}
	for _, p := range plugs {
		announce(t, p, 2, announcers.Announcement{Prefix: netip.PrefixFrom(vip4, 32), BGP: agg})
	}
	r.WaitRoute(t, netip.MustParsePrefix("203.0.113.0/24"), 3, 10*time.Second)
	r.WaitRoute(t, netip.PrefixFrom(vip4, 32), 0, 10*time.Second)
	r.WaitRoute(t, netip.PrefixFrom(vip6, 128), 0, 10*time.Second)
}

// TestE2ELocalPrefOnlyIBGP: over eBGP the local preference is not sent while communities
// are; the session coming up is streamed as an event; Drain withdraws the route and keeps the
// session.
func TestE2ELocalPrefOnlyIBGP(t *testing.T) {
	l := lab.New(t, lab.Options{Nodes: 1})
	n := l.Nodes[0]
	r := frr.Start(t, l.Router.Netns, frr.Config{ASN: routerASN, RouterID: l.Router.IPv4,
		Neighbors: []frr.Neighbor{{Address: n.IPv4, ASN: nodeASN}}})
	p := startPlugin(t, n)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	events, err := p.Events(ctx)
	if err != nil {
		t.Fatal(err)
	}
	configure(t, p, routerPeer(l, n, nodeASN))
	lp := uint32(250)
	vip := netip.MustParsePrefix("203.0.113.20/32")
	announce(t, p, 1, announcers.Announcement{Prefix: vip, BGP: &announcers.BGPRoute{LocalPref: &lp, Communities: []string{"64501:9"}}})
	r.WaitRoute(t, vip, 1, 20*time.Second)
	paths, err := r.Paths(vip)
	if err != nil || len(paths) != 1 {
		t.Fatalf("paths = %+v, %v", paths, err)
	}
	if paths[0].LocalPref != nil && *paths[0].LocalPref == 250 {
		t.Errorf("local-pref 250 reached an eBGP peer")
	}
	if !slices.Contains(paths[0].Communities, "64501:9") {
		t.Errorf("communities = %v, want 64501:9", paths[0].Communities)
	}
	// The session coming up was streamed as an event.
	deadline := time.After(5 * time.Second)
	for up := false; !up; {
		select {
		case e := <-events:
			up = e.Session != nil && e.Session.Peer == "router" && e.Session.State == announcers.SessionEstablished
		case <-deadline:
			t.Fatal("no established event for peer router")
		}
	}
	// Drain withdraws the route; the session stays up.
	if n, err := p.Drain(context.Background()); err != nil || n != 1 {
		t.Fatalf("Drain = %d, %v; want 1 withdrawn", n, err)
	}
	r.WaitRoute(t, vip, 0, 5*time.Second)
	if ps := peerStatus(t, p, "router"); ps.State != announcers.SessionEstablished {
		t.Errorf("session after drain: %+v", ps)
	}
}

// failover measures, over several trials, the time from the failure of one node's announcer
// until FRR has removed that node's next hop. With freeze false the announcer is SIGKILLed:
// its kernel closes the TCP session, so FRR notices at once. With freeze true it is SIGSTOPped:
// sockets stay open and nothing is sent, as when a node hangs or its link goes dark, so only
// the hold timer or BFD can detect it.
func failover(t *testing.T, bfd, freeze bool, trials int, limit time.Duration) []time.Duration {
	l := lab.New(t, lab.Options{Nodes: 2})
	var neighbors []frr.Neighbor
	hold := 3 * time.Second
	if bfd {
		hold = 30 * time.Second // so that only BFD can explain a fast loss
	}
	for _, n := range l.Nodes {
		nb := frr.Neighbor{Address: n.IPv4, ASN: nodeASN, HoldTime: hold, Keepalive: time.Second}
		if bfd {
			nb.BFD = &frr.BFD{ReceiveInterval: 300 * time.Millisecond, TransmitInterval: 300 * time.Millisecond, DetectMultiplier: 3}
		}
		neighbors = append(neighbors, nb)
	}
	r := frr.Start(t, l.Router.Netns, frr.Config{ASN: routerASN, RouterID: l.Router.IPv4, Neighbors: neighbors})
	vip := netip.MustParsePrefix("203.0.113.30/32")
	start := func(n *lab.Host) *plug {
		p := startPlugin(t, n)
		peer := routerPeer(l, n, nodeASN)
		peer.HoldTime, peer.KeepaliveTime = hold, time.Second
		if bfd {
			peer.BFD = &announcers.BFDProfile{Name: "fast", ReceiveInterval: 300 * time.Millisecond, TransmitInterval: 300 * time.Millisecond, DetectMultiplier: 3}
		}
		configure(t, p, peer)
		announce(t, p, 1, announcers.Announcement{Prefix: vip})
		return p
	}
	survivor := start(l.Nodes[1])
	var took []time.Duration
	for i := 0; i < trials; i++ {
		victim := start(l.Nodes[0])
		// Registered after startPlugin's cleanup, so it runs first: go-plugin's Kill talks to the
		// process before killing it and would wait forever on a frozen one if a trial fails.
		t.Cleanup(func() { _ = syscall.Kill(victim.pid, syscall.SIGKILL) })
		r.WaitRoute(t, vip, 2, 20*time.Second)
		if bfd {
			settleBFD(t, r, vip, func() bool {
				sv, _ := r.BFDStatus(l.Nodes[0].IPv4)
				ss, _ := r.BFDStatus(l.Nodes[1].IPv4)
				return sv == "up" && ss == "up" && peerStatus(t, victim, "router").BFDUp && peerStatus(t, survivor, "router").BFDUp
			})
		}
		t0 := time.Now()
		if freeze {
			if err := syscall.Kill(victim.pid, syscall.SIGSTOP); err != nil {
				t.Fatal(err)
			}
		} else {
			victim.kill(t)
		}
		rt, err := r.AwaitRoute(vip, 1, limit+5*time.Second)
		d := time.Since(t0)
		if err != nil {
			bfdState, _ := r.BFDStatus(l.Nodes[0].IPv4)
			t.Fatalf("trial %d: %v (router's BFD state for the victim: %q)", i, err, bfdState)
		}
		if rt.Nexthops[0] != l.Nodes[1].IPv4 {
			t.Fatalf("trial %d: remaining next hop %v, want the survivor %s", i, rt.Nexthops, l.Nodes[1].IPv4)
		}
		took = append(took, d)
		_ = syscall.Kill(victim.pid, syscall.SIGKILL)
		victim.client.Kill()
	}
	slices.Sort(took)
	t.Logf("failover (bfd=%v, freeze=%v, hold %s) over %d trials: min %s median %s max %s all %v", bfd, freeze, hold, trials, took[0], took[len(took)/2], took[len(took)-1], took)
	if worst := took[len(took)-1]; worst > limit {
		t.Errorf("worst failover %s exceeds %s", worst, limit)
	}
	return took
}

// settleBFD waits until both BFD sessions are up on both sides and both paths are installed,
// and checks they stay so for two seconds: past the move from the slow start-up rate to
// 300 ms, so that a freeze measures the profile. A session that flaps is a failure (GoBGP's
// own BFD used to reset sessions right after they came up; trials were restarted then).
func settleBFD(t *testing.T, r *frr.Router, vip netip.Prefix, bothUp func() bool) {
	t.Helper()
	waitFor(t, "BFD up on both sides", 10*time.Second, bothUp)
	if _, err := r.AwaitRoute(vip, 2, 10*time.Second); err != nil {
		t.Fatalf("both paths before the trial: %v", err)
	}
	for deadline := time.Now().Add(2 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if _, err := r.AwaitRoute(vip, 2, 0); err != nil || !bothUp() {
			t.Fatalf("BFD or a BGP session flapped within 2 s of coming up (route: %v)", err)
		}
	}
}

// TestE2EHoldTimeFailover: with a 3 s hold time, FRR drops the path of a killed node, and of a
// frozen one (hold timer expiry), within the hold time (plus polling slack).
func TestE2EHoldTimeFailover(t *testing.T) {
	t.Run("kill", func(t *testing.T) { failover(t, false, false, 3, 3*time.Second+300*time.Millisecond) })
	t.Run("freeze", func(t *testing.T) {
		took := failover(t, false, true, 3, 3*time.Second+500*time.Millisecond)
		if took[0] < time.Second {
			t.Errorf("a frozen announcer was detected after %s, too early for a 3 s hold timer with 1 s keepalives: something else ended the session", took[0])
		}
	})
}

// TestE2EBFDFailover: with BFD 300 ms x 3 on both sides and a 30 s hold time, FRR drops a
// frozen node's path within about the 900 ms detection time. The goal is 1 s; the median may
// exceed it by the 200 ms that polling FRR through vtysh costs on a loaded machine, and each
// trial must stay under 1.5 s, far below the 30 s hold time.
func TestE2EBFDFailover(t *testing.T) {
	took := failover(t, true, true, 5, 1500*time.Millisecond)
	median := took[len(took)/2]
	if median > time.Second {
		t.Logf("median BFD failover %s is above the 1 s goal", median)
	}
	if median > 1200*time.Millisecond {
		t.Errorf("median BFD failover %s is above the 1 s goal plus 200 ms of polling slack", median)
	}
}

// TestE2EPassword: the right TCP MD5 password establishes, a wrong one does not, and the status
// says so; the password never appears in the announcer's log.
func TestE2EPassword(t *testing.T) {
	const secret = "lab-md5-Secret"
	l := lab.New(t, lab.Options{Nodes: 2})
	r := frr.Start(t, l.Router.Netns, frr.Config{ASN: routerASN, RouterID: l.Router.IPv4, Neighbors: []frr.Neighbor{
		{Address: l.Nodes[0].IPv4, ASN: nodeASN, Password: secret},
		{Address: l.Nodes[1].IPv4, ASN: nodeASN, Password: secret},
	}})
	vip := netip.MustParsePrefix("203.0.113.40/32")
	good := startPlugin(t, l.Nodes[0])
	gp := routerPeer(l, l.Nodes[0], nodeASN)
	gp.Password = secret
	configure(t, good, gp)
	announce(t, good, 1, announcers.Announcement{Prefix: vip})

	bad := startPlugin(t, l.Nodes[1])
	bp := routerPeer(l, l.Nodes[1], nodeASN)
	bp.Password = "wrong-password"
	configure(t, bad, bp)
	announce(t, bad, 1, announcers.Announcement{Prefix: vip})

	waitEstablished(t, good, "router", 20*time.Second)
	rt := r.WaitRoute(t, vip, 1, 10*time.Second)
	if rt.Nexthops[0] != l.Nodes[0].IPv4 {
		t.Fatalf("next hop %v, want only the node with the right password", rt.Nexthops)
	}
	// Several connect attempts (2 s connect time) with the wrong key.
	var st announcers.PeerStatus
	waitFor(t, "a connect attempt to fail with the wrong password", 20*time.Second, func() bool {
		st = peerStatus(t, bad, "router")
		return strings.Contains(st.Message, "last connect attempt")
	})
	if st.State == announcers.SessionEstablished {
		t.Fatalf("session with the wrong password is established")
	}
	if s, err := r.Neighbor(l.Nodes[1].IPv4); err != nil || s.State == "Established" || s.Established != 0 {
		t.Errorf("FRR neighbor with the wrong password: %+v, %v", s, err)
	}
	if !strings.Contains(st.Message, "password") {
		t.Errorf("status message %q does not point at the password", st.Message)
	}
	t.Logf("wrong-password status: %s: %s", st.State, st.Message)
	for _, p := range []*plug{good, bad} {
		if strings.Contains(p.log.String(), secret) || strings.Contains(p.log.String(), "wrong-password") {
			t.Errorf("announcer log contains the password")
		}
	}
}

// TestE2EBadPeersIsolated: an unreachable peer, a peer with the wrong ASN and a peer whose
// BFD profile cannot be honoured each show a clear status, while the good session stays up
// (never reset) and carries the route.
func TestE2EBadPeersIsolated(t *testing.T) {
	l := lab.New(t, lab.Options{Nodes: 1})
	n := l.Nodes[0]
	r := frr.Start(t, l.Router.Netns, frr.Config{ASN: routerASN, RouterID: l.Router.IPv4, Neighbors: []frr.Neighbor{
		{Address: n.IPv4, ASN: nodeASN},
		{Address: n.IPv6, ASN: nodeASN},
	}})
	p := startPlugin(t, n)
	good := routerPeer(l, n, nodeASN)
	wrongASN := good
	wrongASN.Name, wrongASN.Address, wrongASN.PeerASN = "wrong-asn", l.Router.IPv6.String(), 64999
	unreachable := good
	unreachable.Name, unreachable.Address = "unreachable", "192.0.2.250"
	echo := good
	echo.Name, echo.Address = "echo", "192.0.2.251"
	echo.BFD = &announcers.BFDProfile{Name: "with-echo", EchoMode: true}
	configure(t, p, good, wrongASN, unreachable, echo)
	vip := netip.MustParsePrefix("203.0.113.50/32")
	announce(t, p, 1, announcers.Announcement{Prefix: vip})
	waitEstablished(t, p, "router", 20*time.Second)
	r.WaitRoute(t, vip, 1, 10*time.Second)

	waitFor(t, "wrong ASN reported", 20*time.Second, func() bool {
		return strings.Contains(strings.ToLower(peerStatus(t, p, "wrong-asn").Message), "bad peer as")
	})
	waitFor(t, "unreachable peer reported", 20*time.Second, func() bool {
		return strings.Contains(peerStatus(t, p, "unreachable").Message, "last connect attempt")
	})
	for _, name := range []string{"wrong-asn", "unreachable", "echo"} {
		st := peerStatus(t, p, name)
		if st.State == announcers.SessionEstablished || st.Message == "" {
			t.Errorf("peer %s: %+v, want not established with a message", name, st)
		}
		t.Logf("%s: %s: %s", name, st.State, st.Message)
	}
	if m := peerStatus(t, p, "echo").Message; !strings.Contains(m, "echoMode") {
		t.Errorf("echo peer message %q does not name echoMode", m)
	}
	// Reconfigure with the bad peers changed and removed: the good session must not reset.
	unreachable.Address = "192.0.2.252"
	configure(t, p, good, unreachable)
	time.Sleep(2 * time.Second)
	s, err := r.Neighbor(n.IPv4)
	if err != nil || s.State != "Established" || s.Established != 1 {
		t.Errorf("good session disturbed: %+v, %v", s, err)
	}
	if ps := peerStatus(t, p, "router"); ps.State != announcers.SessionEstablished || ps.Message != "" {
		t.Errorf("good peer status %+v", ps)
	}
	r.WaitRoute(t, vip, 1, time.Second)
}

// BenchmarkE2EAnnounce10k measures how fast the announcer pushes 10,000 /128s to FRR: the
// time from SetDesired until FRR has accepted all of them. Run with
// go test -tags e2e -run '^$' -bench E2EAnnounce10k -benchtime 1x ./announcers/bgp/
func BenchmarkE2EAnnounce10k(b *testing.B) {
	const count = 10000
	l := lab.New(b, lab.Options{Nodes: 1})
	n := l.Nodes[0]
	r := frr.Start(b, l.Router.Netns, frr.Config{ASN: routerASN, RouterID: l.Router.IPv4,
		Neighbors: []frr.Neighbor{{Address: n.IPv6, ASN: nodeASN}}})
	p := startPlugin(b, n)
	peer := routerPeer(l, n, nodeASN)
	peer.Address = l.Router.IPv6.String()
	configure(b, p, peer)
	waitEstablished(b, p, "router", 30*time.Second)
	base := netip.MustParseAddr("2001:db8:100::")
	anns := make([]announcers.Announcement, count)
	a := base
	for i := range anns {
		anns[i] = announcers.Announcement{Prefix: netip.PrefixFrom(a, 128)}
		a = a.Next()
	}
	var gen uint64
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		gen++
		t0 := time.Now()
		announce(b, p, gen, anns...)
		b.ReportMetric(float64(time.Since(t0).Milliseconds()), "ms-setdesired")
		waitFor(b, "FRR has every prefix", 120*time.Second, func() bool {
			c, err := r.ReceivedPrefixes("ipv6", n.IPv6)
			return err == nil && c == count
		})
		d := time.Since(t0)
		b.ReportMetric(float64(count)/d.Seconds(), "routes/s")
		b.StopTimer()
		gen++
		announce(b, p, gen)
		waitFor(b, "FRR withdrew every prefix", 120*time.Second, func() bool {
			c, err := r.ReceivedPrefixes("ipv6", n.IPv6)
			return err == nil && c == 0
		})
		b.StartTimer()
	}
}

// TestE2EPeerRestriction: a route restricted to named peers reaches only those; widening the
// restriction later sends it to the newly allowed peer, and narrowing withdraws it there. The
// second peer is another FRR in the lab's client namespace.
func TestE2EPeerRestriction(t *testing.T) {
	l := lab.New(t, lab.Options{Nodes: 1})
	n := l.Nodes[0]
	r1 := frr.Start(t, l.Router.Netns, frr.Config{ASN: routerASN, RouterID: l.Router.IPv4, Neighbors: []frr.Neighbor{{Address: n.IPv4, ASN: nodeASN}}})
	r2 := frr.Start(t, l.Client.Netns, frr.Config{ASN: 64502, RouterID: l.Client.IPv4, Neighbors: []frr.Neighbor{{Address: n.IPv4, ASN: nodeASN}}})
	p := startPlugin(t, n)
	first := routerPeer(l, n, nodeASN)
	second := first
	second.Name, second.Address, second.PeerASN = "second", l.Client.IPv4.String(), 64502
	configure(t, p, first, second)
	onlyFirst := netip.MustParsePrefix("203.0.113.61/32")
	onlySecond := netip.MustParsePrefix("203.0.113.62/32")
	both := netip.MustParsePrefix("203.0.113.63/32")
	announce(t, p, 1,
		announcers.Announcement{Prefix: onlyFirst, BGP: &announcers.BGPRoute{Peers: []string{"router"}}},
		announcers.Announcement{Prefix: onlySecond, BGP: &announcers.BGPRoute{Peers: []string{"second"}}},
		announcers.Announcement{Prefix: both})
	waitEstablished(t, p, "router", 20*time.Second)
	waitEstablished(t, p, "second", 20*time.Second)
	r1.WaitRoute(t, both, 1, 10*time.Second)
	r2.WaitRoute(t, both, 1, 10*time.Second)
	r1.WaitRoute(t, onlyFirst, 1, 5*time.Second)
	r2.WaitRoute(t, onlySecond, 1, 5*time.Second)
	for _, c := range []struct {
		r   *frr.Router
		pfx netip.Prefix
	}{{r1, onlySecond}, {r2, onlyFirst}} {
		if _, ok, err := c.r.Route(c.pfx); err != nil || ok {
			t.Errorf("%s reached a peer it is restricted from (ok=%v, err=%v)", c.pfx, ok, err)
		}
	}
	// Widen onlyFirst to both peers, narrow both to the second only.
	announce(t, p, 2,
		announcers.Announcement{Prefix: onlyFirst, BGP: &announcers.BGPRoute{Peers: []string{"router", "second"}}},
		announcers.Announcement{Prefix: onlySecond, BGP: &announcers.BGPRoute{Peers: []string{"second"}}},
		announcers.Announcement{Prefix: both, BGP: &announcers.BGPRoute{Peers: []string{"second"}}})
	r2.WaitRoute(t, onlyFirst, 1, 10*time.Second)
	r1.WaitRoute(t, both, 0, 10*time.Second)
	r2.WaitRoute(t, both, 1, time.Second)
	r1.WaitRoute(t, onlyFirst, 1, time.Second)
}
