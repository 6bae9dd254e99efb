//go:build integration

package diag_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"

	"github.com/herald-lb/herald/cmd/herald/app"
	mlbclient "github.com/herald-lb/herald/config/metallb/client/clientset/versioned"
	metallbv1beta1 "github.com/herald-lb/herald/config/metallb/v1beta1"
	"github.com/herald-lb/herald/controller"
	"github.com/herald-lb/herald/diag"
	"github.com/herald-lb/herald/framework"
	"github.com/herald-lb/herald/heartbeat"
	"github.com/herald-lb/herald/plugins/excludelb"
	"github.com/herald-lb/herald/test/kubeapi"
)

func TestMain(m *testing.M) { os.Exit(kubeapi.Main(m)) }

// jsonReport mirrors the documented --json schema (docs/diag.md) with its own tags, so a
// renamed field in diag.Report fails here instead of silently breaking scripts.
type jsonReport struct {
	APIVersion      string `json:"apiVersion"`
	Namespace       string `json:"namespace"`
	ConfigNamespace string `json:"configNamespace"`
	Score           int    `json:"score"`
	Summary         struct {
		Critical int `json:"critical"`
		Warning  int `json:"warning"`
		Info     int `json:"info"`
	} `json:"summary"`
	Findings []struct {
		Check    string `json:"check"`
		Severity string `json:"severity"`
		Object   struct {
			Kind      string `json:"kind"`
			Namespace string `json:"namespace"`
			Name      string `json:"name"`
		} `json:"object"`
		Message string `json:"message"`
		Fix     string `json:"fix"`
	} `json:"findings"`
	Checks []string `json:"checks"`
	CRDs   []struct {
		Name        string `json:"name"`
		Version     string `json:"version"`
		Installed   bool   `json:"installed"`
		Established bool   `json:"established"`
		Served      bool   `json:"served"`
	} `json:"crds"`
	Pools    []jsonPool    `json:"pools"`
	Services []jsonService `json:"services"`
	Nodes    []jsonNode    `json:"nodes"`
}

type jsonPool struct {
	Name           string   `json:"name"`
	Size           uint64   `json:"size"`
	Used           uint64   `json:"used"`
	Free           uint64   `json:"free"`
	Exhausted      bool     `json:"exhausted"`
	Usable         bool     `json:"usable"`
	Advertisements []string `json:"advertisements"`
}

type jsonService struct {
	Namespace             string   `json:"namespace"`
	Name                  string   `json:"name"`
	Class                 string   `json:"class"`
	Owned                 bool     `json:"owned"`
	IPs                   []string `json:"ips"`
	Pool                  string   `json:"pool"`
	Pending               bool     `json:"pending"`
	PendingReason         string   `json:"pendingReason"`
	ExternalTrafficPolicy string   `json:"externalTrafficPolicy"`
	ServingEndpoints      int      `json:"servingEndpoints"`
	Announcers            []string `json:"announcers"`
}

type jsonNode struct {
	Name         string   `json:"name"`
	Ready        string   `json:"ready"`
	Excluded     bool     `json:"excluded"`
	SpeakerPod   string   `json:"speakerPod"`
	SpeakerReady bool     `json:"speakerReady"`
	Heartbeat    string   `json:"heartbeat"`
	Draining     bool     `json:"draining"`
	Interfaces   []string `json:"interfaces"`
}

// lab is one test's cluster on the real API server. Herald's namespace is the test's own;
// Services use a class named after it, so leftovers of another test are never Herald's here.
// Cluster-scoped and cross-namespace objects are deleted when the test ends, because diag
// lists them cluster-wide.
type lab struct {
	t     *testing.T
	ctx   context.Context
	env   *kubeapi.Environment
	kube  kubernetes.Interface
	mlb   mlbclient.Interface
	ns    string
	class string
	// otherNamespaces hold configuration outside Herald's namespace, deleted at cleanup.
	otherNamespaces []string
}

