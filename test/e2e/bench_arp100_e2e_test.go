//go:build e2e

package e2e

import (
	"bufio"
	"context"
	"fmt"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/watch"

	metallbv1beta1 "github.com/herald-lb/herald/config/metallb/v1beta1"
	"github.com/herald-lb/herald/test/testbin"
)

const (
	// batchSize Services are created at once in each round.
	batchSize = 100
	// probeInterval is how often test/arpprobe asks again for an unanswered IP: the
	// resolution of the ARP milestone. (arping's -i takes whole seconds; timing to 0.2 s took
	// five staggered arping processes per IP, 500 processes on the machine under test.)
	probeInterval = 20 * time.Millisecond
	// probeDeadline bounds the probe (seconds).
	probeDeadline = 20
	// apiWorkers bounds the concurrent API calls of a round.
	apiWorkers = 25
)

// batchIP is the i-th address of the batch pool, which holds batchSize addresses right above
// the harness pool (192.0.2.100-140) in the lab's data subnet.
func batchIP(i int) netip.Addr { return netip.AddrFrom4([4]byte{192, 0, 2, byte(141 + i)}) }

// createBatchPool adds a pool and an L2Advertisement for the batch addresses.
func (c *cluster) createBatchPool() {
	c.t.Helper()
	name := c.poolName + "-batch"
	m := c.mlb.MetallbV1beta1()
	pool := &metallbv1beta1.IPAddressPool{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: speakerNamespace},
		Spec: metallbv1beta1.IPAddressPoolSpec{Addresses: []string{batchIP(0).String() + "-" + batchIP(batchSize-1).String()}}}
	adv := &metallbv1beta1.L2Advertisement{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: speakerNamespace},
		Spec: metallbv1beta1.L2AdvertisementSpec{IPAddressPools: []string{name}}}
	ctx := context.Background()
	if _, err := m.IPAddressPools(speakerNamespace).Create(ctx, pool, metav1.CreateOptions{}); err != nil {
		c.t.Fatalf("creating pool %s: %v", name, err)
	}
	if _, err := m.L2Advertisements(speakerNamespace).Create(ctx, adv, metav1.CreateOptions{}); err != nil {
		c.t.Fatalf("creating L2Advertisement %s: %v", name, err)
	}
	c.t.Cleanup(func() {
		_ = m.L2Advertisements(speakerNamespace).Delete(context.Background(), name, metav1.DeleteOptions{})
		_ = m.IPAddressPools(speakerNamespace).Delete(context.Background(), name, metav1.DeleteOptions{})
	})
}

// probeResult is the first ARP reply an IP got.
type probeResult struct {
	at  time.Time
	mac string
}

// probeIPs starts test/arpprobe in the client namespace: one ARP socket requesting every
// unanswered IP each probeInterval. It returns once the first requests are out, with a
// function that waits for the probe and returns, per IP, the first reply to one of its
// requests (zero when none came before probeDeadline), and one that counts the IPs answered
// so far. Replies are stamped when the probe reads them.
func (c *cluster) probeIPs(ips []netip.Addr) (wait func() []probeResult, answered func() int) {
	c.t.Helper()
	args := []string{"-i", c.lab.Client.Iface, "-interval", probeInterval.String(), "-deadline", (probeDeadline * time.Second).String()}
	index := map[netip.Addr]int{}
	for i, ip := range ips {
		args = append(args, ip.String())
		index[ip] = i
	}
	ctx, cancel := context.WithTimeout(context.Background(), (probeDeadline+10)*time.Second)
	cmd := c.lab.Client.Command(ctx, testbin.Build(c.t, "./test/arpprobe"), args...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		c.t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		c.t.Fatal(err)
	}
	var mu sync.Mutex
	first := make([]probeResult, len(ips))
	ready := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			f := strings.Fields(sc.Text())
			if len(f) == 1 && f[0] == "ready" {
				close(ready)
				continue
			}
			if len(f) != 3 {
				continue
			}
			ip, err1 := netip.ParseAddr(f[0])
			ns, err2 := strconv.ParseInt(f[2], 10, 64)
			i, ok := index[ip]
			if err1 != nil || err2 != nil || !ok {
				continue
			}
			mu.Lock()
			first[i] = probeResult{at: time.Unix(0, ns), mac: f[1]}
			mu.Unlock()
		}
	}()
	select {
	case <-ready:
	case <-done:
		c.t.Fatalf("arpprobe exited before probing: %s", stderr.String())
	}
	// Ten rounds of requests before the caller checks that nothing answers yet.
	time.Sleep(10 * probeInterval)
	wait = func() []probeResult {
		<-done
		if err := cmd.Wait(); err != nil {
			c.t.Errorf("arpprobe: %v: %s", err, stderr.String())
		}
		cancel()
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(first)
	}
	answered = func() int {
		mu.Lock()
		defer mu.Unlock()
		n := 0
		for _, f := range first {
			if !f.at.IsZero() {
				n++
			}
		}
		return n
	}
	return wait, answered
}

