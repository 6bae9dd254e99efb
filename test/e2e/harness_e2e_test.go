//go:build e2e

package e2e

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"

	metallbclient "github.com/herald-lb/herald/config/metallb/client/clientset/versioned"
	metallbv1beta1 "github.com/herald-lb/herald/config/metallb/v1beta1"
	"github.com/herald-lb/herald/framework"
	"github.com/herald-lb/herald/test/faultproxy"
	"github.com/herald-lb/herald/test/kubeapi"
	"github.com/herald-lb/herald/test/lab"
	"github.com/herald-lb/herald/test/testbin"
)

func TestMain(m *testing.M) { os.Exit(kubeapi.Main(m)) }

// speakerNamespace holds the heartbeat Leases, the pools and the controller's Lease.
const speakerNamespace = "herald-system"

// cluster is one test's system: a lab, Node objects named after the lab's nodes, a pool and
// an L2Advertisement, the controller, and a speaker per node namespace.
type cluster struct {
	t      testing.TB
	env    *kubeapi.Environment
	lab    *lab.Lab
	client kubernetes.Interface
	mlb    metallbclient.Interface
	herald string
	config string
	kcLab  string
	// kcNode and proxies, with clusterOptions.proxied: each node's kubeconfig through its
	// own faultproxy, by node index.
	kcNode   map[int]string
	proxies  map[int]*faultproxy.Proxy
	ns       string
	nodes    []string // Node object names, index = lab node index
	mu       sync.Mutex
	speakers map[string]*lab.Process
	poolName string
	// heraldNS is Herald's namespace (heartbeats, status objects, the controller's Lease):
	// speakerNamespace unless a test installs Herald elsewhere.
	heraldNS string
	// controllerArgs, when set, replace the controller's namespace flags (a chart's
	// rendering).
	controllerArgs []string
}

type clusterOptions struct {
	nodes int
	// notReady lists node indexes created NotReady.
	notReady []int
	// leaseDuration of the heartbeats (default 2s).
	leaseDuration time.Duration
	// defaultHeartbeat leaves the heartbeat timing to the speaker's defaults
	// (config.DefaultLeaseDuration, config.DefaultRenewInterval); leaseDuration is ignored.
	defaultHeartbeat bool
	// announcers, when set, lists the speakers' announcers (default: the configuration's,
	// arp, ndp and bgp, each started on demand).
	announcers []string
	// idleTimeout, when set, is every announcer's idleTimeout (with announcers, or the
	// default three).
	idleTimeout string
	// proxied gives every speaker a faultproxy of its own between it and the API server
	// (cluster.proxies, by node index), so a test can break one node's API connection.
	proxied bool
	// fastPath runs the speakers' fast path (memberlist on :7946 of each node namespace,
	// reached at the node's InternalIP, its lab address) with a secret of the test's own.
	fastPath bool
}

