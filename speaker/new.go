package speaker

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/klog/v2"

	"github.com/herald-lb/herald/announcers"
	"github.com/herald-lb/herald/announcers/manager"
	metallbclient "github.com/herald-lb/herald/config/metallb/client/clientset/versioned"
	"github.com/herald-lb/herald/snapshot"
	"github.com/herald-lb/herald/speaker/announce"
)

// Clients are the API clients a speaker uses. The informers have their own, tuned for
// watching (see informerConfig); nil Inform* means the same client as for the rest.
type Clients struct {
	Kube    kubernetes.Interface
	Metallb metallbclient.Interface
	// InformKube and InformMetallb are for the informers only.
	InformKube    kubernetes.Interface
	InformMetallb metallbclient.Interface
}

// AnnouncerManager is what the speaker needs of the announcer manager (*manager.Manager).
type AnnouncerManager interface {
	announce.Announcer
	Start(ctx context.Context)
	// StopKeeping stops every announcer (they drain and withdraw) but those keep names.
	StopKeeping(ctx context.Context, keep func(name string) bool) error
	Events() <-chan manager.Event
	Health() []manager.Health
	// For names the announcer of an announcer kind (announcers.KindARP, ...); "" for none.
	For(kind string) string
	Configure(ctx context.Context, name string, cfg announcers.Config) error
	Status(ctx context.Context, name string) (announcers.Status, error)
}

var _ AnnouncerManager = (*manager.Manager)(nil)

// newSpeaker builds the clients from o.KubeConfig and the announcer manager from the
// configured announcers, and the speaker over them. The manager logs with ctx's logger.
func newSpeaker(ctx context.Context, o Options) (*Speaker, error) {
	if err := checkOptions(o); err != nil {
		return nil, err
	}
	cfg := rest.CopyConfig(o.KubeConfig)
	if cfg.QPS == 0 {
		cfg.QPS, cfg.Burst = 50, 100
	}
	var c Clients
	var err error
	if c.Kube, err = kubernetes.NewForConfig(cfg); err != nil {
		return nil, fmt.Errorf("kubernetes client: %w", err)
	}
	if c.Metallb, err = metallbclient.NewForConfig(cfg); err != nil {
		return nil, fmt.Errorf("metallb.io client: %w", err)
	}
	icfg := informerConfig(cfg)
	if c.InformKube, err = kubernetes.NewForConfig(icfg); err != nil {
		return nil, fmt.Errorf("kubernetes client: %w", err)
	}
	if c.InformMetallb, err = metallbclient.NewForConfig(icfg); err != nil {
		return nil, fmt.Errorf("metallb.io client: %w", err)
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
	logger := klog.LoggerWithName(klog.LoggerWithValues(klog.FromContext(ctx), "node", o.NodeName), "announcers")
	mgr, err := manager.New(logger, specs, mo)
	if err != nil {
		return nil, err
	}
	return New(o, c, mgr)
}

func checkOptions(o Options) error {
	if o.NodeName == "" {
		return errors.New("node name is empty: set --node-name or $NODE_NAME")
	}
	if o.Config == nil {
		return errors.New("no configuration")
	}
	return nil
}

// New returns a speaker that uses the given clients and announcer manager; Run runs it.
// o.KubeConfig and o.AnnouncerDir are not read (the clients and the manager are given).
func New(o Options, c Clients, mgr AnnouncerManager) (*Speaker, error) {
	if err := checkOptions(o); err != nil {
		return nil, err
	}
	if c.Kube == nil || c.Metallb == nil || mgr == nil {
		return nil, errors.New("a speaker needs a kubernetes client, a metallb.io client and an announcer manager")
	}
	if c.InformKube == nil {
		c.InformKube = c.Kube
	}
	if c.InformMetallb == nil {
		c.InformMetallb = c.Metallb
	}
	if o.Interfaces == nil {
		o.Interfaces = LocalInterfaces
	}
	if o.Holder == "" {
		o.Holder = o.NodeName
	}
	s := &Speaker{o: o, client: c.Kube, metallb: c.Metallb,
		informClient: c.InformKube, informMetallb: c.InformMetallb, mgr: mgr, synced: make(chan struct{})}
	s.queue = workqueue.NewTypedRateLimitingQueueWithConfig(
		workqueue.DefaultTypedControllerRateLimiter[queueKey](),
		workqueue.TypedRateLimitingQueueConfig[queueKey]{Name: "herald-speaker"})
	s.builder = snapshot.NewBuilder(s.onChange)
	s.expiry = &expiryWatch{snapshot: s.builder.Snapshot, fire: func() { s.queue.Add(allKey) }}
	s.hb = &heartbeater{
		client: c.Kube.CoordinationV1(), namespace: o.Config.Heartbeat.Namespace,
		node: o.NodeName, holder: o.Holder, duration: o.Config.Heartbeat.LeaseDuration.Duration,
		interval: o.Config.Heartbeat.RenewInterval.Duration, interfaces: o.Interfaces, now: time.Now,
		renewNow: make(chan struct{}, 1), renewed: s.renewed,
	}
	byKind := map[string]string{}
	for _, kind := range []string{announcers.KindARP, announcers.KindNDP, announcers.KindBGP} {
		byKind[kind] = s.mgr.For(kind)
	}
	s.ready = newReadinessByKind(byKind, announcerHoldDown, announcerStable, time.Now)
	s.ready.watchFor = o.Config.Heartbeat.LeaseDuration.Duration
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
