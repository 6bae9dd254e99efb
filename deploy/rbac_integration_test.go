//go:build integration

package deploy_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr/testr"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/klog/v2"

	"github.com/herald-lb/herald/cmd/herald/app"
	metallbclient "github.com/herald-lb/herald/config/metallb/client/clientset/versioned"
	metallbv1beta1 "github.com/herald-lb/herald/config/metallb/v1beta1"
	metallbv1beta2 "github.com/herald-lb/herald/config/metallb/v1beta2"
	"github.com/herald-lb/herald/controller"
	"github.com/herald-lb/herald/framework"
	"github.com/herald-lb/herald/heartbeat"
	"github.com/herald-lb/herald/plugins"
	"github.com/herald-lb/herald/speaker"
	"github.com/herald-lb/herald/speaker/announce"
	"github.com/herald-lb/herald/test/kubeapi"
	"github.com/herald-lb/herald/test/testbin"
)

// rbacTestValues shorten the chart's timers so that every renewal path (Lease updates, pool
// status writes) runs within the test.
const rbacTestValues = `
controller:
  poolStatusInterval: 1s
  leaderElection: {leaseDuration: 4s, renewDeadline: 3s, retryPeriod: 1s}
speaker:
  heartbeat: {leaseDuration: 4s, renewInterval: 1s}
  drainingTimeout: 2s
`