func newCluster(t testing.TB, o clusterOptions) *cluster {
	t.Helper()
	env := kubeapi.Env(t)
	env.InstallCRDs(t)
	herald := heraldBinary(t)
	l := lab.New(t, lab.Options{Nodes: o.nodes})
	c := &cluster{t: t, env: env, lab: l, client: env.Client(t), herald: herald, speakers: map[string]*lab.Process{}, heraldNS: speakerNamespace}
	var err error
	if c.mlb, err = metallbclient.NewForConfig(env.AdminConfig()); err != nil {
		t.Fatal(err)
	}
	c.ns = env.Namespace(t)
	ctx := context.Background()
	if _, err := c.client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: speakerNamespace}}, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	for i := range l.Nodes {
		name := l.Prefix + "node-" + strconv.Itoa(i)
		c.nodes = append(c.nodes, name)
		c.createNode(name, !slices.Contains(o.notReady, i))
	}
	t.Cleanup(func() {
		for _, n := range c.nodes {
			_ = c.client.CoreV1().Nodes().Delete(context.Background(), n, metav1.DeleteOptions{})
		}
	})
	c.poolName = l.Prefix + "pool"
	c.createPool()
	lease := o.leaseDuration
	if lease == 0 {
		lease = 2 * time.Second
	}
	c.config = filepath.Join(t.TempDir(), "speaker.yaml")
	timing := fmt.Sprintf("  leaseDuration: %s\n  renewInterval: 250ms\n", lease)
	if o.defaultHeartbeat {
		timing = ""
	}
	cfg := fmt.Sprintf(`apiVersion: herald.dev/v1alpha1
kind: SpeakerConfiguration
heartbeat:
%s  namespace: %s
draining:
  timeout: 5s
metricsBindAddress: ":7472"
`, timing, speakerNamespace)
	if o.idleTimeout != "" && len(o.announcers) == 0 {
		o.announcers = []string{"arp", "ndp", "bgp"}
	}
	if len(o.announcers) > 0 {
		cfg += "announcers:\n"
		for _, a := range o.announcers {
			cfg += "- name: " + a + "\n"
			if o.idleTimeout != "" {
				cfg += "  idleTimeout: " + o.idleTimeout + "\n"
			}
		}
	}
	if o.fastPath {
		cfg += c.fastPathConfig(t)
	}
	if err := os.WriteFile(c.config, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	c.kcLab = env.KubeconfigFor(t, env.AdminConfig(), env.LabServer(l.Gateway))
	if o.proxied {
		c.kcNode = map[int]string{}
		c.proxies = map[int]*faultproxy.Proxy{}
		for i := range l.Nodes {
			admin := env.AdminConfig()
			p, err := faultproxy.StartOn(net.JoinHostPort(l.Gateway.String(), "0"), env.LabServer(l.Gateway), admin.TLSClientConfig.CAData, uint64(i+1))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(p.Close)
			p.Authorize(admin.BearerToken)
			c.proxies[i] = p
			c.kcNode[i] = env.KubeconfigFor(t, p.Config(admin), p.URL)
		}
	}
	c.startController()
	for i := range l.Nodes {
		c.startSpeaker(i)
	}
	return c
}

// heraldBinary returns the herald executable, with the announcers beside it: built by
// testbin, or, when $HERALD_E2E_PREBUILT names a directory, taken from it as is (for
// iterating on a loaded machine where every build takes minutes).
func heraldBinary(t testing.TB) string {
	t.Helper()
	if dir := os.Getenv("HERALD_E2E_PREBUILT"); dir != "" {
		return filepath.Join(dir, "herald")
	}
	herald := testbin.Build(t, "./cmd/herald")
	for _, a := range []string{"herald-announcer-arp", "herald-announcer-ndp", "herald-announcer-bgp"} {
		if got := testbin.Build(t, "./cmd/"+a); filepath.Dir(got) != filepath.Dir(herald) {
			t.Fatalf("announcer %s is not beside herald (%s)", got, herald)
		}
	}
	return herald
}

func (c *cluster) createNode(name string, ready bool) {
	c.t.Helper()
	ctx := context.Background()
	n, err := c.client.CoreV1().Nodes().Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"kubernetes.io/hostname": name}}}, metav1.CreateOptions{})
	if err != nil {
		c.t.Fatalf("creating node %s: %v", name, err)
	}
	c.setReady(n.Name, ready)
}

