package diag

import (
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"github.com/herald-lb/herald/plugins/excludelb"
)

// restartWarning is the container restart count from which a Herald pod is reported.
const restartWarning = 3

// checkGather reports objects that could not be listed, except metallb.io resources whose
// CRD is already reported missing.
func checkGather(x *index) []Finding {
	missing := map[string]bool{}
	for _, c := range x.CRDs {
		if !c.Served {
			missing[c.Name] = true
		}
	}
	var out []Finding
	for _, e := range x.Errors {
		if missing[e.Resource] {
			continue
		}
		out = append(out, finding("gather.list-failed", Warning, ObjectRef{Kind: "Resource", Name: e.Resource},
			"grant the user running herald diag list access to "+e.Resource+" (the checks that need it were skipped)",
			"could not list %s: %v", e.Resource, e.Err))
	}
	return out
}

func checkCRDs(x *index) []Finding {
	var out []Finding
	for _, c := range x.CRDs {
		obj := ObjectRef{Kind: kindCRD, Name: c.Name}
		const fix = "install Herald's CRDs (helm install, or kubectl apply -k deploy/kustomize, or kubectl apply -f deploy/crds/)"
		switch {
		case !c.Installed && !c.Served:
			out = append(out, finding("crd.missing", Critical, obj, fix,
				"CRD %s is not installed: Herald cannot read or write %s", c.Name, c.Name))
		case c.Installed && !c.Established:
			out = append(out, finding("crd.not-established", Critical, obj,
				"kubectl describe crd "+c.Name+" and fix the condition it reports (usually a name conflict)",
				"CRD %s exists but is not Established", c.Name))
		case !c.Served:
			out = append(out, finding("crd.not-served", Critical, obj, fix,
				"the API server does not serve %s in version %s, which Herald uses", c.Name, c.Version))
		}
	}
	return out
}

func podRef(p *corev1.Pod) ObjectRef {
	return ObjectRef{Kind: kindPod, Namespace: p.Namespace, Name: p.Name}
}

func checkController(x *index) []Finding {
	ns := ObjectRef{Kind: "Namespace", Name: x.Namespace}
	if len(x.controllers) == 0 {
		if x.leaderFresh {
			return nil // a controller outside a pod (a lab, a demo) holds the leader Lease
		}
		return []Finding{finding("controller.missing", Critical, ns,
			"install or scale up the controller Deployment (kubectl -n "+x.Namespace+" get deploy -l app.kubernetes.io/component=controller)",
			"no controller pod (labels %s=%s, %s=%s) in namespace %s and no live %q leader Lease: no Service gets an address",
			LabelName, NameHerald, LabelComponent, ComponentControl, x.Namespace, controllerLease)}
	}
	var ready int
	var out []Finding
	for _, p := range x.controllers {
		if podReady(p) {
			ready++
			continue
		}
		out = append(out, finding("controller.not-ready", Warning, podRef(p),
			"kubectl -n "+p.Namespace+" describe pod "+p.Name+" and kubectl logs --previous",
			"controller pod %s is not ready (phase %s%s)", p.Name, p.Status.Phase, waitingReasons(p)))
	}
	if ready == 0 {
		for i := range out {
			out[i].Severity = Critical
			out[i].Message += "; no controller replica is ready, so no Service gets an address"
		}
	}
	return out
}

// waitingReasons lists the containers' waiting reasons (", CrashLoopBackOff").
func waitingReasons(p *corev1.Pod) string {
	var rs []string
	for _, cs := range p.Status.ContainerStatuses {
		if w := cs.State.Waiting; w != nil && w.Reason != "" {
			rs = append(rs, cs.Name+": "+w.Reason)
		}
	}
	if len(rs) == 0 {
		return ""
	}
	return ", " + strings.Join(rs, ", ")
}

func checkSpeakers(x *index) []Finding {
	var out []Finding
	for _, e := range x.hbErrors {
		out = append(out, finding("speaker.heartbeat-invalid", Warning, e.lease,
			"upgrade the speaker on that node so it writes a valid heartbeat, or delete the Lease (the speaker recreates it)",
			"%v", e.err))
	}
	anySpeaker := len(x.speakers) > 0
	for _, n := range x.nodes {
		if x.heartbeatState(n.Name) == heartbeatFresh {
			anySpeaker = true
		}
	}
	if !anySpeaker && len(x.nodes) > 0 {
		return append(out, finding("speaker.none", Critical, ObjectRef{Kind: "Namespace", Name: x.Namespace},
			"install the speaker DaemonSet (kubectl -n "+x.Namespace+" get ds -l app.kubernetes.io/component=speaker) and check its nodeSelector and tolerations",
			"no speaker pod (labels %s=%s, %s=%s) in namespace %s and no live heartbeat: no IP is announced",
			LabelName, NameHerald, LabelComponent, ComponentSpeaker, x.Namespace))
	}
	for _, p := range x.speakers {
		if !podReady(p) {
			out = append(out, finding("speaker.not-ready", Warning, podRef(p),
				"kubectl -n "+p.Namespace+" describe pod "+p.Name+" and kubectl logs --previous",
				"speaker pod %s on node %s is not ready (phase %s%s): that node does not announce", p.Name, p.Spec.NodeName, p.Status.Phase, waitingReasons(p)))
		}
	}
	for _, n := range x.nodes {
		out = append(out, x.speakerOnNode(n)...)
	}
	return out
}

