//go:build integration

package deploy_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/yaml"

	"github.com/herald-lb/herald/config"
	"github.com/herald-lb/herald/plugins"
	"github.com/herald-lb/herald/plugins/excludelb"
	"github.com/herald-lb/herald/speaker/announce"
	"github.com/herald-lb/herald/test/kubeapi"
)

// seedGuideValues are the production values of the MetalLB guide (seed 003): both roles on
// control-plane nodes, tolerating NoSchedule taints, and speaker.ignoreExcludeLB.
const seedGuideValues = `
controller:
  affinity:
    nodeAffinity:
      requiredDuringSchedulingIgnoredDuringExecution:
        nodeSelectorTerms:
        - matchExpressions:
          - key: node-role.kubernetes.io/control-plane
            operator: Exists
  tolerations:
  - operator: Exists
    effect: NoSchedule
speaker:
  ignoreExcludeLB: true
  logLevel: 4
  affinity:
    nodeAffinity:
      requiredDuringSchedulingIgnoredDuringExecution:
        nodeSelectorTerms:
        - matchExpressions:
          - key: node-role.kubernetes.io/control-plane
            operator: Exists
  tolerations:
  - operator: Exists
    effect: NoSchedule
logLevel: 2
`

// serviceMonitorCRD stands in for the Prometheus Operator's CRD so the optional
// ServiceMonitor can be applied; its schema accepts any spec.
const serviceMonitorCRD = `
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: servicemonitors.monitoring.coreos.com
spec:
  group: monitoring.coreos.com
  names: {kind: ServiceMonitor, listKind: ServiceMonitorList, plural: servicemonitors, singular: servicemonitor}
  scope: Namespaced
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        x-kubernetes-preserve-unknown-fields: true
`