// batchService is a LoadBalancer Service asking for ip, with a ready endpoint on every node.
func (c *cluster) batchService(name string, ip netip.Addr) (*corev1.Service, *discoveryv1.EndpointSlice) {
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: c.ns, Annotations: map[string]string{"metallb.io/loadBalancerIPs": ip.String()}},
		Spec: corev1.ServiceSpec{
			Type:     corev1.ServiceTypeLoadBalancer,
			Selector: map[string]string{"app": name},
			Ports:    []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromInt32(8080), Protocol: corev1.ProtocolTCP}},
		},
	}
	es := &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Name: name + "-e2e", Namespace: c.ns, Labels: map[string]string{discoveryv1.LabelServiceName: name}},
		AddressType: discoveryv1.AddressTypeIPv4,
	}
	ready := true
	for i, h := range c.lab.Nodes {
		node := c.nodes[i]
		es.Endpoints = append(es.Endpoints, discoveryv1.Endpoint{Addresses: []string{h.IPv4.String()}, NodeName: &node,
			Conditions: discoveryv1.EndpointConditions{Ready: &ready}})
	}
	return svc, es
}

// parallel runs fn(i) for i in [0,n) on at most apiWorkers goroutines and returns the
// errors joined by index order (nil when all succeeded).
func parallel(n, workers int, fn func(i int) error) error {
	errs := make([]error, n)
	sem := make(chan struct{}, workers)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			errs[i] = fn(i)
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			return fmt.Errorf("item %d: %w", i, err)
		}
	}
	return nil
}

// ownersOf waits (bounded) until each Service has exactly one ServiceL2Status naming a node,
// unchanged for settle, and returns the nodes by Service name.
func (c *cluster) ownersOf(names []string, timeout time.Duration) map[string]string {
	c.t.Helper()
	owners := map[string]string{}
	var since time.Time
	eventually(c.t, timeout, func() (bool, string) {
		list, err := c.mlb.MetallbV1beta1().ServiceL2Statuses(speakerNamespace).List(context.Background(), statusesOf(c.ns))
		if err != nil {
			return false, err.Error()
		}
		count := map[string]int{}
		now := map[string]string{}
		for _, s := range list.Items {
			svc := s.Status.ServiceName
			if svc == "" {
				svc = s.Labels["metallb.io/service-name"]
			}
			count[svc]++
			now[svc] = s.Status.Node
		}
		for _, n := range names {
			if count[n] != 1 || now[n] == "" {
				owners = map[string]string{}
				return false, fmt.Sprintf("service %s has %d ServiceL2Status (node %q)", n, count[n], now[n])
			}
		}
		changed := len(owners) != len(names)
		for _, n := range names {
			if owners[n] != now[n] {
				changed = true
			}
		}
		if changed {
			owners, since = map[string]string{}, time.Now()
			for _, n := range names {
				owners[n] = now[n]
			}
		}
		return time.Since(since) >= settle, "owners not settled yet"
	})
	return owners
}

