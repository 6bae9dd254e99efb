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
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
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
	"k8s.io/klog/v2"

	"github.com/herald-lb/herald/announcers"
	"github.com/herald-lb/herald/announcers/manager"
	"github.com/herald-lb/herald/config"
	metallbclient "github.com/herald-lb/herald/config/metallb/client/clientset/versioned"
	metallbinformers "github.com/herald-lb/herald/config/metallb/client/informers/externalversions"
	metallblisters "github.com/herald-lb/herald/config/metallb/client/listers/metallb/v1beta1"
	metallbv1beta1 "github.com/herald-lb/herald/config/metallb/v1beta1"
	"github.com/herald-lb/herald/framework"
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
	Registry framework.Registry
	// KubeConfig is what Run builds the clients from (New is given them).
	KubeConfig *rest.Config
	// AnnouncerDir holds herald-announcer-<name> for announcers the configuration gives no
	// path for; empty means the directory of the running executable. Read by Run only (New is
	// given the announcer manager).
	AnnouncerDir string
	// Interfaces reads the node's interfaces; nil means LocalInterfaces.
	Interfaces func() ([]framework.Interface, error)
	// Resync is the informers' resync period (0: none).
	Resync time.Duration
}

// Speaker is a running speaker.
type Speaker struct {
	o       Options
	client  kubernetes.Interface
	metallb metallbclient.Interface
	// informClient and informMetallb are for the informers only (see informerConfig).
	informClient  kubernetes.Interface
	informMetallb metallbclient.Interface
	builder       *snapshot.Builder
	queue         workqueue.TypedRateLimitingInterface[queueKey]
	hb            *heartbeater
	mgr           AnnouncerManager
	// ready is this node's announcer health, published in the heartbeat.
	ready *readiness
	// ledger is what this node holds; every profile's Announce plugin binds into it.
	ledger *announce.Ledger
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
	// fast is the fast path between speakers, when configured.
	fast fastView

	synced chan struct{}
}