// TestIntegrationChartAppliesToTheAPIServer renders the chart with several value sets and
// server-side-applies every object to the real API server, then checks what the API server
// stored: the speaker's privileges, the seed guide's scheduling values, the configuration
// file (loaded strictly, as the speaker loads it) and the log levels.
func TestIntegrationChartAppliesToTheAPIServer(t *testing.T) {
	env := kubeapi.Env(t)
	admin := env.Client(t)
	apply(t, env.AdminConfig(), decode(t, []byte(serviceMonitorCRD)))
	tests := []struct {
		name, release, values string
		ignoreExcludeLB       bool
		caps                  []corev1.Capability // the speaker's added capabilities
		tolerations           bool
		speakerV, controllerV string
		// secrets: the speaker may list Secrets in the configuration namespace (BGP passwords).
		secrets bool
		objects []string // kinds that must be rendered besides the defaults
		// fastPath: the fast path's port, or 0 when it is off.
		fastPath int32
	}{
		{name: "defaults", release: "herald", caps: []corev1.Capability{"NET_RAW"}, speakerV: "--v=0", controllerV: "--v=0", secrets: true,
			fastPath: 7946},
		{name: "fast path off", release: "nofp", values: "speaker:\n  fastPath:\n    enabled: false\n", caps: []corev1.Capability{"NET_RAW"},
			speakerV: "--v=0", controllerV: "--v=0", secrets: true},
		{name: "fast path with a NetworkPolicy", release: "fp",
			values:   "speaker:\n  fastPath:\n    port: 7950\n    secretName: fp-key\n    networkPolicy:\n      enabled: true\n",
			caps:     []corev1.Capability{"NET_RAW"},
			speakerV: "--v=0", controllerV: "--v=0", secrets: true, fastPath: 7950, objects: []string{"NetworkPolicy"}},
		{name: "l2 only", release: "l2", values: "speaker:\n  announcers: [arp, ndp]\n", caps: []corev1.Capability{"NET_RAW"},
			speakerV: "--v=0", controllerV: "--v=0", fastPath: 7946},
		{name: "seed guide", release: "lb", values: seedGuideValues, ignoreExcludeLB: true,
			caps: []corev1.Capability{"NET_RAW"}, tolerations: true, speakerV: "--v=4", controllerV: "--v=2", secrets: true, fastPath: 7946},
		{name: "bgp only with a ServiceMonitor", release: "bgp",
			values:   "speaker:\n  announcers: [bgp]\nmetrics:\n  serviceMonitor:\n    enabled: true\n",
			speakerV: "--v=0", controllerV: "--v=0", secrets: true, objects: []string{"ServiceMonitor"}, fastPath: 7946},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			ns := env.Namespace(t)
			objs := decode(t, helmTemplate(t, tt.release, ns, tt.values))
			for _, kind := range append([]string{"CustomResourceDefinition", "ServiceAccount", "ClusterRole", "ClusterRoleBinding",
				"Role", "RoleBinding", "ConfigMap", "Deployment", "DaemonSet", "Service"}, tt.objects...) {
				if len(find(objs, kind)) == 0 {
					t.Errorf("the chart rendered no %s", kind)
				}
			}
			apply(t, env.AdminConfig(), objs)

			ds := find(objs, "DaemonSet")[0]
			served, err := admin.AppsV1().DaemonSets(ns).Get(ctx, ds.GetName(), metav1.GetOptions{})
			if err != nil {
				t.Fatalf("the applied DaemonSet: %v", err)
			}
			checkSpeakerPod(t, served, tt.caps, tt.speakerV)
			if got := len(served.Spec.Template.Spec.Tolerations) > 0 && served.Spec.Template.Spec.Affinity != nil; got != tt.tolerations {
				t.Errorf("speaker tolerations and affinity set = %v, want %v", got, tt.tolerations)
			}
			dep := find(objs, "Deployment")[0]
			ctrl, err := admin.AppsV1().Deployments(ns).Get(ctx, dep.GetName(), metav1.GetOptions{})
			if err != nil {
				t.Fatalf("the applied Deployment: %v", err)
			}
			checkControllerPod(t, ctrl, ns, tt.controllerV)
			if got := grantsSecrets(t, objs); got != tt.secrets {
				t.Errorf("the speaker may read Secrets: %v, want %v (only with the bgp announcer)", got, tt.secrets)
			}
			if got := len(ctrl.Spec.Template.Spec.Tolerations) > 0 && ctrl.Spec.Template.Spec.Affinity != nil; got != tt.tolerations {
				t.Errorf("controller tolerations and affinity set = %v, want %v", got, tt.tolerations)
			}

			cm, err := admin.CoreV1().ConfigMaps(ns).Get(ctx, find(objs, "ConfigMap")[0].GetName(), metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			c := loadConfig(t, cm.Data["config.yaml"])
			if c.Heartbeat.Namespace != ns {
				t.Errorf("heartbeat namespace %q, want the release namespace %q", c.Heartbeat.Namespace, ns)
			}
			for _, p := range c.Profiles {
				if got := ignoreExcludeLB(t, p); got != tt.ignoreExcludeLB {
					t.Errorf("profile %q: ExcludeLB ignoreExcludeLB = %v, want %v (speaker.ignoreExcludeLB)", p.Name, got, tt.ignoreExcludeLB)
				}
			}
			if len(c.Profiles) != 2 || c.Profiles[1].LoadBalancerClass != "herald.dev/herald" {
				t.Errorf("profiles %+v: want the default one and one for class herald.dev/herald", c.Profiles)
			}
			checkFastPath(t, objs, served, ctrl, c, tt.fastPath)
			if np := find(objs, "NetworkPolicy"); len(np) == 1 {
				checkFastPathPolicy(t, typed[networkingv1.NetworkPolicy](t, np[0]), served, tt.fastPath)
			}
		})
	}
}

