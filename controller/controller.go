// Package controller is the `herald controller` role: it gives every LoadBalancer Service it
// owns its address(es) from the metallb.io IPAddressPools with MetalLB's semantics (package
// ipam decides), writes them to status.loadBalancer.ingress and the
// metallb.io/ip-allocated-from-pool annotation, and explains every decision with a status
// condition and an Event. Replicas elect a leader with a Lease; only the leader allocates, and
// it rebuilds its state from Service status before it processes anything.
package controller

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/klog/v2"

	"github.com/herald-lb/herald/config/metallb"
	"github.com/herald-lb/herald/config/metallb/client/clientset/versioned"
	metallbinformers "github.com/herald-lb/herald/config/metallb/client/informers/externalversions"
	metallblisters "github.com/herald-lb/herald/config/metallb/client/listers/metallb/v1beta1"
	metallbv1beta1 "github.com/herald-lb/herald/config/metallb/v1beta1"
	"github.com/herald-lb/herald/ipam"
)

// poolsKey is the work-queue key for "the pool configuration changed"; Service keys always
// contain a slash, so it cannot collide.
const poolsKey = "pools"

// informerResources are the metallb.io resources the controller's informers wait for (watch
// registers them); Run checks that each is served before it starts them.
var informerResources = []schema.GroupVersionResource{metallb.IPAddressPools}

// ErrLostLeadership is returned by Run when the Lease was lost while ctx was still live.
var ErrLostLeadership = errors.New("lost the leader-election lease")

type controller struct {
	opts       Options
	client     kubernetes.Interface
	metallb    versioned.Interface
	services   corelisters.ServiceLister
	namespaces corelisters.NamespaceLister
	pools      metallblisters.IPAddressPoolLister
	synced     []cache.InformerSynced
	// watching is set once watch has registered every informer in synced: /readyz is served
	// before that (during the CRD check) and must neither read synced early nor say ready.
	watching atomic.Bool
	queue    workqueue.TypedRateLimitingInterface[string]
	recorder record.EventRecorder

	// mu serialises the allocator: workers decide under it and write to the API outside it.
	mu    sync.Mutex
	alloc *ipam.Allocator
	// poolProblems holds why each unusable pool is not used, from the last pool sync.
	poolProblems map[string]*ipam.Error
	// usage exports the allocator's state as gauges while leading; guarded by mu.
	usage *usageMetrics

	readiness readiness
}

// Run runs the controller until ctx is done: it campaigns for the Lease in opts.Namespace and,
// while leading, allocates. On ctx cancellation a leader finishes its in-flight work before it
// releases the Lease, so two controllers never allocate at once. It returns nil after ctx is
// done and ErrLostLeadership if the Lease was lost.
func Run(ctx context.Context, cfg *rest.Config, opts Options) error {
	if err := opts.Validate(); err != nil {
		return err
	}
	registerMetrics()
	cfg = rest.CopyConfig(cfg)
	cfg.QPS, cfg.Burst = opts.KubeAPIQPS, opts.KubeAPIBurst
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return fmt.Errorf("kubernetes client: %w", err)
	}
	mlb, err := versioned.NewForConfig(cfg)
	if err != nil {
		return fmt.Errorf("metallb.io client: %w", err)
	}
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		return err
	}
	if err := metallbv1beta1.AddToScheme(scheme); err != nil {
		return err
	}
	broadcaster := record.NewBroadcaster(record.WithContext(ctx))
	broadcaster.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: client.CoreV1().Events("")})
	defer broadcaster.Shutdown()

	c := newController(client, mlb, opts, broadcaster.NewRecorder(scheme, corev1.EventSource{Component: "herald-controller"}))
	// Metrics and health first: while the CRD check below waits out an unreachable API server
	// (it retries for about 30 s), the process is live and says it is not ready, and a taken
	// port is reported at once.
	election := leaderelection.NewLeaderHealthzAdaptor(leaseHealthTimeout)
	srv, err := c.serveHTTP(ctx, election)
	if err != nil {
		return err
	}
	if srv != nil {
		defer func() {
			shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			defer cancel()
			_ = srv.Shutdown(shutdownCtx)
		}()
	}
	if opts.FastPathSecret != "" {
		// Independent of everything below: the speakers need the Secret whether or not the
		// CRDs are served or this replica leads.
		secretCtx, stopSecret := context.WithCancel(ctx)
		var wg sync.WaitGroup
		wg.Go(func() { keepFastPathSecret(secretCtx, client, opts.Namespace, opts.FastPathSecret) })
		defer func() { stopSecret(); wg.Wait() }()
	}
	// Without the CRDs the informers would wait in cache sync forever, silently.
	if err := metallb.CheckServed(ctx, client.Discovery(), "herald controller", informerResources); err != nil {
		return err
	}
	kubeFactory := informers.NewSharedInformerFactory(client, 0)
	poolFactory := metallbinformers.NewSharedInformerFactoryWithOptions(mlb, 0, metallbinformers.WithNamespace(opts.configNamespace()))
	if err := c.watch(kubeFactory, poolFactory); err != nil {
		return err
	}
	c.watching.Store(true)
	stopIgnored, err := c.watchIgnoredConfig(ctx, cfg)
	if err != nil {
		return err
	}
	defer stopIgnored()
	// Standbys keep warm caches so a takeover only waits for the Lease.
	kubeFactory.Start(ctx.Done())
	poolFactory.Start(ctx.Done())
	defer kubeFactory.Shutdown()
	defer poolFactory.Shutdown()
	return c.campaign(ctx, election)
}

