package speaker

import (
	"context"
	"fmt"
	"maps"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kubefake "k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/klog/v2/ktesting"

	"github.com/herald-lb/herald/announcers"
	"github.com/herald-lb/herald/announcers/manager"
	"github.com/herald-lb/herald/config"
	metallbfake "github.com/herald-lb/herald/config/metallb/client/clientset/versioned/fake"
	metallblisters "github.com/herald-lb/herald/config/metallb/client/listers/metallb/v1beta1"
	metallbv1beta1 "github.com/herald-lb/herald/config/metallb/v1beta1"
	"github.com/herald-lb/herald/framework"
	"github.com/herald-lb/herald/heartbeat"
	"github.com/herald-lb/herald/speaker/announce"
)

// The tests in this file run the speaker's own logic (queue processing, the Bind path through
// the ledger, hand-over, Events) over fake clients and a fake announcer manager. The real API
// server and real announcers are the integration and end-to-end tests' business.

// fakeManager is an announcer manager whose announcers are always in the given health.
type fakeManager struct {
	mu     sync.Mutex
	health []manager.Health
	// log is every Apply and StopKeeping, in order: "+arp 192.0.2.10", "-arp 192.0.2.10", "stop".
	log    []string
	events chan manager.Event
	// onStop, when set, is called at StopKeeping, before it is logged.
	onStop func()
}

func newFakeManager(health ...manager.Health) *fakeManager {
	return &fakeManager{health: health, events: make(chan manager.Event, 10)}
}

func (m *fakeManager) Apply(_ context.Context, name string, upserts []announcers.Announcement, removes []string) (manager.Result, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, a := range upserts {
		m.log = append(m.log, "+"+name+" "+a.Prefix.Addr().String())
	}
	for _, id := range removes {
		m.log = append(m.log, "-"+name+" "+id)
	}
	return manager.Result{}, nil
}

func (m *fakeManager) Start(context.Context) {}

func (m *fakeManager) StopKeeping(context.Context, func(string) bool) error {
	if m.onStop != nil {
		m.onStop()
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.log = append(m.log, "stop")
	return nil
}

func (m *fakeManager) Events() <-chan manager.Event { return m.events }

func (m *fakeManager) Health() []manager.Health {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.health)
}

func (m *fakeManager) For(kind string) string {
	for _, h := range m.health {
		if h.Kind == kind {
			return h.Name
		}
	}
	return ""
}

func (m *fakeManager) Configure(context.Context, string, announcers.Config) error { return nil }

func (m *fakeManager) Status(context.Context, string) (announcers.Status, error) {
	return announcers.Status{}, manager.ErrUnavailable
}

func (m *fakeManager) calls() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.log)
}

// eth0 is a PreFilter that chooses eth0 on every node, in place of the Interfaces plugin
// (the speaker imports no plugin package).
type eth0 struct{}

func (eth0) Name() string { return "TestEth0" }
func (eth0) PreFilter(_ context.Context, state *framework.CycleState, _ *framework.Unit) *framework.Status {
	state.Write(framework.InterfaceChoiceKey, eth0{})
	return nil
}
func (eth0) Clone() framework.StateData                               { return eth0{} }
func (eth0) Interfaces(*framework.Unit, *framework.NodeInfo) []string { return []string{"eth0"} }

const (
	self    = "node-a"
	testIP  = "192.0.2.10"
	testMAC = "02:00:00:00:00:0b"
)

var arpHealthy = manager.Health{Name: "arp", Kind: announcers.KindARP, State: manager.StateHealthy}

type testSpeaker struct {
	*Speaker
	mgr     *fakeManager
	metallb *metallbfake.Clientset
	rec     *record.FakeRecorder
}