// fastPathConfig writes a fast-path secret and gives every Node its lab address as InternalIP
// (what the speakers advertise their fast path at); it returns the configuration's fastPath.
func (c *cluster) fastPathConfig(t testing.TB) string {
	t.Helper()
	secret := filepath.Join(t.TempDir(), "fast-path-secret")
	if err := os.WriteFile(secret, []byte(rand.Text()+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for i, name := range c.nodes {
		patch := map[string]any{"status": map[string]any{"addresses": []map[string]string{{"type": "InternalIP", "address": c.lab.Nodes[i].IPv4.String()}}}}
		b, _ := json.Marshal(patch)
		if _, err := c.client.CoreV1().Nodes().Patch(context.Background(), name, "application/strategic-merge-patch+json", b, metav1.PatchOptions{}, "status"); err != nil {
			t.Fatalf("giving node %s its InternalIP: %v", name, err)
		}
	}
	return "fastPath:\n  secretKeyFile: " + secret + "\n"
}

// setReady patches the node's Ready condition, as a kubelet (or its absence) would.
func (c *cluster) setReady(name string, ready bool) {
	c.t.Helper()
	status := corev1.ConditionTrue
	if !ready {
		status = corev1.ConditionFalse
	}
	patch := map[string]any{"status": map[string]any{"conditions": []map[string]any{{
		"type": "Ready", "status": string(status), "reason": "E2E", "lastHeartbeatTime": time.Now().UTC().Format(time.RFC3339),
		"lastTransitionTime": time.Now().UTC().Format(time.RFC3339),
	}}}}
	b, _ := json.Marshal(patch)
	if _, err := c.client.CoreV1().Nodes().Patch(context.Background(), name, "application/strategic-merge-patch+json", b, metav1.PatchOptions{}, "status"); err != nil {
		c.t.Fatalf("patching node %s Ready=%s: %v", name, status, err)
	}
}

func (c *cluster) createPool() {
	c.t.Helper()
	ctx := context.Background()
	m := c.mlb.MetallbV1beta1()
	pool := &metallbv1beta1.IPAddressPool{ObjectMeta: metav1.ObjectMeta{Name: c.poolName, Namespace: speakerNamespace},
		Spec: metallbv1beta1.IPAddressPoolSpec{Addresses: []string{"192.0.2.100-192.0.2.140"}}}
	if _, err := m.IPAddressPools(speakerNamespace).Create(ctx, pool, metav1.CreateOptions{}); err != nil {
		c.t.Fatalf("creating pool: %v", err)
	}
	adv := &metallbv1beta1.L2Advertisement{ObjectMeta: metav1.ObjectMeta{Name: c.poolName, Namespace: speakerNamespace},
		Spec: metallbv1beta1.L2AdvertisementSpec{IPAddressPools: []string{c.poolName}}}
	if _, err := m.L2Advertisements(speakerNamespace).Create(ctx, adv, metav1.CreateOptions{}); err != nil {
		c.t.Fatalf("creating L2Advertisement: %v", err)
	}
	c.t.Cleanup(func() {
		_ = m.L2Advertisements(speakerNamespace).Delete(context.Background(), c.poolName, metav1.DeleteOptions{})
		_ = m.IPAddressPools(speakerNamespace).Delete(context.Background(), c.poolName, metav1.DeleteOptions{})
	})
}

func (c *cluster) startController() {
	c.t.Helper()
	args := c.controllerArgs
	if args == nil {
		args = []string{"--namespace", c.heraldNS}
	}
	// Later flags win: the test's lease, identity and address replace a chart's.
	args = append(append([]string{"controller"}, args...), "--kubeconfig", c.env.Kubeconfig,
		"--lease-name", c.lab.Prefix+"controller", "--identity", c.lab.Prefix+"controller",
		"--metrics-bind-address", "127.0.0.1:0")
	cmd := exec.Command(c.herald, args...)
	var out syncWriter
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		c.t.Fatal(err)
	}
	c.t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		_ = cmd.Wait()
		if c.t.Failed() {
			c.t.Logf("controller output (tail):\n%s", tail(out.String(), 30))
		}
	})
}

// startSpeaker runs `herald speaker` inside node i's namespace.
func (c *cluster) startSpeaker(i int) *lab.Process {
	c.t.Helper()
	return c.startSpeakerWith(i, c.config)
}

// startSpeakerWith runs `herald speaker` inside node i's namespace with a configuration file
// of its own.
func (c *cluster) startSpeakerWith(i int, config string) *lab.Process {
	c.t.Helper()
	kc := c.kcLab
	if k, ok := c.kcNode[i]; ok {
		kc = k
	}
	p := c.lab.Nodes[i].Start(c.t, c.herald, "speaker", "--kubeconfig", kc, "--node-name", c.nodes[i],
		"--config", config, "--announcer-dir", filepath.Dir(c.herald))
	c.mu.Lock()
	c.speakers[c.nodes[i]] = p
	c.mu.Unlock()
	c.t.Cleanup(func() {
		if c.t.Failed() {
			c.t.Logf("speaker %s output (tail):\n%s", c.nodes[i], tail(p.Output(), 40))
		}
		// HERALD_E2E_LOGDIR keeps every speaker's whole output, to debug a run that passed
		// or whose tail is not enough.
		if dir := os.Getenv("HERALD_E2E_LOGDIR"); dir != "" {
			_ = os.WriteFile(filepath.Join(dir, fmt.Sprintf("%s-%d.log", c.nodes[i], p.PID())), []byte(p.Output()), 0o644)
		}
	})
	return p
}

func (c *cluster) speaker(node string) *lab.Process {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.speakers[node]
}

// nodeIndex returns the lab index of a Node object name.
func (c *cluster) nodeIndex(name string) int { return slices.Index(c.nodes, name) }

// macOwner returns the Node whose lab namespace has the MAC, or "".
func (c *cluster) macOwner(mac string) string {
	for i, h := range c.lab.Nodes {
		if strings.EqualFold(h.MAC.String(), mac) {
			return c.nodes[i]
		}
	}
	return ""
}

