//go:build integration

package heartbeat_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"

	"github.com/herald-lb/herald/framework"
	"github.com/herald-lb/herald/heartbeat"
	"github.com/herald-lb/herald/test/kubeapi"
)

func TestMain(m *testing.M) { os.Exit(kubeapi.Main(m)) }

// clockTicks is the kernel's USER_HZ, the unit of /proc/<pid>/stat times on Linux.
const clockTicks = 100

// BenchmarkIntegrationHeartbeatAPICost measures, in one run on the real API server, what
// heartbeat renewals cost kube-apiserver and etcd (CPU, in cores) for $HERALD_BENCH_NODES
// simulated nodes (default 500), at today's renewal interval (1 s) and at the one liveness
// v2 aims for (one write per node per 10 s, issue 15), each over $HERALD_BENCH_SECONDS
// (default 30), after an idle window of the same length as the baseline. Each node's Lease
// carries a realistic heartbeat (two interfaces, announcer health); $HERALD_BENCH_WATCHERS
// informers (default 5) watch every Lease, as speakers do (a real cluster has one per node,
// so the watch fan-out here is scaled down; the write path is the one measured).
func BenchmarkIntegrationHeartbeatAPICost(b *testing.B) {
	env := kubeapi.Env(b)
	nodes := envInt(b, "HERALD_BENCH_NODES", 500)
	watchers := envInt(b, "HERALD_BENCH_WATCHERS", 5)
	window := time.Duration(envInt(b, "HERALD_BENCH_SECONDS", 30)) * time.Second
	ns := env.Namespace(b)
	cfg := env.AdminConfig()
	cfg.QPS, cfg.Burst = 10000, 20000
	client := kubernetes.NewForConfigOrDie(cfg)
	leases := createLeases(b, client, ns, nodes)
	events := startWatchers(b, client, ns, watchers, nodes)
	apiPID, etcdPID := env.PIDs()

	measure := func(name string, interval time.Duration) {
		// Start clean: the watchers have received what the last phase wrote (or the API
		// server's CPU for sending it would count here), and every Lease is at its latest
		// version (a write cancelled at the end of the last phase may have landed).
		quiesce(b, events)
		refresh(b, client, ns, leases)
		ctx, cancel := context.WithTimeout(context.Background(), window)
		defer cancel()
		api0, etcd0, ev0 := cpuTicks(b, apiPID), cpuTicks(b, etcdPID), events.Load()
		var writes, failures atomic.Int64
		var wg sync.WaitGroup
		if interval > 0 {
			for i := range leases {
				wg.Go(func() { renewEvery(ctx, client, &leases[i], interval, &writes, &failures) })
			}
		}
		<-ctx.Done()
		wg.Wait()
		secs := window.Seconds()
		api, etcd := float64(cpuTicks(b, apiPID)-api0)/clockTicks/secs, float64(cpuTicks(b, etcdPID)-etcd0)/clockTicks/secs
		perNode := float64(writes.Load()) / secs / float64(nodes)
		b.ReportMetric(api, name+"-apiserver-cores")
		b.ReportMetric(etcd, name+"-etcd-cores")
		b.ReportMetric(perNode, name+"-writes/node/s")
		if w := writes.Load(); w > 0 {
			b.ReportMetric((api+etcd)*secs*1000/float64(w), name+"-cpu-ms/write")
		}
		b.Logf("%s: %d nodes, %d writes (%d failed) in %s = %.2f per node per second; kube-apiserver %.3f cores, etcd %.3f cores; %d watch events delivered meanwhile to %d watchers",
			name, nodes, writes.Load(), failures.Load(), window, perNode, api, etcd, events.Load()-ev0, watchers)
	}
	measure("idle", 0)
	measure("renew-10s", 10*time.Second)
	measure("renew-1s", time.Second)
}

// quiesce waits (bounded) until the watchers have received no event for two seconds.
func quiesce(b *testing.B, events *atomic.Int64) {
	last, since := events.Load(), time.Now()
	for deadline := time.Now().Add(2 * time.Minute); time.Since(since) < 2*time.Second; {
		if time.Now().After(deadline) {
			b.Fatalf("the Lease watchers still receive events after 2 minutes (%d so far)", events.Load())
		}
		time.Sleep(200 * time.Millisecond)
		if n := events.Load(); n != last {
			last, since = n, time.Now()
		}
	}
}

// refresh replaces each Lease with its latest version on the API server.
func refresh(b *testing.B, client kubernetes.Interface, ns string, leases []*coordinationv1.Lease) {
	list, err := client.CoordinationV1().Leases(ns).List(context.Background(), metav1.ListOptions{})
	if err != nil {
		b.Fatalf("listing the heartbeat Leases: %v", err)
	}
	byName := map[string]*coordinationv1.Lease{}
	for i := range list.Items {
		byName[list.Items[i].Name] = &list.Items[i]
	}
	for i, l := range leases {
		if latest, ok := byName[l.Name]; ok {
			leases[i] = latest
		}
	}
}

