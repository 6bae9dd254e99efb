//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/watch"
	"sigs.k8s.io/yaml"

	metallbclient "github.com/herald-lb/herald/config/metallb/client/clientset/versioned"
	metallbv1beta1 "github.com/herald-lb/herald/config/metallb/v1beta1"
	"github.com/herald-lb/herald/test/kubeapi"
	"github.com/herald-lb/herald/test/lab"
)

// metallbNamespace is MetalLB's namespace, where a MetalLB installation keeps its
// configuration.
const metallbNamespace = "metallb-system"

// migrationIPs are the addresses MetalLB gave the five Services: not the first ones of the
// pool, so a controller that allocated afresh would pick others.
var migrationIPs = []string{"192.0.2.203", "192.0.2.207", "192.0.2.211", "192.0.2.215", "192.0.2.219"}

// TestE2EMigrationFromMetalLBInItsNamespace is migration case 1: a cluster as MetalLB left it
// (an IPAddressPool and an L2Advertisement in metallb-system, five Services with addresses in
// their status and MetalLB's metallb.io/ip-allocated-from-pool annotation) gets Herald
// installed into metallb-system, configured exactly as the Helm chart renders it for that
// release namespace. Before Herald starts, `herald migrate check` predicts that every Service
// keeps its address, in pool prod, covered by L2Advertisement l2. Then, for the whole test, no
// Service's address changes (a watch on the Services sees every update), every address
// answers ARP from exactly the node its ServiceL2Status (in metallb-system, with MetalLB's
// labels) names, and `herald migrate check` run again names that same node for each.
func TestE2EMigrationFromMetalLBInItsNamespace(t *testing.T) {
	env := kubeapi.Env(t)
	env.InstallCRDs(t)
	herald := heraldBinary(t)
	l := lab.New(t, lab.Options{Nodes: 3})
	c := &cluster{t: t, env: env, lab: l, client: env.Client(t), herald: herald, speakers: map[string]*lab.Process{}, heraldNS: metallbNamespace}
	c.mlb = metallbclient.NewForConfigOrDie(env.AdminConfig())
	c.ns = env.Namespace(t)
	ctx := context.Background()
	ensureNamespace(t, c, metallbNamespace)
	for i := range l.Nodes {
		name := l.Prefix + "node-" + strconv.Itoa(i)
		c.nodes = append(c.nodes, name)
		c.createNode(name, true)
	}
	t.Cleanup(func() {
		for _, n := range c.nodes {
			_ = c.client.CoreV1().Nodes().Delete(context.Background(), n, metav1.DeleteOptions{})
		}
	})

	// MetalLB's state.
	pool := l.Prefix + "prod"
	adv := l.Prefix + "l2"
	createMetalLBConfig(t, c, metallbNamespace, pool, adv)
	for i, ip := range migrationIPs {
		createMetalLBService(t, c, fmt.Sprintf("svc-%d", i), ip, pool)
	}

	// Herald as the chart renders it for release namespace metallb-system.
	ctrlArgs, speakerConfig := renderChart(t, metallbNamespace)
	speakerConfig = c.labFastPath(t, speakerConfig)
	if !slices.Contains(ctrlArgs, "--config-namespace="+metallbNamespace) {
		t.Fatalf("the chart's controller arguments %v do not read the configuration from %s", ctrlArgs, metallbNamespace)
	}
	c.controllerArgs = ctrlArgs
	c.config = filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(c.config, []byte(speakerConfig), 0o644); err != nil {
		t.Fatal(err)
	}

	// The prediction, before Herald runs.
	before := c.migrateCheck("--namespace", metallbNamespace)
	if before.Summary.Owned != 5 || before.Summary.KeepIP != 5 || before.Summary.Lose != 0 {
		t.Fatalf("migrate check before the install: summary %+v, want 5 Services keeping their addresses\n%+v", before.Summary, before.Services)
	}
	for i, ip := range migrationIPs {
		p := before.service(t, c.ns, fmt.Sprintf("svc-%d", i))
		if !p.KeepsIP || !slices.Equal(p.IPs, []string{ip}) || p.Pool != pool || !slices.Equal(p.Advertisements, []string{"L2/" + adv}) {
			t.Errorf("migrate check predicts for %s/%s: %+v, want %s kept in pool %s, advertised by L2/%s", p.Namespace, p.Name, p, ip, pool, adv)
		}
	}

	// From now on every change to a Service's addresses is recorded.
	changes := watchIngress(t, c)

	c.kcLab = env.KubeconfigFor(t, env.AdminConfig(), env.LabServer(l.Gateway))
	c.startController()
	started := time.Now()
	for i := range l.Nodes {
		c.startSpeaker(i)
	}
	// Owners are read once every node is a candidate: before, the first speakers up hold
	// IPs that move on as the others become candidates.
	for i, node := range c.nodes {
		c.waitL2Candidate(node, started, c.speaker(c.nodes[i]))
	}

	owners := map[string]string{}
	for i, ipStr := range migrationIPs {
		svc := fmt.Sprintf("svc-%d", i)
		ip := netip.MustParseAddr(ipStr)
		// The Services exist before the speakers start, so the first speaker up claims them
		// and hands them over as the others' heartbeats arrive: wait until the one node its
		// ServiceL2Status names is the one answering ARP.
		eventually(t, 45*time.Second, func() (bool, string) {
			st := c.l2Statuses(svc)
			if len(st) != 1 || st[0].Status.Node == "" {
				return false, fmt.Sprintf("%d ServiceL2Status for %s: %+v", len(st), svc, st)
			}
			macs := c.arping(ip, 1)
			if len(macs) != 1 || c.macOwner(macs[0]) != st[0].Status.Node {
				return false, fmt.Sprintf("%s: status names %s, arping sees MACs %v", ip, st[0].Status.Node, macs)
			}
			owners[ipStr] = st[0].Status.Node
			return true, ""
		})
		node := owners[ipStr]
		st := c.l2Statuses(svc)[0]
		if st.Namespace != metallbNamespace || st.Labels["metallb.io/node"] != node || st.Labels["metallb.io/service-name"] != svc ||
			st.Labels["metallb.io/service-namespace"] != c.ns {
			t.Errorf("%s's ServiceL2Status %s/%s labels %v: want MetalLB's labels in %s", svc, st.Namespace, st.Name, st.Labels, metallbNamespace)
		}
	}
	// The controller has been leading for a while: it kept every address and said so.
	for i := range migrationIPs {
		svc := fmt.Sprintf("svc-%d", i)
		eventually(t, 20*time.Second, func() (bool, string) {
			s, err := c.client.CoreV1().Services(c.ns).Get(ctx, svc, metav1.GetOptions{})
			if err != nil {
				return false, err.Error()
			}
			return meta(s.Status.Conditions, "herald.dev/AddressAllocated") == metav1.ConditionTrue,
				fmt.Sprintf("%s conditions %+v", svc, s.Status.Conditions)
		})
	}

	after := c.migrateCheck("--namespace", metallbNamespace)
	for i, ip := range migrationIPs {
		p := after.service(t, c.ns, fmt.Sprintf("svc-%d", i))
		want := fmt.Sprintf("%s L2 arp from %s", ip, owners[ip])
		if !p.KeepsIP || !p.Announced || !slices.Equal(p.Announcers, []string{want}) {
			t.Errorf("migrate check with Herald running, %s: keeps %v announced %v announcers %v, want [%s] (the ARP owner)", p.Name, p.KeepsIP, p.Announced, p.Announcers, want)
		}
	}
	// Every address answers still, from the same node.
	for _, ipStr := range migrationIPs {
		c.waitARPOwner(netip.MustParseAddr(ipStr), owners[ipStr], 10*time.Second)
	}
	if got := changes(); len(got) > 0 {
		t.Fatalf("Service addresses changed during the migration:\n%s", strings.Join(got, "\n"))
	}
}