// checkSpeakerPod asserts the speaker's pod template: host network, the node name from the
// downward API, exactly the capabilities the announcers need, read-only root filesystem.
func checkSpeakerPod(t *testing.T, ds *appsv1.DaemonSet, caps []corev1.Capability, verbosity string) {
	t.Helper()
	spec := ds.Spec.Template.Spec
	if !spec.HostNetwork {
		t.Error("the speaker does not use the host network")
	}
	c := spec.Containers[0]
	if !slices.Contains(c.Args, "--node-name=$(NODE_NAME)") || !slices.Contains(c.Args, verbosity) {
		t.Errorf("speaker args %v: want --node-name=$(NODE_NAME) and %s", c.Args, verbosity)
	}
	var nodeFromField bool
	for _, e := range c.Env {
		if e.Name == "NODE_NAME" && e.ValueFrom != nil && e.ValueFrom.FieldRef != nil && e.ValueFrom.FieldRef.FieldPath == "spec.nodeName" {
			nodeFromField = true
		}
	}
	if !nodeFromField {
		t.Error("NODE_NAME does not come from the pod's spec.nodeName")
	}
	sc := c.SecurityContext
	if sc == nil || sc.Capabilities == nil {
		t.Fatal("the speaker has no security context with capabilities")
	}
	if !reflect.DeepEqual(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) {
		t.Errorf("dropped capabilities %v, want [ALL]", sc.Capabilities.Drop)
	}
	if !slices.Equal(sc.Capabilities.Add, caps) {
		t.Errorf("added capabilities %v, want %v", sc.Capabilities.Add, caps)
	}
	if sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
		t.Error("the speaker's root filesystem is writable or it may escalate privileges")
	}
	if sc.Privileged != nil && *sc.Privileged {
		t.Error("the speaker is privileged")
	}
}

func checkControllerPod(t *testing.T, d *appsv1.Deployment, ns, verbosity string) {
	t.Helper()
	spec := d.Spec.Template.Spec
	if spec.HostNetwork {
		t.Error("the controller uses the host network")
	}
	c := spec.Containers[0]
	if c.Args[0] != "controller" || !slices.Contains(c.Args, "--namespace="+ns) || !slices.Contains(c.Args, verbosity) {
		t.Errorf("controller args %v: want controller --namespace=%s %s", c.Args, ns, verbosity)
	}
	if c.LivenessProbe == nil || c.LivenessProbe.HTTPGet == nil || c.LivenessProbe.HTTPGet.Path != "/healthz" ||
		c.ReadinessProbe == nil || c.ReadinessProbe.HTTPGet == nil || c.ReadinessProbe.HTTPGet.Path != "/readyz" {
		t.Error("the controller has no /healthz liveness and /readyz readiness probes")
	}
	sc := c.SecurityContext
	if sc == nil || sc.Capabilities == nil || len(sc.Capabilities.Add) != 0 || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) {
		t.Errorf("controller capabilities %+v, want every one dropped and none added", sc)
	}
	if spec.SecurityContext == nil || spec.SecurityContext.RunAsNonRoot == nil || !*spec.SecurityContext.RunAsNonRoot {
		t.Error("the controller may run as root")
	}
}

// grantsSecrets reports whether any rendered rule lets the speaker's account touch Secrets,
// and fails if such a rule is cluster-wide.
func grantsSecrets(t *testing.T, objs []*unstructured.Unstructured) bool {
	t.Helper()
	ds := typedOne[appsv1.DaemonSet](t, objs, "DaemonSet")
	found := false
	for _, g := range grantsFor(t, objs, ds.Namespace, ds.Spec.Template.Spec.ServiceAccountName) {
		if slices.Contains(g.rule.Resources, "secrets") || slices.Contains(g.rule.Resources, "*") {
			if g.namespace == "" {
				t.Errorf("%s grants Secrets cluster-wide", g.role)
			}
			for _, v := range g.rule.Verbs {
				if !slices.Contains([]string{"get", "list", "watch"}, v) {
					t.Errorf("%s grants %q on Secrets; the speaker only reads them", g.role, v)
				}
			}
			found = true
		}
	}
	return found
}