// waitNoStatus waits (bounded) until none of the Services has a ServiceL2Status.
func (c *cluster) waitNoStatus(names []string, timeout time.Duration) {
	c.t.Helper()
	want := map[string]bool{}
	for _, n := range names {
		want[n] = true
	}
	eventually(c.t, timeout, func() (bool, string) {
		list, err := c.mlb.MetallbV1beta1().ServiceL2Statuses(speakerNamespace).List(context.Background(), statusesOf(c.ns))
		if err != nil {
			return false, err.Error()
		}
		for _, s := range list.Items {
			if want[s.Status.ServiceName] || want[s.Labels["metallb.io/service-name"]] {
				return false, fmt.Sprintf("ServiceL2Status %s still exists", s.Name)
			}
		}
		return true, ""
	})
}

// milestones records when the test first saw each Service of a round reach a stage, through
// watches: its ingress IP written by the controller, and a ServiceL2Status naming a node
// written by the announcing speaker. They split the create→ARP time between the roles.
type milestones struct {
	mu       sync.Mutex
	stopping atomic.Bool
	ip       map[string]time.Time
	l2Status map[string]time.Time
	stop     func()
}

func (c *cluster) watchMilestones() *milestones {
	c.t.Helper()
	m := &milestones{ip: map[string]time.Time{}, l2Status: map[string]time.Time{}}
	ctx, cancel := context.WithCancel(context.Background())
	svcs := c.watchFromList("services",
		func() (string, error) {
			l, err := c.client.CoreV1().Services(c.ns).List(ctx, metav1.ListOptions{})
			if err != nil {
				return "", err
			}
			return l.ResourceVersion, nil
		},
		func(o metav1.ListOptions) (watch.Interface, error) {
			return c.client.CoreV1().Services(c.ns).Watch(ctx, o)
		})
	sts := c.watchFromList("ServiceL2Statuses",
		func() (string, error) {
			l, err := c.mlb.MetallbV1beta1().ServiceL2Statuses(speakerNamespace).List(ctx, statusesOf(c.ns))
			if err != nil {
				return "", err
			}
			return l.ResourceVersion, nil
		},
		func(o metav1.ListOptions) (watch.Interface, error) {
			o.LabelSelector = statusesOf(c.ns).LabelSelector
			return c.mlb.MetallbV1beta1().ServiceL2Statuses(speakerNamespace).Watch(ctx, o)
		})
	var wg sync.WaitGroup
	consume := func(what string, w watch.Interface, seen func(runtime.Object)) {
		wg.Go(func() {
			for ev := range w.ResultChan() {
				if st, ok := ev.Object.(*metav1.Status); ok && !m.stopping.Load() {
					c.t.Errorf("watching %s: %s", what, st.Message)
				}
				seen(ev.Object)
			}
		})
	}
	consume("services", svcs, func(o runtime.Object) {
		if svc, ok := o.(*corev1.Service); ok && len(svc.Status.LoadBalancer.Ingress) > 0 {
			m.mark(m.ip, svc.Name)
		}
	})
	consume("ServiceL2Statuses", sts, func(o runtime.Object) {
		if st, ok := o.(*metallbv1beta1.ServiceL2Status); ok && st.Status.Node != "" {
			name := st.Status.ServiceName
			if name == "" {
				name = st.Labels["metallb.io/service-name"]
			}
			m.mark(m.l2Status, name)
		}
	})
	m.stop = func() { m.stopping.Store(true); svcs.Stop(); sts.Stop(); cancel(); wg.Wait() }
	return m
}