// TestIntegrationRolesRunWithTheChartsRBAC is the least-privilege proof, in L2 mode
// (announcers arp and ndp; the chart's default adds bgp, proven by the BGP-mode test). The chart's RBAC is applied to a real API server
// with RBAC authorization on; the controller and a speaker then run in this process,
// configured from the chart's own arguments and configuration file, each authenticated as its
// chart ServiceAccount, with every request recorded by a wrapping RoundTripper. They complete
// an allocation (the Service gets an address) and an announcement (ServiceL2Status for this
// node), a refused Service (twice) and a withdrawal, then shut down. Then:
//   - no request was refused (HTTP 403), and each recorded request is allowed by the rendered
//     rules (checked again by evaluating the rules here);
//   - every verb on every resource the rules grant was used at least once: no rule is spare.
//
// The recording sees every request either role makes through client-go; the roles make no
// other API requests (no exec of kubectl, no other HTTP client).
func TestIntegrationRolesRunWithTheChartsRBAC(t *testing.T) {
	ip := netip.MustParseAddr("192.0.2.101")
	setup := func(h *roles) {
		// The configuration exists before the roles start, so that no cycle runs on a
		// partial view (a Service's address seen before its pool).
		createPool(t, h.mlb, h.ns, "rbac", "192.0.2.100-192.0.2.109")
		adv := &metallbv1beta1.L2Advertisement{ObjectMeta: metav1.ObjectMeta{Name: "rbac", Namespace: h.ns},
			Spec: metallbv1beta1.L2AdvertisementSpec{IPAddressPools: []string{"rbac"}}}
		if _, err := h.mlb.MetallbV1beta1().L2Advertisements(h.ns).Create(context.Background(), adv, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	h := startRoles(t, rbacTestValues+"  announcers: [arp, ndp]\n", setup)
	ctx, ns, admin, mlb := context.Background(), h.ns, h.admin, h.mlb

	// Allocation and announcement.
	h.createService("web", map[string]string{"metallb.io/loadBalancerIPs": ip.String()})
	announced := func() (string, bool) {
		list, err := mlb.MetallbV1beta1().ServiceL2Statuses(ns).List(ctx, metav1.ListOptions{})
		if err != nil || len(list.Items) != 1 {
			return fmt.Sprint(err), false
		}
		st := list.Items[0].Status
		return fmt.Sprintf("%+v", st), st.Node == h.node && st.ServiceName == "web" && len(st.Interfaces) == 1 && st.Interfaces[0].Name == "eth0"
	}
	waitFor(t, "a ServiceL2Status naming "+h.node+" and eth0", announced)

	// The node leaves and comes back, twice: the speaker withdraws (deleting its status) and
	// announces again, recording the same two Events twice, which client-go's recorder
	// aggregates with a patch.
	for round := int32(1); round <= 2; round++ {
		h.labelNode(excludeLabel, "true")
		waitFor(t, "the ServiceL2Status withdrawn", func() (string, bool) {
			list, err := mlb.MetallbV1beta1().ServiceL2Statuses(ns).List(ctx, metav1.ListOptions{})
			return fmt.Sprint(err), err == nil && len(list.Items) == 0
		})
		h.waitEvent("web", announce.ReasonNoNode, round)
		h.labelNode(excludeLabel, "")
		waitFor(t, "the ServiceL2Status back", announced)
		h.waitEvent("web", announce.ReasonNodeChanged, round)
	}
	waitFor(t, "the pool's status counting the address", func() (string, bool) {
		p, err := mlb.MetallbV1beta1().IPAddressPools(ns).Get(ctx, "rbac", metav1.GetOptions{})
		if err != nil {
			return err.Error(), false
		}
		return fmt.Sprintf("%+v", p.Status), p.Status.AssignedIPv4 == 1
	})

	// A refusal, twice: an address outside every pool, then one inside, then the outside one
	// again. The controller records an Event per change; the second, identical refusal Event
	// is aggregated by client-go's event recorder, which patches the first one.
	refused := loadBalancer(ns, "refused", map[string]string{"metallb.io/loadBalancerIPs": "198.51.100.7"})
	if _, err := admin.CoreV1().Services(ns).Create(ctx, refused, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	ingress := func(want bool) func() (string, bool) {
		return func() (string, bool) {
			s, err := admin.CoreV1().Services(ns).Get(ctx, "refused", metav1.GetOptions{})
			return fmt.Sprint(err), err == nil && (len(s.Status.LoadBalancer.Ingress) > 0) == want && len(s.Status.Conditions) > 0
		}
	}
	waitFor(t, "the refusal", ingress(false))
	for _, step := range []struct {
		ip     string
		assign bool
	}{{"192.0.2.105", true}, {"198.51.100.7", false}} {
		patch := fmt.Sprintf(`{"metadata":{"annotations":{"metallb.io/loadBalancerIPs":%q}}}`, step.ip)
		if _, err := admin.CoreV1().Services(ns).Patch(ctx, "refused", types.MergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "the controller's answer to "+step.ip, ingress(step.assign))
	}
	waitFor(t, "the refusal Event counted twice", func() (string, bool) {
		evs, err := admin.CoreV1().Events(ns).List(ctx, metav1.ListOptions{FieldSelector: "involvedObject.name=refused,type=Warning"})
		if err != nil || len(evs.Items) == 0 {
			return fmt.Sprint(err), false
		}
		return fmt.Sprint(evs.Items[0].Count), evs.Items[0].Count >= 2
	})

	// Withdrawal: the Service goes, the speaker deletes its ServiceL2Status.
	if err := admin.CoreV1().Services(ns).Delete(ctx, "web", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the ServiceL2Status gone", func() (string, bool) {
		list, err := mlb.MetallbV1beta1().ServiceL2Statuses(ns).List(ctx, metav1.ListOptions{})
		return fmt.Sprint(err), err == nil && len(list.Items) == 0
	})
	h.stop()
	checkCalls(t, "controller", h.ctrlRec, grantsFor(t, h.objs, ns, h.ctrlSA), true, nil)
	checkCalls(t, "speaker", h.spkRec, grantsFor(t, h.objs, ns, h.spkSA), true, map[string]string{
		"get servicel2statuses.metallb.io": cacheLag,
	})
}

// cacheLag is why a speaker's get on its status objects may go unused in a test: it reads
// an object itself only when its informer cache may lag behind the API server (a cached
// object naming this node that this process did not write, a create answered AlreadyExists,
// a status update answered Conflict). Whether a cycle meets such a lag depends on the order
// in which watch events arrive, which a test cannot force.
const cacheLag = "read only when the informer cache lags behind the API server, which a test cannot force"

// TestIntegrationRolesRunWithTheChartsRBACInBGPMode is the same proof for a speaker with only
// the bgp announcer: it may read BGPPeers, BFDProfiles and password Secrets in its own
// namespace and write ServiceBGPStatus, and no longer write ServiceL2Status. The controller's
// calls are checked for refusals only (the L2 test exercises every one of its rules).
func TestIntegrationRolesRunWithTheChartsRBACInBGPMode(t *testing.T) {
	h := startRoles(t, rbacTestValues+"  announcers: [bgp]\n", nil)
	ctx, ns, admin, mlb := context.Background(), h.ns, h.admin, h.mlb
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "router-password", Namespace: ns},
		Type: corev1.SecretTypeBasicAuth, StringData: map[string]string{corev1.BasicAuthPasswordKey: "not-a-real-one"}}
	if _, err := admin.CoreV1().Secrets(ns).Create(ctx, secret, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	bfd := &metallbv1beta1.BFDProfile{ObjectMeta: metav1.ObjectMeta{Name: "fast", Namespace: ns}}
	if _, err := mlb.MetallbV1beta1().BFDProfiles(ns).Create(ctx, bfd, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	peer := &metallbv1beta2.BGPPeer{ObjectMeta: metav1.ObjectMeta{Name: "router", Namespace: ns},
		Spec: metallbv1beta2.BGPPeerSpec{MyASN: 64512, ASN: 64513, Address: "203.0.113.1", BFDProfile: "fast",
			PasswordSecret: &corev1.SecretReference{Name: "router-password"}}}
	if _, err := mlb.MetallbV1beta2().BGPPeers(ns).Create(ctx, peer, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	createPool(t, mlb, ns, "bgp", "192.0.2.120-192.0.2.129")
	adv := &metallbv1beta1.BGPAdvertisement{ObjectMeta: metav1.ObjectMeta{Name: "bgp", Namespace: ns},
		Spec: metallbv1beta1.BGPAdvertisementSpec{IPAddressPools: []string{"bgp"}}}
	if _, err := mlb.MetallbV1beta1().BGPAdvertisements(ns).Create(ctx, adv, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	// A peer whose password Secret is missing is left out with an Event; when the Secret comes
	// and goes again, the same Event is recorded again (client-go's recorder patches it).
	broken := peer.DeepCopy()
	broken.Name, broken.Spec.PasswordSecret = "broken", &corev1.SecretReference{Name: "missing"}
	if _, err := mlb.MetallbV1beta2().BGPPeers(ns).Create(ctx, broken, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	h.waitEvent("broken", speaker.ReasonPeerInvalid, 1)
	missing := secret.DeepCopy()
	missing.Name = "missing"
	if _, err := admin.CoreV1().Secrets(ns).Create(ctx, missing, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	// No outside sign shows the speaker saw the Secret; give its informer ample time.
	time.Sleep(2 * time.Second)
	if err := admin.CoreV1().Secrets(ns).Delete(ctx, "missing", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	h.waitEvent("broken", speaker.ReasonPeerInvalid, 2)

	h.createService("web", nil)
	waitFor(t, "a ServiceBGPStatus naming "+h.node+" and peer router", func() (string, bool) {
		list, err := mlb.MetallbV1beta1().ServiceBGPStatuses(ns).List(ctx, metav1.ListOptions{})
		if err != nil || len(list.Items) != 1 {
			return fmt.Sprint(err), false
		}
		st := list.Items[0].Status
		// "broken" is left out: only peers the speaker configured are listed.
		return fmt.Sprintf("%+v", st), st.Node == h.node && slices.Equal(st.Peers, []string{"router"})
	})
	if err := admin.CoreV1().Services(ns).Delete(ctx, "web", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the ServiceBGPStatus gone", func() (string, bool) {
		list, err := mlb.MetallbV1beta1().ServiceBGPStatuses(ns).List(ctx, metav1.ListOptions{})
		return fmt.Sprint(err), err == nil && len(list.Items) == 0
	})
	h.stop()
	checkCalls(t, "controller", h.ctrlRec, grantsFor(t, h.objs, ns, h.ctrlSA), false, nil)
	checkCalls(t, "speaker", h.spkRec, grantsFor(t, h.objs, ns, h.spkSA), true, map[string]string{
		"get servicebgpstatuses.metallb.io": cacheLag,
	})
}

// roles is a controller and a speaker running in this process as the chart's
// ServiceAccounts, their API calls recorded.
type roles struct {
	t               *testing.T
	env             *kubeapi.Environment
	ns, node        string
	objs            []*unstructured.Unstructured
	admin           kubernetes.Interface
	mlb             metallbclient.Interface
	ctrlSA, spkSA   string
	ctrlRec, spkRec *recorder
	stop            func()
}

// startRoles renders the chart with values into a new namespace, applies it, creates a Ready
// node, runs setup (when not nil) and starts both roles; stop (also run at cleanup) stops them
// and reports their errors.
func startRoles(t *testing.T, values string, setup func(*roles)) *roles {
	env := kubeapi.Env(t)
	env.InstallCRDs(t)
	ns := env.Namespace(t)
	h := &roles{t: t, env: env, ns: ns, node: "node-" + ns, admin: env.Client(t),
		mlb: metallbclient.NewForConfigOrDie(env.AdminConfig()), ctrlRec: newRecorder(), spkRec: newRecorder()}
	h.objs = decode(t, helmTemplate(t, "rbac", ns, values))
	apply(t, env.AdminConfig(), h.objs)
	dep := typedOne[appsDeployment](t, h.objs, "Deployment")
	ds := typedOne[appsDaemonSet](t, h.objs, "DaemonSet")
	h.ctrlSA, h.spkSA = dep.Spec.Template.Spec.ServiceAccountName, ds.Spec.Template.Spec.ServiceAccountName
	// The speaker's token is bound to a pod on its node, as the kubelet's is: the chart's
	// lease policy lets it write only that node's heartbeat.
	createReadyNode(t, h.admin, h.node)
	// The fast path advertises the node's InternalIP, read from the speaker's own Node.
	setInternalIP(t, h.admin, h.node, "127.0.0.1")
	ctrlCfg := h.ctrlRec.wrap(env.ServiceAccountConfig(t, ns, h.ctrlSA))
	spkCfg := h.spkRec.wrap(env.ServiceAccountConfigOnNode(t, ns, h.spkSA, h.node))
	waitAuthorized(t, ctrlCfg, ns)
	if setup != nil {
		setup(h)
	}

	runCtx, cancel := context.WithCancel(context.Background())
	// A failed check below must not leave the roles running for later tests; h.stop, set
	// further down, also waits for them.
	t.Cleanup(cancel)
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	ctrlOpts := controllerOptions(t, dep.Spec.Template.Spec.Containers[0].Args)
	ctrlChartAddr, ctrlLive := ctrlOpts.MetricsBindAddress, freeAddr(t)
	ctrlOpts.MetricsBindAddress = ctrlLive
	spkLive := freeAddr(t)
	spkChartAddr := loadConfig(t, typedOne[corev1.ConfigMap](t, h.objs, "ConfigMap").Data["config.yaml"]).MetricsBindAddress
	spkOpts := speakerOptions(t, h.objs, ds.Spec.Template.Spec.Containers[0].Args, h.node, spkCfg, spkLive)
	wg.Go(func() { errs <- roleErr("controller", controller.Run(runCtx, ctrlCfg, ctrlOpts)) })
	if fp := &spkOpts.Config.FastPath; fp.Enabled() {
		// The speaker listens on a free port here, on every address as in the chart (so it
		// reads its Node for the address to advertise), and reads the Secret the controller
		// created from a file, as the kubelet would mount it.
		fp.SecretKeyFile = h.fastPathFile(ds, ctrlOpts.FastPathSecret, fp.SecretKeyFile)
		_, port, _ := net.SplitHostPort(freeAddr(t))
		fp.BindAddress = ":" + port
	}
	spkCtx := klog.NewContext(runCtx, testr.NewWithOptions(t, testr.Options{Verbosity: 4}))
	wg.Go(func() { errs <- roleErr("speaker", speaker.Run(spkCtx, spkOpts)) })
	// Wait until the speaker's heartbeat is written, and give its own informers a moment to
	// see it: before that the speaker (rightly) counts its node as not ready and withdraws.
	waitFor(t, "the speaker's heartbeat Lease", func() (string, bool) {
		_, err := h.admin.CoordinationV1().Leases(ns).Get(context.Background(), heartbeat.LeaseName(h.node), metav1.GetOptions{})
		return fmt.Sprint(err), err == nil
	})
	checkProbes(t, "controller", dep.Spec.Template.Spec.Containers[0], ctrlChartAddr, ctrlLive)
	checkProbes(t, "speaker", ds.Spec.Template.Spec.Containers[0], spkChartAddr, spkLive)
	time.Sleep(time.Second)
	var once sync.Once
	h.stop = func() {
		once.Do(func() {
			// Let both roles renew their Leases at least once more before they stop.
			time.Sleep(1500 * time.Millisecond)
			cancel()
			done := make(chan struct{})
			go func() { wg.Wait(); close(done) }()
			select {
			case <-done:
			case <-time.After(30 * time.Second):
				t.Error("the controller or the speaker did not stop within 30s")
				return
			}
			close(errs)
			for err := range errs {
				if err != nil {
					t.Error(err)
				}
			}
		})
	}
	// On failure, show the scheduling cycle the speaker ran, as `herald explain` computes it.
	t.Cleanup(func() {
		if t.Failed() {
			cm := typedOne[corev1.ConfigMap](t, h.objs, "ConfigMap")
			t.Logf("herald explain %s/web:\n%s", ns, explain(t, env.Kubeconfig, ns+"/web", cm.Data["config.yaml"]))
		}
		h.stop()
		h.cleanup()
	})
	return h
}

// fastPathFile checks that the chart hands the controller's fast-path Secret to the speaker:
// the controller's --fast-path-secret names the Secret the DaemonSet mounts, read-only, so
// that the Secret's key is the speaker's fastPath.secretKeyFile. It waits until the
// controller, running as its ServiceAccount, has created that Secret, checks that the
// ServiceAccount owns it (so it goes with `helm uninstall`), and writes the key's content
// to a file, as the kubelet would, for the speaker running here.
func (h *roles) fastPathFile(ds *appsDaemonSet, secret, keyFile string) string {
	t := h.t
	t.Helper()
	if secret == "" {
		t.Fatal("the speaker runs the fast path, but the controller has no --fast-path-secret to create its Secret")
	}
	spec := ds.Spec.Template.Spec
	var key string
	for _, v := range spec.Volumes {
		if v.Secret == nil || v.Secret.SecretName != secret {
			continue
		}
		for _, m := range spec.Containers[0].VolumeMounts {
			if m.Name != v.Name {
				continue
			}
			if !m.ReadOnly {
				t.Errorf("the fast path's Secret is mounted writable at %s", m.MountPath)
			}
			for _, it := range v.Secret.Items {
				if filepath.Join(m.MountPath, it.Path) == keyFile {
					key = it.Key
				}
			}
		}
		if v.Secret.Optional != nil && *v.Secret.Optional {
			t.Error("the fast path's Secret is optional: a speaker would start without it and fail")
		}
	}
	if key != controller.FastPathSecretKey {
		t.Fatalf("fastPath.secretKeyFile %s is not key %q of Secret %s mounted in the speaker (found key %q)", keyFile, controller.FastPathSecretKey, secret, key)
	}
	var s *corev1.Secret
	waitFor(t, "the controller to create the fast path's Secret "+secret, func() (string, bool) {
		var err error
		s, err = h.admin.CoreV1().Secrets(h.ns).Get(context.Background(), secret, metav1.GetOptions{})
		return fmt.Sprint(err), err == nil
	})
	if len(s.OwnerReferences) != 1 || s.OwnerReferences[0].Kind != "ServiceAccount" || s.OwnerReferences[0].Name != h.ctrlSA {
		t.Errorf("the fast path's Secret is owned by %+v, want the controller's ServiceAccount %s", s.OwnerReferences, h.ctrlSA)
	}
	path := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(path, s.Data[key], 0o400); err != nil {
		t.Fatal(err)
	}
	return path
}

// setInternalIP gives the node an InternalIP address.
func setInternalIP(t *testing.T, client kubernetes.Interface, name, ip string) {
	t.Helper()
	ctx := context.Background()
	n, err := client.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	n.Status.Addresses = []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: ip}}
	if _, err := client.CoreV1().Nodes().UpdateStatus(ctx, n, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// cleanup deletes what the test created, so that later tests on the same API server (the
// roles watch the whole cluster) do not see its Services, addresses and configuration.
func (h *roles) cleanup() {
	ctx := context.Background()
	dyn := dynamic.NewForConfigOrDie(h.env.AdminConfig())
	for _, gvr := range []schema.GroupVersionResource{
		{Group: "metallb.io", Version: "v1beta1", Resource: "ipaddresspools"},
		{Group: "metallb.io", Version: "v1beta1", Resource: "l2advertisements"},
		{Group: "metallb.io", Version: "v1beta1", Resource: "bgpadvertisements"},
		{Group: "metallb.io", Version: "v1beta2", Resource: "bgppeers"},
		{Group: "metallb.io", Version: "v1beta1", Resource: "bfdprofiles"},
		{Group: "metallb.io", Version: "v1beta1", Resource: "servicel2statuses"},
		{Group: "metallb.io", Version: "v1beta1", Resource: "servicebgpstatuses"},
		{Group: "discovery.k8s.io", Version: "v1", Resource: "endpointslices"},
	} {
		if err := dyn.Resource(gvr).Namespace(h.ns).DeleteCollection(ctx, metav1.DeleteOptions{}, metav1.ListOptions{}); err != nil {
			h.t.Errorf("cleanup: deleting %s: %v", gvr.Resource, err)
		}
	}
	svcs, err := h.admin.CoreV1().Services(h.ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		h.t.Errorf("cleanup: %v", err)
		return
	}
	for _, s := range svcs.Items {
		if err := h.admin.CoreV1().Services(h.ns).Delete(ctx, s.Name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			h.t.Errorf("cleanup: deleting Service %s: %v", s.Name, err)
		}
	}
	if err := h.admin.CoreV1().Nodes().Delete(ctx, h.node, metav1.DeleteOptions{}); err != nil {
		h.t.Errorf("cleanup: deleting node %s: %v", h.node, err)
	}
}

// excludeLabel keeps a node from announcing (the ExcludeLB plugin).
const excludeLabel = "node.kubernetes.io/exclude-from-external-load-balancers"

// labelNode sets (value != "") or removes a label of the node.
func (h *roles) labelNode(key, value string) {
	h.t.Helper()
	v := "null"
	if value != "" {
		v = fmt.Sprintf("%q", value)
	}
	patch := fmt.Sprintf(`{"metadata":{"labels":{%q:%s}}}`, key, v)
	if _, err := h.admin.CoreV1().Nodes().Patch(context.Background(), h.node, types.MergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
		h.t.Fatal(err)
	}
}

// waitEvent waits until an Event with reason on the object named name has been counted at
// least count times.
func (h *roles) waitEvent(name, reason string, count int32) {
	h.t.Helper()
	waitFor(h.t, fmt.Sprintf("Event %s on %s counted %d time(s)", reason, name, count), func() (string, bool) {
		evs, err := h.admin.CoreV1().Events(h.ns).List(context.Background(), metav1.ListOptions{
			FieldSelector: "involvedObject.name=" + name + ",reason=" + reason})
		if err != nil || len(evs.Items) == 0 {
			return fmt.Sprint(err), false
		}
		return fmt.Sprint(evs.Items[0].Count), evs.Items[0].Count >= count
	})
}

// createService creates a LoadBalancer Service with one serving endpoint on the node and
// waits until the controller gives it an address.
func (h *roles) createService(name string, annotations map[string]string) string {
	t := h.t
	ctx := context.Background()
	// Nobody announces a Service without a serving endpoint: give it one on the node, first,
	// so that the speaker never sees the Service's address without it.
	createEndpointSlice(t, h.admin, h.ns, name, h.node)
	if _, err := h.admin.CoreV1().Services(h.ns).Create(ctx, loadBalancer(h.ns, name, annotations), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	return waitFor(t, "the Service's address", func() (string, bool) {
		s, err := h.admin.CoreV1().Services(h.ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil || len(s.Status.LoadBalancer.Ingress) == 0 {
			return fmt.Sprint(err), false
		}
		return s.Status.LoadBalancer.Ingress[0].IP, true
	})
}

func createPool(t *testing.T, mlb metallbclient.Interface, ns, name, addresses string) {
	t.Helper()
	pool := &metallbv1beta1.IPAddressPool{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: metallbv1beta1.IPAddressPoolSpec{Addresses: []string{addresses}}}
	if _, err := mlb.MetallbV1beta1().IPAddressPools(ns).Create(context.Background(), pool, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// checkCalls asserts both directions between the recorded calls and the granted rules (the
// second only with requireAll). unused lists "verb resource.group" pairs the role may legitimately not reach in the test,
// with the reason; it must stay empty unless a path cannot be driven from outside.
func checkCalls(t *testing.T, role string, rec *recorder, grants []grant, requireAll bool, unused map[string]string) {
	t.Helper()
	calls, nonResource := rec.snapshot()
	if len(calls) == 0 {
		t.Fatalf("%s: no API calls recorded", role)
	}
	for _, p := range nonResource {
		if p != "/api" && p != "/apis" && !strings.HasPrefix(p, "/api/") && !strings.HasPrefix(p, "/apis/") {
			t.Errorf("%s: non-resource request %s (only discovery is expected)", role, p)
		}
	}
	seen := map[string]bool{}
	for _, c := range calls {
		if c.Code == 403 {
			t.Errorf("%s: refused by the API server: %s", role, c)
		}
		allowed := false
		for _, g := range grants {
			if g.allows(c) {
				allowed = true
				seen[grantKey(g, c)] = true
			}
		}
		if !allowed {
			t.Errorf("%s: no rule of the chart allows %s", role, c)
		}
	}
	// Every granted verb on every granted resource was used.
	for _, g := range grants {
		if !requireAll {
			break
		}
		for _, group := range g.rule.APIGroups {
			for _, res := range g.rule.Resources {
				for _, verb := range g.rule.Verbs {
					key := fmt.Sprintf("%s %s.%s", verb, res, groupName(group))
					if !seen[g.role+"|"+key] {
						if why, ok := unused[key]; ok {
							t.Logf("%s: %s granted but not exercised here: %s", role, key, why)
							continue
						}
						var same []string
						for _, c := range calls {
							if c.Resource == strings.Split(res, "/")[0] {
								same = append(same, c.String())
							}
						}
						t.Errorf("%s: %s grants %s, which the %s never used: remove it or exercise it (its calls on %s: %v)",
							role, g.role, key, role, res, same)
					}
				}
			}
		}
	}
	t.Logf("%s: %d API calls, %d distinct rule uses", role, len(calls), len(seen))
}

func grantKey(g grant, c call) string {
	res := c.Resource
	if c.Subresource != "" {
		res += "/" + c.Subresource
	}
	return fmt.Sprintf("%s|%s %s.%s", g.role, c.Verb, res, groupName(c.Group))
}

// groupName names the core API group "core", as RBAC docs do.
func groupName(g string) string {
	if g == "" {
		return "core"
	}
	return g
}

// controllerOptions parses the chart's controller arguments with the real command's flags,
// so a renamed or misspelt flag in the chart fails here.
func controllerOptions(t *testing.T, args []string) controller.Options {
	t.Helper()
	if len(args) == 0 || args[0] != "controller" {
		t.Fatalf("controller args %v do not start with the controller subcommand", args)
	}
	parseWithCommand(t, args)
	opts := controller.DefaultOptions()
	fs := newFlagSet()
	// parseWithCommand checked every flag; the root command's logging flags are not the
	// controller's options.
	fs.ParseErrorsAllowlist.UnknownFlags = true
	opts.AddFlags(fs)
	if err := fs.Parse(expand(args[1:], map[string]string{"POD_NAME": "rbac-controller-0"})); err != nil {
		t.Fatalf("the chart's controller args: %v", err)
	}
	return opts
}

// freeAddr returns a loopback address with a port free a moment ago: the roles serve their
// metrics and probes there instead of the chart's fixed port.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// checkProbes checks a container's liveness and readiness probes against the role running
// here: each probes the port the role serves its health endpoints on (chartAddr's, as the
// chart configures the role) and gets 200 from the role, listening at live instead.
func checkProbes(t *testing.T, role string, c corev1.Container, chartAddr, live string) {
	t.Helper()
	_, portStr, err := net.SplitHostPort(chartAddr)
	if err != nil {
		t.Fatalf("%s serves health on %q: %v", role, chartAddr, err)
	}
	for _, p := range []struct {
		kind  string
		probe *corev1.Probe
	}{{"liveness", c.LivenessProbe}, {"readiness", c.ReadinessProbe}} {
		if p.probe == nil || p.probe.HTTPGet == nil {
			t.Errorf("%s: no HTTP %s probe", role, p.kind)
			continue
		}
		port := p.probe.HTTPGet.Port.IntValue()
		for _, cp := range c.Ports {
			if p.probe.HTTPGet.Port.Type == intstr.String && cp.Name == p.probe.HTTPGet.Port.StrVal {
				port = int(cp.ContainerPort)
			}
		}
		if fmt.Sprint(port) != portStr {
			t.Errorf("%s: %s probe on port %d, but the role serves %s on %s", role, p.kind, port, p.probe.HTTPGet.Path, chartAddr)
		}
		url := "http://" + live + p.probe.HTTPGet.Path
		waitFor(t, fmt.Sprintf("%s %s probe %s to answer 200", role, p.kind, p.probe.HTTPGet.Path), func() (string, bool) {
			resp, err := http.Get(url)
			if err != nil {
				return err.Error(), false
			}
			resp.Body.Close()
			return resp.Status, resp.StatusCode == http.StatusOK
		})
	}
}

// speakerOptions builds the speaker's options from the chart: its arguments (checked against
// the real command's flags), its configuration file from the ConfigMap, and this test's node.
// Two things differ from a pod: the node's interfaces are given (a real speaker reads them
// from the host), and the announcers are an in-memory test announcer, because the API calls,
// not the wire, are under test here.
func speakerOptions(t *testing.T, objs []*unstructured.Unstructured, args []string, node string, cfg *rest.Config, live string) speaker.Options {
	t.Helper()
	if len(args) == 0 || args[0] != "speaker" {
		t.Fatalf("speaker args %v do not start with the speaker subcommand", args)
	}
	parseWithCommand(t, args)
	var nodeArg, holderArg bool
	for _, a := range args {
		nodeArg = nodeArg || a == "--node-name=$(NODE_NAME)"
		holderArg = holderArg || a == "--holder=$(POD_NAME)"
	}
	if !nodeArg || !holderArg {
		t.Fatalf("speaker args %v: want --node-name=$(NODE_NAME) and --holder=$(POD_NAME)", args)
	}
	c := loadConfig(t, typedOne[corev1.ConfigMap](t, objs, "ConfigMap").Data["config.yaml"])
	// The pod serves metrics and probes on the host network at the configured port; here
	// the speaker listens on a free loopback port instead (the caller checks the probes).
	c.MetricsBindAddress, c.HealthBindAddress = live, ""
	dir := t.TempDir()
	fake := testbin.Build(t, "./announcers/manager/testdata/testannouncer")
	for _, a := range c.Announcers {
		if err := os.Symlink(fake, filepath.Join(dir, "herald-announcer-"+a.Name)); err != nil {
			t.Fatal(err)
		}
	}
	return speaker.Options{
		NodeName: node, Holder: "rbac-speaker-" + node, Config: c, Registry: plugins.NewInTreeRegistry(),
		KubeConfig: cfg, AnnouncerDir: dir,
		Interfaces: func() ([]framework.Interface, error) {
			return []framework.Interface{{Name: "eth0", Up: true, MAC: "02:00:00:00:00:01",
				Prefixes: []netip.Prefix{netip.MustParsePrefix("192.0.2.10/24")}}}, nil
		},
	}
}

// parseWithCommand parses args with the herald command's own flags (without running it).
func parseWithCommand(t *testing.T, args []string) {
	t.Helper()
	root := app.NewHeraldCommand()
	cmd, rest, err := root.Find(args)
	if err != nil || cmd == root {
		t.Fatalf("herald has no subcommand for %v: %v", args, err)
	}
	if err := cmd.ParseFlags(expand(rest, map[string]string{"POD_NAME": "p", "NODE_NAME": "n"})); err != nil {
		t.Fatalf("herald %s rejects the chart's arguments %v: %v", cmd.Name(), args, err)
	}
}

// expand replaces $(VAR) as the kubelet does in container args.
func expand(args []string, vars map[string]string) []string {
	out := make([]string, len(args))
	for i, a := range args {
		for k, v := range vars {
			a = strings.ReplaceAll(a, "$("+k+")", v)
		}
		out[i] = a
	}
	return out
}

func roleErr(role string, err error) error {
	if err != nil {
		return fmt.Errorf("%s: %w", role, err)
	}
	return nil
}

// waitAuthorized waits until the RBAC authorizer's informers see the new bindings.
func waitAuthorized(t *testing.T, cfg *rest.Config, ns string) {
	t.Helper()
	client := kubernetes.NewForConfigOrDie(rest.CopyConfig(cfg))
	waitFor(t, "the controller's RoleBinding to take effect", func() (string, bool) {
		_, err := client.CoreV1().Services(ns).List(context.Background(), metav1.ListOptions{Limit: 1})
		return fmt.Sprint(err), err == nil
	})
}

func createReadyNode(t *testing.T, client kubernetes.Interface, name string) {
	t.Helper()
	ctx := context.Background()
	n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"kubernetes.io/hostname": name}}}
	if _, err := client.CoreV1().Nodes().Create(ctx, n, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	now := metav1.Now()
	n, err := client.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	n.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue, Reason: "Test",
		LastHeartbeatTime: now, LastTransitionTime: now}}
	if _, err := client.CoreV1().Nodes().UpdateStatus(ctx, n, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// createEndpointSlice creates what the EndpointSlice controller would: one ready endpoint of
// the Service on node.
func createEndpointSlice(t *testing.T, client kubernetes.Interface, ns, svc, node string) {
	t.Helper()
	ready, port := true, int32(8080)
	slice := &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Name: svc + "-1", Namespace: ns, Labels: map[string]string{discoveryv1.LabelServiceName: svc}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Endpoints: []discoveryv1.Endpoint{{Addresses: []string{"198.51.100.20"}, NodeName: &node,
			Conditions: discoveryv1.EndpointConditions{Ready: &ready, Serving: &ready}}},
		Ports: []discoveryv1.EndpointPort{{Name: ptr("http"), Port: &port}},
	}
	if _, err := client.DiscoveryV1().EndpointSlices(ns).Create(context.Background(), slice, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

func ptr[T any](v T) *T { return &v }

func loadBalancer(ns, name string, annotations map[string]string) *corev1.Service {
	return &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Annotations: annotations},
		Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer, Selector: map[string]string{"app": name},
			Ports: []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromInt32(8080), Protocol: corev1.ProtocolTCP}}},
	}
}

// waitFor polls cond (bounded: 30s) and returns its value once it reports true.
func waitFor(t *testing.T, what string, cond func() (string, bool)) string {
	t.Helper()
	var last string
	err := wait.PollUntilContextTimeout(context.Background(), 100*time.Millisecond, 30*time.Second, true, func(context.Context) (bool, error) {
		v, ok := cond()
		last = v
		return ok, nil
	})
	if err != nil {
		t.Fatalf("waiting for %s: %v (last: %s)", what, err, last)
	}
	return last
}

func typedOne[T any](t *testing.T, objs []*unstructured.Unstructured, kind string) *T {
	t.Helper()
	found := find(objs, kind)
	if len(found) != 1 {
		t.Fatalf("want one %s in the rendering, found %d", kind, len(found))
	}
	return typed[T](t, found[0])
}

// TestIntegrationSpeakerAccountIsRefused checks what the speaker's ServiceAccount must not
// do, with and without the bgp announcer: get a Secret anywhere (the fast path's included:
// the kubelet mounts it) or list Secrets outside its namespace (and, without bgp, inside it
// too), create or change a Secret, or change a Service (spec, metadata or status) or a Node.
// The controller's account may create Secrets in its namespace and read the fast path's one
// by name, and nothing more: no other Secret, no list, update or delete, nothing elsewhere;
// nor may it replace a Service or touch another Lease.
func TestIntegrationSpeakerAccountIsRefused(t *testing.T) {
	t.Run("l2", func(t *testing.T) { checkRefusals(t, "refuse", "speaker:\n  announcers: [arp, ndp]\n", false) })
	// With the bgp announcer (the default) the speaker may list Secrets, in its own namespace only.
	t.Run("bgp", func(t *testing.T) { checkRefusals(t, "refuse-bgp", "", true) })
}

func checkRefusals(t *testing.T, release, values string, bgp bool) {
	env := kubeapi.Env(t)
	env.InstallCRDs(t)
	ctx := context.Background()
	ns, other := env.Namespace(t), env.Namespace(t)
	objs := decode(t, helmTemplate(t, release, ns, values))
	apply(t, env.AdminConfig(), objs)
	admin := env.Client(t)
	for _, n := range []string{ns, other} {
		if _, err := admin.CoreV1().Secrets(n).Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "bgp-password"},
			StringData: map[string]string{"password": "x"}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	svc, err := admin.CoreV1().Services(other).Create(ctx, loadBalancer(other, "web", nil), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// Later tests run a controller, which would give this Service an address.
	t.Cleanup(func() { _ = admin.CoreV1().Services(other).Delete(context.Background(), "web", metav1.DeleteOptions{}) })
	spkSA := typedOne[appsDaemonSet](t, objs, "DaemonSet").Spec.Template.Spec.ServiceAccountName
	dep := typedOne[appsDeployment](t, objs, "Deployment")
	ctrlSA := dep.Spec.Template.Spec.ServiceAccountName
	fastPath := controllerOptions(t, dep.Spec.Template.Spec.Containers[0].Args).FastPathSecret
	if fastPath == "" {
		t.Fatal("the chart's defaults give the controller no --fast-path-secret")
	}
	fpSecret, err := admin.CoreV1().Secrets(ns).Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: fastPath},
		StringData: map[string]string{controller.FastPathSecretKey: "0123456789abcdef0123456789abcdef"}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	speakerClient := kubernetes.NewForConfigOrDie(env.ServiceAccountConfig(t, ns, spkSA))
	speakerMetalLB := metallbclient.NewForConfigOrDie(env.ServiceAccountConfig(t, ns, spkSA))
	ctrlClient := kubernetes.NewForConfigOrDie(env.ServiceAccountConfig(t, ns, ctrlSA))
	// First prove the bindings are live, so a Forbidden below is RBAC's answer, not a race.
	waitFor(t, "the speaker's bindings", func() (string, bool) {
		_, err := speakerClient.CoreV1().Services(other).List(ctx, metav1.ListOptions{Limit: 1})
		return fmt.Sprint(err), err == nil
	})
	waitAuthorized(t, env.ServiceAccountConfig(t, ns, ctrlSA), ns)

	changed := svc.DeepCopy()
	changed.Spec.Ports[0].Port = 81
	patch := []byte(`{"spec":{"externalTrafficPolicy":"Local"}}`)
	tests := []struct {
		name string
		do   func() error
	}{
		{"speaker gets a Secret in its namespace", func() error {
			_, err := speakerClient.CoreV1().Secrets(ns).Get(ctx, "bgp-password", metav1.GetOptions{})
			return err
		}},
		{"speaker gets the fast path's Secret", func() error {
			_, err := speakerClient.CoreV1().Secrets(ns).Get(ctx, fastPath, metav1.GetOptions{})
			return err
		}},
		{"speaker creates a Secret", func() error {
			_, err := speakerClient.CoreV1().Secrets(ns).Create(ctx, newSecret("from-the-speaker"), metav1.CreateOptions{})
			return err
		}},
		{"speaker updates the fast path's Secret", func() error {
			_, err := speakerClient.CoreV1().Secrets(ns).Update(ctx, fpSecret, metav1.UpdateOptions{})
			return err
		}},
		{"speaker gets a Secret in another namespace", func() error {
			_, err := speakerClient.CoreV1().Secrets(other).Get(ctx, "bgp-password", metav1.GetOptions{})
			return err
		}},
		{"speaker lists Secrets cluster-wide", func() error {
			_, err := speakerClient.CoreV1().Secrets("").List(ctx, metav1.ListOptions{})
			return err
		}},
		{"speaker updates a Service's spec", func() error {
			_, err := speakerClient.CoreV1().Services(other).Update(ctx, changed, metav1.UpdateOptions{})
			return err
		}},
		{"speaker patches a Service's spec", func() error {
			_, err := speakerClient.CoreV1().Services(other).Patch(ctx, "web", types.MergePatchType, patch, metav1.PatchOptions{})
			return err
		}},
		{"speaker writes a Service's status", func() error {
			_, err := speakerClient.CoreV1().Services(other).UpdateStatus(ctx, svc, metav1.UpdateOptions{})
			return err
		}},
		{"speaker deletes a Service", func() error {
			return speakerClient.CoreV1().Services(other).Delete(ctx, "web", metav1.DeleteOptions{})
		}},
		{"speaker updates a Node", func() error {
			_, err := speakerClient.CoreV1().Nodes().Patch(ctx, "any", types.MergePatchType, []byte(`{}`), metav1.PatchOptions{})
			return err
		}},
		{"speaker lists IPAddressPools cluster-wide", func() error {
			_, err := speakerMetalLB.MetallbV1beta1().IPAddressPools("").List(ctx, metav1.ListOptions{})
			return err
		}},
		{"speaker lists L2Advertisements outside the configuration namespace", func() error {
			_, err := speakerMetalLB.MetallbV1beta1().L2Advertisements(other).List(ctx, metav1.ListOptions{})
			return err
		}},
		{"speaker lists ServiceL2Statuses outside its namespace", func() error {
			_, err := speakerMetalLB.MetallbV1beta1().ServiceL2Statuses(other).List(ctx, metav1.ListOptions{})
			return err
		}},
		{"controller gets a Secret in its namespace", func() error {
			_, err := ctrlClient.CoreV1().Secrets(ns).Get(ctx, "bgp-password", metav1.GetOptions{})
			return err
		}},
		{"controller lists Secrets in its namespace", func() error {
			_, err := ctrlClient.CoreV1().Secrets(ns).List(ctx, metav1.ListOptions{})
			return err
		}},
		{"controller watches the fast path's Secret", func() error {
			w, err := ctrlClient.CoreV1().Secrets(ns).Watch(ctx, metav1.ListOptions{FieldSelector: "metadata.name=" + fastPath})
			if err == nil {
				w.Stop()
			}
			return err
		}},
		{"controller updates the fast path's Secret", func() error {
			_, err := ctrlClient.CoreV1().Secrets(ns).Update(ctx, fpSecret, metav1.UpdateOptions{})
			return err
		}},
		{"controller deletes the fast path's Secret", func() error {
			return ctrlClient.CoreV1().Secrets(ns).Delete(ctx, fastPath, metav1.DeleteOptions{})
		}},
		{"controller gets a Secret in another namespace", func() error {
			_, err := ctrlClient.CoreV1().Secrets(other).Get(ctx, "bgp-password", metav1.GetOptions{})
			return err
		}},
		{"controller gets the fast path's Secret's name in another namespace", func() error {
			_, err := ctrlClient.CoreV1().Secrets(other).Get(ctx, fastPath, metav1.GetOptions{})
			return err
		}},
		{"controller creates a Secret in another namespace", func() error {
			_, err := ctrlClient.CoreV1().Secrets(other).Create(ctx, newSecret("from-the-controller"), metav1.CreateOptions{})
			return err
		}},
		{"controller updates a Service (not only its status)", func() error {
			_, err := ctrlClient.CoreV1().Services(other).Update(ctx, changed, metav1.UpdateOptions{})
			return err
		}},
		{"controller renews a Lease that is not its own", func() error {
			_, err := ctrlClient.CoordinationV1().Leases(ns).Get(ctx, "someone-else", metav1.GetOptions{})
			return err
		}},
	}
	for _, tt := range tests {
		if err := tt.do(); !apierrors.IsForbidden(err) {
			t.Errorf("%s: got %v, want Forbidden", tt.name, err)
		}
	}
	_, err = speakerClient.CoreV1().Secrets(ns).List(ctx, metav1.ListOptions{})
	if bgp && err != nil {
		t.Errorf("speaker with the bgp announcer lists Secrets in its namespace: %v", err)
	}
	if !bgp && !apierrors.IsForbidden(err) {
		t.Errorf("speaker without the bgp announcer lists Secrets in its namespace: got %v, want Forbidden", err)
	}
	// What the controller needs: create the fast path's Secret, and read it by name.
	if _, err := ctrlClient.CoreV1().Secrets(ns).Get(ctx, fastPath, metav1.GetOptions{}); err != nil {
		t.Errorf("controller gets the fast path's Secret: %v", err)
	}
	if _, err := ctrlClient.CoreV1().Secrets(ns).Create(ctx, newSecret(fastPath+"-new"), metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}}); err != nil {
		t.Errorf("controller creates a Secret in its namespace: %v", err)
	}
	// And the speaker may read what it needs, there.
	if _, err := speakerClient.DiscoveryV1().EndpointSlices(other).List(ctx, metav1.ListOptions{}); err != nil {
		t.Errorf("speaker lists EndpointSlices: %v", err)
	}
	if slices.Contains([]string{spkSA}, ctrlSA) {
		t.Error("the controller and the speaker share a ServiceAccount")
	}
}

func newSecret(name string) *corev1.Secret {
	return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name}, StringData: map[string]string{"secret": "x"}}
}

// explain runs `herald explain` in process and returns its output, for failure messages.
func explain(t *testing.T, kubeconfig, service, configYAML string) string {
	path := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(path, []byte(configYAML), 0o600); err != nil {
		return err.Error()
	}
	var out strings.Builder
	cmd := app.NewHeraldCommand()
	cmd.SetArgs([]string{"explain", service, "--kubeconfig", kubeconfig, "--config", path})
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	if err := cmd.Execute(); err != nil {
		fmt.Fprintf(&out, "\nexplain: %v", err)
	}
	return out.String()
}
