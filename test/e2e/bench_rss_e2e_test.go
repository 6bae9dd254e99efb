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
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"

	metallbclient "github.com/herald-lb/herald/config/metallb/client/clientset/versioned"
	metallbv1beta1 "github.com/herald-lb/herald/config/metallb/v1beta1"
	"github.com/herald-lb/herald/framework"
	"github.com/herald-lb/herald/heartbeat"
	"github.com/herald-lb/herald/snapshot"
	"github.com/herald-lb/herald/test/kubeapi"
	"github.com/herald-lb/herald/test/lab"
	"github.com/herald-lb/herald/test/testbin"
)

const (
	// scaleNodes and scaleServices are the cluster the speaker's memory is measured in.
	scaleNodes    = 1000
	scaleServices = 10000
	// scaleWorkers bounds the concurrent API calls that fill (and empty) the cluster.
	scaleWorkers = 32
	// benchLabel marks every object the benchmark creates outside its namespace.
	benchLabel = "herald.dev/bench"
)

// scaleCluster is a real API server filled with scaleNodes Nodes and scaleServices
// LoadBalancer Services (with EndpointSlices and ingress IPs), and a lab with one node
// namespace for the one real speaker. No controller runs: the benchmark writes the Services'
// statuses itself, as the controller would, from a pool the speaker knows.
type scaleCluster struct {
	t      testing.TB
	env    *kubeapi.Environment
	lab    *lab.Lab
	client kubernetes.Interface
	mlb    metallbclient.Interface
	ns     string
	nodes  []string // nodes[0] is the lab node the speaker runs on
	pool   netip.Prefix
}

func newScaleCluster(b *testing.B) *scaleCluster {
	env := kubeapi.Env(b)
	env.InstallCRDs(b)
	l := lab.New(b, lab.Options{Nodes: 1})
	cfg := env.AdminConfig()
	// Filling the cluster is tens of thousands of writes: minutes at this rate, not hours.
	cfg.QPS, cfg.Burst = 2000, 4000
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		b.Fatal(err)
	}
	mlb, err := metallbclient.NewForConfig(cfg)
	if err != nil {
		b.Fatal(err)
	}
	s := &scaleCluster{t: b, env: env, lab: l, client: client, mlb: mlb, ns: env.Namespace(b)}
	// The pool is a /112 inside the lab's IPv6 data subnet, so both the lab node and the
	// fake nodes (whose heartbeats claim the same subnet) can announce every address.
	base := l.Subnet6.Addr().As16()
	base[13] = 1
	s.pool = netip.PrefixFrom(netip.AddrFrom16(base), 112)
	ctx := context.Background()
	if _, err := client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: speakerNamespace}}, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		b.Fatal(err)
	}
	s.nodes = append(s.nodes, l.Prefix+"node-0")
	for i := 1; i < scaleNodes; i++ {
		s.nodes = append(s.nodes, fmt.Sprintf("%sfake-%04d", l.Prefix, i))
	}
	b.Cleanup(s.cleanup)
	start := time.Now()
	s.createPool()
	s.createNodes()
	b.Logf("scale: %d Nodes and %d heartbeats in %s", scaleNodes, scaleNodes-1, time.Since(start).Round(time.Second))
	start = time.Now()
	s.createServices()
	b.Logf("scale: %d Services with EndpointSlices and ingress IPs in %s", scaleServices, time.Since(start).Round(time.Second))
	return s
}

func (s *scaleCluster) createPool() {
	m := s.mlb.MetallbV1beta1()
	name := s.lab.Prefix + "scale"
	ctx := context.Background()
	if _, err := m.IPAddressPools(speakerNamespace).Create(ctx, &metallbv1beta1.IPAddressPool{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: speakerNamespace},
		Spec: metallbv1beta1.IPAddressPoolSpec{Addresses: []string{s.pool.String()}}}, metav1.CreateOptions{}); err != nil {
		s.t.Fatalf("creating pool: %v", err)
	}
	if _, err := m.L2Advertisements(speakerNamespace).Create(ctx, &metallbv1beta1.L2Advertisement{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: speakerNamespace},
		Spec: metallbv1beta1.L2AdvertisementSpec{IPAddressPools: []string{name}}}, metav1.CreateOptions{}); err != nil {
		s.t.Fatalf("creating L2Advertisement: %v", err)
	}
}