func newLab(t *testing.T) *lab {
	env := kubeapi.Env(t)
	env.InstallCRDs(t)
	ns := env.Namespace(t)
	l := &lab{t: t, ctx: context.Background(), env: env, kube: env.Client(t), mlb: mlbclient.NewForConfigOrDie(env.AdminConfig()), ns: ns, class: "herald.dev/" + ns}
	// Services, pods and the rest live in ns, which cannot be deleted without a namespace
	// controller: delete them one by one so the next test's cluster-wide lists are clean.
	t.Cleanup(l.cleanup)
	// No service-account controller runs: pods need the namespace's default account.
	_, err := l.kube.CoreV1().ServiceAccounts(ns).Create(l.ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "default"}}, metav1.CreateOptions{})
	l.must(err, "creating the default service account")
	return l
}

func (l *lab) must(err error, what string) {
	l.t.Helper()
	if err != nil {
		l.t.Fatalf("%s: %v", what, err)
	}
}

func (l *lab) cleanup() {
	ctx, zero := context.Background(), int64(0)
	del := metav1.DeleteOptions{GracePeriodSeconds: &zero}
	all := metav1.ListOptions{}
	if svcs, err := l.kube.CoreV1().Services(l.ns).List(ctx, all); err == nil {
		for _, s := range svcs.Items {
			_ = l.kube.CoreV1().Services(l.ns).Delete(ctx, s.Name, del)
		}
	}
	_ = l.kube.CoreV1().Pods(l.ns).DeleteCollection(ctx, del, all)
	_ = l.kube.AppsV1().DaemonSets(l.ns).DeleteCollection(ctx, del, all)
	_ = l.kube.DiscoveryV1().EndpointSlices(l.ns).DeleteCollection(ctx, del, all)
	_ = l.mlb.MetallbV1beta1().ServiceL2Statuses(l.ns).DeleteCollection(ctx, del, all)
	// Configuration left behind would be another test's ignored configuration.
	for _, ns := range append([]string{l.ns}, l.otherNamespaces...) {
		_ = l.mlb.MetallbV1beta1().IPAddressPools(ns).DeleteCollection(ctx, del, all)
		_ = l.mlb.MetallbV1beta1().L2Advertisements(ns).DeleteCollection(ctx, del, all)
	}
	_ = l.kube.CoreV1().Nodes().DeleteCollection(ctx, del, metav1.ListOptions{LabelSelector: "herald.dev/test=" + l.ns})
}

func (l *lab) nodeName(n string) string { return l.ns + "-" + n }

// node creates a node with its Ready condition and, when live, a fresh speaker heartbeat
// publishing eth0.
func (l *lab) node(n string, ready corev1.ConditionStatus, lbls map[string]string) {
	l.t.Helper()
	labels := map[string]string{"herald.dev/test": l.ns}
	for k, v := range lbls {
		labels[k] = v
	}
	obj, err := l.kube.CoreV1().Nodes().Create(l.ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: l.nodeName(n), Labels: labels}}, metav1.CreateOptions{})
	l.must(err, "creating node")
	obj.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeReady, Status: ready, LastHeartbeatTime: metav1.Now(), LastTransitionTime: metav1.Now()}}
	_, err = l.kube.CoreV1().Nodes().UpdateStatus(l.ctx, obj, metav1.UpdateOptions{})
	l.must(err, "node status")
	lease, err := heartbeat.Encode(heartbeat.Heartbeat{NodeName: obj.Name, RenewTime: time.Now(), LeaseDuration: time.Hour,
		Interfaces: []framework.Interface{{Name: "eth0", Up: true, Prefixes: []netip.Prefix{netip.MustParsePrefix("192.0.2.200/24")}}}}, l.ns)
	l.must(err, "encoding heartbeat")
	_, err = l.kube.CoordinationV1().Leases(l.ns).Create(l.ctx, lease, metav1.CreateOptions{})
	l.must(err, "creating heartbeat")
}

