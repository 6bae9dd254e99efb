//go:build cluster

package cluster_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/herald-lb/herald/heartbeat"
)

// capNetRaw is CAP_NET_RAW's bit: the one capability the chart grants the speaker.
const capNetRaw = 1 << 13

// TestClusterHelmChart installs the chart on a real two-node cluster with the locally built
// image and checks what only kubelets can show: the pods start and become Ready, a
// LoadBalancer Service gets an address that answers ARP from the node its ServiceL2Status
// names, curl reaches a pod through kube-proxy, the speakers run the fast path (on by default:
// the controller created its Secret, the kubelets mounted it), and the speaker runs with
// nothing but the capabilities the chart grants.
func TestClusterHelmChart(t *testing.T) {
	e := newEnv(t, 2)
	began := time.Now()
	e.helmInstall()
	t.Logf("helm install --wait: %s", time.Since(began).Round(100*time.Millisecond))
	e.checkFastPath()
	e.createPool("default", "192.0.2.100-192.0.2.110")
	ip := e.deployEcho("demo", "echo", 2)
	t.Logf("Service demo/echo got %s", ip)

	var owner string
	e.eventually(time.Minute, "the ServiceL2Status and ARP to agree on one node", func() (bool, string) {
		status := e.l2Owner("demo", "echo")
		macs := e.arping(ip)
		if len(status) != 1 || len(macs) != 1 {
			return false, fmt.Sprintf("ServiceL2Status nodes %v, ARP answers %v", status, macs)
		}
		owner = e.nodeOfMAC(macs[0])
		return owner == status[0], fmt.Sprintf("ServiceL2Status names %s, %s (%s) answers ARP", status[0], macs[0], owner)
	})
	e.eventually(30*time.Second, "curl to reach an echo pod through the VIP", func() (bool, string) {
		body, err := e.curl(ip)
		return err == nil && strings.HasPrefix(body, "pod=echo-"), fmt.Sprintf("curl: %v: %q", err, body)
	})
	t.Logf("%s answered by %s; curl reaches the echo pods", ip, owner)

	e.checkCapabilities(owner)
	e.checkDiagHealthy()
	e.killSpeakerContainer(ip, owner)
	e.upgradeRolls(ip)
	e.checkDiagMissingSpeaker()
	e.helmUninstall()
	e.kustomizeInstall(ip)
}

// checkFastPath: every speaker publishes in its heartbeat the fast path it listens on, at its
// node's InternalIP and the chart's port: it read the controller's Secret from the volume the
// kubelet mounted and its own Node's address.
func (e *env) checkFastPath() {
	e.t.Helper()
	ctx := context.Background()
	e.eventually(time.Minute, "every speaker's heartbeat to advertise its fast path", func() (bool, string) {
		var got []string
		ok := true
		for _, n := range e.c.Nodes {
			node, err := e.c.Client.CoreV1().Nodes().Get(ctx, n.Name, metav1.GetOptions{})
			if err != nil {
				return false, err.Error()
			}
			var want string
			for _, a := range node.Status.Addresses {
				if a.Type == corev1.NodeInternalIP {
					want = net.JoinHostPort(a.Address, "7946")
				}
			}
			l, err := e.c.Client.CoordinationV1().Leases(heraldNS).Get(ctx, heartbeat.LeaseName(n.Name), metav1.GetOptions{})
			if err != nil {
				return false, err.Error()
			}
			addr := l.Annotations[heartbeat.AnnotationFastPath]
			ok = ok && want != "" && addr == want
			got = append(got, fmt.Sprintf("%s: %q (InternalIP:port %q)", n.Name, addr, want))
		}
		return ok, strings.Join(got, ", ")
	})
	if _, err := e.c.Client.CoreV1().Secrets(heraldNS).Get(ctx, "herald-fast-path", metav1.GetOptions{}); err != nil {
		e.t.Errorf("the fast path's Secret: %v", err)
	}
	e.t.Logf("every speaker advertises its fast path at its InternalIP:7946")
}

