// Package speaker is the `herald speaker` role: one per node, it watches the cluster through
// informers (with transforms that drop what Herald does not read), keeps the snapshot builder
// up to date, and for every announcement unit whose inputs changed runs the scheduling cycle
// of the unit's profile and binds the result (the Announce plugin announces or withdraws
// through the announcer manager and writes ServiceL2Status). It renews the node's heartbeat
// Lease, re-runs every unit when a heartbeat expires, reports announcer conflicts as Events,
// and on shutdown hands its IPs over before withdrawing them.
//
// No decision is made before every informer has synced, and no withdrawal happens because
// the API server is unreachable.
package speaker

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/go-logr/logr"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/workqueue"

	"github.com/herald-lb/herald/announcers"
	"github.com/herald-lb/herald/announcers/manager"
	"github.com/herald-lb/herald/config"
	metallbclient "github.com/herald-lb/herald/config/metallb/client/clientset/versioned"
	metallbinformers "github.com/herald-lb/herald/config/metallb/client/informers/externalversions"
	metallbv1beta1 "github.com/herald-lb/herald/config/metallb/v1beta1"
	"github.com/herald-lb/herald/framework"
	"github.com/herald-lb/herald/heartbeat"
	"github.com/herald-lb/herald/owner"
	"github.com/herald-lb/herald/snapshot"
	"github.com/herald-lb/herald/speaker/announce"
)

// Options configure a speaker.
type Options struct {
	// NodeName is the node the speaker runs on.
	NodeName string
	// Holder identifies the speaker in its Lease (its pod name); empty means NodeName.
	Holder string
	// Config is the loaded, completed configuration.
	Config *config.SpeakerConfiguration
	// Registry holds every plugin but Announce, which the speaker adds.
	Registry   framework.Registry
	KubeConfig *rest.Config
	Logger     logr.Logger
	// AnnouncerDir holds herald-announcer-<name> for announcers the configuration gives no
	// path for; empty means the directory of the running executable.
	AnnouncerDir string
	// Interfaces reads the node's interfaces; nil means LocalInterfaces.
	Interfaces func() ([]framework.Interface, error)
	// Resync is the informers' resync period (0: none).
	Resync time.Duration
}

// queueKey is what the speaker's work queue holds: every unit (all), or the units of one IP.
type queueKey struct {
	all bool
	ip  netip.Addr
}

// allKey in the queue means: re-run every unit.
var allKey = queueKey{all: true}

// ipKey queues the units of ip.
func ipKey(ip netip.Addr) queueKey { return queueKey{ip: ip} }

// String is the key as logs show it: "*" for every unit, else the IP.
func (k queueKey) String() string {
	if k.all {
		return "*"
	}
	return k.ip.String()
}

// Speaker is a running speaker.
type Speaker struct {
	o       Options
	log     logr.Logger
	client  kubernetes.Interface
	metallb metallbclient.Interface
	// informClient and informMetallb are for the informers only (see informerConfig).
	informClient  kubernetes.Interface
	informMetallb metallbclient.Interface
	builder       *snapshot.Builder
	queue         workqueue.TypedRateLimitingInterface[queueKey]
	hb            *heartbeater
	mgr           *manager.Manager
	// ready is this node's announcer health, published in the heartbeat.
	ready    *readiness
	announce *announce.Plugin
	// statusWriter writes this node's ServiceL2Status objects, bgpStatusWriter its
	// ServiceBGPStatus objects.
	statusWriter *announce.L2StatusWriter
	// l2Status writes ServiceL2Status objects outside the cycle, as bgpStatus does for BGP:
	// a cycle that waited for its status write held the next IP's announcement back.
	l2Status *announce.AsyncStatus
	// bgpStatus writes ServiceBGPStatus objects outside the cycle (see AsyncStatus).
	bgpStatus *announce.AsyncStatus
	recorder  record.EventRecorder
	// peers configures the BGP announcer; nil when no bgp announcer is configured.
	peers      *peerSync
	nodeLister corelisters.NodeLister

	frameworks map[string]*framework.Framework // by profile name
	specs      map[string]framework.ProfileSpec

	l2Lister func(namespace, name string) (*metallbv1beta1.ServiceL2Status, error)

	expiry *expiryWatch
	// freeze is why this node's decisions are frozen (see heartbeater.frozen); "" when not.
	freeze freezeState
	// stale removes the status objects of nodes whose heartbeat lapsed (one speaker does).
	stale *staleSweeper

	synced chan struct{}
}