// pod creates a Ready Herald pod of the component on the node, labelled as the chart labels it.
func (l *lab) pod(name, component, node string) {
	l.t.Helper()
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: l.ns, Name: name, Labels: map[string]string{diag.LabelName: diag.NameHerald, diag.LabelComponent: component}},
		Spec:       corev1.PodSpec{NodeName: l.nodeName(node), Containers: []corev1.Container{{Name: component, Image: "herald:test"}}},
	}
	p, err := l.kube.CoreV1().Pods(l.ns).Create(l.ctx, p, metav1.CreateOptions{})
	l.must(err, "creating pod")
	p.Status = corev1.PodStatus{Phase: corev1.PodRunning,
		Conditions:        []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}},
		ContainerStatuses: []corev1.ContainerStatus{{Name: component, Ready: true, Image: "herald:test", ImageID: "x", State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}}}}
	_, err = l.kube.CoreV1().Pods(l.ns).UpdateStatus(l.ctx, p, metav1.UpdateOptions{})
	l.must(err, "pod status")
}

func (l *lab) pool(name string, autoAssign bool, addrs ...string) {
	l.poolIn(l.ns, name, autoAssign, addrs...)
}

func (l *lab) poolIn(ns, name string, autoAssign bool, addrs ...string) {
	l.t.Helper()
	_, err := l.mlb.MetallbV1beta1().IPAddressPools(ns).Create(l.ctx, &metallbv1beta1.IPAddressPool{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Spec: metallbv1beta1.IPAddressPoolSpec{Addresses: addrs, AutoAssign: &autoAssign}}, metav1.CreateOptions{})
	l.must(err, "creating pool")
}

func (l *lab) l2Advertisement(name string, pools ...string) {
	l.l2AdvertisementIn(l.ns, name, pools...)
}

func (l *lab) l2AdvertisementIn(ns, name string, pools ...string) {
	l.t.Helper()
	_, err := l.mlb.MetallbV1beta1().L2Advertisements(ns).Create(l.ctx, &metallbv1beta1.L2Advertisement{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec:       metallbv1beta1.L2AdvertisementSpec{IPAddressPools: pools, Interfaces: []string{"eth0"}}}, metav1.CreateOptions{})
	l.must(err, "creating L2Advertisement")
}

// startController runs the real controller in-process for the lab's namespace and class.
func (l *lab) startController() {
	o := controller.DefaultOptions()
	o.Namespace, o.LoadBalancerClass, o.HandleNoClass, o.Identity = l.ns, l.class, false, "diag-test"
	o.LeaseDuration, o.RenewDeadline, o.RetryPeriod = 3*time.Second, 2*time.Second, 250*time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- controller.Run(ctx, l.env.AdminConfig(), o) }()
	l.t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				l.t.Errorf("controller: %v", err)
			}
		case <-time.After(30 * time.Second):
			l.t.Errorf("controller did not stop")
		}
	})
}

// service creates a LoadBalancer Service of the lab's class and waits until the controller
// decided: an address (wantIP) or a refusal (wantIP "").
func (l *lab) service(name string, local bool, wantIP string) {
	l.t.Helper()
	s := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: l.ns, Name: name},
		Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer, LoadBalancerClass: &l.class, Selector: map[string]string{"app": name},
			Ports: []corev1.ServicePort{{Name: "http", Protocol: corev1.ProtocolTCP, Port: 80}}},
	}
	if local {
		s.Spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyLocal
	}
	_, err := l.kube.CoreV1().Services(l.ns).Create(l.ctx, s, metav1.CreateOptions{})
	l.must(err, "creating service")
	var last string
	err = wait.PollUntilContextTimeout(l.ctx, 100*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		got, err := l.kube.CoreV1().Services(l.ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		c := meta.FindStatusCondition(got.Status.Conditions, controller.ConditionAddressAllocated)
		last = fmt.Sprintf("%+v %+v", got.Status.LoadBalancer.Ingress, c)
		if wantIP == "" {
			return c != nil && c.Status == metav1.ConditionFalse, nil
		}
		return len(got.Status.LoadBalancer.Ingress) == 1 && got.Status.LoadBalancer.Ingress[0].IP == wantIP, nil
	})
	if err != nil {
		l.t.Fatalf("service %s: waiting for the controller (want IP %q): %v; last %s", name, wantIP, err, last)
	}
}

