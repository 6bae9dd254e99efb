//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"

	metallbclient "github.com/herald-lb/herald/config/metallb/client/clientset/versioned"
	"github.com/herald-lb/herald/snapshot"
	"github.com/herald-lb/herald/test/kubeapi"
	"github.com/herald-lb/herald/test/lab"
)

// nodeRSSServices is how many IPv4 Services the per-node memory is measured with.
const nodeRSSServices = 1000

// nodeRSSPool holds their addresses: 1,000 need more than a lab /24, so the benchmark range
// 198.18.0.0/22 is added to the node's eth0 (the Interfaces filter wants the subnet there).
var nodeRSSPool = netip.MustParsePrefix("198.18.0.0/22")

// BenchmarkE2ENodeRSS1kServicesIPv4: the memory of one node's Herald, the speaker and every
// announcer process it runs, summed, with 1,000 IPv4 LoadBalancer Services (each with an
// EndpointSlice and an ingress IP) all announced by that node, after the speaker synced and
// drained its queue. Goal ≤ 80 MiB (MetalLB's speaker: 90 MiB). It runs each configuration
// $HERALD_BENCH_RSS_RUNS times (default 3), sampling VmRSS 5 times over 10 s: the default
// (announcers on demand: arp runs, ndp and bgp do not) and, for comparison, every announcer
// always running (idleTimeout: 0s, what Herald did before).
func BenchmarkE2ENodeRSS1kServicesIPv4(b *testing.B) {
	herald := heraldBinary(b)
	env := kubeapi.Env(b)
	env.InstallCRDs(b)
	l := lab.New(b, lab.Options{Nodes: 1})
	l.Nodes[0].Run(b, "ip", "addr", "add", netip.PrefixFrom(nodeRSSPool.Addr().Next(), nodeRSSPool.Bits()).String(), "dev", "eth0")
	cfg := env.AdminConfig()
	cfg.QPS, cfg.Burst = 2000, 4000
	s := &scaleCluster{t: b, env: env, lab: l, ns: env.Namespace(b), nodes: []string{l.Prefix + "node-0"}, pool: nodeRSSPool}
	var err error
	if s.client, err = kubernetes.NewForConfig(cfg); err != nil {
		b.Fatal(err)
	}
	if s.mlb, err = metallbclient.NewForConfig(cfg); err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	if _, err := s.client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: speakerNamespace}}, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		b.Fatal(err)
	}
	s.createPool()
	n, err := s.client.CoreV1().Nodes().Create(ctx, fatNode(s.nodes[0], 0), metav1.CreateOptions{})
	if err != nil {
		b.Fatal(err)
	}
	n.Status = fatNodeStatus(0)
	if _, err := s.client.CoreV1().Nodes().UpdateStatus(ctx, n, metav1.UpdateOptions{}); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		_ = s.client.CoreV1().Nodes().Delete(context.Background(), s.nodes[0], metav1.DeleteOptions{})
		_ = s.mlb.MetallbV1beta1().L2Advertisements(speakerNamespace).Delete(context.Background(), l.Prefix+"scale", metav1.DeleteOptions{})
		_ = s.mlb.MetallbV1beta1().IPAddressPools(speakerNamespace).Delete(context.Background(), l.Prefix+"scale", metav1.DeleteOptions{})
	})
	start := time.Now()
	s.createServices4(nodeRSSServices)
	b.Logf("%d IPv4 Services with EndpointSlices and ingress IPs in %s", nodeRSSServices, time.Since(start).Round(time.Second))
	kc := env.KubeconfigFor(b, env.AdminConfig(), env.LabServer(l.Gateway))
	runs := envInt(b, "HERALD_BENCH_RSS_RUNS", 3)
	for _, mode := range []struct{ name, idle string }{{"on-demand", ""}, {"always-on", "0s"}} {
		config := nodeRSSConfig(b, mode.idle)
		var speaker, anns, total []float64
		for i := 0; i < runs; i++ {
			r := s.nodeRSSRun(herald, kc, config)
			speaker, anns, total = append(speaker, r.speaker...), append(anns, r.announcers...), append(total, r.total...)
			b.Logf("%s run %d: announcing %d, children %v; speaker %.1f MiB + announcers %.1f MiB = %.1f MiB (max of 5 samples)",
				mode.name, i, r.announced, r.children, slices.Max(r.speaker), slices.Max(r.announcers), slices.Max(r.total))
			if r.announced != nodeRSSServices {
				b.Errorf("%s run %d: the speaker announces %d addresses, want %d", mode.name, i, r.announced, nodeRSSServices)
			}
		}
		reportFloat(b, mode.name+"-speaker-rss", "MiB", speaker)
		reportFloat(b, mode.name+"-announcers-rss", "MiB", anns)
		reportFloat(b, mode.name+"-node-rss", "MiB", total)
	}
}

// nodeRSSConfig is the speaker's configuration; idle, when set, is every announcer's
// idleTimeout.
func nodeRSSConfig(t testing.TB, idle string) string {
	path := speakerConfig(t)
	if idle == "" {
		return path
	}
	extra := "announcers:\n"
	for _, a := range []string{"arp", "ndp", "bgp"} {
		extra += fmt.Sprintf("- name: %s\n  idleTimeout: %s\n", a, idle)
	}
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(extra); err != nil {
		t.Fatal(err)
	}
	return path
}