// watchFromList lists, then watches from the list's resource version, so the watch starts at
// a known point rather than at whatever "now" the API server picks.
func (c *cluster) watchFromList(what string, list func() (string, error), watchFrom func(metav1.ListOptions) (watch.Interface, error)) watch.Interface {
	c.t.Helper()
	rv, err := list()
	if err != nil {
		c.t.Fatalf("listing %s: %v", what, err)
	}
	w, err := watchFrom(metav1.ListOptions{ResourceVersion: rv})
	if err != nil {
		c.t.Fatalf("watching %s: %v", what, err)
	}
	return w
}

func (m *milestones) mark(at map[string]time.Time, name string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := at[name]; !ok {
		at[name] = time.Now()
	}
}

// roundResult holds a round's samples by stage, measured from each Service's create request.
type roundResult struct {
	arp, ip, l2Status []time.Duration
	// ipToARP is from the test seeing the ingress IP to the ARP reply: the speakers' share.
	ipToARP  []time.Duration
	failures []string
}

// arpRound creates batchSize Services at once and returns, per Service, the time from the
// start of its create request to the first ARP reply from the node its ServiceL2Status
// names. Services whose first reply came from another MAC, or that got none, are returned
// as failures with the reason.
func (c *cluster) arpRound(round int) (res roundResult) {
	c.t.Helper()
	ips := make([]netip.Addr, batchSize)
	names := make([]string, batchSize)
	for i := range ips {
		ips[i], names[i] = batchIP(i), fmt.Sprintf("arp-r%d-%03d", round, i)
	}
	wait, answered := c.probeIPs(ips)
	if n := answered(); n != 0 {
		wait()
		c.t.Fatalf("round %d: %d batch IPs answered ARP before their Services existed (a previous round's announcement stayed)", round, n)
	}
	created := make([]time.Time, batchSize)
	ms := c.watchMilestones()
	ctx := context.Background()
	err := parallel(batchSize, apiWorkers, func(i int) error {
		svc, es := c.batchService(names[i], ips[i])
		created[i] = time.Now()
		if _, err := c.client.CoreV1().Services(c.ns).Create(ctx, svc, metav1.CreateOptions{}); err != nil {
			return err
		}
		_, err := c.client.DiscoveryV1().EndpointSlices(c.ns).Create(ctx, es, metav1.CreateOptions{})
		return err
	})
	if err != nil {
		c.t.Fatalf("round %d: creating services: %v", round, err)
	}
	first := wait()
	owners := c.ownersOf(names, 30*time.Second)
	ms.stop()
	for i, f := range first {
		switch owner := owners[names[i]]; {
		case f.at.IsZero():
			res.failures = append(res.failures, fmt.Sprintf("%s (%s): no ARP reply within %ds", names[i], ips[i], probeDeadline))
		case c.macOwner(f.mac) != owner:
			res.failures = append(res.failures, fmt.Sprintf("%s (%s): first reply from %s (node %q), ServiceL2Status names %s", names[i], ips[i], f.mac, c.macOwner(f.mac), owner))
		default:
			res.arp = append(res.arp, f.at.Sub(created[i]))
			if at, ok := ms.ip[names[i]]; ok {
				res.ipToARP = append(res.ipToARP, f.at.Sub(at))
			}
		}
		if at, ok := ms.ip[names[i]]; ok {
			res.ip = append(res.ip, at.Sub(created[i]))
		}
		if at, ok := ms.l2Status[names[i]]; ok {
			res.l2Status = append(res.l2Status, at.Sub(created[i]))
		}
	}
	c.deleteBatch(names)
	return res
}

// deleteBatch deletes the round's Services and EndpointSlices and waits until no node
// reports them, so the next round starts from withdrawn addresses.
func (c *cluster) deleteBatch(names []string) {
	c.t.Helper()
	ctx := context.Background()
	err := parallel(len(names), apiWorkers, func(i int) error {
		if err := c.client.CoreV1().Services(c.ns).Delete(ctx, names[i], metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			return err
		}
		err := c.client.DiscoveryV1().EndpointSlices(c.ns).Delete(ctx, names[i]+"-e2e", metav1.DeleteOptions{})
		if apierrors.IsNotFound(err) {
			return nil
		}
		return err
	})
	if err != nil {
		c.t.Fatalf("deleting services: %v", err)
	}
	c.waitNoStatus(names, 30*time.Second)
	// The controller releases the addresses and the speakers withdraw them after the
	// statuses are gone; the next round's probes check that nothing answers any more.
	time.Sleep(2 * time.Second)
}