// kustomizeInstall applies the plain manifests (kubectl apply -k deploy/kustomize) on the
// cluster the chart just left: the pods become Ready and the Service, which kept its address
// in its status, is announced and served again; kubectl delete -k removes it.
func (e *env) kustomizeInstall(ip netip.Addr) {
	e.t.Helper()
	dir := filepath.Join(e.root, "deploy/kustomize")
	e.must("kubectl", "apply", "--server-side", "-k", dir)
	e.eventually(3*time.Minute, "the kustomize install's pods to be Ready", func() (bool, string) {
		out, _ := e.run("kubectl", "get", "pods", "-n", heraldNS, "-o", `jsonpath={range .items[*]}{.metadata.name}={.status.conditions[?(@.type=="Ready")].status} {end}`)
		pods := strings.Fields(out)
		for _, p := range pods {
			if !strings.HasSuffix(p, "=True") {
				return false, out
			}
		}
		return len(pods) == len(e.c.Nodes)+1, out
	})
	e.eventually(time.Minute, "curl to reach the echo pods through "+ip.String()+" again", func() (bool, string) {
		body, err := e.curl(ip)
		return err == nil && strings.HasPrefix(body, "pod=echo-"), fmt.Sprintf("curl: %v: %q; ServiceL2Status nodes %v", err, body, e.l2Owner("demo", "echo"))
	})
	e.t.Logf("kubectl apply -k deploy/kustomize: Ready, %s served again", ip)
	e.must("kubectl", "delete", "-k", dir, "--wait", "--timeout", "2m")
}

// diagReport mirrors what the checks read of `herald diag --json`.
type diagReport struct {
	Score    int `json:"score"`
	Findings []struct {
		Check    string `json:"check"`
		Severity string `json:"severity"`
		Message  string `json:"message"`
		Object   struct{ Kind, Name string }
	} `json:"findings"`
}

func (e *env) diag() diagReport {
	e.t.Helper()
	// diag exits non-zero with a critical finding and says so on stderr: read stdout only.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, _ := exec.CommandContext(ctx, e.herald(), "diag", "--json", "--namespace", heraldNS, "--kubeconfig", e.c.Kubeconfig).Output()
	var r diagReport
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		e.t.Fatalf("herald diag --json: %v\n%s", err, out)
	}
	return r
}

// checkDiagHealthy: on the healthy cluster `herald diag` scores 100.
func (e *env) checkDiagHealthy() {
	e.t.Helper()
	var r diagReport
	e.eventually(time.Minute, "herald diag to score 100", func() (bool, string) {
		r = e.diag()
		return r.Score == 100, fmt.Sprintf("score %d, findings %+v", r.Score, r.Findings)
	})
	e.t.Logf("herald diag on the healthy cluster: score %d", r.Score)
}