// createNodes creates every Node Ready, and, for the fake nodes, a heartbeat Lease alive for
// an hour with an interface in the pool's subnet: without it no fake node could announce,
// and the one real speaker would win all scaleServices addresses, which no node of a
// 1,000-node cluster does.
func (s *scaleCluster) createNodes() {
	ctx := context.Background()
	err := parallel(len(s.nodes), scaleWorkers, func(i int) error {
		n, err := s.client.CoreV1().Nodes().Create(ctx, fatNode(s.nodes[i], i), metav1.CreateOptions{})
		if err != nil {
			return err
		}
		n.Status = fatNodeStatus(i)
		if _, err := s.client.CoreV1().Nodes().UpdateStatus(ctx, n, metav1.UpdateOptions{}); err != nil {
			return err
		}
		if i == 0 {
			return nil // the real speaker writes its own heartbeat
		}
		mac := fmt.Sprintf("02:00:00:00:%02x:%02x", i>>8, i&0xff)
		l, err := heartbeat.Encode(heartbeat.Heartbeat{NodeName: s.nodes[i], RenewTime: time.Now(), LeaseDuration: time.Hour,
			Interfaces: []framework.Interface{{Name: "eth0", Up: true, MAC: mac, Prefixes: []netip.Prefix{s.lab.Subnet4, s.lab.Subnet6}}}}, speakerNamespace)
		if err != nil {
			return err
		}
		l.Labels[benchLabel] = "scale"
		_, err = s.client.CoordinationV1().Leases(speakerNamespace).Create(ctx, l, metav1.CreateOptions{})
		return err
	})
	if err != nil {
		s.t.Fatalf("creating nodes: %v", err)
	}
}

// Addresses in the API objects of the scale cluster (never configured on any interface) come
// from documentation ranges too: node i's InternalIP is 2001:db8:fe::<i>, its pod CIDR
// 2001:db8:fd:<i>::/64.
func nodeIP(i int) netip.Addr {
	return netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 0, 0xfe, 14: byte(i >> 8), 15: byte(i)})
}

func podCIDR(i int) netip.Prefix {
	return netip.PrefixFrom(netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 0, 0xfd, byte(i >> 8), byte(i)}), 64)
}

// podIP is the address of Service i's pod on node n.
func podIP(n, i int) netip.Addr {
	a := podCIDR(n).Addr().As16()
	a[14], a[15] = byte(i>>8), byte(i)
	return netip.AddrFrom16(a)
}

// fatNode is a Node as a kubelet registers it: labels, annotations, pod CIDRs.
func fatNode(name string, i int) *corev1.Node {
	return &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: name,
			Labels: map[string]string{
				benchLabel: "scale", "kubernetes.io/hostname": name, "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64",
				"beta.kubernetes.io/os": "linux", "beta.kubernetes.io/arch": "amd64", "node.kubernetes.io/instance-type": "m5.2xlarge",
				"topology.kubernetes.io/region": "region-1", "topology.kubernetes.io/zone": fmt.Sprintf("region-1%c", 'a'+i%3),
				"node-role.kubernetes.io/worker": "",
			},
			Annotations: map[string]string{
				"node.alpha.kubernetes.io/ttl":                           "0",
				"volumes.kubernetes.io/controller-managed-attach-detach": "true",
				"csi.volume.kubernetes.io/nodeid":                        fmt.Sprintf(`{"ebs.csi.aws.com":"i-%016x"}`, i),
			},
		},
		Spec: corev1.NodeSpec{PodCIDR: podCIDR(i).String(), PodCIDRs: []string{podCIDR(i).String()},
			ProviderID: fmt.Sprintf("aws:///region-1a/i-%016x", i)},
	}
}