// Run runs the speaker until ctx is done, then hands over (drains) and returns.
func Run(ctx context.Context, o Options) error {
	s, err := newSpeaker(o)
	if err != nil {
		return err
	}
	return s.run(ctx)
}

func newSpeaker(o Options) (*Speaker, error) {
	if o.NodeName == "" {
		return nil, errors.New("node name is empty: set --node-name or $NODE_NAME")
	}
	if o.Config == nil {
		return nil, errors.New("no configuration")
	}
	if o.Interfaces == nil {
		o.Interfaces = LocalInterfaces
	}
	if o.Holder == "" {
		o.Holder = o.NodeName
	}
	cfg := rest.CopyConfig(o.KubeConfig)
	if cfg.QPS == 0 {
		cfg.QPS, cfg.Burst = 50, 100
	}
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("kubernetes client: %w", err)
	}
	mlb, err := metallbclient.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("metallb.io client: %w", err)
	}
	icfg := informerConfig(cfg)
	iclient, err := kubernetes.NewForConfig(icfg)
	if err != nil {
		return nil, fmt.Errorf("kubernetes client: %w", err)
	}
	imlb, err := metallbclient.NewForConfig(icfg)
	if err != nil {
		return nil, fmt.Errorf("metallb.io client: %w", err)
	}
	s := &Speaker{o: o, log: o.Logger.WithValues("node", o.NodeName), client: client, metallb: mlb,
		informClient: iclient, informMetallb: imlb, synced: make(chan struct{})}
	s.queue = workqueue.NewTypedRateLimitingQueueWithConfig(
		workqueue.DefaultTypedControllerRateLimiter[queueKey](),
		workqueue.TypedRateLimitingQueueConfig[queueKey]{Name: "herald-speaker"})
	s.builder = snapshot.NewBuilder(s.onChange)
	s.expiry = &expiryWatch{snapshot: s.builder.Snapshot, fire: func() { s.queue.Add(allKey) }}
	s.hb = &heartbeater{
		log: s.log.WithName("heartbeat"), client: client.CoordinationV1(), namespace: o.Config.Heartbeat.Namespace,
		node: o.NodeName, holder: o.Holder, duration: o.Config.Heartbeat.LeaseDuration.Duration,
		interval: o.Config.Heartbeat.RenewInterval.Duration, interfaces: o.Interfaces, now: time.Now,
		renewNow: make(chan struct{}, 1), renewed: s.renewed,
	}
	specs, err := announcerSpecs(o)
	if err != nil {
		return nil, err
	}
	mo := manager.Options{
		// A restarted speaker kills the announcers its predecessor on this node left behind.
		Owner: "node/" + o.NodeName,
		// Only the end-to-end tests set this, to leave orphans behind on purpose.
		NoParentDeathSignal: os.Getenv("HERALD_TEST_NO_PDEATHSIG") == "1",
	}
	if s.mgr, err = manager.New(s.log.WithName("announcers"), specs, mo); err != nil {
		return nil, err
	}
	byKind := map[string]string{}
	for _, kind := range []string{announcers.KindARP, announcers.KindNDP, announcers.KindBGP} {
		byKind[kind] = s.mgr.For(kind)
	}
	s.ready = newReadinessByKind(byKind, announcerHoldDown, announcerStable, time.Now)
	s.hb.announcers = s.ready.published
	return s, nil
}

// announcerSpecs turns the configured announcers into the manager's specs.
func announcerSpecs(o Options) ([]manager.Spec, error) {
	dir := o.AnnouncerDir
	if dir == "" {
		exe, err := os.Executable()
		if err != nil {
			return nil, fmt.Errorf("locating the announcers: %w", err)
		}
		dir = filepath.Dir(exe)
	}
	var specs []manager.Spec
	for _, a := range o.Config.Announcers {
		path := a.Path
		if path == "" {
			path = filepath.Join(dir, "herald-announcer-"+a.Name)
		}
		spec := manager.Spec{Name: a.Name, Kind: kindOf(a.Name), Path: path, Args: a.Args, SHA256: a.SHA256}
		if a.IdleTimeout != nil {
			spec.IdleTimeout = a.IdleTimeout.Duration
		}
		specs = append(specs, spec)
	}
	return specs, nil
}