func newController(client kubernetes.Interface, mlb versioned.Interface, opts Options, recorder record.EventRecorder) *controller {
	return &controller{
		opts:     opts,
		client:   client,
		metallb:  mlb,
		recorder: recorder,
		alloc:    ipam.New(),
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(
			workqueue.DefaultTypedControllerRateLimiter[string](),
			workqueue.TypedRateLimitingQueueConfig[string]{Name: "herald-controller"}),
		poolProblems: map[string]*ipam.Error{},
		usage:        newUsageMetrics(),
	}
}

// watch registers the informers and their event handlers.
func (c *controller) watch(kube informers.SharedInformerFactory, pools metallbinformers.SharedInformerFactory) error {
	svcInformer := kube.Core().V1().Services()
	nsInformer := kube.Core().V1().Namespaces()
	poolInformer := pools.Metallb().V1beta1().IPAddressPools()
	c.services, c.namespaces, c.pools = svcInformer.Lister(), nsInformer.Lister(), poolInformer.Lister()

	enqueueService := func(obj any) {
		if key, err := cache.DeletionHandlingMetaNamespaceKeyFunc(obj); err == nil {
			c.queue.Add(key)
		}
	}
	handlers := []struct {
		informer cache.SharedIndexInformer
		handler  cache.ResourceEventHandler
	}{
		{svcInformer.Informer(), cache.ResourceEventHandlerFuncs{
			AddFunc: enqueueService, DeleteFunc: enqueueService,
			UpdateFunc: func(_, obj any) { enqueueService(obj) },
		}},
		{nsInformer.Informer(), cache.ResourceEventHandlerFuncs{
			// Namespace labels feed namespaceSelectors: re-check its Services.
			UpdateFunc: func(old, obj any) {
				o, n := old.(*corev1.Namespace), obj.(*corev1.Namespace)
				if !mapsEqual(o.Labels, n.Labels) {
					c.enqueueNamespace(n.Name)
				}
			},
		}},
		{poolInformer.Informer(), cache.ResourceEventHandlerFuncs{
			AddFunc:    func(any) { c.queue.Add(poolsKey) },
			DeleteFunc: func(any) { c.queue.Add(poolsKey) },
			UpdateFunc: func(old, obj any) {
				// Status writes (our own) do not change the configuration.
				if old.(*metallbv1beta1.IPAddressPool).Generation != obj.(*metallbv1beta1.IPAddressPool).Generation {
					c.queue.Add(poolsKey)
				}
			},
		}},
	}
	for _, h := range handlers {
		if _, err := h.informer.AddEventHandler(h.handler); err != nil {
			return err
		}
		c.synced = append(c.synced, h.informer.HasSynced)
	}
	return nil
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

func (c *controller) enqueueNamespace(ns string) {
	svcs, _ := c.services.Services(ns).List(everything)
	for _, s := range svcs {
		c.queue.Add(s.Namespace + "/" + s.Name)
	}
}

// lead allocates until ctx is done: caches synced, pools loaded, state rebuilt from Service
// status, then the workers run. It fails only when the state cannot be rebuilt.
func (c *controller) lead(ctx context.Context) error {
	if !cache.WaitForCacheSync(ctx.Done(), c.synced...) {
		return nil
	}
	c.syncPools(ctx)
	if err := c.rebuildWithRetry(ctx); err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	var workers sync.WaitGroup
	for range c.opts.Workers {
		workers.Go(func() {
			for c.processNext(ctx) {
			}
		})
	}
	workers.Go(func() {
		ticker := time.NewTicker(c.opts.PoolStatusInterval)
		defer ticker.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-ticker.C:
				c.updatePoolStatus(ctx)
			}
		}
	})
	<-ctx.Done()
	c.queue.ShutDown()
	workers.Wait()
	return nil
}