// createServices4 creates n single-stack IPv4 Services with ingress IPs (as the controller
// would write them) and an EndpointSlice with one ready endpoint on the lab node.
func (s *scaleCluster) createServices4(n int) {
	ctx := context.Background()
	single := corev1.IPFamilyPolicySingleStack
	noNodePorts := false
	node := s.nodes[0]
	ready := true
	port, proto, pname := int32(8080), corev1.ProtocolTCP, "http"
	err := parallel(n, scaleWorkers, func(i int) error {
		name := fmt.Sprintf("svc4-%04d", i)
		app := map[string]string{"app.kubernetes.io/name": name}
		svc := &corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: s.ns, Labels: app,
				Annotations: map[string]string{snapshot.AnnotationAllocatedFromPool: s.lab.Prefix + "scale"}},
			Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer, Selector: app, IPFamilies: []corev1.IPFamily{corev1.IPv4Protocol},
				IPFamilyPolicy: &single, AllocateLoadBalancerNodePorts: &noNodePorts,
				Ports: []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromString("http"), Protocol: corev1.ProtocolTCP}}},
		}
		got, err := s.client.CoreV1().Services(s.ns).Create(ctx, svc, metav1.CreateOptions{})
		if err != nil {
			return err
		}
		ip := nodeRSSPool.Addr()
		for range i + 2 { // .0 is the network, .1 the node's own address
			ip = ip.Next()
		}
		vip := corev1.LoadBalancerIPModeVIP
		got.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{{IP: ip.String(), IPMode: &vip}}
		if _, err := s.client.CoreV1().Services(s.ns).UpdateStatus(ctx, got, metav1.UpdateOptions{}); err != nil {
			return err
		}
		_, err = s.client.DiscoveryV1().EndpointSlices(s.ns).Create(ctx, &discoveryv1.EndpointSlice{
			ObjectMeta:  metav1.ObjectMeta{Name: name + "-abcde", Namespace: s.ns, Labels: map[string]string{discoveryv1.LabelServiceName: name}},
			AddressType: discoveryv1.AddressTypeIPv4,
			Ports:       []discoveryv1.EndpointPort{{Name: &pname, Port: &port, Protocol: &proto}},
			Endpoints: []discoveryv1.Endpoint{{Addresses: []string{s.lab.Nodes[0].IPv4.String()}, NodeName: &node,
				Conditions: discoveryv1.EndpointConditions{Ready: &ready}}},
		}, metav1.CreateOptions{})
		return err
	})
	if err != nil {
		s.t.Fatalf("creating services: %v", err)
	}
}

// nodeRSS is one speaker run: VmRSS samples in MiB of the speaker, of its announcers summed,
// and of both.
type nodeRSS struct {
	speaker, announcers, total []float64
	children                   []string
	announced                  int
}

func (s *scaleCluster) nodeRSSRun(herald, kubeconfig, config string) nodeRSS {
	s.t.Helper()
	p := s.lab.Nodes[0].Start(s.t, herald, "speaker", "--kubeconfig", kubeconfig, "--node-name", s.nodes[0],
		"--config", config, "--announcer-dir", filepath.Dir(herald))
	defer p.Kill()
	var r nodeRSS
	eventually(s.t, 10*time.Minute, func() (bool, string) {
		select {
		case <-p.Done():
			s.t.Fatalf("speaker exited: %v\n%s", p.Wait(), tail(p.Output(), 30))
		default:
		}
		n, ok := s.announcedMetric()
		r.announced = n
		return ok && n == nodeRSSServices, fmt.Sprintf("speaker announces %d (metric ready: %v)", n, ok)
	})
	pid := p.PID()
	prev, err := cpuTicks(pid)
	if err != nil {
		s.t.Fatal(err)
	}
	eventually(s.t, 10*time.Minute, func() (bool, string) {
		time.Sleep(time.Second)
		cur, err := cpuTicks(pid)
		if err != nil {
			s.t.Fatalf("speaker gone: %v\n%s", err, tail(p.Output(), 30))
		}
		busy := cur - prev
		prev = cur
		return busy < 25, fmt.Sprintf("speaker still busy (%d CPU ticks in the last second)", busy)
	})
	for i := 0; i < 5; i++ {
		sp, err := procStatus(pid, "VmRSS")
		if err != nil {
			s.t.Fatal(err)
		}
		var sum float64
		r.children = r.children[:0]
		for _, c := range announcerPIDs(s.t, pid, "") {
			kib, err := procStatus(c, "VmRSS")
			if err != nil {
				continue // exited meanwhile
			}
			sum += kib
			cmd, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", c))
			r.children = append(r.children, strings.TrimPrefix(filepath.Base(strings.Split(string(cmd), "\x00")[0]), "herald-announcer-")+"="+strconv.FormatFloat(kib/1024, 'f', 1, 64)+"MiB")
		}
		r.speaker = append(r.speaker, sp/1024)
		r.announcers = append(r.announcers, sum/1024)
		r.total = append(r.total, (sp+sum)/1024)
		time.Sleep(2 * time.Second)
	}
	return r
}