// checkFastPath checks the fast path as served (port > 0) or its absence (port 0): the
// configuration file, the speaker's ports (UDP and TCP, the host's port too) and its `get` on
// Nodes, and the controller's argument and its rules on Secrets. The controller may create
// Secrets in the release namespace and get the fast path's one by name; it may do nothing else
// with Secrets, anywhere.
func checkFastPath(t *testing.T, objs []*unstructured.Unstructured, ds *appsv1.DaemonSet, dep *appsv1.Deployment, c *config.SpeakerConfiguration, port int32) {
	t.Helper()
	wantBind := fmt.Sprintf(":%d", port)
	if port == 0 {
		if c.FastPath.Enabled() {
			t.Errorf("fastPath %+v in the configuration, want it off", c.FastPath)
		}
	} else if !c.FastPath.Enabled() || c.FastPath.BindAddress != wantBind || c.FastPath.ProbeInterval.Duration != 100*time.Millisecond {
		t.Errorf("fastPath %+v, want a secret key file, bindAddress %s, probeInterval 100ms", c.FastPath, wantBind)
	}
	var got []string
	for _, p := range ds.Spec.Template.Spec.Containers[0].Ports {
		if strings.HasPrefix(p.Name, "fastpath") {
			got = append(got, fmt.Sprintf("%s %d/%s host %d", p.Name, p.ContainerPort, p.Protocol, p.HostPort))
		}
	}
	var want []string
	if port != 0 {
		want = []string{fmt.Sprintf("fastpath-udp %d/UDP host %d", port, port), fmt.Sprintf("fastpath-tcp %d/TCP host %d", port, port)}
	}
	if !slices.Equal(got, want) {
		t.Errorf("the speaker's fast-path ports %v, want %v", got, want)
	}
	getsNodes := false
	for _, g := range grantsFor(t, objs, ds.Namespace, ds.Spec.Template.Spec.ServiceAccountName) {
		if slices.Contains(g.rule.Resources, "nodes") && slices.Contains(g.rule.Verbs, "get") {
			getsNodes = true
		}
	}
	if getsNodes != (port != 0) {
		t.Errorf("the speaker may get Nodes: %v, want %v (only for the fast path's address)", getsNodes, port != 0)
	}

	var secret string
	for _, a := range dep.Spec.Template.Spec.Containers[0].Args {
		if v, ok := strings.CutPrefix(a, "--fast-path-secret="); ok {
			secret = v
		}
	}
	if (secret != "") != (port != 0) {
		t.Fatalf("the controller's --fast-path-secret is %q with the fast path on = %v", secret, port != 0)
	}
	var mounted bool
	for _, v := range ds.Spec.Template.Spec.Volumes {
		mounted = mounted || v.Secret != nil && v.Secret.SecretName == secret
	}
	if mounted != (port != 0) {
		t.Errorf("the speaker mounts Secret %q: %v, want %v", secret, mounted, port != 0)
	}
	var create, get bool
	for _, g := range grantsFor(t, objs, dep.Namespace, dep.Spec.Template.Spec.ServiceAccountName) {
		if !slices.Contains(g.rule.Resources, "secrets") && !slices.Contains(g.rule.Resources, "*") {
			continue
		}
		switch {
		case g.namespace != dep.Namespace:
			t.Errorf("%s grants the controller %v on Secrets in %q, want only the release namespace", g.role, g.rule.Verbs, g.namespace)
		case slices.Equal(g.rule.Verbs, []string{"create"}) && len(g.rule.ResourceNames) == 0:
			create = true
		case slices.Equal(g.rule.Verbs, []string{"get"}) && slices.Equal(g.rule.ResourceNames, []string{secret}):
			get = true
		default:
			t.Errorf("%s grants the controller %v on Secrets %v, want only create, and get on %q", g.role, g.rule.Verbs, g.rule.ResourceNames, secret)
		}
	}
	if create != (port != 0) || get != (port != 0) {
		t.Errorf("the controller may create Secrets: %v, get %q: %v; want both %v", create, secret, get, port != 0)
	}
}

