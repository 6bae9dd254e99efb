package diag

import (
	"bytes"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	metallbv1beta1 "github.com/herald-lb/herald/config/metallb/v1beta1"
	metallbv1beta2 "github.com/herald-lb/herald/config/metallb/v1beta2"
	"github.com/herald-lb/herald/heartbeat"
	"github.com/herald-lb/herald/ipam"
	"github.com/herald-lb/herald/plugins/excludelb"
)

// key renders a finding as "severity check Kind/ns/name" for comparison.
func key(f Finding) string { return string(f.Severity) + " " + f.Check + " " + f.Object.String() }

func TestHealthyClusterHasNoFindings(t *testing.T) {
	r := Run(healthy())
	if len(r.Findings) != 0 || r.Score != 100 {
		t.Fatalf("healthy cluster: score %d, findings %+v", r.Score, r.Findings)
	}
	want := []PoolUsage{{Name: "default", Size: 4, Used: 1, Free: 3, Usable: true, Advertisements: []string{"L2/l2"}}}
	if !equalJSON(t, r.Pools, want) {
		t.Errorf("pools = %+v, want %+v", r.Pools, want)
	}
	if len(r.Services) != 1 || r.Services[0].Pool != "default" || !slices.Equal(r.Services[0].Announcers, []string{"L2/n1"}) || r.Services[0].ServingEndpoints != 1 {
		t.Errorf("services = %+v", r.Services)
	}
	if len(r.Nodes) != 2 || r.Nodes[1].Heartbeat != heartbeatFresh || r.Nodes[1].SpeakerPod != "speaker-n2" || !slices.Equal(r.Nodes[1].Interfaces, []string{"eth0"}) {
		t.Errorf("nodes = %+v", r.Nodes)
	}
}

func equalJSON(t *testing.T, a, b any) bool {
	t.Helper()
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return bytes.Equal(ja, jb)
}