func ensureNamespace(t *testing.T, c *cluster, name string) {
	t.Helper()
	if _, err := c.client.CoreV1().Namespaces().Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
}

// createMetalLBConfig creates an IPAddressPool and an L2Advertisement for it in ns, as a
// MetalLB installation has them.
func createMetalLBConfig(t *testing.T, c *cluster, ns, pool, adv string) {
	t.Helper()
	ctx, m := context.Background(), c.mlb.MetallbV1beta1()
	if _, err := m.IPAddressPools(ns).Create(ctx, &metallbv1beta1.IPAddressPool{ObjectMeta: metav1.ObjectMeta{Name: pool, Namespace: ns},
		Spec: metallbv1beta1.IPAddressPoolSpec{Addresses: []string{"192.0.2.200-192.0.2.220"}}}, metav1.CreateOptions{}); err != nil {
		t.Fatalf("creating pool: %v", err)
	}
	if _, err := m.L2Advertisements(ns).Create(ctx, &metallbv1beta1.L2Advertisement{ObjectMeta: metav1.ObjectMeta{Name: adv, Namespace: ns},
		Spec: metallbv1beta1.L2AdvertisementSpec{IPAddressPools: []string{pool}}}, metav1.CreateOptions{}); err != nil {
		t.Fatalf("creating L2Advertisement: %v", err)
	}
	t.Cleanup(func() {
		_ = m.L2Advertisements(ns).Delete(context.Background(), adv, metav1.DeleteOptions{})
		_ = m.IPAddressPools(ns).Delete(context.Background(), pool, metav1.DeleteOptions{})
	})
}