// rebuildBackoff paces rebuild attempts: 100 ms doubling to 2 s, within the RenewDeadline
// budget.
var rebuildBackoff = wait.Backoff{Duration: 100 * time.Millisecond, Factor: 2, Jitter: 0.2, Steps: 1 << 20, Cap: 2 * time.Second}

// rebuildWithRetry retries a failed rebuild with backoff for at most RenewDeadline, the time
// a leader also keeps trying to renew its Lease before it gives up: a transient API error
// costs a retry, an API server that stays unreachable costs the Lease.
func (c *controller) rebuildWithRetry(ctx context.Context) error {
	budget, cancel := context.WithTimeout(ctx, c.opts.RenewDeadline)
	defer cancel()
	var last error
	err := wait.ExponentialBackoffWithContext(budget, rebuildBackoff, func(ctx context.Context) (bool, error) {
		if last = c.rebuild(ctx); last != nil {
			klog.FromContext(ctx).Error(last, "Rebuilding allocations from Service status; retrying")
			rebuildFailuresTotal.Inc()
			c.readiness.rebuildFailed(last)
			return false, nil
		}
		return true, nil
	})
	if err == nil {
		return nil
	}
	if last == nil {
		last = err
	}
	return fmt.Errorf("rebuilding allocations from Service status failed for %s: %w", c.opts.RenewDeadline, last)
}

// rebuild restores every owned Service's addresses from a fresh list of Services (not the
// cache, which may lag behind the previous leader's last writes), oldest Service first, so
// that on a conflict the older Service keeps its address.
func (c *controller) rebuild(ctx context.Context) error {
	list, err := c.client.CoreV1().Services(metav1.NamespaceAll).List(ctx, metav1.ListOptions{})
	if err != nil {
		return err
	}
	items := list.Items
	oldestFirst(items)
	restored := 0
	keys := make([]string, 0, len(items))
	c.mu.Lock()
	for i := range items {
		svc := &items[i]
		ips := statusIPs(svc)
		if !c.opts.owns(svc) || len(ips) == 0 {
			continue
		}
		if _, err := c.alloc.Restore(toIPAM(svc, c.namespaceLabels(svc.Namespace)), ips); err == nil {
			restored++
		}
	}
	c.usage.setPools(c.alloc.Stats())
	c.mu.Unlock()
	for i := range items {
		keys = append(keys, items[i].Namespace+"/"+items[i].Name)
	}
	// Readiness waits for these keys before they are queued, so none is missed.
	c.readiness.expect(keys)
	for _, k := range keys {
		c.queue.Add(k)
	}
	klog.FromContext(ctx).Info("Rebuilt allocations from Service status", "services", len(items), "restored", restored)
	return nil
}

func (c *controller) namespaceLabels(ns string) map[string]string {
	if n, err := c.namespaces.Get(ns); err == nil {
		return n.Labels
	}
	return nil
}

func (c *controller) processNext(ctx context.Context) bool {
	key, quit := c.queue.Get()
	if quit {
		return false
	}
	defer c.queue.Done(key)
	var err error
	if key == poolsKey {
		c.syncPools(ctx)
	} else {
		err = c.syncService(ctx, key)
	}
	c.readiness.processed(key)
	// A conflict means a newer version exists; its informer event brings the key back, so a
	// rate-limited retry of the stale copy would only add requests.
	if err == nil || ctx.Err() != nil || apierrors.IsConflict(err) {
		c.queue.Forget(key)
		return true
	}
	klog.FromContext(ctx).V(2).Info("Retrying", "key", key, "err", err)
	c.queue.AddRateLimited(key)
	return true
}