// checkFastPathPolicy checks the optional NetworkPolicy: it selects the speaker pods and admits
// only the fast path's port, UDP and TCP, from them.
func checkFastPathPolicy(t *testing.T, np *networkingv1.NetworkPolicy, ds *appsv1.DaemonSet, port int32) {
	t.Helper()
	speakers := ds.Spec.Template.Labels
	sel, err := metav1.LabelSelectorAsSelector(&np.Spec.PodSelector)
	if err != nil || !sel.Matches(labels.Set(speakers)) || np.Namespace != ds.Namespace {
		t.Errorf("NetworkPolicy %s/%s selects %v, not the speakers (%v)", np.Namespace, np.Name, np.Spec.PodSelector, speakers)
	}
	if len(np.Spec.Ingress) != 1 || len(np.Spec.Ingress[0].From) != 1 || np.Spec.Ingress[0].From[0].PodSelector == nil {
		t.Fatalf("NetworkPolicy ingress %+v, want one rule from the speaker pods", np.Spec.Ingress)
	}
	from, err := metav1.LabelSelectorAsSelector(np.Spec.Ingress[0].From[0].PodSelector)
	if err != nil || !from.Matches(labels.Set(speakers)) || np.Spec.Ingress[0].From[0].NamespaceSelector != nil {
		t.Errorf("NetworkPolicy admits %+v, want the speaker pods", np.Spec.Ingress[0].From[0])
	}
	var got []string
	for _, p := range np.Spec.Ingress[0].Ports {
		got = append(got, fmt.Sprintf("%s/%s", p.Port, *p.Protocol))
	}
	if want := []string{fmt.Sprintf("%d/UDP", port), fmt.Sprintf("%d/TCP", port)}; !slices.Equal(got, want) {
		t.Errorf("NetworkPolicy ports %v, want %v", got, want)
	}
}

// loadConfig loads a configuration file as `herald speaker --config` does.
func loadConfig(t *testing.T, data string) *config.SpeakerConfiguration {
	t.Helper()
	path := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	opts := config.Options{Registry: plugins.NewInTreeRegistry(), DefaultPlugins: plugins.DefaultProfile()}
	if err := opts.Registry.Register(announce.Name, announce.PlaceholderRegistration()); err != nil {
		t.Fatal(err)
	}
	c, err := config.Load(path, opts)
	if err != nil {
		t.Fatalf("the chart's speaker configuration does not load: %v\n%s", err, data)
	}
	return c
}

func ignoreExcludeLB(t *testing.T, p config.Profile) bool {
	t.Helper()
	for _, pc := range p.PluginConfig {
		if pc.Name == excludelb.Name {
			var a excludelb.ExcludeLBArgs
			if err := json.Unmarshal(pc.Args, &a); err != nil {
				t.Fatalf("profile %q ExcludeLB args: %v", p.Name, err)
			}
			return a.IgnoreExcludeLB
		}
	}
	t.Fatalf("profile %q has no ExcludeLB args", p.Name)
	return false
}

// TestIntegrationKustomizeManifestsAreTheChart checks that deploy/kustomize/herald.yaml is the
// chart rendered as generate.sh renders it (so the plain manifests and the chart agree on
// everything, RBAC included), that the RBAC objects of `kustomize build` equal the chart's,
// and that `kubectl apply -k deploy/kustomize` would succeed: every object of the kustomize
// output is applied to the real API server.
func TestIntegrationKustomizeManifestsAreTheChart(t *testing.T) {
	env := kubeapi.Env(t)
	chart := helmTemplate(t, "herald", "herald-system", "")
	committed, err := os.ReadFile("kustomize/herald.yaml")
	if err != nil {
		t.Fatal(err)
	}
	header := []byte("# Generated by deploy/kustomize/generate.sh from deploy/helm/herald; do not edit.\n")
	if !bytes.Equal(committed, append(header, chart...)) {
		t.Fatal("deploy/kustomize/herald.yaml is not the rendered chart: run deploy/kustomize/generate.sh and commit the result")
	}
	built := decode(t, run(t, tool(t, "kustomize"), "build", "kustomize"))
	want := rbacObjects(t, decode(t, chart))
	got := rbacObjects(t, built)
	if len(want) == 0 || !reflect.DeepEqual(got, want) {
		t.Fatalf("kustomize RBAC objects differ from the chart's:\nkustomize: %v\nchart:     %v", got, want)
	}
	if ns := find(built, "Namespace"); len(ns) != 1 || ns[0].GetName() != "herald-system" {
		t.Fatalf("the kustomize output must create namespace herald-system, has %v", ns)
	}
	apply(t, env.AdminConfig(), built)
	ctx := context.Background()
	if _, err := env.Client(t).AppsV1().DaemonSets("herald-system").Get(ctx, "herald-speaker", metav1.GetOptions{}); err != nil {
		t.Fatalf("the speaker DaemonSet after apply: %v", err)
	}
}