// envInt reads a positive integer from the environment, or returns def.
func envInt(t testing.TB, name string, def int) int {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		t.Fatalf("$%s=%q: want a positive integer", name, v)
	}
	return n
}

// BenchmarkE2EServiceToARP100: batchSize LoadBalancer Services (with their EndpointSlices)
// are created at once, each asking for its own address; for each Service, the time from the
// start of its create request until the client's arping gets the first reply, checked to
// come from the MAC of the node its ServiceL2Status names. The distribution is over every
// Service of every round ($HERALD_BENCH_ARP_ROUNDS rounds, default 3, so 300 samples); probe
// resolution is probeInterval. Goal: p99 ≤ 1 s. svc-to-ip (the controller wrote the ingress
// IP) and svc-to-l2status (the announcing speaker wrote its ServiceL2Status), seen through
// watches, split that time between the roles; ip-to-arp is from the ingress IP to the ARP
// reply, the speakers' and announcers' share.
func BenchmarkE2EServiceToARP100(b *testing.B) {
	c := newCluster(b, clusterOptions{nodes: 3})
	c.createBatchPool()
	// A Service announced before the first round proves every speaker is up.
	c.createService(serviceOptions{name: "warm", ip: "192.0.2.100"})
	c.waitAnnouncer("warm", 30*time.Second)
	rounds := envInt(b, "HERALD_BENCH_ARP_ROUNDS", 3)
	var all roundResult
	for r := 0; r < rounds; r++ {
		res := c.arpRound(r)
		all.arp = append(all.arp, res.arp...)
		all.ip = append(all.ip, res.ip...)
		all.l2Status = append(all.l2Status, res.l2Status...)
		all.ipToARP = append(all.ipToARP, res.ipToARP...)
		all.failures = append(all.failures, res.failures...)
		b.Logf("round %d: %d Services answered by their announcing node, %d failed", r, len(res.arp), len(res.failures))
	}
	failures := all.failures
	for name, ds := range map[string][]time.Duration{"svc-to-arp": all.arp, "svc-to-ip": all.ip, "svc-to-l2status": all.l2Status, "ip-to-arp": all.ipToARP} {
		if len(ds) > 0 {
			reportTail(b, name, ds)
		}
	}
	b.ReportMetric(float64(len(failures)), "failed-services")
	b.ReportMetric(probeInterval.Seconds(), "probe-resolution-s")
	if len(failures) > 0 {
		b.Errorf("%d of %d Services were not answered by their announcing node:\n%s", len(failures), rounds*batchSize, tail(strings.Join(failures, "\n"), 20))
	}
}

// reportTail reports p50, p90, p99 and max of the samples.
func reportTail(b *testing.B, name string, ds []time.Duration) {
	sorted := append([]time.Duration(nil), ds...)
	slices.Sort(sorted)
	p := func(q float64) time.Duration { return sorted[min(len(sorted)-1, int(q*float64(len(sorted))))] }
	b.ReportMetric(p(0.5).Seconds(), name+"-p50-s")
	b.ReportMetric(p(0.9).Seconds(), name+"-p90-s")
	b.ReportMetric(p(0.99).Seconds(), name+"-p99-s")
	b.ReportMetric(sorted[len(sorted)-1].Seconds(), name+"-max-s")
	b.ReportMetric(float64(len(sorted)), name+"-samples")
	b.Logf("%s over %d samples: min %s p50 %s p90 %s p99 %s max %s", name, len(sorted), sorted[0], p(0.5), p(0.9), p(0.99), sorted[len(sorted)-1])
}