func TestChecks(t *testing.T) {
	cond := func(reason, msg string) []metav1.Condition {
		return []metav1.Condition{{Type: conditionAllocated, Status: metav1.ConditionFalse, Reason: reason, Message: msg}}
	}
	tests := []struct {
		name   string
		mutate func(c *Cluster)
		want   []string
		// inMessage must appear in the first finding's message.
		inMessage string
	}{
		{
			name: "CRD missing; its list error is not reported twice",
			mutate: func(c *Cluster) {
				c.CRDs[0].Installed, c.CRDs[0].Established, c.CRDs[0].Served = false, false, false
				c.Errors = []GatherError{{Resource: "ipaddresspools.metallb.io", Err: errors.New("the server could not find the requested resource")}}
			},
			want: []string{"critical crd.missing CustomResourceDefinition/ipaddresspools.metallb.io"},
		},
		{
			name:   "CRD not established",
			mutate: func(c *Cluster) { c.CRDs[1].Established, c.CRDs[1].Served = false, false },
			want:   []string{"critical crd.not-established CustomResourceDefinition/l2advertisements.metallb.io"},
		},
		{
			name:      "CRD installed but version not served",
			mutate:    func(c *Cluster) { c.CRDs[3].Served = false },
			want:      []string{"critical crd.not-served CustomResourceDefinition/bgppeers.metallb.io"},
			inMessage: "v1beta2",
		},
		{
			name:      "list failed",
			mutate:    func(c *Cluster) { c.Errors = []GatherError{{Resource: "events", Err: errors.New("forbidden")}} },
			want:      []string{"warning gather.list-failed Resource/events"},
			inMessage: "forbidden",
		},
		{
			name:   "no controller",
			mutate: func(c *Cluster) { c.removePod("controller-0") },
			want:   []string{"critical controller.missing Namespace/herald-system"},
		},
		{
			name: "controller outside a pod holding a live leader Lease",
			mutate: func(c *Cluster) {
				c.removePod("controller-0")
				renew, secs := metav1.NewMicroTime(now.Add(-time.Second)), int32(15)
				c.Leases = append(c.Leases, coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: controllerLease},
					Spec: coordinationv1.LeaseSpec{RenewTime: &renew, LeaseDurationSeconds: &secs}})
			},
		},
		{
			name:   "only controller replica not ready",
			mutate: func(c *Cluster) { *c.pod("controller-0") = pod("controller-0", ComponentControl, "n1", false) },
			want:   []string{"critical controller.not-ready Pod/herald-system/controller-0"},
		},
		{
			name: "one of two controller replicas not ready",
			mutate: func(c *Cluster) {
				c.Pods = append(c.Pods, pod("controller-1", ComponentControl, "n2", false))
			},
			want: []string{"warning controller.not-ready Pod/herald-system/controller-1"},
		},
		{
			name:   "speaker pod not ready",
			mutate: func(c *Cluster) { *c.pod("speaker-n2") = pod("speaker-n2", ComponentSpeaker, "n2", false) },
			want:   []string{"warning speaker.not-ready Pod/herald-system/speaker-n2"},
		},
		{
			name:   "node without a speaker",
			mutate: func(c *Cluster) { c.removePod("speaker-n2"); c.removeLease("n2") },
			want:   []string{"warning speaker.missing Node/n2"},
		},
		{
			name:   "speaker outside a pod with a live heartbeat counts as a speaker",
			mutate: func(c *Cluster) { c.removePod("speaker-n2") },
		},
		{
			name:   "speaker pod without heartbeat",
			mutate: func(c *Cluster) { c.removeLease("n2") },
			want:   []string{"warning speaker.heartbeat-missing Node/n2"},
		},
		{
			name:   "stale heartbeat",
			mutate: func(c *Cluster) { c.Leases[1] = lease("n2", now.Add(-time.Minute), "eth0") },
			want:   []string{"warning speaker.heartbeat-stale Node/n2"},
		},
		{
			name: "no speaker anywhere: the announcing node's speaker is dead too",
			mutate: func(c *Cluster) {
				c.removePod("speaker-n1")
				c.removePod("speaker-n2")
				c.Leases = nil
			},
			want: []string{"critical l2status.speaker-dead ServiceL2Status/default/l2-web", "critical speaker.none Namespace/herald-system",
				"warning advertisement.no-ready-node L2Advertisement/herald-system/l2"},
		},
		{
			name: "invalid heartbeat annotation",
			mutate: func(c *Cluster) {
				c.Leases[1].Annotations[heartbeat.AnnotationInterfaces] = "not json"
				c.Leases = append(c.Leases, lease("n2-copy", now, "eth0"))
				c.Leases[2].Annotations[heartbeat.AnnotationNode] = "n2"
			},
			want: []string{"warning speaker.heartbeat-invalid Lease/herald-system/herald-speaker-n2"},
		},
		{
			name: "speaker draining",
			mutate: func(c *Cluster) {
				c.Leases[1].Annotations[heartbeat.AnnotationDraining] = "true"
			},
			want: []string{"info speaker.draining Node/n2"},
		},
		{
			name: "crash loop",
			mutate: func(c *Cluster) {
				c.pod("speaker-n1").Status.ContainerStatuses[0].RestartCount = 7
				c.pod("speaker-n1").Status.ContainerStatuses[0].State.Waiting = &corev1.ContainerStateWaiting{Reason: "CrashLoopBackOff"}
			},
			want: []string{"critical pod.crashloop Pod/herald-system/speaker-n1"},
		},
		{
			name:      "restarts",
			mutate:    func(c *Cluster) { c.pod("controller-0").Status.ContainerStatuses[0].RestartCount = 3 },
			want:      []string{"warning pod.restarts Pod/herald-system/controller-0"},
			inMessage: "restarted 3 times",
		},
		{
			name:   "NotReady node that does not announce",
			mutate: func(c *Cluster) { c.node("n2").Status.Conditions[0].Status = corev1.ConditionFalse },
			want:   []string{"info node.not-ready Node/n2"},
		},
		{
			name:   "NotReady node still announcing",
			mutate: func(c *Cluster) { c.node("n1").Status.Conditions[0].Status = corev1.ConditionUnknown },
			want:   []string{"critical l2status.node-not-ready ServiceL2Status/default/l2-web", "info node.not-ready Node/n1"},
		},
		{
			name:   "announcing node deleted",
			mutate: func(c *Cluster) { c.L2Statuses[0].Status.Node = "gone" },
			want:   []string{"critical l2status.node-not-ready ServiceL2Status/default/l2-web"},
		},
		{
			name:   "exclude label",
			mutate: func(c *Cluster) { c.node("n2").Labels[excludelb.LabelExcludeLB] = "" },
			want:   []string{"warning node.excluded Node/n2"},
		},
		{
			name:      "pool exhausted",
			mutate:    func(c *Cluster) { c.Pools[0].Spec.Addresses = []string{"192.0.2.10/32"} },
			want:      []string{"warning pool.exhausted IPAddressPool/herald-system/default"},
			inMessage: "all 1 addresses",
		},
		{
			name:   "pool without advertisement",
			mutate: func(c *Cluster) { c.Pools = append(c.Pools, pool("spare", "198.51.100.0/30")) },
			want:   []string{"warning pool.no-advertisement IPAddressPool/herald-system/spare"},
		},
		{
			name:   "pool in use without advertisement",
			mutate: func(c *Cluster) { c.L2Advertisements[0].Spec.IPAddressPools = []string{"typo"} },
			want: []string{"critical pool.no-advertisement IPAddressPool/herald-system/default",
				"warning advertisement.unknown-pool L2Advertisement/herald-system/l2"},
		},
		{
			name: "overlapping pools: the later one is unused",
			mutate: func(c *Cluster) {
				p := pool("late", "192.0.2.12-192.0.2.20")
				p.CreationTimestamp = metav1.NewTime(now)
				c.Pools = append(c.Pools, p)
			},
			want:      []string{"warning pool.overlap IPAddressPool/herald-system/late"},
			inMessage: `overlaps pool "default"`,
		},
		{
			name:   "invalid pool",
			mutate: func(c *Cluster) { c.Pools = append(c.Pools, pool("bad", "nonsense")) },
			want:   []string{"critical pool.invalid IPAddressPool/herald-system/bad"},
		},
		{
			name:   "no pool at all",
			mutate: func(c *Cluster) { c.Pools = nil; c.L2Advertisements[0].Spec.IPAddressPools = nil },
			want: []string{"critical pool.none Namespace/herald-system",
				"warning service.ip-outside-pools Service/default/web"},
		},
		{
			name: "advertisement selectors match no node",
			mutate: func(c *Cluster) {
				c.L2Advertisements[0].Spec.NodeSelectors = []metav1.LabelSelector{{MatchLabels: map[string]string{"zone": "nowhere"}}}
			},
			want: []string{"warning advertisement.no-node L2Advertisement/herald-system/l2"},
		},
		{
			name: "advertisement pool selector matches no pool",
			mutate: func(c *Cluster) {
				c.L2Advertisements[0].Spec.IPAddressPools = nil
				c.L2Advertisements[0].Spec.IPAddressPoolSelectors = []metav1.LabelSelector{{MatchLabels: map[string]string{"tier": "none"}}}
				c.L2Advertisements = append(c.L2Advertisements, metallbv1beta1.L2Advertisement{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "all"}})
			},
			want: []string{"warning advertisement.no-pool L2Advertisement/herald-system/l2"},
		},
		{
			name: "invalid advertisement selector",
			mutate: func(c *Cluster) {
				c.L2Advertisements[0].Spec.NodeSelectors = []metav1.LabelSelector{{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "a", Operator: "Sometimes"}}}}
			},
			want: []string{"critical advertisement.invalid L2Advertisement/herald-system/l2", "warning advertisement.no-node L2Advertisement/herald-system/l2"},
		},
		{
			name: "every selected node excluded",
			mutate: func(c *Cluster) {
				c.node("n2").Labels[excludelb.LabelExcludeLB] = "true"
				c.L2Advertisements[0].Spec.NodeSelectors = []metav1.LabelSelector{{MatchLabels: map[string]string{"kubernetes.io/hostname": "n2"}}}
			},
			want:      []string{"warning advertisement.no-ready-node L2Advertisement/herald-system/l2", "warning node.excluded Node/n2"},
			inMessage: "0/1 nodes selected by L2Advertisement l2 can announce: 1 excluded",
		},
		{
			name:   "interface no node has",
			mutate: func(c *Cluster) { c.L2Advertisements[0].Spec.Interfaces = []string{"eth0", "bond0"} },
			want:   []string{"warning advertisement.interface-missing L2Advertisement/herald-system/l2"},
		},
		{
			name: "BGP peer selecting no node; session state unknown",
			mutate: func(c *Cluster) {
				c.BGPPeers = []metallbv1beta2.BGPPeer{{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "router"},
					Spec: metallbv1beta2.BGPPeerSpec{NodeSelectors: []metav1.LabelSelector{{MatchLabels: map[string]string{"rack": "r9"}}}}}}
			},
			want: []string{"warning bgppeer.no-node BGPPeer/herald-system/router", "info bgp.session-state-unknown BGPPeer/herald-system/router"},
		},
		{
			name: "BGP peer with a missing BFD profile",
			mutate: func(c *Cluster) {
				c.BGPPeers = []metallbv1beta2.BGPPeer{{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "router"}, Spec: metallbv1beta2.BGPPeerSpec{BFDProfile: "fast"}}}
			},
			want: []string{"warning bgppeer.unknown-bfd-profile BGPPeer/herald-system/router", "info bgp.session-state-unknown BGPPeer/herald-system/router"},
		},
		{
			name: "BGP peer a speaker could not use",
			mutate: func(c *Cluster) {
				c.BGPPeers = []metallbv1beta2.BGPPeer{{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "router"}}}
				c.Events = []corev1.Event{{
					ObjectMeta:     metav1.ObjectMeta{Namespace: ns, Name: "router.1"},
					InvolvedObject: corev1.ObjectReference{Kind: "BGPPeer", Namespace: ns, Name: "router"},
					Type:           corev1.EventTypeWarning, Reason: reasonPeerInvalid, Source: corev1.EventSource{Host: "n1"},
					Message: "BGPPeer herald-system/router is not used on this node: spec.passwordSecret: secret not found",
				}}
			},
			want:      []string{"warning bgppeer.rejected BGPPeer/herald-system/router", "info bgp.session-state-unknown BGPPeer/herald-system/router"},
			inMessage: "spec.passwordSecret",
		},
		{
			name: "advertisement two speakers could not use",
			mutate: func(c *Cluster) {
				ev := func(name, host string, at time.Time, msg string) corev1.Event {
					return corev1.Event{
						ObjectMeta:     metav1.ObjectMeta{Namespace: ns, Name: name},
						InvolvedObject: corev1.ObjectReference{Kind: "L2Advertisement", Namespace: ns, Name: "l2"},
						Type:           corev1.EventTypeWarning, Reason: reasonInvalidConfiguration, Source: corev1.EventSource{Host: host},
						LastTimestamp: metav1.NewTime(at), Message: msg,
					}
				}
				now := time.Now()
				c.Events = []corev1.Event{
					ev("l2.1", "n1", now.Add(-time.Minute), "L2Advertisement herald-system/l2 is not used as written on node n1: old"),
					ev("l2.2", "n2", now, `L2Advertisement herald-system/l2 is not used as written on node n2: spec.nodeSelectors[0]: "Near" is not a valid label selector operator`),
				}
			},
			want:      []string{"warning config.invalid-on-node L2Advertisement/herald-system/l2"},
			inMessage: `on node n2: spec.nodeSelectors[0]: "Near" is not a valid label selector operator (Event InvalidConfiguration from 2 node(s) [n1 n2]`,
		},
		{
			name: "BGP advertisement naming a missing peer",
			mutate: func(c *Cluster) {
				c.BGPAdvertisements = []metallbv1beta1.BGPAdvertisement{{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "bgp"},
					Spec: metallbv1beta1.BGPAdvertisementSpec{IPAddressPools: []string{"default"}, Peers: []string{"ghost"}}}}
			},
			want: []string{"warning advertisement.unknown-peer BGPAdvertisement/herald-system/bgp"},
		},
		{
			name: "pending Service with the controller's reason",
			mutate: func(c *Cluster) {
				s := service("late")
				s.Status.Conditions = cond(string(ipam.ReasonPoolExhausted), `no available IPs in pool "default"`)
				c.Services = append(c.Services, s)
			},
			want:      []string{"critical service.pending Service/default/late"},
			inMessage: `PoolExhausted: no available IPs in pool "default"`,
		},
		{
			name:      "pending Service the controller never saw",
			mutate:    func(c *Cluster) { c.Services = append(c.Services, service("late")) },
			want:      []string{"critical service.pending Service/default/late"},
			inMessage: "has not handled it",
		},
		{
			name: "Service of another class is not Herald's to allocate",
			mutate: func(c *Cluster) {
				s := service("other")
				class := "example.com/lb"
				s.Spec.LoadBalancerClass = &class
				c.Services = append(c.Services, s)
			},
		},
		{
			name: "ETP Local without endpoints",
			mutate: func(c *Cluster) {
				c.Services[0].Spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyLocal
				c.EndpointSlices = nil
			},
			want: []string{"critical l2status.no-local-endpoint ServiceL2Status/default/l2-web", "critical service.etp-local-no-endpoints Service/default/web"},
		},
		{
			name: "ETP Local announced from a node without a local endpoint",
			mutate: func(c *Cluster) {
				c.Services[0].Spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyLocal
				c.L2Statuses[0].Status.Node = "n2"
			},
			want:      []string{"critical l2status.no-local-endpoint ServiceL2Status/default/l2-web"},
			inMessage: "announced from node n2",
		},
		{
			name: "not-ready endpoints do not serve",
			mutate: func(c *Cluster) {
				f := false
				c.EndpointSlices[0].Endpoints[0].Conditions = discoveryv1.EndpointConditions{Ready: &f, Serving: &f}
			},
			want: []string{"warning service.no-endpoints Service/default/web"},
		},
		{
			name:   "allocated but announced by nobody",
			mutate: func(c *Cluster) { c.L2Statuses = nil },
			want:   []string{"critical service.not-announced Service/default/web"},
		},
		{
			name: "announced by two nodes",
			mutate: func(c *Cluster) {
				s := l2Status("web", "n2")
				s.Name = "web-metallb"
				c.L2Statuses = append(c.L2Statuses, s)
			},
			want: []string{"critical service.multiple-announcers Service/default/web"},
		},
		{
			name:   "status left behind by a deleted Service",
			mutate: func(c *Cluster) { c.L2Statuses = append(c.L2Statuses, l2Status("gone", "n1")) },
			want:   []string{"warning l2status.orphan ServiceL2Status/default/l2-gone"},
		},
		{
			name: "foreign MAC claims the address",
			mutate: func(c *Cluster) {
				c.Events = []corev1.Event{{
					ObjectMeta:     metav1.ObjectMeta{Namespace: "default", Name: "web.1"},
					InvolvedObject: corev1.ObjectReference{Kind: "Service", Namespace: "default", Name: "web"},
					Type:           corev1.EventTypeWarning, Reason: reasonAddressConflict, LastTimestamp: metav1.NewTime(now),
					Message: "192.0.2.10 on node n1 interface eth0 is also claimed by MAC 02:00:00:00:00:99 (reply)",
				}}
			},
			want:      []string{"critical service.address-conflict Service/default/web"},
			inMessage: "02:00:00:00:00:99",
		},
		{
			name: "kube-vip DaemonSet with svc_enable",
			mutate: func(c *Cluster) {
				c.DaemonSets = []appsv1.DaemonSet{daemonSet("kube-system", "kube-vip-ds", kubeVIPSpec(corev1.EnvVar{Name: "svc_enable", Value: "true"}))}
				c.Pods = append(c.Pods, corev1.Pod{ // its pod is reported through the DaemonSet only
					ObjectMeta: metav1.ObjectMeta{Namespace: "kube-system", Name: "kube-vip-ds-abc", OwnerReferences: []metav1.OwnerReference{{Kind: "DaemonSet", Name: "kube-vip-ds", Controller: ptr(true)}}},
					Spec:       kubeVIPSpec(corev1.EnvVar{Name: "svc_enable", Value: "true"}).Spec,
				})
			},
			want:      []string{"critical conflict.kube-vip DaemonSet/kube-system/kube-vip-ds"},
			inMessage: "(1 now)",
		},
		{
			name: "kube-vip static pod with svc_enable",
			mutate: func(c *Cluster) {
				c.Pods = append(c.Pods, corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "kube-system", Name: "kube-vip-n1"},
					Spec: kubeVIPSpec(corev1.EnvVar{Name: "svc_enable", Value: "true"}).Spec})
			},
			want: []string{"critical conflict.kube-vip Pod/kube-system/kube-vip-n1"},
		},
		{
			name: "kube-vip restricted to its class",
			mutate: func(c *Cluster) {
				c.DaemonSets = []appsv1.DaemonSet{daemonSet("kube-system", "kube-vip-ds", kubeVIPSpec(
					corev1.EnvVar{Name: "svc_enable", Value: "true"}, corev1.EnvVar{Name: "lb_class_only", Value: "true"}))}
			},
			want: []string{"info conflict.kube-vip DaemonSet/kube-system/kube-vip-ds"},
		},
		{
			name: "kube-vip for the control plane only",
			mutate: func(c *Cluster) {
				c.DaemonSets = []appsv1.DaemonSet{daemonSet("kube-system", "kube-vip-ds", kubeVIPSpec(
					corev1.EnvVar{Name: "cp_enable", Value: "true"}, corev1.EnvVar{Name: "svc_enable", Value: "false"}))}
			},
		},
		{
			name: "MetalLB controller still installed",
			mutate: func(c *Cluster) {
				c.Deployments = []appsv1.Deployment{{ObjectMeta: metav1.ObjectMeta{Namespace: "metallb-system", Name: "controller"},
					Spec: appsv1.DeploymentSpec{Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "controller", Image: "quay.io/metallb/controller:v0.14.9"}}}}}}}
			},
			want: []string{"critical conflict.metallb Deployment/metallb-system/controller"},
		},
		{
			name: "MetalLB speakers still installed: the fast path's port is taken",
			mutate: func(c *Cluster) {
				c.DaemonSets = []appsv1.DaemonSet{daemonSet("metallb-system", "speaker", corev1.PodTemplateSpec{Spec: corev1.PodSpec{
					Containers: []corev1.Container{{Name: "speaker", Image: "quay.io/metallb/speaker:v0.14.9"}}}})}
			},
			want:      []string{"critical conflict.metallb DaemonSet/metallb-system/speaker"},
			inMessage: "port 7946",
		},
		{
			name: "Service of another class holds an address of our pool",
			mutate: func(c *Cluster) {
				s := service("other", "192.0.2.11")
				class := "kube-vip.io/kube-vip-class"
				s.Spec.LoadBalancerClass = &class
				c.Services = append(c.Services, s)
			},
			want:      []string{"critical conflict.foreign-ip Service/default/other"},
			inMessage: "192.0.2.11 from Herald's pool default",
		},
		{
			name:   "Service holding an address outside every pool",
			mutate: func(c *Cluster) { c.Services[0].Status.LoadBalancer.Ingress[0].IP = "203.0.113.5" },
			want:   []string{"warning service.ip-outside-pools Service/default/web"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := healthy()
			tt.mutate(c)
			r := Run(c)
			var got []string
			for _, f := range r.Findings {
				got = append(got, key(f))
				if f.Message == "" || f.Fix == "" {
					t.Errorf("finding %s has an empty message or fix", key(f))
				}
			}
			if !slices.Equal(got, tt.want) {
				t.Fatalf("findings:\n got %q\nwant %q\n%+v", got, tt.want, r.Findings)
			}
			if tt.inMessage != "" && !strings.Contains(r.Findings[0].Message, tt.inMessage) {
				t.Errorf("message %q does not contain %q", r.Findings[0].Message, tt.inMessage)
			}
			if r.Score != Score(r.Summary) || (len(tt.want) > 0 && r.Score == 100) {
				t.Errorf("score %d for %+v", r.Score, r.Summary)
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }

func TestScore(t *testing.T) {
	tests := []struct {
		s    Summary
		want int
	}{
		{Summary{}, 100},
		{Summary{Info: 3}, 97},
		{Summary{Warning: 2, Info: 1}, 89},
		{Summary{Critical: 1}, 50},
		{Summary{Critical: 2, Warning: 1}, 50},
		{Summary{Critical: 3}, 40},
		{Summary{Critical: 4, Warning: 5}, 0},
	}
	for _, tt := range tests {
		if got := Score(tt.s); got != tt.want {
			t.Errorf("Score(%+v) = %d, want %d", tt.s, got, tt.want)
		}
	}
}

func TestPoolUsageCountsSharedAddressOnce(t *testing.T) {
	c := healthy()
	shared := service("web-udp", "192.0.2.10")
	c.Services = append(c.Services, shared, service("api", "192.0.2.11", "2001:db8::1"))
	c.Pools[0].Spec.Addresses = append(c.Pools[0].Spec.Addresses, "2001:db8::/126")
	r := Run(c)
	p := r.Pools[0]
	if p.Size != 8 || p.Used != 3 || p.Free != 5 || p.Exhausted {
		t.Errorf("pool usage %+v, want size 8 used 3 free 5", p)
	}
}

func TestTextAndJSON(t *testing.T) {
	c := healthy()
	c.Pools = append(c.Pools, pool("spare", "198.51.100.0/30"))
	r := Run(c)
	var text bytes.Buffer
	if err := r.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"health score 95/100", "WARNING   pool.no-advertisement  IPAddressPool/herald-system/spare", "1. create an L2Advertisement",
		"default  4     1     3     ok", "default/web", "L2/n1", "n2    True"} {
		if !strings.Contains(text.String(), want) {
			t.Errorf("text output lacks %q:\n%s", want, text.String())
		}
	}
	var js bytes.Buffer
	if err := r.WriteJSON(&js); err != nil {
		t.Fatal(err)
	}
	var back map[string]any
	if err := json.Unmarshal(js.Bytes(), &back); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"apiVersion", "namespace", "score", "summary", "findings", "checks", "crds", "pools", "services", "nodes"} {
		if _, ok := back[k]; !ok {
			t.Errorf("JSON lacks %q", k)
		}
	}
	f := back["findings"].([]any)[0].(map[string]any)
	for _, k := range []string{"check", "severity", "object", "message", "fix"} {
		if _, ok := f[k]; !ok {
			t.Errorf("finding JSON lacks %q: %v", k, f)
		}
	}
}