// createMetalLBService creates a LoadBalancer Service as MetalLB left it: ip in its status,
// MetalLB's pool annotation, and a ready endpoint on every node.
func createMetalLBService(t *testing.T, c *cluster, name, ip, pool string) {
	t.Helper()
	ctx := context.Background()
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: c.ns, Annotations: map[string]string{"metallb.io/ip-allocated-from-pool": pool}},
		Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer, Selector: map[string]string{"app": name},
			Ports: []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromInt32(8080), Protocol: corev1.ProtocolTCP}}},
	}
	got, err := c.client.CoreV1().Services(c.ns).Create(ctx, svc, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("creating Service %s: %v", name, err)
	}
	got.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{{IP: ip, IPMode: ptrTo(corev1.LoadBalancerIPModeVIP)}}
	if _, err := c.client.CoreV1().Services(c.ns).UpdateStatus(ctx, got, metav1.UpdateOptions{}); err != nil {
		t.Fatalf("setting %s's address as MetalLB did: %v", name, err)
	}
	var all []int
	for i := range c.nodes {
		all = append(all, i)
	}
	c.setEndpoints(name, all)
	t.Cleanup(func() {
		_ = c.client.CoreV1().Services(c.ns).Delete(context.Background(), name, metav1.DeleteOptions{})
	})
}

func ptrTo[T any](v T) *T { return &v }

func meta(conds []metav1.Condition, typ string) metav1.ConditionStatus {
	for _, c := range conds {
		if c.Type == typ {
			return c.Status
		}
	}
	return ""
}

// watchIngress watches the test namespace's Services from now on and returns a function
// giving every change of a Service's addresses seen so far (a deleted Service counts).
func watchIngress(t *testing.T, c *cluster) func() []string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	list, err := c.client.CoreV1().Services(c.ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	last := map[string]string{}
	for _, s := range list.Items {
		last[s.Name] = ingressString(&s)
	}
	w, err := c.client.CoreV1().Services(c.ns).Watch(ctx, metav1.ListOptions{ResourceVersion: list.ResourceVersion})
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var changes []string
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ev := range w.ResultChan() {
			s, ok := ev.Object.(*corev1.Service)
			if !ok {
				continue
			}
			now := ingressString(s)
			if ev.Type == watch.Deleted {
				now = "(deleted)"
			}
			mu.Lock()
			if now != last[s.Name] {
				changes = append(changes, fmt.Sprintf("%s %s: %s -> %s", time.Now().Format("15:04:05.000"), s.Name, last[s.Name], now))
				last[s.Name] = now
			}
			mu.Unlock()
		}
	}()
	t.Cleanup(func() { cancel(); <-done })
	return func() []string {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(changes)
	}
}