// kindOf is what a built-in announcer serves; "" for a custom one (its Info says).
func kindOf(name string) string {
	switch name {
	case announcers.KindARP, announcers.KindNDP, announcers.KindBGP:
		return name
	}
	return ""
}

// bgpAnnouncer names the configured BGP announcer, "" when there is none.
func (s *Speaker) bgpAnnouncer() string { return s.mgr.For(announcers.KindBGP) }

// namespace is the speaker's own namespace (the heartbeat namespace): it holds the heartbeat
// Leases and the status objects, as MetalLB's speaker namespace does.
func (s *Speaker) namespace() string { return s.o.Config.Heartbeat.Namespace }

// configNamespace is where the metallb.io configuration is read (pools, advertisements,
// communities, BGPPeers, BFDProfiles) and the peers' password Secrets: there only, so that a
// leftover object elsewhere (MetalLB's metallb-system) is never merged with Herald's.
func (s *Speaker) configNamespace() string { return s.o.Config.ConfigNamespace }

func (s *Speaker) run(ctx context.Context) error {
	if err := CheckCRDs(ctx, s.client, s.bgpAnnouncer() != ""); err != nil {
		return err
	}
	// The objects this speaker creates (its heartbeat, status objects) are owned by its
	// ServiceAccount, so they go with the installation even though the pod loses its RBAC
	// before it stops. Without one (a kubeconfig user) they are left to the operator.
	own, err := owner.ServiceAccount(ctx, s.client, s.namespace())
	if err != nil {
		s.log.Error(err, "objects this speaker creates will not be garbage-collected with its ServiceAccount")
	}
	s.hb.setOwner(own)
	framework.RegisterMetrics()
	reg := framework.Registry{}
	if err := reg.Merge(s.o.Registry); err != nil {
		return err
	}
	l2Factory := metallbinformers.NewSharedInformerFactoryWithOptions(s.informMetallb, s.o.Resync, metallbinformers.WithTransform(stripUnread),
		metallbinformers.WithNamespace(s.namespace()))
	statusLister := l2Factory.Metallb().V1beta1().ServiceL2Statuses().Lister()
	s.l2Lister = func(ns, name string) (*metallbv1beta1.ServiceL2Status, error) {
		return statusLister.ServiceL2Statuses(ns).Get(name)
	}
	s.recorder = s.newRecorder(ctx)
	s.statusWriter = announce.NewL2StatusWriter(s.o.NodeName, s.namespace(), s.metallb.MetallbV1beta1(), statusLister).WithOwner(own)
	s.l2Status = announce.NewAsyncStatus(s.statusWriter, s.log.WithName("l2-status"))
	s.bgpStatus = announce.NewAsyncStatus(
		announce.NewBGPStatusWriter(s.o.NodeName, s.namespace(), s.metallb.MetallbV1beta1(), l2Factory.Metallb().V1beta1().ServiceBGPStatuses().Lister()).WithOwner(own),
		s.log.WithName("bgp-status"))
	s.stale = &staleSweeper{self: s.o.NodeName, log: s.log.WithName("stale-status"), client: s.metallb.MetallbV1beta1(),
		l2: statusLister, bgp: l2Factory.Metallb().V1beta1().ServiceBGPStatuses().Lister(), snapshot: s.builder.Snapshot,
		mayAct: func() bool { return s.frozen() == "" && !s.hb.isDraining() }, trigger: make(chan struct{}, 1)}
	deps := announce.Deps{
		Announcers:   s.mgr,
		AnnouncerFor: s.announcerFor,
		Status:       s.l2Status,
		Recorder:     s.recorder,
		BGPAnnouncer: s.bgpAnnouncer(),
		BGPStatus:    s.bgpStatus,
		OnAnnounce:   observeAnnounce,
		MayClaim:     func() bool { return s.frozen() == "" && !s.hb.isDraining() },
		MayWithdraw:  func() bool { return s.frozen() == "" && !s.hb.isDraining() },
		Answers:      s.answers,
		Log:          s.log.WithName("announce"),
	}
	nsMetallb := metallbinformers.NewSharedInformerFactoryWithOptions(s.informMetallb, s.o.Resync, metallbinformers.WithTransform(stripUnread),
		metallbinformers.WithNamespace(s.configNamespace()))
	secrets := informers.NewSharedInformerFactoryWithOptions(s.informClient, s.o.Resync, informers.WithNamespace(s.configNamespace()), informers.WithTransform(stripUnread))
	if deps.BGPAnnouncer != "" {
		s.peers = newPeerSync(s.log.WithName("bgp-peers"), deps.BGPAnnouncer, s.mgr, s.peerInputs(nsMetallb, secrets), s.recorder,
			func() { s.queue.Add(allKey) })
		deps.BGPPeers = s.peers.Names
	}
	s.announce = announce.New(s.o.NodeName, deps)
	if _, ok := reg[announce.Name]; !ok {
		if err := reg.Register(announce.Name, s.announce.Registration()); err != nil {
			return err
		}
	} else {
		reg[announce.Name] = s.announce.Registration()
	}
	if err := s.buildFrameworks(reg); err != nil {
		return err
	}
	srv, err := s.listenHTTP()
	if err != nil {
		return err
	}

	core := informers.NewSharedInformerFactoryWithOptions(s.informClient, s.o.Resync, informers.WithTransform(stripUnread))
	withoutIndexes(core)
	leases := informers.NewSharedInformerFactoryWithOptions(s.informClient, s.o.Resync, informers.WithTransform(stripUnread),
		informers.WithNamespace(s.o.Config.Heartbeat.Namespace),
		informers.WithTweakListOptions(func(lo *metav1.ListOptions) {
			lo.LabelSelector = labels.SelectorFromSet(labels.Set{heartbeat.LabelHeartbeat: heartbeat.LabelValueSpeaker}).String()
		}))
	s.nodeLister = core.Core().V1().Nodes().Lister()
	b := s.builder
	handlers := []struct {
		inf cache.SharedIndexInformer
		h   cache.ResourceEventHandler
	}{
		{core.Core().V1().Services().Informer(), serviceFeed(b)},
		{core.Discovery().V1().EndpointSlices().Informer(), endpointSliceFeed(b)},
		{core.Core().V1().Nodes().Informer(), nodeFeed(b)},
		{leases.Coordination().V1().Leases().Informer(), leaseFeed(b)},
		{l2Factory.Metallb().V1beta1().ServiceL2Statuses().Informer(), l2StatusFeed(b)},
		{nsMetallb.Metallb().V1beta1().IPAddressPools().Informer(), poolFeed(b)},
		{nsMetallb.Metallb().V1beta1().L2Advertisements().Informer(), l2AdvertisementFeed(b)},
		{nsMetallb.Metallb().V1beta1().BGPAdvertisements().Informer(), bgpAdvertisementFeed(b)},
		{nsMetallb.Metallb().V1beta1().Communities().Informer(), communityFeed(b)},
		{l2Factory.Metallb().V1beta1().ServiceBGPStatuses().Informer(), bgpStatusFeed(b)},
	}
	if s.peers != nil {
		poke := pokeOn(func(any) bool { return true }, s.peers.poke)
		handlers = append(handlers, []struct {
			inf cache.SharedIndexInformer
			h   cache.ResourceEventHandler
		}{
			{nsMetallb.Metallb().V1beta2().BGPPeers().Informer(), poke},
			{nsMetallb.Metallb().V1beta1().BFDProfiles().Informer(), poke},
			{secrets.Core().V1().Secrets().Informer(), poke},
			{core.Core().V1().Nodes().Informer(), pokeOn(func(o any) bool {
				n, ok := o.(*corev1.Node)
				return ok && n.Name == s.o.NodeName
			}, s.peers.poke)},
		}...)
	}
	for _, h := range handlers {
		if _, err := h.inf.AddEventHandler(h.h); err != nil {
			srv.close(context.Background())
			return err
		}
	}

	runCtx, stopRun := context.WithCancel(context.WithoutCancel(ctx))
	defer stopRun()
	s.mgr.Start(runCtx)
	s.configureAnnouncers(runCtx)
	core.Start(runCtx.Done())
	leases.Start(runCtx.Done())
	l2Factory.Start(runCtx.Done())
	nsMetallb.Start(runCtx.Done())
	secrets.Start(runCtx.Done())

	var wg sync.WaitGroup
	s.ready.update(s.mgr.Health())
	wg.Add(1)
	go func() { defer wg.Done(); s.hb.run(runCtx) }()
	wg.Add(1)
	go func() { defer wg.Done(); s.watchHealth(runCtx, healthPoll) }()
	wg.Add(1)
	go func() { defer wg.Done(); s.watchAnnouncerEvents(runCtx) }()

	s.log.Info("waiting for informers to sync")
	syncOK := cache.WaitForCacheSync(ctx.Done(), informersSynced(handlers)...)
	if !syncOK {
		s.log.Info("stopped before the informers synced")
		return s.shutdown(runCtx, stopRun, &wg, srv, false)
	}
	close(s.synced)
	s.log.Info("informers synced; scheduling", "cluster", b.String())
	if s.ready.setSynced() {
		s.hb.poke()
	}
	if s.peers != nil {
		// Peers first, so the first cycles publish the peers they advertise to.
		if err := s.peers.sync(runCtx); err != nil {
			s.log.Error(err, "configuring BGP peers; retrying")
		}
		wg.Add(1)
		go func() { defer wg.Done(); s.peers.run(runCtx) }()
	}
	wg.Add(1)
	go func() { defer wg.Done(); s.pollAnnouncers(runCtx, 2*time.Second) }()
	wg.Add(1)
	go func() { defer wg.Done(); s.bgpStatus.Run(runCtx, 2) }()
	wg.Add(1)
	go func() { defer wg.Done(); s.l2Status.Run(runCtx, 2) }()
	wg.Add(1)
	go func() { defer wg.Done(); newProblemReporter(s.o.NodeName, s.recorder).run(runCtx, b) }()
	wg.Add(1)
	go func() { defer wg.Done(); s.stale.run(runCtx) }()
	s.queue.Add(allKey)
	const workers = 2
	for i := 0; i < workers; i++ {
		wg.Add(1)
		go func() { defer wg.Done(); s.work(runCtx) }()
	}
	<-ctx.Done()
	return s.shutdown(runCtx, stopRun, &wg, srv, true)
}