// endpoint creates an EndpointSlice with one ready endpoint of the Service on the node.
func (l *lab) endpoint(svc, node string) {
	l.t.Helper()
	n := l.nodeName(node)
	_, err := l.kube.DiscoveryV1().EndpointSlices(l.ns).Create(l.ctx, &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Namespace: l.ns, Name: svc + "-1", Labels: map[string]string{discoveryv1.LabelServiceName: svc}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Endpoints:   []discoveryv1.Endpoint{{Addresses: []string{"10.1.0.1"}, NodeName: &n}},
	}, metav1.CreateOptions{})
	l.must(err, "creating endpointslice")
}

// l2Status records, as the node's speaker would, that the node announces the Service.
func (l *lab) l2Status(svc, node string) {
	l.t.Helper()
	c := l.mlb.MetallbV1beta1().ServiceL2Statuses(l.ns)
	st, err := c.Create(l.ctx, &metallbv1beta1.ServiceL2Status{ObjectMeta: metav1.ObjectMeta{Namespace: l.ns, Name: "l2-" + svc}}, metav1.CreateOptions{})
	l.must(err, "creating servicel2status")
	st.Status = metallbv1beta1.MetalLBServiceL2Status{Node: l.nodeName(node), ServiceName: svc, ServiceNamespace: l.ns, Interfaces: []metallbv1beta1.InterfaceInfo{{Name: "eth0"}}}
	_, err = c.UpdateStatus(l.ctx, st, metav1.UpdateOptions{})
	l.must(err, "servicel2status status")
}

// diag runs `herald diag --json` in process and parses its output.
func (l *lab) diag() (*jsonReport, error) {
	l.t.Helper()
	cmd := app.NewHeraldCommand()
	var out, errOut bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&errOut)
	cmd.SetArgs([]string{"diag", "--json", "--kubeconfig", l.env.Kubeconfig, "--namespace", l.ns, "--load-balancer-class", l.class, "--handle-no-class=false"})
	runErr := cmd.ExecuteContext(l.ctx)
	r := &jsonReport{}
	dec := json.NewDecoder(&out)
	dec.DisallowUnknownFields()
	if err := dec.Decode(r); err != nil {
		l.t.Fatalf("parsing diag --json: %v\nstdout: %s\nstderr: %s", err, out.String(), errOut.String())
	}
	return r, runErr
}