// speakerOnNode reports a Ready node without a speaker, or whose speaker's heartbeat is not
// live. NotReady nodes are reported by the node checks instead.
func (x *index) speakerOnNode(n *corev1.Node) []Finding {
	if nodeReady(n) != string(corev1.ConditionTrue) {
		return nil
	}
	obj := ObjectRef{Kind: kindNode, Name: n.Name}
	pod, hb := x.speakerOn[n.Name], x.heartbeatState(n.Name)
	switch {
	case pod == nil && hb != heartbeatFresh:
		return []Finding{finding("speaker.missing", Warning, obj,
			"check the speaker DaemonSet's nodeSelector, affinity and tolerations (control-plane nodes need a toleration): kubectl -n "+x.Namespace+" describe ds",
			"node %s has no speaker pod and no live heartbeat: it can never announce an IP", n.Name)}
	case hb == heartbeatMissing:
		return []Finding{finding("speaker.heartbeat-missing", Warning, obj,
			"kubectl -n "+x.Namespace+" logs "+pod.Name+": the speaker cannot write its Lease (RBAC on leases.coordination.k8s.io?)",
			"speaker pod %s runs on node %s but no heartbeat Lease %s exists: other speakers treat the node as dead", pod.Name, n.Name, "herald-speaker-"+n.Name)}
	case hb == heartbeatStale:
		msg := fmt.Sprintf("the heartbeat of node %s is stale (renewed %s): Herald does not announce from it", n.Name, x.heartbeats[n.Name].RenewTime.UTC().Format("2006-01-02T15:04:05Z"))
		fix := "check the speaker on the node: kubectl -n " + x.Namespace + " get pods -o wide -l app.kubernetes.io/component=speaker"
		return []Finding{{Check: "speaker.heartbeat-stale", Severity: Warning, Object: obj, Message: msg, Fix: fix}}
	case x.heartbeats[n.Name].Draining:
		return []Finding{finding("speaker.draining", Info, obj, "none if the speaker is being restarted; otherwise check why it is stopping",
			"the speaker on node %s is draining: it hands its IPs over before stopping", n.Name)}
	}
	return nil
}

// checkPodHealth reports crash loops and frequent restarts of Herald's pods.
func checkPodHealth(x *index) []Finding {
	var out []Finding
	for _, p := range append(append([]*corev1.Pod(nil), x.controllers...), x.speakers...) {
		for _, cs := range p.Status.ContainerStatuses {
			fix := "kubectl -n " + p.Namespace + " logs " + p.Name + " -c " + cs.Name + " --previous (common causes: missing RBAC, missing CRDs, capabilities)"
			switch {
			case cs.State.Waiting != nil && cs.State.Waiting.Reason == "CrashLoopBackOff":
				out = append(out, finding("pod.crashloop", Critical, podRef(p), fix,
					"container %s of pod %s is in CrashLoopBackOff (%d restarts)", cs.Name, p.Name, cs.RestartCount))
			case cs.RestartCount >= restartWarning:
				out = append(out, finding("pod.restarts", Warning, podRef(p), fix,
					"container %s of pod %s restarted %d times", cs.Name, p.Name, cs.RestartCount))
			}
		}
	}
	return out
}

// checkNodes reports nodes Herald will not announce from because of their state or labels.
func checkNodes(x *index) []Finding {
	var out []Finding
	for _, n := range x.nodes {
		obj := ObjectRef{Kind: kindNode, Name: n.Name}
		if r := nodeReady(n); r != string(corev1.ConditionTrue) {
			if r == "" {
				r = "absent"
			}
			out = append(out, finding("node.not-ready", Info, obj,
				"kubectl describe node "+n.Name+"; Herald moves its IPs to other nodes by itself",
				"node %s is NotReady (Ready condition %s): Herald does not announce from it", n.Name, r))
		}
		if excluded(n) {
			out = append(out, finding("node.excluded", Warning, obj,
				"remove the label (kubectl label node "+n.Name+" "+excludelb.LabelExcludeLB+"-) or set ignoreExcludeLB in the ExcludeLB plugin args (speaker.ignoreExcludeLB in the chart)",
				"node %s has label %s: speakers do not announce from it unless ignoreExcludeLB is set", n.Name, excludelb.LabelExcludeLB))
		}
	}
	return out
}
