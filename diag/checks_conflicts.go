package diag

import (
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Environment variables of kube-vip that decide whether it handles LoadBalancer Services.
const (
	kubeVIPServices  = "svc_enable"
	kubeVIPClassOnly = "lb_class_only"
	kubeVIPClass     = "kube-vip.io/kube-vip-class"
)

// workload is a DaemonSet, Deployment or bare Pod with its pod template's metadata and spec.
type workload struct {
	ref    ObjectRef
	labels map[string]string
	spec   *corev1.PodSpec
}

// workloads returns the DaemonSets, Deployments and the Pods no DaemonSet or ReplicaSet
// controls (static pods, bare pods), so a DaemonSet's pods are not reported once each.
func (x *index) workloads() []workload {
	var out []workload
	for i := range x.DaemonSets {
		d := &x.DaemonSets[i]
		out = append(out, workload{ObjectRef{Kind: "DaemonSet", Namespace: d.Namespace, Name: d.Name}, mergeLabels(d.Labels, d.Spec.Template.Labels), &d.Spec.Template.Spec})
	}
	for i := range x.Deployments {
		d := &x.Deployments[i]
		out = append(out, workload{ObjectRef{Kind: "Deployment", Namespace: d.Namespace, Name: d.Name}, mergeLabels(d.Labels, d.Spec.Template.Labels), &d.Spec.Template.Spec})
	}
	for i := range x.Pods {
		p := &x.Pods[i]
		if ctl := metav1.GetControllerOf(p); ctl != nil && (ctl.Kind == "DaemonSet" || ctl.Kind == "ReplicaSet") {
			continue
		}
		out = append(out, workload{podRef(p), p.Labels, &p.Spec})
	}
	return out
}

func mergeLabels(a, b map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range a {
		out[k] = v
	}
	for k, v := range b {
		out[k] = v
	}
	return out
}

// env returns the value of the first container env var with the name (case-insensitive, as
// kube-vip reads it) and whether it is set.
func env(spec *corev1.PodSpec, name string) (string, bool) {
	for _, c := range append(append([]corev1.Container(nil), spec.InitContainers...), spec.Containers...) {
		for _, e := range c.Env {
			if strings.EqualFold(e.Name, name) {
				return e.Value, true
			}
		}
	}
	return "", false
}

func checkConflicts(x *index) []Finding {
	var out []Finding
	for _, w := range x.workloads() {
		if f, ok := x.kubeVIP(w); ok {
			out = append(out, f)
		}
		if f, ok := x.metalLB(w); ok {
			out = append(out, f)
		}
	}
	return append(out, x.foreignIPs()...)
}

// kubeVIP reports a kube-vip with Service handling on: it watches LoadBalancer Services and
// binds their addresses itself, so it and Herald both answer for the same VIP.
func (x *index) kubeVIP(w workload) (Finding, bool) {
	v, ok := env(w.spec, kubeVIPServices)
	if !ok || !strings.EqualFold(v, "true") {
		return Finding{}, false
	}
	const fix = "set svc_enable=false on kube-vip (cp_enable keeps the control-plane VIP), or set lb_class_only=true so kube-vip only takes Services of class " + kubeVIPClass
	if only, _ := env(w.spec, kubeVIPClassOnly); strings.EqualFold(only, "true") {
		return finding("conflict.kube-vip", Info, w.ref, fix,
			"%s runs kube-vip with %s=true and %s=true: it handles only Services of class %s, which Herald leaves alone",
			w.ref, kubeVIPServices, kubeVIPClassOnly, kubeVIPClass), true
	}
	claimed := 0
	for _, s := range x.services {
		if s.Spec.LoadBalancerClass == nil && x.owns(s) {
			claimed++
		}
	}
	return finding("conflict.kube-vip", Critical, w.ref, fix,
		"%s runs kube-vip with %s=true: kube-vip also handles LoadBalancer Services without a loadBalancerClass (%d now) and binds their VIPs on its node, so it and Herald both answer for the same IPs and the VIP flaps",
		w.ref, kubeVIPServices, claimed), true
}

// metalLB reports a MetalLB controller or speaker: it reads the same metallb.io resources
// and would allocate and announce the same addresses.
func (x *index) metalLB(w workload) (Finding, bool) {
	what, speaker := "", false
	if w.labels["app.kubernetes.io/name"] == "metallb" || w.labels["app"] == "metallb" {
		what = "labels " + fmt.Sprint(w.labels)
		speaker = w.labels["app.kubernetes.io/component"] == "speaker" || w.labels["component"] == "speaker"
	}
	for _, c := range w.spec.Containers {
		if strings.Contains(c.Image, "metallb/controller") || strings.Contains(c.Image, "metallb/speaker") {
			what = "image " + c.Image
			speaker = speaker || strings.Contains(c.Image, "metallb/speaker")
		}
	}
	if what == "" {
		return Finding{}, false
	}
	// MetalLB's speakers hold memberlist's port on every node, the default of Herald's fast
	// path: side by side, one of the two cannot bind it.
	port := ""
	if speaker {
		port = "; its speakers hold port 7946 (memberlist) on every node, Herald's fast-path default: until MetalLB is gone, run Herald's on another (chart: speaker.fastPath.port=7947, docs/migration.md)"
	}
	return finding("conflict.metallb", Critical, w.ref,
		"uninstall MetalLB (helm uninstall metallb -n metallb-system) once Herald serves the Services; keep the metallb.io CRDs and resources, Herald reads them",
		"%s is MetalLB (%s): it allocates and announces from the same metallb.io pools as Herald, so both claim the same Services and IPs%s", w.ref, what, port), true
}

// foreignIPs reports Services Herald does not own whose addresses lie in Herald's pools:
// another implementation hands out addresses Herald may give again.
func (x *index) foreignIPs() []Finding {
	var out []Finding
	for _, s := range x.services {
		if x.owns(s) {
			continue
		}
		for _, ip := range ingressIPs(s) {
			pool := x.poolOf(ip)
			if pool == "" {
				continue
			}
			class := "<none>"
			if s.Spec.LoadBalancerClass != nil {
				class = *s.Spec.LoadBalancerClass
			}
			out = append(out, finding("conflict.foreign-ip", Critical, svcRef(s),
				"give the other implementation addresses outside Herald's pools, or remove "+ip.String()+" from pool "+pool,
				"Service %s/%s (loadBalancerClass %s, not handled by Herald) holds %s from Herald's pool %s: Herald may hand the same address to another Service",
				s.Namespace, s.Name, class, ip, pool))
		}
	}
	return out
}