func informersSynced(hs []struct {
	inf cache.SharedIndexInformer
	h   cache.ResourceEventHandler
}) []cache.InformerSynced {
	out := make([]cache.InformerSynced, len(hs))
	for i, h := range hs {
		out[i] = h.inf.HasSynced
	}
	return out
}

// shutdown hands the node's IPs over (when synced), stops the announcers (they drain) and
// the loops.
func (s *Speaker) shutdown(runCtx context.Context, stopRun context.CancelFunc, wg *sync.WaitGroup, srv httpServers, synced bool) error {
	timeout := s.o.Config.Draining.Timeout.Duration
	if synced {
		s.handOver(runCtx, timeout)
	}
	s.queue.ShutDown()
	s.expiry.stop()
	stopCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// With graceful restart, a stop is taken for a restart (a DaemonSet's rolling update
	// sends SIGTERM, then starts the next speaker): the BGP paths stay on the routers until
	// the next speaker re-sends them, or for the restart time. A node leaving for good is
	// labelled node.kubernetes.io/exclude-from-external-load-balancers first, which withdraws
	// its paths before the stop.
	gr := s.peers.GracefulRestart()
	err := s.mgr.StopKeeping(stopCtx, func(name string) bool { return gr && name == s.bgpAnnouncer() })
	if synced {
		for _, cur := range s.announce.Announced() {
			if rerr := s.announce.Retract(stopCtx, cur); rerr != nil {
				s.log.Error(rerr, "removing status on shutdown", "ip", cur.IP)
			}
		}
		if ferr := s.l2Status.Flush(stopCtx); ferr != nil {
			s.log.Error(ferr, "removing ServiceL2Status on shutdown")
		}
		if ferr := s.bgpStatus.Flush(stopCtx); ferr != nil {
			s.log.Error(ferr, "removing ServiceBGPStatus on shutdown")
		}
	}
	stopRun()
	srv.close(stopCtx)
	wg.Wait()
	s.log.Info("stopped")
	return err
}