type serviceOptions struct {
	name       string
	local      bool
	class      string
	ip         string
	sharingKey string
	port       int32
	// endpoints are lab node indexes with a ready endpoint (nil: every node).
	endpoints []int
}

func (c *cluster) createService(o serviceOptions) *corev1.Service {
	c.t.Helper()
	if o.port == 0 {
		o.port = 80
	}
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: o.name, Namespace: c.ns, Annotations: map[string]string{}},
		Spec: corev1.ServiceSpec{
			Type:     corev1.ServiceTypeLoadBalancer,
			Selector: map[string]string{"app": o.name},
			Ports:    []corev1.ServicePort{{Name: "http", Port: o.port, TargetPort: intstr.FromInt32(8080), Protocol: corev1.ProtocolTCP}},
		},
	}
	if o.local {
		svc.Spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyLocal
	}
	if o.class != "" {
		svc.Spec.LoadBalancerClass = &o.class
	}
	if o.ip != "" {
		svc.Annotations["metallb.io/loadBalancerIPs"] = o.ip
	}
	if o.sharingKey != "" {
		svc.Annotations["metallb.io/allow-shared-ip"] = o.sharingKey
	}
	got, err := c.client.CoreV1().Services(c.ns).Create(context.Background(), svc, metav1.CreateOptions{})
	if err != nil {
		c.t.Fatalf("creating service %s: %v", o.name, err)
	}
	eps := o.endpoints
	if eps == nil {
		for i := range c.nodes {
			eps = append(eps, i)
		}
	}
	c.setEndpoints(o.name, eps)
	return got
}

// setEndpoints makes the Service's EndpointSlice list one ready endpoint on each listed node.
func (c *cluster) setEndpoints(svc string, nodes []int) {
	c.t.Helper()
	es := &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Name: svc + "-e2e", Namespace: c.ns, Labels: map[string]string{discoveryv1.LabelServiceName: svc}},
		AddressType: discoveryv1.AddressTypeIPv4,
	}
	ready := true
	for _, i := range nodes {
		name := c.nodes[i]
		es.Endpoints = append(es.Endpoints, discoveryv1.Endpoint{
			Addresses:  []string{c.lab.Nodes[i].IPv4.String()},
			NodeName:   &name,
			Conditions: discoveryv1.EndpointConditions{Ready: &ready},
		})
	}
	api := c.client.DiscoveryV1().EndpointSlices(c.ns)
	cur, err := api.Get(context.Background(), es.Name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		_, err = api.Create(context.Background(), es, metav1.CreateOptions{})
	} else if err == nil {
		es.ResourceVersion = cur.ResourceVersion
		_, err = api.Update(context.Background(), es, metav1.UpdateOptions{})
	}
	if err != nil {
		c.t.Fatalf("endpointslice of %s: %v", svc, err)
	}
}