// fatNodeStatus is a kubelet's status: conditions, addresses, capacity, node info and the
// images on the node (the bulk of a real Node object).
func fatNodeStatus(i int) corev1.NodeStatus {
	now := metav1.Now()
	cond := func(t corev1.NodeConditionType, st corev1.ConditionStatus, reason, msg string) corev1.NodeCondition {
		return corev1.NodeCondition{Type: t, Status: st, Reason: reason, Message: msg, LastHeartbeatTime: now, LastTransitionTime: now}
	}
	res := corev1.ResourceList{
		corev1.ResourceCPU: resource.MustParse("8"), corev1.ResourceMemory: resource.MustParse("32386544Ki"),
		corev1.ResourcePods: resource.MustParse("110"), corev1.ResourceEphemeralStorage: resource.MustParse("104845292Ki"),
		"hugepages-1Gi": resource.MustParse("0"), "hugepages-2Mi": resource.MustParse("0"),
	}
	st := corev1.NodeStatus{
		Capacity: res, Allocatable: res,
		Conditions: []corev1.NodeCondition{
			cond(corev1.NodeMemoryPressure, corev1.ConditionFalse, "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
			cond(corev1.NodeDiskPressure, corev1.ConditionFalse, "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
			cond(corev1.NodePIDPressure, corev1.ConditionFalse, "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
			cond(corev1.NodeReady, corev1.ConditionTrue, "KubeletReady", "kubelet is posting ready status"),
		},
		Addresses: []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: nodeIP(i).String()},
			{Type: corev1.NodeHostName, Address: fmt.Sprintf("ip-10-0-%d-%d.region-1.compute.internal", i/256, i%256)}},
		DaemonEndpoints: corev1.NodeDaemonEndpoints{KubeletEndpoint: corev1.DaemonEndpoint{Port: 10250}},
		NodeInfo: corev1.NodeSystemInfo{MachineID: fmt.Sprintf("%032x", i), SystemUUID: fmt.Sprintf("ec2%029x", i), BootID: fmt.Sprintf("%032x", i*7),
			KernelVersion: "6.1.0-28-cloud-amd64", OSImage: "Debian GNU/Linux 12 (bookworm)", ContainerRuntimeVersion: "containerd://1.7.24",
			KubeletVersion: "v1.37.2", OperatingSystem: "linux", Architecture: "amd64"},
	}
	for k := 0; k < 30; k++ {
		st.Images = append(st.Images, corev1.ContainerImage{
			Names:     []string{fmt.Sprintf("registry.example/team-%d/app-%d@sha256:%064x", k%7, k, k), fmt.Sprintf("registry.example/team-%d/app-%d:v1.%d.0", k%7, k, k)},
			SizeBytes: int64(20_000_000 + k*1_000_003),
		})
	}
	return st
}

// serviceIP is the ingress address of Service i.
func (s *scaleCluster) serviceIP(i int) netip.Addr {
	a := s.pool.Addr().As16()
	a[14], a[15] = byte(i>>8), byte(i)
	return netip.AddrFrom16(a)
}

// createServices creates every Service, writes its ingress IP into its status (as the
// controller would) and creates its EndpointSlice: three ready endpoints on consecutive
// nodes.
func (s *scaleCluster) createServices() {
	ctx := context.Background()
	single := corev1.IPFamilyPolicySingleStack
	noNodePorts := false // 10,000 Services would exhaust the NodePort range
	err := parallel(scaleServices, scaleWorkers, func(i int) error {
		name := fmt.Sprintf("svc-%05d", i)
		app := map[string]string{"app.kubernetes.io/name": name, "app.kubernetes.io/component": "web"}
		svc := &corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: s.ns, Labels: app,
				Annotations: map[string]string{snapshot.AnnotationAllocatedFromPool: s.lab.Prefix + "scale", "team.example/owner": fmt.Sprintf("team-%d", i%50)}},
			Spec: corev1.ServiceSpec{
				Type: corev1.ServiceTypeLoadBalancer, Selector: app, IPFamilies: []corev1.IPFamily{corev1.IPv6Protocol}, IPFamilyPolicy: &single,
				AllocateLoadBalancerNodePorts: &noNodePorts,
				Ports: []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromString("http"), Protocol: corev1.ProtocolTCP},
					{Name: "https", Port: 443, TargetPort: intstr.FromString("https"), Protocol: corev1.ProtocolTCP}},
			},
		}
		got, err := s.client.CoreV1().Services(s.ns).Create(ctx, svc, metav1.CreateOptions{})
		if err != nil {
			return err
		}
		// The status and the pool annotation above are what the controller would write.
		vip := corev1.LoadBalancerIPModeVIP
		got.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{{IP: s.serviceIP(i).String(), IPMode: &vip}}
		if _, err := s.client.CoreV1().Services(s.ns).UpdateStatus(ctx, got, metav1.UpdateOptions{}); err != nil {
			return err
		}
		_, err = s.client.DiscoveryV1().EndpointSlices(s.ns).Create(ctx, s.endpointSlice(name, i), metav1.CreateOptions{})
		return err
	})
	if err != nil {
		s.t.Fatalf("creating services: %v", err)
	}
}