func TestIntegrationDiagHealthy(t *testing.T) {
	l := newLab(t)
	l.node("n1", corev1.ConditionTrue, nil)
	l.node("n2", corev1.ConditionTrue, nil)
	l.pod("speaker-n1", diag.ComponentSpeaker, "n1")
	l.pod("speaker-n2", diag.ComponentSpeaker, "n2")
	l.pod("controller-0", diag.ComponentControl, "n1")
	l.pool("default", true, "192.0.2.10-192.0.2.13")
	l.l2Advertisement("l2", "default")
	l.startController()
	l.service("web", false, "192.0.2.10")
	l.endpoint("web", "n1")
	l.l2Status("web", "n1")

	r, err := l.diag()
	if err != nil {
		t.Errorf("diag on a healthy cluster returned %v, want success (exit 0)", err)
	}
	if r.APIVersion != diag.APIVersion || r.Namespace != l.ns {
		t.Errorf("apiVersion %q namespace %q", r.APIVersion, r.Namespace)
	}
	if len(r.Findings) != 0 || r.Score != 100 || r.Summary.Critical+r.Summary.Warning+r.Summary.Info != 0 {
		t.Fatalf("healthy cluster: score %d, summary %+v, findings %+v", r.Score, r.Summary, r.Findings)
	}
	if len(r.CRDs) != len(diag.RequiredCRDs) {
		t.Errorf("crds: %+v", r.CRDs)
	}
	for _, c := range r.CRDs {
		if !c.Installed || !c.Established || !c.Served {
			t.Errorf("CRD %+v not reported installed, established and served", c)
		}
	}
	if len(r.Pools) != 1 || r.Pools[0].Name != "default" || r.Pools[0].Size != 4 || r.Pools[0].Used != 1 || r.Pools[0].Free != 3 ||
		r.Pools[0].Exhausted || !r.Pools[0].Usable || !slices.Equal(r.Pools[0].Advertisements, []string{"L2/l2"}) {
		t.Errorf("pools: %+v", r.Pools)
	}
	svc := findService(t, r, l.ns, "web")
	if !svc.Owned || svc.Class != l.class || !slices.Equal(svc.IPs, []string{"192.0.2.10"}) || svc.Pool != "default" || svc.Pending ||
		svc.ExternalTrafficPolicy != "Cluster" || svc.ServingEndpoints != 1 || !slices.Equal(svc.Announcers, []string{"L2/" + l.nodeName("n1")}) {
		t.Errorf("service web: %+v", svc)
	}
	for _, n := range []string{"n1", "n2"} {
		st := findNode(t, r, l.nodeName(n))
		if st.Ready != "True" || st.Excluded || st.SpeakerPod != "speaker-"+n || !st.SpeakerReady || st.Heartbeat != "fresh" || !slices.Equal(st.Interfaces, []string{"eth0"}) {
			t.Errorf("node %s: %+v", n, st)
		}
	}
}