// newTestSpeaker returns a speaker over fake clients and mgr, wired for binding (no informer,
// no HTTP listener), whose heartbeat was renewed once on a clock that does not move, with
// this node and a Service with two ports' worth of Services on testIP in its snapshot.
func newTestSpeaker(t *testing.T, mgr *fakeManager) *testSpeaker {
	t.Helper()
	cfg := &config.SpeakerConfiguration{
		Heartbeat: config.Heartbeat{LeaseDuration: config.D(time.Minute), RenewInterval: config.D(time.Second), Namespace: testNS},
		Draining:  config.Draining{Timeout: config.D(time.Minute)},
		Profiles: []config.Profile{{Name: "default", Plugins: config.Plugins{
			PreFilter: config.PluginSet{Enabled: []config.Plugin{{Name: "TestEth0"}}}}}},
	}
	reg := framework.Registry{"TestEth0": {Factory: func(framework.PluginArgs, framework.Handle) (framework.Plugin, error) { return eth0{}, nil }}}
	mlb := metallbfake.NewSimpleClientset()
	s, err := New(Options{NodeName: self, Config: cfg, Registry: reg,
		Interfaces: func() ([]framework.Interface, error) { return nil, nil }},
		Clients{Kube: kubefake.NewSimpleClientset(), Metallb: mlb}, mgr)
	if err != nil {
		t.Fatal(err)
	}
	ts := &testSpeaker{Speaker: s, mgr: mgr, metallb: mlb, rec: record.NewFakeRecorder(20)}
	s.recorder = ts.rec
	clock := time.Now()
	s.hb.now = func() time.Time { return clock }
	if err := s.hb.attempt(context.Background()); err != nil {
		t.Fatalf("first heartbeat: %v", err)
	}
	empty := func() cache.Indexer { return cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{}) }
	_, ctx := ktesting.NewTestContext(t)
	if err := s.wireBind(ctx, metallblisters.NewServiceL2StatusLister(empty()), metallblisters.NewServiceBGPStatusLister(empty()), nil); err != nil {
		t.Fatal(err)
	}
	s.builder.SetNode(&corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: self}})
	for _, name := range []string{"web", "web-udp"} {
		s.builder.SetService(&corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name},
			Spec:       corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer},
			Status:     corev1.ServiceStatus{LoadBalancer: corev1.LoadBalancerStatus{Ingress: []corev1.LoadBalancerIngress{{IP: testIP}}}},
		})
	}
	return ts
}

// statusNodes returns, by Service name, the node each ServiceL2Status in the API names.
func (ts *testSpeaker) statusNodes(t *testing.T) map[string]string {
	t.Helper()
	list, err := ts.metallb.MetallbV1beta1().ServiceL2Statuses(testNS).List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, st := range list.Items {
		out[st.Status.ServiceName] = st.Status.Node
	}
	return out
}

// flushStatus writes the status objects the cycle asked for.
func (ts *testSpeaker) flushStatus(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); ts.l2Status.Run(ctx, 1) }()
	fctx, fcancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer fcancel()
	if err := ts.l2Status.Flush(fctx); err != nil {
		t.Fatalf("waiting for the status writes: %v", err)
	}
	cancel()
	<-done
}

func (ts *testSpeaker) events() []string {
	var out []string
	for {
		select {
		case ev := <-ts.rec.Events:
			out = append(out, ev)
		default:
			return out
		}
	}
}