func (s *scaleCluster) endpointSlice(svc string, i int) *discoveryv1.EndpointSlice {
	ready, serving, terminating := true, true, false
	http, https := "http", "https"
	p80, p443 := int32(8080), int32(8443)
	tcp := corev1.ProtocolTCP
	es := &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{Name: svc + "-abcde", Namespace: s.ns,
			Labels: map[string]string{discoveryv1.LabelServiceName: svc, discoveryv1.LabelManagedBy: "endpointslice-controller.k8s.io"}},
		AddressType: discoveryv1.AddressTypeIPv6,
		Ports:       []discoveryv1.EndpointPort{{Name: &http, Port: &p80, Protocol: &tcp}, {Name: &https, Port: &p443, Protocol: &tcp}},
	}
	for k := 0; k < 3; k++ {
		n := (i + k) % scaleNodes
		node, zone := s.nodes[n], fmt.Sprintf("region-1%c", 'a'+n%3)
		es.Endpoints = append(es.Endpoints, discoveryv1.Endpoint{
			Addresses:  []string{podIP(n, i).String()},
			Conditions: discoveryv1.EndpointConditions{Ready: &ready, Serving: &serving, Terminating: &terminating},
			NodeName:   &node, Zone: &zone,
			TargetRef: &corev1.ObjectReference{Kind: "Pod", Namespace: s.ns, Name: fmt.Sprintf("%s-7d9f8b6c5d-%05d", svc, k), UID: "00000000-0000-0000-0000-000000000000"},
		})
	}
	return es
}

// cleanup empties the cluster again, so later tests of the package see a small one.
func (s *scaleCluster) cleanup() {
	ctx := context.Background()
	sel := metav1.ListOptions{LabelSelector: benchLabel + "=scale"}
	_ = parallel(scaleServices, scaleWorkers, func(i int) error {
		_ = s.client.CoreV1().Services(s.ns).Delete(ctx, fmt.Sprintf("svc-%05d", i), metav1.DeleteOptions{})
		return nil
	})
	_ = s.client.DiscoveryV1().EndpointSlices(s.ns).DeleteCollection(ctx, metav1.DeleteOptions{}, metav1.ListOptions{})
	_ = s.client.CoordinationV1().Leases(speakerNamespace).DeleteCollection(ctx, metav1.DeleteOptions{}, sel)
	_ = s.client.CoordinationV1().Leases(speakerNamespace).Delete(ctx, heartbeat.LeaseName(s.nodes[0]), metav1.DeleteOptions{})
	_ = s.client.CoreV1().Nodes().DeleteCollection(ctx, metav1.DeleteOptions{}, sel)
	_ = s.mlb.MetallbV1beta1().ServiceL2Statuses(speakerNamespace).DeleteCollection(ctx, metav1.DeleteOptions{}, statusesOf(s.ns))
	_ = s.mlb.MetallbV1beta1().L2Advertisements(speakerNamespace).Delete(ctx, s.lab.Prefix+"scale", metav1.DeleteOptions{})
	_ = s.mlb.MetallbV1beta1().IPAddressPools(speakerNamespace).Delete(ctx, s.lab.Prefix+"scale", metav1.DeleteOptions{})
}

// speakerConfig writes the speaker's configuration: the default heartbeat timing (a renewal
// re-runs every unit), and the metrics address the benchmark scrapes inside the node
// namespace.
func speakerConfig(t testing.TB) string {
	path := filepath.Join(t.TempDir(), "speaker.yaml")
	cfg := fmt.Sprintf(`apiVersion: herald.dev/v1alpha1
kind: SpeakerConfiguration
heartbeat:
  namespace: %s
draining:
  timeout: 5s
metricsBindAddress: "127.0.0.1:7472"
`, speakerNamespace)
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// pprofAddr is where test/profherald serves profiles inside the node namespace.
const pprofAddr = "127.0.0.1:6060"

// procStatus returns a field of /proc/<pid>/status in KiB ("VmRSS", "VmHWM").
func procStatus(pid int, field string) (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			f := strings.Fields(v)
			if len(f) == 0 {
				break
			}
			return strconv.ParseFloat(f[0], 64)
		}
	}
	return 0, fmt.Errorf("/proc/%d/status has no %s", pid, field)
}

// cpuTicks is the process's user plus system CPU time in clock ticks.
func cpuTicks(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name may hold spaces: fields count from the closing parenthesis.
	rest := string(b[strings.LastIndexByte(string(b), ')')+2:])
	f := strings.Fields(rest)
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: %q", pid, b)
	}
	u, err1 := strconv.ParseInt(f[11], 10, 64)
	s, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("/proc/%d/stat: %q", pid, b)
	}
	return u + s, nil
}