// Run runs the speaker until ctx is done, then hands over (drains) and returns. It logs with
// ctx's logger (klog.FromContext).
func Run(ctx context.Context, o Options) error {
	s, err := newSpeaker(ctx, o)
	if err != nil {
		return err
	}
	return s.Run(ctx)
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

// Run runs the speaker until ctx is done, then hands over (drains) and returns. It logs with
// ctx's logger (klog.FromContext).
func (s *Speaker) Run(ctx context.Context) error {
	// Every line names the node, so that the logs of all the speakers can be read together.
	logger := klog.LoggerWithValues(klog.FromContext(ctx), "node", s.o.NodeName)
	ctx = klog.NewContext(ctx, logger)
	if err := CheckCRDs(ctx, s.client, s.bgpAnnouncer() != ""); err != nil {
		return err
	}
	// The objects this speaker creates (its heartbeat, status objects) are owned by its
	// ServiceAccount, so they go with the installation even though the pod loses its RBAC
	// before it stops. Without one (a kubeconfig user) they are left to the operator.
	own, err := owner.ServiceAccount(ctx, s.client, s.namespace())
	if err != nil {
		logger.Error(err, "Objects this speaker creates will not be garbage-collected with its ServiceAccount")
	}
	s.hb.setOwner(own)
	framework.RegisterMetrics()
	l2Factory := metallbinformers.NewSharedInformerFactoryWithOptions(s.informMetallb, s.o.Resync, metallbinformers.WithTransform(stripUnread),
		metallbinformers.WithNamespace(s.namespace()))
	statusLister := l2Factory.Metallb().V1beta1().ServiceL2Statuses().Lister()
	bgpStatusLister := l2Factory.Metallb().V1beta1().ServiceBGPStatuses().Lister()
	s.l2Lister = func(ns, name string) (*metallbv1beta1.ServiceL2Status, error) {
		return statusLister.ServiceL2Statuses(ns).Get(name)
	}
	s.recorder = s.newRecorder(ctx)
	s.stale = &staleSweeper{self: s.o.NodeName, client: s.metallb.MetallbV1beta1(),
		// The fast path's view: a speaker it holds alive keeps its status objects, one it
		// found gone loses them without waiting for its heartbeat.
		l2: statusLister, bgp: bgpStatusLister, snapshot: func(t time.Time) *framework.Snapshot { return s.fastNodes(s.builder.Snapshot(t)) },
		mayAct: changeGate{s}.MayWithdraw, trigger: make(chan struct{}, 1)}
	nsMetallb := metallbinformers.NewSharedInformerFactoryWithOptions(s.informMetallb, s.o.Resync, metallbinformers.WithTransform(stripUnread),
		metallbinformers.WithNamespace(s.configNamespace()))
	secrets := informers.NewSharedInformerFactoryWithOptions(s.informClient, s.o.Resync, informers.WithNamespace(s.configNamespace()), informers.WithTransform(stripUnread))
	if bgp := s.bgpAnnouncer(); bgp != "" {
		s.peers = newPeerSync(bgp, s.mgr, s.peerInputs(nsMetallb, secrets), s.recorder,
			func() { s.queue.Add(allKey) })
	}
	if err := s.wireBind(ctx, statusLister, bgpStatusLister, own); err != nil {
		return err
	}
	if err := s.startFastPath(named(ctx, "fast-path")); err != nil {
		return err
	}
	srv, err := s.listenHTTP(ctx)
	if err != nil {
		s.leaveFastPath(ctx)
		return err
	}

	core := informers.NewSharedInformerFactoryWithOptions(s.informClient, s.o.Resync, informers.WithTransform(stripUnread))
	withoutIndexes(core)
	leases := informers.NewSharedInformerFactoryWithOptions(s.informClient, s.o.Resync, informers.WithTransform(stripUnread),
		informers.WithNamespace(s.o.Config.Heartbeat.Namespace),
		informers.WithTweakListOptions(func(lo *metav1.ListOptions) { lo.LabelSelector = heartbeatSelector() }))
	s.nodeLister = core.Core().V1().Nodes().Lister()
	f := factories{core: core, leases: leases, status: l2Factory, config: nsMetallb}
	wiringError := func(err error) { logger.Error(err, "An informer delivered an object the snapshot does not follow") }
	var handlers []struct {
		inf cache.SharedIndexInformer
		h   cache.ResourceEventHandler
	}
	for _, src := range sources {
		handlers = append(handlers, struct {
			inf cache.SharedIndexInformer
			h   cache.ResourceEventHandler
		}{src.informer(f), s.builder.Handler(src.kind, wiringError)})
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
	go func() { defer wg.Done(); s.hb.run(named(runCtx, "heartbeat")) }()
	wg.Add(1)
	go func() { defer wg.Done(); s.watchHealth(runCtx, healthPoll) }()
	wg.Add(1)
	go func() { defer wg.Done(); s.watchAnnouncerEvents(runCtx) }()

	logger.Info("Waiting for informers to sync")
	syncOK := cache.WaitForCacheSync(ctx.Done(), informersSynced(handlers)...)
	if !syncOK {
		logger.Info("Stopped before the informers synced")
		return s.shutdown(runCtx, stopRun, &wg, srv, false)
	}
	close(s.synced)
	logger.Info("Informers synced; scheduling", "cluster", s.builder.String())
	if s.ready.setSynced() {
		s.hb.poke()
	}
	// No candidate before the heartbeats have been watched for a lease duration (liveness.Watched).
	watched := time.AfterFunc(s.ready.watchFor, func() {
		if s.ready.setWatched() {
			s.readinessChanged(ctx)
		}
	})
	defer watched.Stop()
	if s.peers != nil {
		peersCtx := named(runCtx, peersLogName)
		// Peers first, so the first cycles publish the peers they advertise to.
		if err := s.peers.sync(peersCtx); err != nil {
			logger.Error(err, "Configuring BGP peers; retrying")
		}
		wg.Add(1)
		go func() { defer wg.Done(); s.peers.run(peersCtx) }()
	}
	wg.Add(1)
	go func() { defer wg.Done(); s.pollAnnouncers(runCtx, 2*time.Second) }()
	wg.Add(1)
	go func() { defer wg.Done(); s.bgpStatus.Run(named(runCtx, "bgp-status"), 2) }()
	wg.Add(1)
	go func() { defer wg.Done(); s.l2Status.Run(named(runCtx, "l2-status"), 2) }()
	wg.Add(1)
	go func() { defer wg.Done(); newProblemReporter(s.o.NodeName, s.recorder).run(runCtx, s.builder) }()
	wg.Add(1)
	go func() { defer wg.Done(); s.stale.run(named(runCtx, "stale-status")) }()
	if s.fast.d != nil {
		wg.Add(1)
		go func() { defer wg.Done(); s.joinFastPath(named(runCtx, "fast-path")) }()
	}
	s.queue.Add(allKey)
	const workers = 2
	for i := 0; i < workers; i++ {
		wg.Add(1)
		go func() { defer wg.Done(); s.work(runCtx) }()
	}
	<-ctx.Done()
	return s.shutdown(runCtx, stopRun, &wg, srv, true)
}

// named returns ctx with its logger named name: a component the speaker runs in goroutines of
// its own logs under its name.
func named(ctx context.Context, name string) context.Context {
	return klog.NewContext(ctx, klog.LoggerWithName(klog.FromContext(ctx), name))
}

// wireBind builds what the cycles bind into, from the status objects' listers: the status
// writers, the ledger, the Announce plugin over it and one framework per profile. It reads
// s.recorder and s.peers, and creates no informer (the tests call it with listers of their
// own). The frameworks' plugins log with ctx's logger.
func (s *Speaker) wireBind(ctx context.Context, l2 metallblisters.ServiceL2StatusLister, bgp metallblisters.ServiceBGPStatusLister, own *metav1.OwnerReference) error {
	reg := framework.Registry{}
	if err := reg.Merge(s.o.Registry); err != nil {
		return err
	}
	s.l2Status = announce.NewAsyncStatus(
		announce.NewL2StatusWriter(s.o.NodeName, s.namespace(), s.metallb.MetallbV1beta1(), l2).WithOwner(own))
	s.bgpStatus = announce.NewAsyncStatus(
		announce.NewBGPStatusWriter(s.o.NodeName, s.namespace(), s.metallb.MetallbV1beta1(), bgp).WithOwner(own))
	s.ledger = announce.NewLedger(s.mgr, announce.StatusWriters{L2: s.l2Status, BGP: s.bgpStatus}, changeGate{s})
	deps := announce.Deps{
		Ledger:   s.ledger,
		Router:   announcerRoutes{s},
		Observer: announceMetrics{},
		Recorder: s.recorder,
	}
	if s.peers != nil {
		deps.Peers = s.peers
	}
	plugin := announce.New(s.o.NodeName, deps)
	if _, ok := reg[announce.Name]; !ok {
		if err := reg.Register(announce.Name, plugin.Registration()); err != nil {
			return err
		}
	} else {
		reg[announce.Name] = plugin.Registration()
	}
	return s.buildFrameworks(ctx, reg)
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

func (s *Speaker) configureAnnouncers(ctx context.Context) {
	for _, kind := range []string{announcers.KindARP, announcers.KindNDP} {
		name := s.mgr.For(kind)
		if name == "" {
			continue
		}
		err := s.mgr.Configure(ctx, name, announcers.Config{L2: &announcers.L2Config{}})
		if _, kept := manager.Kept(manager.Result{}, err); err != nil && !kept {
			klog.FromContext(ctx).Error(err, "Configuring announcer", "announcer", name)
		}
	}
}

func (s *Speaker) newRecorder(ctx context.Context) record.EventRecorder {
	bc := record.NewBroadcaster(record.WithContext(ctx))
	bc.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: s.client.CoreV1().Events("")})
	bc.StartStructuredLogging(4)
	return bc.NewRecorder(scheme.Scheme, corev1.EventSource{Component: "herald-speaker", Host: s.o.NodeName})
}

func init() {
	utilruntime.Must(metallbv1beta1.AddToScheme(scheme.Scheme))
}