// The Bind path claims a unit (status objects, an Event) only while its announcer answers; a
// cycle where it does not fails (so the unit is retried) and sends nothing.
func TestProcessClaimsOnlyWhenTheAnnouncerAnswers(t *testing.T) {
	for _, tc := range []struct {
		name   string
		health manager.Health
		// want* are what one cycle of the unit leaves.
		wantErr     bool
		wantCalls   []string
		wantStatus  map[string]string
		wantEvent   bool
		wantClaimed bool
	}{
		{name: "healthy", health: arpHealthy, wantCalls: []string{"+arp " + testIP},
			wantStatus: map[string]string{"web": self, "web-udp": self}, wantEvent: true, wantClaimed: true},
		{name: "idle, starts on demand", health: manager.Health{Name: "arp", Kind: announcers.KindARP, State: manager.StateIdle},
			wantCalls: []string{"+arp " + testIP}, wantStatus: map[string]string{"web": self, "web-udp": self}, wantEvent: true, wantClaimed: true},
		{name: "refused", health: manager.Health{Name: "arp", Kind: announcers.KindARP, State: manager.StateRefused, Message: "checksum mismatch"},
			wantErr: true, wantStatus: map[string]string{}},
		{name: "unhealthy", health: manager.Health{Name: "arp", Kind: announcers.KindARP, State: manager.StateUnhealthy},
			wantErr: true, wantStatus: map[string]string{}},
		{name: "starting after a failure", health: manager.Health{Name: "arp", Kind: announcers.KindARP, State: manager.StateStarting},
			wantErr: true, wantStatus: map[string]string{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ts := newTestSpeaker(t, newFakeManager(tc.health))
			ts.ready.update(ts.mgr.Health())
			err := ts.process(context.Background(), ipKey(netip.MustParseAddr(testIP)))
			if (err != nil) != tc.wantErr {
				t.Fatalf("process: %v, want error %v", err, tc.wantErr)
			}
			if got := ts.mgr.calls(); !slices.Equal(got, tc.wantCalls) {
				t.Errorf("announcer calls %q, want %q", got, tc.wantCalls)
			}
			ts.flushStatus(t)
			if got := ts.statusNodes(t); fmt.Sprint(got) != fmt.Sprint(tc.wantStatus) {
				t.Errorf("status objects name %v, want %v", got, tc.wantStatus)
			}
			evs := ts.events()
			if got := len(evs) == 2 && strings.Contains(evs[0], announce.ReasonNodeChanged); got != tc.wantEvent || !tc.wantEvent && len(evs) != 0 {
				t.Errorf("events %q, want an %s Event per Service: %v", evs, announce.ReasonNodeChanged, tc.wantEvent)
			}
			held := ts.ledger.List()
			if claimed := len(held) == 1 && held[0].Claimed; claimed != tc.wantClaimed || !tc.wantClaimed && len(held) != 0 {
				t.Errorf("ledger holds %+v, want claimed %v", held, tc.wantClaimed)
			}
		})
	}
}

// On shutdown the speaker marks its heartbeat draining and withdraws (stops the announcers)
// only once another node's status object names each Service it announced, or the Service is
// gone, or the hand-over timed out.
func TestShutdownWithdrawsOnlyAfterTheHandOver(t *testing.T) {
	for _, tc := range []struct {
		name string
		// takeOverAfter is the number of reads of the status objects after which node-b has
		// taken the Services over; -1: never.
		takeOverAfter int
		timeout       time.Duration
		deleteService bool
		// wantTakenOver: the last read before the stop showed node-b on every Service.
		wantTakenOver bool
	}{
		{name: "another node takes over", takeOverAfter: 6, timeout: time.Minute, wantTakenOver: true},
		{name: "the Services are gone", takeOverAfter: -1, timeout: time.Minute, deleteService: true},
		{name: "nobody takes over before the timeout", takeOverAfter: -1, timeout: 50 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ts := newTestSpeaker(t, newFakeManager(arpHealthy))
			ts.ready.update(ts.mgr.Health())
			ip := netip.MustParseAddr(testIP)
			if err := ts.process(context.Background(), ipKey(ip)); err != nil {
				t.Fatal(err)
			}
			ts.o.Config.Draining.Timeout = config.D(tc.timeout)
			var mu sync.Mutex
			reads, lastNode := 0, map[string]string{}
			ts.l2Lister = func(ns, name string) (*metallbv1beta1.ServiceL2Status, error) {
				mu.Lock()
				defer mu.Unlock()
				reads++
				node := self
				if tc.takeOverAfter >= 0 && reads > tc.takeOverAfter {
					node = "node-b"
				}
				lastNode[name] = node
				return &metallbv1beta1.ServiceL2Status{Status: metallbv1beta1.MetalLBServiceL2Status{Node: node}}, nil
			}
			if tc.deleteService {
				ts.builder.DeleteService("default", "web")
				ts.builder.DeleteService("default", "web-udp")
			}
			var atStop struct {
				draining bool
				reads    int
				nodes    map[string]string
				held     int
			}
			ts.mgr.onStop = func() {
				mu.Lock()
				defer mu.Unlock()
				atStop.draining, atStop.reads, atStop.nodes, atStop.held = ts.hb.isDraining(), reads, maps.Clone(lastNode), len(ts.ledger.List())
			}
			ctx, stopRun := context.WithCancel(context.Background())
			status := make(chan struct{})
			go func() { defer close(status); ts.l2Status.Run(ctx, 1) }()
			var wg sync.WaitGroup
			if err := ts.shutdown(ctx, stopRun, &wg, httpServers{}, true); err != nil {
				t.Fatal(err)
			}
			<-status

			if got := ts.mgr.calls(); !slices.Equal(got, []string{"+arp " + testIP, "stop"}) {
				t.Errorf("announcer calls %q: want the announcement, then the stop (the drain withdraws), and nothing removed before", got)
			}
			if !atStop.draining {
				t.Error("stopped the announcers before the heartbeat said draining")
			}
			if atStop.held != 1 {
				t.Errorf("the ledger held %d units at the stop, want the one this node announced", atStop.held)
			}
			takenOver := len(atStop.nodes) == 2
			for _, n := range atStop.nodes {
				takenOver = takenOver && n == "node-b"
			}
			if takenOver != tc.wantTakenOver {
				t.Errorf("status objects read at the stop %v (after %d reads), want taken over by node-b: %v", atStop.nodes, atStop.reads, tc.wantTakenOver)
			}
			if tc.takeOverAfter >= 0 && atStop.reads <= tc.takeOverAfter {
				t.Errorf("stopped after %d reads of the status objects, before node-b took over (after %d)", atStop.reads, tc.takeOverAfter)
			}
			if tc.deleteService && atStop.reads != 0 {
				t.Errorf("read the status objects of Services that are gone %d times", atStop.reads)
			}
			if !tc.deleteService && !tc.wantTakenOver && atStop.reads == 0 {
				t.Error("timed out without looking whether another node took over")
			}
		})
	}
}