// handOver marks the heartbeat draining and waits, at most timeout, until another node's
// status object names each Service this node announces.
func (s *Speaker) handOver(ctx context.Context, timeout time.Duration) {
	start := time.Now()
	if err := s.hb.drain(ctx); err != nil {
		s.log.Error(err, "could not mark the heartbeat draining; withdrawing without hand-over")
		return
	}
	deadline := time.Now().Add(timeout)
	for {
		pending := s.pendingHandOver()
		if pending == 0 {
			s.log.Info("hand-over complete", "took", time.Since(start))
			return
		}
		if time.Now().After(deadline) {
			s.log.Info("hand-over timed out; withdrawing anyway", "pending", pending, "timeout", timeout)
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// pendingHandOver counts the Services this node announces that no other node has taken yet.
func (s *Speaker) pendingHandOver() int {
	n := 0
	for _, cur := range s.announce.Announced() {
		if cur.Mode != framework.ModeL2 {
			// Every qualifying node advertises a BGP unit already: there is nothing to
			// hand over, and the announcer's drain withdraws the routes.
			continue
		}
		if len(s.builder.UnitsFor(cur.IP)) == 0 {
			continue // the Service is gone: nothing to hand over
		}
		for _, svc := range cur.Services {
			st, err := s.l2Lister(s.namespace(), announce.StatusName(svc, cur.IP))
			if err != nil || st.Status.Node == "" || st.Status.Node == s.o.NodeName {
				n++
			}
		}
	}
	return n
}

// buildFrameworks instantiates one framework per profile; every profile binds with Announce.
func (s *Speaker) buildFrameworks(reg framework.Registry) error {
	specs, err := s.o.Config.ProfileSpecs(reg)
	if err != nil {
		return err
	}
	s.frameworks = map[string]*framework.Framework{}
	s.specs = map[string]framework.ProfileSpec{}
	for _, spec := range specs {
		if !slices.Contains(spec.Bind, announce.Name) {
			spec.Bind = append(spec.Bind, announce.Name)
		}
		fw, err := framework.NewFramework(reg, spec, framework.NewHandle(s.log.WithName("plugins").WithValues("profile", spec.Name)))
		if err != nil {
			return err
		}
		s.frameworks[spec.Name] = fw
		s.specs[spec.Name] = spec
	}
	return nil
}

func (s *Speaker) frameworkFor(class string) (*framework.Framework, framework.ProfileSpec) {
	p, ok := s.o.Config.ProfileFor(class)
	if !ok {
		return nil, framework.ProfileSpec{}
	}
	return s.frameworks[p.Name], s.specs[p.Name]
}

func (s *Speaker) announcerFor(ip netip.Addr) string {
	if ip.Is4() || ip.Is4In6() {
		return s.mgr.For(announcers.KindARP)
	}
	return s.mgr.For(announcers.KindNDP)
}

func (s *Speaker) configureAnnouncers(ctx context.Context) {
	for _, kind := range []string{announcers.KindARP, announcers.KindNDP} {
		name := s.mgr.For(kind)
		if name == "" {
			continue
		}
		err := s.mgr.Configure(ctx, name, announcers.Config{L2: &announcers.L2Config{}})
		if _, kept := manager.Kept(manager.Result{}, err); err != nil && !kept {
			s.log.Error(err, "configuring announcer", "announcer", name)
		}
	}
}

func (s *Speaker) newRecorder(ctx context.Context) record.EventRecorder {
	bc := record.NewBroadcaster(record.WithContext(ctx))
	bc.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: s.client.CoreV1().Events("")})
	bc.StartStructuredLogging(4)
	return bc.NewRecorder(scheme.Scheme, corev1.EventSource{Component: "herald-speaker", Host: s.o.NodeName})
}

// onChange is the builder's notification: queue the units it affects. Before the informers
// synced nothing is queued: the first full pass, queued once they have, covers every unit,
// and queuing each Service's IP during the initial list would run every unit twice and
// leave the queue's sets sized for the whole cluster.
func (s *Speaker) onChange(c snapshot.Change) {
	select {
	case <-s.synced:
	default:
		return
	}
	if c.All {
		s.queue.Add(allKey)
		return
	}
	for _, ip := range c.IPs {
		s.queue.Add(ipKey(ip))
	}
}

func (s *Speaker) work(ctx context.Context) {
	for {
		key, quit := s.queue.Get()
		if quit {
			return
		}
		err := s.process(ctx, key)
		if err != nil {
			s.log.Error(err, "cycle failed; keeping the last decision and retrying", "key", key.String())
			s.queue.AddRateLimited(key)
		} else {
			s.queue.Forget(key)
		}
		s.queue.Done(key)
	}
}

func (s *Speaker) process(ctx context.Context, key queueKey) error {
	if key.all {
		return s.processAll(ctx)
	}
	if s.skipFrozen() {
		return nil
	}
	snap, quiet, _ := s.view(s.builder.Snapshot(time.Now()))
	return s.processIP(ctx, snap, quiet, nil, key.ip)
}

// processAll re-runs every unit, and withdraws units that no longer exist.
func (s *Speaker) processAll(ctx context.Context) error {
	if s.skipFrozen() {
		return nil
	}
	published := s.builder.Snapshot(time.Now())
	s.expiry.passed(published)
	snap, quiet, pre := s.view(published)
	failed := map[framework.AnnouncerKind]bool{}
	seen := map[netip.Addr]bool{}
	var errs []error
	for _, u := range s.builder.Units() {
		if seen[u.IP] {
			continue
		}
		seen[u.IP] = true
		if err := s.processIP(ctx, snap, quiet, failed, u.IP); err != nil {
			errs = append(errs, err)
			s.queue.AddRateLimited(ipKey(u.IP))
		}
	}
	for _, cur := range s.announce.Announced() {
		if !seen[cur.IP] {
			if err := s.processIP(ctx, snap, quiet, failed, cur.IP); err != nil {
				errs = append(errs, err)
			}
		}
	}
	s.endWarming(published, pre, failed)
	perMode := map[framework.Mode]int{framework.ModeL2: 0, framework.ModeBGP: 0}
	for _, cur := range s.announce.Announced() {
		perMode[cur.Mode]++
	}
	for mode, n := range perMode {
		announcedGauge.WithLabelValues(string(mode)).Set(float64(n))
	}
	// A full pass follows every heartbeat that lapsed (expiryWatch): the dead node's status
	// objects go then.
	s.stale.poke()
	if len(errs) > 0 {
		s.log.Error(errors.Join(errs...), "some units failed; retrying them")
	}
	return nil
}

// processIP runs the cycle for each unit of the IP and withdraws modes that have no unit.
// Units of the quiet kinds are announced without status objects (see view); the kinds of
// units that failed are added to failed, when given.
func (s *Speaker) processIP(ctx context.Context, snap *framework.Snapshot, quiet, failed map[framework.AnnouncerKind]bool, ip netip.Addr) error {
	units := s.builder.UnitsFor(ip)
	var errs []error
	has := map[framework.Mode]bool{}
	for _, u := range units {
		has[u.Mode] = true
		if err := s.runUnit(ctx, snap, quiet[u.AnnouncerKind()], u); err != nil {
			errs = append(errs, err)
			if failed != nil {
				failed[u.AnnouncerKind()] = true
			}
		}
	}
	for _, mode := range []framework.Mode{framework.ModeL2, framework.ModeBGP} {
		if has[mode] {
			continue
		}
		if err := s.announce.Forget(ctx, (&framework.Unit{IP: ip, Mode: mode}).Key()); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (s *Speaker) runUnit(ctx context.Context, snap *framework.Snapshot, quiet bool, u *framework.Unit) error {
	fw, _ := s.frameworkFor(u.Class)
	if fw == nil {
		// Another implementation's class: never touch it, but drop what we may have had.
		return s.announce.Forget(ctx, u.Key())
	}
	var opts []framework.CycleOption
	if quiet {
		opts = append(opts, announce.WithoutClaim)
	}
	res := fw.RunCycle(ctx, snap, u, opts...)
	defer res.Release()
	return res.Err
}

// watchAnnouncerEvents turns announcer conflicts into Events on the Services and a metric.
func (s *Speaker) watchAnnouncerEvents(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case ev, ok := <-s.mgr.Events():
			if !ok {
				return
			}
			s.handleAnnouncerEvent(ev)
		}
	}
}

func (s *Speaker) handleAnnouncerEvent(ev manager.Event) {
	switch {
	case ev.Conflict != nil:
		c := ev.Conflict
		claimer := "MAC " + c.ForeignMAC
		snap := s.builder.Snapshot(time.Now())
		if peer := heraldPeerWithMAC(snap, s.o.NodeName, c.ForeignMAC); peer != nil {
			if peer.Speaker.AliveAt(snap.Time) {
				// A live Herald node taking the address over: this node withdraws as soon as
				// its own cycle sees the change, milliseconds later. Not a conflict.
				s.log.V(1).Info("another Herald node claims an address this node still announces (hand-over)", "ip", c.Address, "node", peer.Name)
				return
			}
			claimer = fmt.Sprintf("Herald node %s (MAC %s), whose heartbeat has expired: it may be cut off from the API server and still announcing", peer.Name, c.ForeignMAC)
		}
		conflictsTotal.WithLabelValues(ev.Announcer).Inc()
		msg := fmt.Sprintf("%s on node %s interface %s is also claimed by %s (%s); Herald keeps announcing and does not fight it",
			c.Address, s.o.NodeName, c.Interface, claimer, c.Detail)
		s.log.Info("address conflict", "ip", c.Address, "interface", c.Interface, "foreignMAC", c.ForeignMAC)
		if !s.recordConflict(c.Address.Unmap(), msg) {
			// The announcer probes the moment it is told to announce, so an answer can
			// arrive before Bind has recorded the unit: look again shortly.
			go func() {
				for i := 0; i < 20 && !s.recordConflict(c.Address.Unmap(), msg); i++ {
					time.Sleep(100 * time.Millisecond)
				}
			}()
		}
	case ev.Session != nil:
		observeSession(ev.Session.Peer, ev.Session.State)
		bgpSessionTransitions.WithLabelValues(ev.Session.Peer, ev.Session.State.String()).Inc()
		s.log.Info("BGP session state", "peer", ev.Session.Peer, "address", ev.Session.Address, "state", ev.Session.State.String(), "reason", ev.Session.Reason)
	case ev.Error != nil:
		s.log.Error(errors.New(ev.Error.Message), "announcer error", "announcer", ev.Announcer)
	}
}

// recordConflict puts an AddressConflict Event on the Services this node announces ip for,
// and reports whether there were any.
func (s *Speaker) recordConflict(ip netip.Addr, msg string) bool {
	svcs := s.announce.ServicesOf(ip)
	for _, svc := range svcs {
		s.recorder.Event(announce.ServiceRef(svc), corev1.EventTypeWarning, ReasonAddressConflict, msg)
	}
	return len(svcs) > 0
}

// heraldPeerWithMAC returns the node, other than self, whose speaker published an interface
// with the MAC in its heartbeat; nil when no Herald node has it.
func heraldPeerWithMAC(snap *framework.Snapshot, self, mac string) *framework.NodeInfo {
	for _, n := range snap.Nodes() {
		if n.Name == self || n.Speaker == nil {
			continue
		}
		for _, itf := range n.Speaker.Interfaces {
			if itf.MAC != "" && strings.EqualFold(itf.MAC, mac) {
				return n
			}
		}
	}
	return nil
}

// ReasonAddressConflict is the Event reason for a foreign claim on an announced IP.
const ReasonAddressConflict = "AddressConflict"

func init() {
	utilruntime.Must(metallbv1beta1.AddToScheme(scheme.Scheme))
	_ = coordinationv1.SchemeGroupVersion
}