// createLeases creates one heartbeat Lease per simulated node and returns them.
func createLeases(b *testing.B, client kubernetes.Interface, ns string, n int) []*coordinationv1.Lease {
	out := make([]*coordinationv1.Lease, n)
	var mu sync.Mutex
	var firstErr error
	var wg sync.WaitGroup
	sem := make(chan struct{}, 50)
	for i := range n {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			l, err := heartbeat.Encode(simulatedHeartbeat(i), ns)
			if err == nil {
				l, err = client.CoordinationV1().Leases(ns).Create(context.Background(), l, metav1.CreateOptions{})
			}
			mu.Lock()
			defer mu.Unlock()
			if err != nil && firstErr == nil {
				firstErr = err
			}
			out[i] = l
		})
	}
	wg.Wait()
	if firstErr != nil {
		b.Fatalf("creating heartbeat Leases: %v", firstErr)
	}
	return out
}

// simulatedHeartbeat is node i's heartbeat as a speaker publishes it.
func simulatedHeartbeat(i int) heartbeat.Heartbeat {
	v4 := netip.AddrFrom4([4]byte{198, 18, byte(i >> 8), byte(i)})
	v6 := netip.MustParseAddr(fmt.Sprintf("2001:db8::%x", i+1))
	ready := framework.AnnouncerHealth{State: framework.AnnouncerReady}
	return heartbeat.Heartbeat{
		NodeName:      fmt.Sprintf("bench-node-%04d", i),
		LeaseDuration: 2500 * time.Millisecond,
		RenewTime:     time.Now(),
		Interfaces: []framework.Interface{
			{Name: "eth0", Up: true, MAC: fmt.Sprintf("02:00:00:00:%02x:%02x", i>>8&0xff, i&0xff),
				Prefixes: []netip.Prefix{netip.PrefixFrom(v4, 15), netip.PrefixFrom(v6, 64)}},
			{Name: "eth1", Up: false, MAC: fmt.Sprintf("02:00:00:01:%02x:%02x", i>>8&0xff, i&0xff)},
		},
		Announcers: map[framework.AnnouncerKind]framework.AnnouncerHealth{
			framework.AnnouncerKindL2v4: ready, framework.AnnouncerKindL2v6: ready, framework.AnnouncerKindBGP: ready},
	}
}

// renewEvery renews the Lease every interval (first at a random phase, so the writes spread
// as independent nodes' do) until ctx ends, as the speaker's heartbeater does: renewTime set,
// the Lease updated from the last version it wrote.
func renewEvery(ctx context.Context, client kubernetes.Interface, lease **coordinationv1.Lease, interval time.Duration, writes, failures *atomic.Int64) {
	next := time.Now().Add(time.Duration(rand.Int64N(int64(interval))))
	timer := time.NewTimer(time.Until(next))
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
		l := (*lease).DeepCopy()
		now := metav1.NewMicroTime(time.Now())
		l.Spec.RenewTime = &now
		got, err := client.CoordinationV1().Leases(l.Namespace).Update(ctx, l, metav1.UpdateOptions{})
		switch {
		case err == nil:
			*lease = got
			writes.Add(1)
		case ctx.Err() == nil:
			failures.Add(1)
			if fresh, err := client.CoordinationV1().Leases(l.Namespace).Get(ctx, l.Name, metav1.GetOptions{}); err == nil {
				*lease = fresh
			}
		}
		// On schedule, as a ticker: a slow write delays only its own renewal.
		next = next.Add(interval)
		if late := time.Since(next); late > 0 {
			next = next.Add((late/interval + 1) * interval)
		}
		timer.Reset(time.Until(next))
	}
}

// startWatchers starts n informers on the namespace's Leases, waits until each has seen all
// of them, and returns the count of events they receive.
func startWatchers(b *testing.B, client kubernetes.Interface, ns string, n, want int) *atomic.Int64 {
	var events atomic.Int64
	ctx, cancel := context.WithCancel(context.Background())
	b.Cleanup(cancel)
	count := cache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { events.Add(1) },
		UpdateFunc: func(any, any) { events.Add(1) },
	}
	for range n {
		f := informers.NewSharedInformerFactoryWithOptions(client, 0, informers.WithNamespace(ns))
		inf := f.Coordination().V1().Leases().Informer()
		if _, err := inf.AddEventHandler(count); err != nil {
			b.Fatal(err)
		}
		f.Start(ctx.Done())
		syncCtx, done := context.WithTimeout(ctx, 2*time.Minute)
		if !cache.WaitForCacheSync(syncCtx.Done(), inf.HasSynced) || len(inf.GetStore().ListKeys()) != want {
			done()
			b.Fatalf("a Lease watcher did not sync %d Leases within 2 minutes (has %d)", want, len(inf.GetStore().ListKeys()))
		}
		done()
	}
	return &events
}

// cpuTicks is the user+system CPU time of a process, in clock ticks.
func cpuTicks(b *testing.B, pid int) int64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		b.Fatalf("reading the CPU time of pid %d: %v", pid, err)
	}
	// Fields count from after the command name, which may hold spaces.
	f := strings.Fields(string(data[strings.LastIndexByte(string(data), ')')+2:]))
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		b.Fatalf("/proc/%d/stat: %q", pid, data)
	}
	return utime + stime
}

func envInt(b *testing.B, name string, def int) int {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		b.Fatalf("$%s=%q: want a positive integer", name, v)
	}
	return n
}