// announcedMetric scrapes the speaker's gauge of announced L2 addresses; ok is false until
// the speaker completed its first full pass over every unit.
func (s *scaleCluster) announcedMetric() (n int, ok bool) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	out, err := s.lab.Nodes[0].Command(ctx, "curl", "-s", "--max-time", "4", "http://127.0.0.1:7472/metrics").Output()
	if err != nil {
		return 0, false
	}
	for _, line := range strings.Split(string(out), "\n") {
		if v, found := strings.CutPrefix(line, `herald_speaker_announced_addresses{mode="L2"} `); found {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			return int(f), err == nil
		}
	}
	return 0, false
}

// rssRun starts the speaker, waits until it synced and drained its queue (its first full
// pass done, then a second with its CPU use under a quarter of a core), and samples its
// memory every 2 s, and its CPU use over that time.
type rssRun struct {
	ready time.Duration
	hwm   float64   // VmHWM in MiB once drained
	rss   []float64 // VmRSS samples in MiB
	// anon and file split the last VmRSS sample: the heap and stacks, and the mapped binary.
	anon, file float64
	announced  int
	idleCPU    float64 // percent of a core in the steady state
}

func (s *scaleCluster) rssRun(exe, announcerDir, kubeconfig, config string, samples int, heapProfile string) rssRun {
	s.t.Helper()
	start := time.Now()
	p := s.lab.Nodes[0].Start(s.t, exe, "speaker", "--kubeconfig", kubeconfig, "--node-name", s.nodes[0],
		"--config", config, "--announcer-dir", announcerDir)
	defer p.Kill()
	s.t.Cleanup(func() {
		if s.t.Failed() {
			s.t.Logf("speaker output (tail):\n%s", tail(p.Output(), 40))
		}
	})
	var r rssRun
	eventually(s.t, 10*time.Minute, func() (bool, string) {
		select {
		case <-p.Done():
			s.t.Fatalf("speaker exited: %v\n%s", p.Wait(), tail(p.Output(), 30))
		default:
		}
		n, ok := s.announcedMetric()
		r.announced = n
		return ok, "speaker has not finished its first pass"
	})
	pid := p.PID()
	prev, err := cpuTicks(pid)
	if err != nil {
		s.t.Fatal(err)
	}
	// Drained: a second in which the speaker used under a quarter of a core. Its two
	// workers keep at least one core busy while the queue holds work, so such a second means
	// the queue was empty; what remains is renewing the heartbeat and the full pass each
	// heartbeat change (its own renewal included) queues. Clock ticks are 10 ms.
	var last int64
	eventually(s.t, 10*time.Minute, func() (bool, string) {
		time.Sleep(time.Second)
		cur, err := cpuTicks(pid)
		if err != nil {
			s.t.Fatalf("speaker gone: %v\n%s", err, tail(p.Output(), 30))
		}
		last, prev = cur-prev, cur
		return last < 25, fmt.Sprintf("speaker still busy (%d CPU ticks in the last second)", last)
	})
	r.ready = time.Since(start) - time.Second
	r.announced, _ = s.announcedMetric()
	sampleStart := time.Now()
	for i := 0; i < samples; i++ {
		kib, err := procStatus(pid, "VmRSS")
		if err != nil {
			s.t.Fatal(err)
		}
		r.rss = append(r.rss, kib/1024)
		anon, aerr := procStatus(pid, "RssAnon")
		file, ferr := procStatus(pid, "RssFile")
		if aerr == nil && ferr == nil {
			r.anon, r.file = anon/1024, file/1024
		}
		time.Sleep(2 * time.Second)
	}
	if cur, err := cpuTicks(pid); err == nil {
		// Percent of a core: ticks are hundredths of a second.
		r.idleCPU = float64(cur-prev) / time.Since(sampleStart).Seconds()
	}
	if heapProfile != "" {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		for _, prof := range []struct{ file, path string }{{heapProfile, "heap?gc=1"}, {strings.Replace(heapProfile, "heap", "cpu", 1), "profile?seconds=10"}} {
			if out, err := s.lab.Nodes[0].Command(ctx, "curl", "-sf", "-o", prof.file, "http://"+pprofAddr+"/debug/pprof/"+prof.path).CombinedOutput(); err != nil {
				s.t.Fatalf("fetching %s: %v\n%s", prof.path, err, out)
			}
		}
	}
	hwm, err := procStatus(pid, "VmHWM")
	if err != nil {
		s.t.Fatal(err)
	}
	r.hwm = hwm / 1024
	return r
}