func ingressString(s *corev1.Service) string {
	var ips []string
	for _, ing := range s.Status.LoadBalancer.Ingress {
		ips = append(ips, ing.IP)
	}
	return "[" + strings.Join(ips, ",") + "]"
}

// renderChart renders deploy/helm/herald for release namespace ns with its default values
// and returns the controller's arguments and the speaker's configuration file.
func renderChart(t *testing.T, ns string, values ...string) ([]string, string) {
	t.Helper()
	helm, err := exec.LookPath("helm")
	if err != nil {
		helm = filepath.Join(os.Getenv("HOME"), ".cache", "herald", "bin", "helm")
	}
	args := []string{"template", "herald", "../../deploy/helm/herald", "--namespace", ns}
	for _, v := range values {
		args = append(args, "--set", v)
	}
	out, err := exec.Command(helm, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("helm %v: %v\n%s", args, err, out)
	}
	var ctrlArgs []string
	var speakerConfig string
	for _, doc := range strings.Split(string(out), "\n---") {
		var u unstructured.Unstructured
		if err := yaml.Unmarshal([]byte(doc), &u.Object); err != nil || u.Object == nil {
			continue
		}
		switch u.GetKind() {
		case "ConfigMap":
			speakerConfig, _, _ = unstructured.NestedString(u.Object, "data", "config.yaml")
		case "Deployment":
			containers, _, _ := unstructured.NestedSlice(u.Object, "spec", "template", "spec", "containers")
			for _, a := range containers[0].(map[string]any)["args"].([]any) {
				if s := a.(string); s != "controller" {
					ctrlArgs = append(ctrlArgs, s)
				}
			}
		}
	}
	if ctrlArgs == nil || speakerConfig == "" {
		t.Fatalf("the chart rendering has no controller arguments or speaker configuration:\n%s", out)
	}
	return ctrlArgs, speakerConfig
}

// labFastPath points the chart's fastPath.secretKeyFile (the controller's Secret, which the
// kubelet would mount) at a file of this test's (fastPathConfig, which also gives the nodes the
// InternalIPs the speakers advertise their fast path at). The chart runs the fast path by
// default; its bind address and probe interval stay the chart's.
func (c *cluster) labFastPath(t *testing.T, speakerConfig string) string {
	t.Helper()
	const mounted = "secretKeyFile: /etc/herald-fast-path/secret"
	if !strings.Contains(speakerConfig, mounted) {
		t.Fatalf("the chart's speaker configuration has no %q:\n%s", mounted, speakerConfig)
	}
	file, ok := strings.CutPrefix(strings.TrimSpace(c.fastPathConfig(t)), "fastPath:\n  secretKeyFile: ")
	if !ok {
		t.Fatal("fastPathConfig no longer returns only a secretKeyFile")
	}
	return strings.Replace(speakerConfig, mounted, "secretKeyFile: "+file, 1)
}

// migrationReport mirrors `herald migrate check -o json`.
type migrationReport struct {
	Namespace       string        `json:"namespace"`
	ConfigNamespace string        `json:"configNamespace"`
	Services        []servicePlan `json:"services"`
	Settings        []struct {
		Setting string   `json:"setting"`
		Found   []string `json:"found"`
	} `json:"settings"`
	Summary struct {
		Owned, KeepIP, Lose, Pending, Unannounced int
	} `json:"summary"`
}

type servicePlan struct {
	Namespace      string   `json:"namespace"`
	Name           string   `json:"name"`
	Owned          bool     `json:"owned"`
	IPs            []string `json:"ips"`
	KeepsIP        bool     `json:"keepsIP"`
	Pool           string   `json:"pool"`
	Advertisements []string `json:"advertisements"`
	Announcers     []string `json:"announcers"`
	Announced      bool     `json:"announced"`
	Notes          []string `json:"notes"`
}