// waitIP waits until the controller assigned the Service an ingress IP.
func (c *cluster) waitIP(svc string) netip.Addr {
	c.t.Helper()
	var ip netip.Addr
	eventually(c.t, 20*time.Second, func() (bool, string) {
		s, err := c.client.CoreV1().Services(c.ns).Get(context.Background(), svc, metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		for _, ing := range s.Status.LoadBalancer.Ingress {
			if a, err := netip.ParseAddr(ing.IP); err == nil {
				ip = a
				return true, ""
			}
		}
		return false, fmt.Sprintf("service %s has no ingress IP; conditions %v", svc, s.Status.Conditions)
	})
	return ip
}

// statusesOf selects the status objects (in speakerNamespace, where speakers write them, as
// MetalLB's do) of the Services of one namespace, by MetalLB's label.
func statusesOf(serviceNamespace string) metav1.ListOptions {
	return metav1.ListOptions{LabelSelector: "metallb.io/service-namespace=" + serviceNamespace}
}

// l2Statuses returns the ServiceL2Status objects of a Service.
func (c *cluster) l2Statuses(svc string) []metallbv1beta1.ServiceL2Status {
	c.t.Helper()
	list, err := c.mlb.MetallbV1beta1().ServiceL2Statuses(c.heraldNS).List(context.Background(), statusesOf(c.ns))
	if err != nil {
		c.t.Fatalf("listing servicel2statuses: %v", err)
	}
	var out []metallbv1beta1.ServiceL2Status
	for _, s := range list.Items {
		if s.Status.ServiceName == svc || s.Labels["metallb.io/service-name"] == svc {
			out = append(out, s)
		}
	}
	return out
}

// settle is how long a ServiceL2Status must name the same node to count as the answer.
const settle = 500 * time.Millisecond

// waitAnnouncer waits until exactly one ServiceL2Status names a node for the Service (and
// that node is not in `not`), and returns the node.
func (c *cluster) waitAnnouncer(svc string, timeout time.Duration, not ...string) string {
	c.t.Helper()
	var node string
	var since time.Time
	eventually(c.t, timeout, func() (bool, string) {
		st := c.l2Statuses(svc)
		if len(st) != 1 || st[0].Status.Node == "" {
			node = ""
			return false, fmt.Sprintf("%d ServiceL2Status for %s: %+v", len(st), svc, st)
		}
		if st[0].Status.Node != node {
			node, since = st[0].Status.Node, time.Now()
		}
		if slices.Contains(not, node) {
			return false, fmt.Sprintf("%s still announced by %s", svc, node)
		}
		// Speakers may disagree for a moment while their caches catch up (at start-up
		// heartbeats arrive one by one); the answer is the one that stays.
		return time.Since(since) >= settle, fmt.Sprintf("%s announced by %s for %s only", svc, node, time.Since(since))
	})
	return node
}

var replyRE = regexp.MustCompile(`reply from (\S+) \[([0-9A-Fa-f:]+)\]`)

// arping runs the real arping from the client and returns the MACs that replied for ip.
func (c *cluster) arping(ip netip.Addr, count int) []string {
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(count+5)*time.Second)
	defer cancel()
	// arping exits 1 when nothing answers: that is an answer here.
	out, _ := c.lab.Client.Command(ctx, "arping", "-c", strconv.Itoa(count), "-w", strconv.Itoa(count+1), "-I", c.lab.Client.Iface, ip.String()).CombinedOutput()
	var macs []string
	for _, m := range replyRE.FindAllStringSubmatch(string(out), -1) {
		if m[1] == ip.String() {
			macs = append(macs, strings.ToLower(m[2]))
		}
	}
	slices.Sort(macs)
	return slices.Compact(macs)
}

// waitARPOwner waits until arping sees exactly one MAC for ip and it is want's.
func (c *cluster) waitARPOwner(ip netip.Addr, want string, timeout time.Duration) {
	c.t.Helper()
	eventually(c.t, timeout, func() (bool, string) {
		macs := c.arping(ip, 1)
		owners := make([]string, len(macs))
		for i, m := range macs {
			owners[i] = c.macOwner(m)
		}
		return len(owners) == 1 && owners[0] == want, fmt.Sprintf("arping %s: MACs %v (owners %v), want only %s", ip, macs, owners, want)
	})
}

// explanation mirrors the JSON of `herald explain -o json`.
type explanation struct {
	Service string                 `json:"service"`
	Message string                 `json:"message"`
	Units   []*framework.Diagnosis `json:"units"`
}

// explain runs the real `herald explain -o json` with the speakers' configuration.
func (c *cluster) explain(svc string) explanation {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, c.herald, "explain", c.ns+"/"+svc, "-o", "json", "--kubeconfig", c.env.Kubeconfig, "--config", c.config).Output()
	if err != nil {
		c.t.Fatalf("herald explain %s: %v\n%s", svc, err, out)
	}
	var e explanation
	if err := json.Unmarshal(out, &e); err != nil {
		c.t.Fatalf("herald explain %s: %v\n%s", svc, err, out)
	}
	return e
}

// events returns the messages of the Service's Events with the reason.
func (c *cluster) events(svc, reason string) []string {
	c.t.Helper()
	list, err := c.client.CoreV1().Events(c.ns).List(context.Background(), metav1.ListOptions{})
	if err != nil {
		c.t.Fatal(err)
	}
	var out []string
	for _, e := range list.Items {
		if e.InvolvedObject.Kind == "Service" && e.InvolvedObject.Name == svc && e.Reason == reason {
			out = append(out, e.Message)
		}
	}
	return out
}

func eventually(t testing.TB, timeout time.Duration, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var why string
	for {
		var ok bool
		if ok, why = cond(); ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %s: %s", timeout, why)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

type syncWriter struct {
	mu sync.Mutex
	b  strings.Builder
}

func (w *syncWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func (w *syncWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func mustAddr(s string) netip.Addr { return netip.MustParseAddr(s) }