// An address conflict on an IP this node announces is an Event on each of its Services,
// unless the other MAC is a live Herald node's (a hand-over in progress).
func TestConflictEvents(t *testing.T) {
	ts := newTestSpeaker(t, newFakeManager(arpHealthy))
	ts.ready.update(ts.mgr.Health())
	ip := netip.MustParseAddr(testIP)
	if err := ts.process(context.Background(), ipKey(ip)); err != nil {
		t.Fatal(err)
	}
	ts.events() // the takeover Events
	lease, err := heartbeat.Encode(heartbeat.Heartbeat{NodeName: "node-b", Holder: "node-b", RenewTime: time.Now(), LeaseDuration: time.Hour,
		Interfaces: []framework.Interface{{Name: "eth0", Up: true, MAC: testMAC}}}, testNS)
	if err != nil {
		t.Fatal(err)
	}
	ts.builder.SetNode(&corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node-b"}})
	ts.builder.SetLease(lease)
	if n := heraldPeerWithMAC(ts.builder.Snapshot(time.Now()), self, testMAC); n == nil || !n.Speaker.AliveAt(time.Now()) {
		t.Fatalf("node-b is not a live Herald peer with %s in the snapshot: %+v", testMAC, n)
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go ts.watchAnnouncerEvents(ctx)
	conflict := func(mac string) manager.Event {
		hw, err := net.ParseMAC(mac)
		if err != nil {
			t.Fatal(err)
		}
		return manager.Event{Announcer: "arp", Event: announcers.Event{Conflict: &announcers.Conflict{
			Address: ip, Interface: "eth0", ForeignMAC: hw.String(), Detail: "ARP reply from another MAC"}}}
	}
	// In order: the live peer's claim (no Event), then a stranger's (an Event per Service).
	// The events are handled one at a time, so the first Event seen is the stranger's.
	ts.mgr.events <- conflict(testMAC)
	ts.mgr.events <- conflict("02:00:00:00:00:ff")
	var got []string
	timeout := time.After(10 * time.Second)
	for len(got) < 2 {
		select {
		case ev := <-ts.rec.Events:
			got = append(got, ev)
		case <-timeout:
			t.Fatalf("waited 10s for the AddressConflict Events of the stranger's claim; got %q", got)
		}
	}
	for _, ev := range got {
		if !strings.HasPrefix(ev, "Warning "+ReasonAddressConflict) || !strings.Contains(ev, "02:00:00:00:00:ff") || strings.Contains(ev, testMAC) {
			t.Errorf("event %q: want an AddressConflict naming the stranger's MAC only", ev)
		}
	}
}