// TestIntegrationDiagReportsIgnoredConfiguration: a pool and an advertisement of the same
// names as Herald's, in another namespace (MetalLB's leftovers), are reported as ignored by
// diag and by the controller (a Warning Event on each), and change nothing: the pool report
// and the Service's pool are Herald's own.
func TestIntegrationDiagReportsIgnoredConfiguration(t *testing.T) {
	l := newLab(t)
	other := l.env.Namespace(t)
	l.otherNamespaces = append(l.otherNamespaces, other)
	l.node("n1", corev1.ConditionTrue, nil)
	l.pod("speaker-n1", diag.ComponentSpeaker, "n1")
	l.pod("controller-0", diag.ComponentControl, "n1")
	l.pool("default", true, "192.0.2.10-192.0.2.13")
	l.l2Advertisement("l2", "default")
	l.poolIn(other, "default", true, "198.51.100.0/30")
	l.l2AdvertisementIn(other, "l2", "default")
	l.startController()
	l.service("web", false, "192.0.2.10")
	l.endpoint("web", "n1")
	l.l2Status("web", "n1")

	r, err := l.diag()
	if err != nil {
		t.Errorf("diag returned %v, want success (the ignored objects are warnings)", err)
	}
	if r.ConfigNamespace != l.ns {
		t.Errorf("configNamespace %q, want %q", r.ConfigNamespace, l.ns)
	}
	var got []string
	for _, f := range r.Findings {
		got = append(got, fmt.Sprintf("%s %s %s/%s/%s", f.Severity, f.Check, f.Object.Kind, f.Object.Namespace, f.Object.Name))
		if !strings.Contains(f.Message, "is ignored") || !strings.Contains(f.Fix, other) {
			t.Errorf("finding %s: message %q, fix %q", f.Check, f.Message, f.Fix)
		}
	}
	want := []string{
		"warning config.ignored IPAddressPool/" + other + "/default",
		"warning config.ignored L2Advertisement/" + other + "/l2",
	}
	if !slices.Equal(got, want) {
		t.Fatalf("findings\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if len(r.Pools) != 1 || r.Pools[0].Size != 4 || r.Pools[0].Used != 1 {
		t.Errorf("pools %+v: want only %s/default, 4 addresses, 1 used", r.Pools, l.ns)
	}
	if svc := findService(t, r, l.ns, "web"); svc.Pool != "default" || !slices.Equal(svc.IPs, []string{"192.0.2.10"}) {
		t.Errorf("service web: %+v", svc)
	}
	for _, obj := range []struct{ kind, name string }{{"IPAddressPool", "default"}, {"L2Advertisement", "l2"}} {
		sel := fmt.Sprintf("involvedObject.kind=%s,involvedObject.name=%s,reason=%s", obj.kind, obj.name, controller.ReasonIgnoredConfiguration)
		deadline := time.Now().Add(15 * time.Second)
		for {
			evs, err := l.kube.CoreV1().Events(other).List(l.ctx, metav1.ListOptions{FieldSelector: sel})
			if err == nil && len(evs.Items) == 1 && evs.Items[0].Type == corev1.EventTypeWarning && strings.Contains(evs.Items[0].Message, "from namespace \""+l.ns+"\" only") {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("no Warning Event %s on %s %s/%s within 15s (err %v, events %+v)", controller.ReasonIgnoredConfiguration, obj.kind, other, obj.name, err, evs)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
}

func TestIntegrationDiagPlantedFaults(t *testing.T) {
	l := newLab(t)
	l.node("n1", corev1.ConditionTrue, nil)
	l.node("n2", corev1.ConditionFalse, nil)                                            // NotReady, yet named by a ServiceL2Status
	l.node("n3", corev1.ConditionTrue, map[string]string{excludelb.LabelExcludeLB: ""}) // exclude label
	l.pod("speaker-n1", diag.ComponentSpeaker, "n1")
	l.pod("speaker-n3", diag.ComponentSpeaker, "n3")
	l.pod("controller-0", diag.ComponentControl, "n1")
	l.pool("small", true, "192.0.2.20-192.0.2.21") // exhausted by two Services, a third pending
	l.pool("orphan", false, "198.51.100.0/30")     // no advertisement (and not auto-assigned)
	l.l2Advertisement("l2", "small")
	l.startController()
	l.service("first", false, "192.0.2.20")
	l.endpoint("first", "n1")
	l.l2Status("first", "n2")
	l.service("local", true, "192.0.2.21") // externalTrafficPolicy Local, no endpoint
	l.service("second", false, "")         // refused: the pool is exhausted
	kubeVIP := &appsv1.DaemonSet{
		ObjectMeta: metav1.ObjectMeta{Namespace: l.ns, Name: "kube-vip-ds"},
		Spec: appsv1.DaemonSetSpec{
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "kube-vip"}},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "kube-vip"}},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "kube-vip", Image: "ghcr.io/kube-vip/kube-vip:v0.8.0",
					Env: []corev1.EnvVar{{Name: "cp_enable", Value: "true"}, {Name: "svc_enable", Value: "true"}}}}},
			},
		},
	}
	_, err := l.kube.AppsV1().DaemonSets(l.ns).Create(l.ctx, kubeVIP, metav1.CreateOptions{})
	l.must(err, "creating kube-vip DaemonSet")

	r, runErr := l.diag()
	var critical *app.CriticalFindingsError
	if !errors.As(runErr, &critical) || critical.Count != 4 {
		t.Errorf("diag returned %v, want a CriticalFindingsError with 4 (non-zero exit)", runErr)
	}
	type want struct{ check, severity, kind, namespace, name, inMessage string }
	wants := []want{
		{"conflict.kube-vip", "critical", "DaemonSet", l.ns, "kube-vip-ds", "svc_enable=true"},
		{"l2status.node-not-ready", "critical", "ServiceL2Status", l.ns, "l2-first", l.nodeName("n2") + ", which is NotReady"},
		{"service.etp-local-no-endpoints", "critical", "Service", l.ns, "local", "externalTrafficPolicy Local and no serving endpoint"},
		{"service.pending", "critical", "Service", l.ns, "second", "PoolExhausted"},
		{"node.excluded", "warning", "Node", "", l.nodeName("n3"), excludelb.LabelExcludeLB},
		{"pool.exhausted", "warning", "IPAddressPool", l.ns, "small", "all 2 addresses are in use"},
		{"pool.no-advertisement", "warning", "IPAddressPool", l.ns, "orphan", "covers pool orphan"},
		{"node.not-ready", "info", "Node", "", l.nodeName("n2"), "NotReady"},
	}
	if len(r.Findings) != len(wants) {
		var got []string
		for _, f := range r.Findings {
			got = append(got, f.Severity+" "+f.Check+" "+f.Object.Name+": "+f.Message)
		}
		t.Fatalf("got %d findings, want %d:\n%s", len(r.Findings), len(wants), strings.Join(got, "\n"))
	}
	for i, w := range wants {
		f := r.Findings[i]
		if f.Check != w.check || f.Severity != w.severity || f.Object.Kind != w.kind || f.Object.Namespace != w.namespace || f.Object.Name != w.name {
			t.Errorf("finding %d = %s %s %s/%s/%s, want %s %s %s/%s/%s", i, f.Severity, f.Check, f.Object.Kind, f.Object.Namespace, f.Object.Name,
				w.severity, w.check, w.kind, w.namespace, w.name)
		}
		if !strings.Contains(f.Message, w.inMessage) || f.Fix == "" {
			t.Errorf("finding %s: message %q lacks %q, or fix %q is empty", w.check, f.Message, w.inMessage, f.Fix)
		}
	}
	if r.Summary.Critical != 4 || r.Summary.Warning != 3 || r.Summary.Info != 1 || r.Score != diag.Score(diag.Summary{Critical: 4, Warning: 3, Info: 1}) || r.Score != 4 {
		t.Errorf("summary %+v score %d, want 4/3/1 and score 4", r.Summary, r.Score)
	}
	small := findPool(t, r, "small")
	if small.Size != 2 || small.Used != 2 || small.Free != 0 || !small.Exhausted {
		t.Errorf("pool small: %+v", small)
	}
	second := findService(t, r, l.ns, "second")
	if !second.Pending || !strings.HasPrefix(second.PendingReason, "PoolExhausted: ") || len(second.IPs) != 0 {
		t.Errorf("service second: %+v", second)
	}
	local := findService(t, r, l.ns, "local")
	if local.ExternalTrafficPolicy != "Local" || local.ServingEndpoints != 0 || len(local.Announcers) != 0 {
		t.Errorf("service local: %+v", local)
	}
	if n3 := findNode(t, r, l.nodeName("n3")); !n3.Excluded {
		t.Errorf("node n3: %+v", n3)
	}
	if n2 := findNode(t, r, l.nodeName("n2")); n2.Ready != "False" || n2.SpeakerPod != "" {
		t.Errorf("node n2: %+v", n2)
	}
}

func findService(t *testing.T, r *jsonReport, ns, name string) jsonService {
	t.Helper()
	for _, s := range r.Services {
		if s.Namespace == ns && s.Name == name {
			return s
		}
	}
	t.Fatalf("service %s/%s not in the report", ns, name)
	return jsonService{}
}

func findNode(t *testing.T, r *jsonReport, name string) jsonNode {
	t.Helper()
	for _, n := range r.Nodes {
		if n.Name == name {
			return n
		}
	}
	t.Fatalf("node %s not in the report", name)
	return jsonNode{}
}

func findPool(t *testing.T, r *jsonReport, name string) jsonPool {
	t.Helper()
	for _, p := range r.Pools {
		if p.Name == name {
			return p
		}
	}
	t.Fatalf("pool %s not in the report", name)
	return jsonPool{}
}