// BenchmarkE2ESpeakerRSS10kServices1kNodes: the resident memory of one real `herald speaker`
// in a cluster of 1,000 Ready Nodes (999 with live heartbeats, so the speaker announces only
// its share) and 10,000 LoadBalancer Services with EndpointSlices and ingress IPs, after its
// informers synced and its queue drained. Each run starts a new speaker;
// $HERALD_BENCH_RSS_RUNS runs (default 20), each sampling VmRSS 5 times over 10 s. VmHWM is the
// peak of a run (start-up included), VmRSS the steady state. Goal ≤ 150 MiB.
//
// With $HERALD_BENCH_PPROF naming a directory, the speaker is test/profherald (herald with
// pprof) and each run's heap profile, taken when drained, is written there.
func BenchmarkE2ESpeakerRSS10kServices1kNodes(b *testing.B) {
	herald := heraldBinary(b)
	exe := herald
	profDir := os.Getenv("HERALD_BENCH_PPROF")
	if profDir != "" {
		exe = testbin.Build(b, "./test/profherald")
		b.Setenv("HERALD_PPROF_ADDR", pprofAddr)
	}
	s := newScaleCluster(b)
	kc := s.env.KubeconfigFor(b, s.env.AdminConfig(), s.env.LabServer(s.lab.Gateway))
	config := speakerConfig(b)
	runs := envInt(b, "HERALD_BENCH_RSS_RUNS", 20)
	// $HERALD_BENCH_SPEAKER_ENV (KEY=VALUE,...) is added to the speaker's environment, to
	// compare runtime settings such as GOMEMLIMIT; the API server has started already.
	if v := os.Getenv("HERALD_BENCH_SPEAKER_ENV"); v != "" {
		for _, kv := range strings.Split(v, ",") {
			k, val, ok := strings.Cut(kv, "=")
			if !ok {
				b.Fatalf("$HERALD_BENCH_SPEAKER_ENV: %q is not KEY=VALUE", kv)
			}
			b.Setenv(k, val)
		}
	}
	var hwm, rss, ready, idle []float64
	for i := 0; i < runs; i++ {
		heap := ""
		if profDir != "" {
			heap = filepath.Join(profDir, fmt.Sprintf("speaker-heap-%d.pb.gz", i))
		}
		r := s.rssRun(exe, filepath.Dir(herald), kc, config, 5, heap)
		hwm = append(hwm, r.hwm)
		rss = append(rss, r.rss...)
		ready = append(ready, r.ready.Seconds())
		b.Logf("run %d: synced and drained in %s, announcing %d addresses, steady CPU %.0f%% of a core; VmHWM %.1f MiB, VmRSS %.1f..%.1f MiB (last: %.1f MiB anonymous, %.1f MiB file-backed)",
			i, r.ready.Round(100*time.Millisecond), r.announced, r.idleCPU, r.hwm, slices.Min(r.rss), slices.Max(r.rss), r.anon, r.file)
		idle = append(idle, r.idleCPU)
		if r.announced > scaleServices/10 {
			b.Errorf("run %d: the speaker announces %d addresses; with 1,000 live nodes it should win a small share", i, r.announced)
		}
	}
	reportFloat(b, "speaker-vmhwm", "MiB", hwm)
	reportFloat(b, "speaker-vmrss", "MiB", rss)
	reportFloat(b, "synced-drained", "s", ready)
	reportFloat(b, "steady-cpu", "pct", idle)
}

// reportFloat reports p50, p90 and max of the samples.
func reportFloat(b *testing.B, name, unit string, xs []float64) {
	sorted := slices.Clone(xs)
	slices.Sort(sorted)
	p := func(q float64) float64 { return sorted[min(len(sorted)-1, int(q*float64(len(sorted))))] }
	b.ReportMetric(p(0.5), name+"-p50-"+unit)
	b.ReportMetric(p(0.9), name+"-p90-"+unit)
	b.ReportMetric(sorted[len(sorted)-1], name+"-max-"+unit)
	b.Logf("%s over %d samples: min %.2f p50 %.2f p90 %.2f max %.2f %s", name, len(sorted), sorted[0], p(0.5), p(0.9), sorted[len(sorted)-1], unit)
}