// killSpeakerContainer kills the announcing speaker's container (its main process): kubelet
// restarts it, the VIP moves to the other node, and when the speaker is back no ARP probe
// (every 20 ms) goes unanswered for longer than the failover.
func (e *env) killSpeakerContainer(ip netip.Addr, owner string) {
	e.t.Helper()
	pods, err := e.c.Client.CoreV1().Pods(heraldNS).List(context.Background(), metav1.ListOptions{
		LabelSelector: "app.kubernetes.io/component=speaker", FieldSelector: "spec.nodeName=" + owner})
	if err != nil || len(pods.Items) != 1 {
		e.t.Fatalf("speaker pod on %s: %v %v", owner, err, pods)
	}
	pod := pods.Items[0].Name
	pids := processesOf(owner, "/usr/local/bin/herald", "speaker")
	if len(pids) != 1 {
		e.t.Fatalf("speaker processes on %s: %v", owner, pids)
	}
	w := e.watchARP(ip, 20*time.Millisecond, 3*time.Minute)
	time.Sleep(time.Second)
	killed := time.Now()
	if err := syscall.Kill(pids[0], syscall.SIGKILL); err != nil {
		e.t.Fatal(err)
	}
	var moved time.Time
	e.eventually(30*time.Second, "another node to answer for "+ip.String(), func() (bool, string) {
		for _, r := range w.snapshot() {
			if r.at.After(killed) && e.nodeOfMAC(r.mac) != owner && e.nodeOfMAC(r.mac) != "" {
				moved = r.at
				return true, ""
			}
		}
		return false, "only " + owner + " answered"
	})
	e.eventually(2*time.Minute, "kubelet to restart the speaker container and the pod to be Ready", func() (bool, string) {
		p, err := e.c.Client.CoreV1().Pods(heraldNS).Get(context.Background(), pod, metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		for _, cs := range p.Status.ContainerStatuses {
			return cs.RestartCount >= 1 && cs.Ready, fmt.Sprintf("restarts %d, ready %v", cs.RestartCount, cs.Ready)
		}
		return false, "no container status"
	})
	back := time.Now()
	time.Sleep(5 * time.Second)
	end := time.Now()
	replies := w.snapshot()
	w.stop()
	gapKill, _ := maxGap(replies, killed, moved)
	gapReturn, at := maxGap(replies, moved, end)
	e.t.Logf("who answered %s after the kill: %s", ip, e.transitions(replies, killed))
	e.t.Logf("speaker container on %s killed: %s answered from another node after %s (longest silence %s); after kubelet restarted it (restart seen %s after the kill), the longest silence was %s at %s",
		owner, ip, moved.Sub(killed).Round(time.Millisecond), gapKill.Round(time.Millisecond), back.Sub(killed).Round(time.Second), gapReturn.Round(time.Millisecond), at.Format("15:04:05.000"))
	if moved.Sub(killed) > 5*time.Second {
		e.t.Errorf("%s moved %s after the kill, want within the failover budget (5 s)", ip, moved.Sub(killed))
	}
	if gapReturn > time.Second {
		e.t.Errorf("%s went unanswered for %s around the speaker's return, want no gap (under 1 s with a 20 ms probe)", ip, gapReturn)
	}
}

// upgradeRolls: `helm upgrade` with a changed value rolls every speaker (new pods) while a
// client keeps requesting the VIP every 100 ms: no request fails.
func (e *env) upgradeRolls(ip netip.Addr) {
	e.t.Helper()
	before := e.speakerPods()
	loop := e.startCurlLoop(ip, 100*time.Millisecond, 5*time.Minute)
	began := time.Now()
	e.must("helm", "upgrade", "herald", filepath.Join(e.root, "deploy/helm/herald"), "--namespace", heraldNS, "--reuse-values",
		"--set", "speaker.logLevel=1", "--wait", "--timeout", "4m")
	e.eventually(3*time.Minute, "every speaker pod to be replaced and Ready", func() (bool, string) {
		now := e.speakerPods()
		for name, ready := range now {
			if _, old := before[name]; old || !ready {
				return false, fmt.Sprintf("speaker pods %v (before %v)", now, before)
			}
		}
		return len(now) == len(e.c.Nodes), fmt.Sprintf("speaker pods %v", now)
	})
	rolled := time.Since(began)
	time.Sleep(3 * time.Second)
	loop.stop()
	e.t.Logf("helm upgrade rolled %d speakers in %s: %d requests succeeded, %d failed", len(before), rolled.Round(100*time.Millisecond), loop.ok, loop.failed)
	if loop.failed > 0 || loop.ok == 0 {
		e.t.Errorf("during the roll %d of %d requests failed: %v", loop.failed, loop.ok+loop.failed, loop.errors)
	}
}

// speakerPods maps the speaker pods' names to whether they are Ready.
func (e *env) speakerPods() map[string]bool {
	pods, err := e.c.Client.CoreV1().Pods(heraldNS).List(context.Background(), metav1.ListOptions{LabelSelector: "app.kubernetes.io/component=speaker"})
	if err != nil {
		return nil
	}
	out := map[string]bool{}
	for _, p := range pods.Items {
		ready := false
		for _, c := range p.Status.Conditions {
			if c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue {
				ready = true
			}
		}
		if p.DeletionTimestamp == nil {
			out[p.Name] = ready
		}
	}
	return out
}

// checkDiagMissingSpeaker: with the DaemonSet scaled off one node (a nodeSelector that node
// lacks), `herald diag` names that node's missing speaker.
func (e *env) checkDiagMissingSpeaker() {
	e.t.Helper()
	keep, gone := e.c.Nodes[0].Name, e.c.Nodes[len(e.c.Nodes)-1].Name
	e.must("kubectl", "label", "node", keep, "herald.test/speaker=yes")
	e.must("helm", "upgrade", "herald", filepath.Join(e.root, "deploy/helm/herald"), "--namespace", heraldNS, "--reuse-values",
		"--set", "speaker.nodeSelector.herald\\.test/speaker=yes", "--wait", "--timeout", "4m")
	var r diagReport
	e.eventually(time.Minute, "herald diag to name the node without a speaker", func() (bool, string) {
		r = e.diag()
		for _, f := range r.Findings {
			if f.Check == "speaker.missing" && strings.Contains(f.Message, gone) {
				return r.Score < 100, fmt.Sprintf("score %d", r.Score)
			}
		}
		return false, fmt.Sprintf("score %d, findings %+v", r.Score, r.Findings)
	})
	e.t.Logf("herald diag with no speaker on %s: score %d, it names the node", gone, r.Score)
}

// checkCapabilities: the speaker and its announcers on node run with exactly CAP_NET_RAW
// effective and permitted (the chart's securityContext: drop ALL, add NET_RAW), and no more
// in their bounding set, so a test fails if Herald ever needs more.
func (e *env) checkCapabilities(node string) {
	e.t.Helper()
	speakers := processesOf(node, "/usr/local/bin/herald", "speaker")
	if len(speakers) != 1 {
		e.t.Fatalf("speaker processes on %s: %v, want one", node, speakers)
	}
	pids := append(speakers, processesOf(node, "/usr/local/bin/herald-announcer-arp", "")...)
	if len(pids) < 2 {
		e.t.Fatalf("no ARP announcer runs beside the speaker on %s (pids %v)", node, pids)
	}
	for _, pid := range pids {
		st := procStatus(pid)
		for _, field := range []string{"CapEff", "CapPrm", "CapBnd"} {
			var v uint64
			if _, err := fmt.Sscanf(st[field], "%x", &v); err != nil || v != capNetRaw {
				e.t.Errorf("pid %d (%s) %s = %s, want only CAP_NET_RAW (%016x)", pid, st["Name"], field, st[field], capNetRaw)
			}
		}
		if st["NoNewPrivs"] != "1" {
			e.t.Errorf("pid %d (%s) NoNewPrivs = %q, want 1 (allowPrivilegeEscalation: false)", pid, st["Name"], st["NoNewPrivs"])
		}
	}
	e.t.Logf("speaker and announcers %v on %s run with CAP_NET_RAW only", pids, node)
}

// helmUninstall removes the release and checks that nothing of Herald's is left but the
// CRDs (and the namespace helm created, which it never deletes).
func (e *env) helmUninstall() {
	e.t.Helper()
	e.must("helm", "uninstall", "herald", "--namespace", heraldNS, "--wait", "--timeout", "2m")
	ctx := context.Background()
	var left []string
	e.eventually(time.Minute, "every Herald object to be gone", func() (bool, string) {
		left = nil
		cs := e.c.Client
		if l, err := cs.CoreV1().Pods(heraldNS).List(ctx, metav1.ListOptions{}); err == nil {
			for _, p := range l.Items {
				left = append(left, "pod/"+p.Name)
			}
		}
		if l, err := cs.CoordinationV1().Leases(heraldNS).List(ctx, metav1.ListOptions{}); err == nil {
			for _, x := range l.Items {
				left = append(left, "lease/"+x.Name)
			}
		}
		// The fast path's Secret, which the controller created, goes with its ServiceAccount.
		if _, err := cs.CoreV1().Secrets(heraldNS).Get(ctx, "herald-fast-path", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			left = append(left, fmt.Sprintf("secret/herald-fast-path (%v)", err))
		}
		if l, err := e.mlb.MetallbV1beta1().ServiceL2Statuses(heraldNS).List(ctx, metav1.ListOptions{}); err == nil {
			for _, x := range l.Items {
				left = append(left, "servicel2status/"+x.Name)
			}
		}
		for _, kind := range []string{"configmaps", "serviceaccounts", "roles", "rolebindings", "services", "daemonsets", "deployments"} {
			out, _ := e.run("kubectl", "get", kind, "-n", heraldNS, "-l", "app.kubernetes.io/instance=herald", "-o", "name")
			left = append(left, strings.Fields(out)...)
		}
		for _, kind := range []string{"clusterroles", "clusterrolebindings"} {
			out, _ := e.run("kubectl", "get", kind, "-o", "name")
			for _, n := range strings.Fields(out) {
				if strings.Contains(n, "herald") {
					left = append(left, n)
				}
			}
		}
		slices.Sort(left)
		return len(left) == 0, fmt.Sprintf("left behind: %v", left)
	})
}

// transitions summarises a reply sequence from start: each change of the answering node and
// each silence over 100 ms, with times relative to start.
func (e *env) transitions(replies []arpReply, start time.Time) string {
	var b strings.Builder
	last, lastAt := "", start
	for _, r := range replies {
		if r.at.Before(start) {
			continue
		}
		node := e.nodeOfMAC(r.mac)
		if g := r.at.Sub(lastAt); g > 100*time.Millisecond {
			fmt.Fprintf(&b, " [silent %s]", g.Round(time.Millisecond))
		}
		if node != last {
			fmt.Fprintf(&b, " %s@+%s", node, r.at.Sub(start).Round(time.Millisecond))
			last = node
		}
		lastAt = r.at
	}
	return b.String()
}