// rbacObjects maps "Kind namespace/name" to the object's rules, or its roleRef and subjects.
func rbacObjects(t *testing.T, objs []*unstructured.Unstructured) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, o := range objs {
		var v any
		switch o.GetKind() {
		case "ClusterRole":
			v = typed[rbacv1.ClusterRole](t, o).Rules
		case "Role":
			v = typed[rbacv1.Role](t, o).Rules
		case "ClusterRoleBinding":
			b := typed[rbacv1.ClusterRoleBinding](t, o)
			v = []any{b.RoleRef, b.Subjects}
		case "RoleBinding":
			b := typed[rbacv1.RoleBinding](t, o)
			v = []any{b.RoleRef, b.Subjects}
		default:
			continue
		}
		data, err := yaml.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		out[o.GetKind()+" "+o.GetNamespace()+"/"+o.GetName()] = string(data)
	}
	return out
}

// TestIntegrationKubectlApplyK runs the README's command itself, `kubectl apply -k
// deploy/kustomize` (server-side), against the real API server: kubectl's built-in kustomize
// must accept the kustomization as the standalone one does.
func TestIntegrationKubectlApplyK(t *testing.T) {
	kubectl, err := exec.LookPath("kubectl")
	if err != nil {
		kubectl = filepath.Join(cacheBin(), "kubectl")
		if _, err := os.Stat(kubectl); err != nil {
			t.Skip("kubectl is not installed (test/tools/install.sh apiserver builds it)")
		}
	}
	env := kubeapi.Env(t)
	out := run(t, kubectl, "--kubeconfig", env.Kubeconfig, "apply", "--server-side", "--force-conflicts", "-k", "kustomize")
	for _, want := range []string{"daemonset.apps/herald-speaker", "deployment.apps/herald-controller", "clusterrole.rbac.authorization.k8s.io/herald-speaker"} {
		if !bytes.Contains(out, []byte(want)) {
			t.Errorf("kubectl apply -k did not apply %s:\n%s", want, out)
		}
	}
	if _, err := env.Client(t).RbacV1().ClusterRoles().Get(context.Background(), "herald-controller", metav1.GetOptions{}); err != nil {
		t.Fatalf("the controller's ClusterRole after kubectl apply -k: %v", err)
	}
}

// TestIntegrationHelmLintStrict runs `helm lint --strict` with the default values and with
// every optional part on.
func TestIntegrationHelmLintStrict(t *testing.T) {
	helm := tool(t, "helm")
	run(t, helm, "lint", "--strict", "helm/herald")
	run(t, helm, "lint", "--strict", "helm/herald", "--set", "metrics.serviceMonitor.enabled=true",
		"--set", "metrics.dashboard.enabled=true", "--set", "metrics.prometheusRule.enabled=true",
		"--set", "speaker.announcers={arp,ndp,bgp}", "--set", "speaker.ignoreExcludeLB=true",
		"--set", "speaker.fastPath.networkPolicy.enabled=true")
	run(t, helm, "lint", "--strict", "helm/herald", "--set", "speaker.fastPath.enabled=false")
}