func (r *migrationReport) service(t *testing.T, ns, name string) servicePlan {
	t.Helper()
	for _, s := range r.Services {
		if s.Namespace == ns && s.Name == name {
			return s
		}
	}
	t.Fatalf("migrate check does not list Service %s/%s", ns, name)
	return servicePlan{}
}

// migrateCheck runs the real `herald migrate check -o json` with the speakers' configuration.
func (c *cluster) migrateCheck(args ...string) *migrationReport {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	args = append([]string{"migrate", "check", "-o", "json", "--kubeconfig", c.env.Kubeconfig, "--config", c.config}, args...)
	out, err := exec.CommandContext(ctx, c.herald, args...).Output()
	if err != nil {
		c.t.Fatalf("herald %v: %v\n%s", args, err, out)
	}
	var r migrationReport
	if err := json.Unmarshal(out, &r); err != nil {
		c.t.Fatalf("herald %v: %v\n%s", args, err, out)
	}
	return &r
}

// TestE2EMigrationHeraldInItsOwnNamespace is migration case 2: the README's install (Herald
// in herald-system, configured exactly as the chart renders it there) in a cluster whose
// MetalLB configuration stays in metallb-system. Herald reads its configuration from
// herald-system only, so it sees no pool: `herald migrate check` predicts that no Service
// loses its address and names the objects it will ignore; with the controller and speakers
// running, no Service's address changes for the whole test (a watch on the Services sees
// every update), no Herald node announces them (no pool it reads contains them), the pool and
// the L2Advertisement left in metallb-system each get a Warning Event IgnoredConfiguration,
// and `herald diag` has a config.ignored finding naming each.
func TestE2EMigrationHeraldInItsOwnNamespace(t *testing.T) {
	const heraldNS = speakerNamespace // herald-system, the README's namespace
	env := kubeapi.Env(t)
	env.InstallCRDs(t)
	herald := heraldBinary(t)
	l := lab.New(t, lab.Options{Nodes: 3})
	c := &cluster{t: t, env: env, lab: l, client: env.Client(t), herald: herald, speakers: map[string]*lab.Process{}, heraldNS: heraldNS}
	c.mlb = metallbclient.NewForConfigOrDie(env.AdminConfig())
	c.ns = env.Namespace(t)
	ensureNamespace(t, c, metallbNamespace)
	ensureNamespace(t, c, heraldNS)
	for i := range l.Nodes {
		name := l.Prefix + "node-" + strconv.Itoa(i)
		c.nodes = append(c.nodes, name)
		c.createNode(name, true)
	}
	t.Cleanup(func() {
		for _, n := range c.nodes {
			_ = c.client.CoreV1().Nodes().Delete(context.Background(), n, metav1.DeleteOptions{})
		}
	})
	pool, adv := l.Prefix+"prod", l.Prefix+"l2"
	createMetalLBConfig(t, c, metallbNamespace, pool, adv)
	for i, ip := range migrationIPs {
		createMetalLBService(t, c, fmt.Sprintf("svc-%d", i), ip, pool)
	}

	ctrlArgs, speakerConfig := renderChart(t, heraldNS)
	speakerConfig = c.labFastPath(t, speakerConfig)
	if slices.ContainsFunc(ctrlArgs, func(a string) bool { return strings.Contains(a, metallbNamespace) }) {
		t.Fatalf("the chart's controller arguments %v for release namespace %s mention %s", ctrlArgs, heraldNS, metallbNamespace)
	}
	c.controllerArgs = ctrlArgs
	c.config = filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(c.config, []byte(speakerConfig), 0o644); err != nil {
		t.Fatal(err)
	}

	before := c.migrateCheck("--namespace", heraldNS)
	if before.Summary.Owned != 5 || before.Summary.Lose != 0 {
		t.Errorf("migrate check before the install: summary %+v, want 5 Services and none losing its address\n%+v", before.Summary, before.Services)
	}
	for i, ip := range migrationIPs {
		if p := before.service(t, c.ns, fmt.Sprintf("svc-%d", i)); !p.KeepsIP || !slices.Equal(p.IPs, []string{ip}) {
			t.Errorf("migrate check predicts for %s: %+v, want %s kept", p.Name, p, ip)
		}
	}
	if ignored := before.ignored(); !strings.Contains(ignored, metallbNamespace+"/"+pool) || !strings.Contains(ignored, metallbNamespace+"/"+adv) {
		t.Errorf("migrate check's ignored objects %q do not name %s/%s and %s/%s", ignored, metallbNamespace, pool, metallbNamespace, adv)
	}

	changes := watchIngress(t, c)
	c.kcLab = env.KubeconfigFor(t, env.AdminConfig(), env.LabServer(l.Gateway))
	c.startController()
	for i := range l.Nodes {
		c.startSpeaker(i)
	}
	for i := range l.Nodes {
		c.waitHeartbeat(c.nodes[i])
	}

	// Reported: a Warning Event on each ignored object, and a diag finding naming it.
	for _, o := range []struct{ kind, name string }{{"IPAddressPool", pool}, {"L2Advertisement", adv}} {
		eventually(t, 30*time.Second, func() (bool, string) {
			evs, err := c.client.CoreV1().Events(metallbNamespace).List(context.Background(), metav1.ListOptions{
				FieldSelector: "involvedObject.name=" + o.name + ",involvedObject.kind=" + o.kind + ",reason=IgnoredConfiguration,type=Warning"})
			if err != nil {
				return false, err.Error()
			}
			return len(evs.Items) > 0, fmt.Sprintf("no IgnoredConfiguration Warning Event on %s %s/%s", o.kind, metallbNamespace, o.name)
		})
	}
	findings := c.diagFindings("--namespace", heraldNS)
	for _, name := range []string{pool, adv} {
		if !slices.ContainsFunc(findings, func(f diagFinding) bool {
			return f.Check == "config.ignored" && f.Object.Namespace == metallbNamespace && f.Object.Name == name
		}) {
			t.Errorf("herald diag has no config.ignored finding naming %s/%s: %+v", metallbNamespace, name, findings)
		}
	}

	// Kept: the controller has led and the speakers decided for a while; no address moved.
	time.Sleep(10 * time.Second)
	for i, ip := range migrationIPs {
		svc := fmt.Sprintf("svc-%d", i)
		s, err := c.client.CoreV1().Services(c.ns).Get(context.Background(), svc, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if got := ingressString(s); got != "["+ip+"]" {
			t.Errorf("%s has %s, want [%s]", svc, got, ip)
		}
		t.Logf("%s keeps %s; conditions %+v", svc, ip, s.Status.Conditions)
		// No pool Herald reads covers it, so no Herald node announces it.
		for _, mac := range c.arping(netip.MustParseAddr(ip), 1) {
			if n := c.macOwner(mac); n != "" {
				t.Errorf("%s answers ARP from %s although no pool Herald reads contains it", ip, n)
			}
		}
	}
	if got := changes(); len(got) > 0 {
		t.Fatalf("Service addresses changed:\n%s", strings.Join(got, "\n"))
	}
}

// ignored is what the report says about configuration objects Herald will ignore.
func (r *migrationReport) ignored() string {
	var out []string
	for _, s := range r.Settings {
		if strings.Contains(s.Setting, "outside the configuration namespace") {
			out = append(out, s.Found...)
		}
	}
	return strings.Join(out, " ")
}

type diagFinding struct {
	Check   string `json:"check"`
	Message string `json:"message"`
	Object  struct {
		Kind, Namespace, Name string
	} `json:"object"`
}

// diagFindings runs the real `herald diag --json` and returns its findings (it exits 1 on a
// critical finding, which the report says too).
func (c *cluster) diagFindings(args ...string) []diagFinding {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	args = append([]string{"diag", "--json", "--kubeconfig", c.env.Kubeconfig}, args...)
	out, _ := exec.CommandContext(ctx, c.herald, args...).Output()
	var report struct {
		Findings []diagFinding `json:"findings"`
	}
	if err := json.Unmarshal(out, &report); err != nil {
		c.t.Fatalf("herald %v: %v\n%s", args, err, out)
	}
	return report.Findings
}
