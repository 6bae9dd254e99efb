//go:build cluster

package cluster_test

import (
	"bufio"
	"context"
	"fmt"
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

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	metallbclient "github.com/herald-lb/herald/config/metallb/client/clientset/versioned"
	metallbv1beta1 "github.com/herald-lb/herald/config/metallb/v1beta1"
	"github.com/herald-lb/herald/test/cluster"
	"github.com/herald-lb/herald/test/testbin"
)

// heraldNS is where the tests install Herald, as the README does.
const heraldNS = "herald-system"

// env is one test's cluster with the tools it drives.
type env struct {
	t    *testing.T
	c    *cluster.Cluster
	mlb  metallbclient.Interface
	root string
}

func newEnv(t *testing.T, nodes int) *env {
	t.Helper()
	herald, err := cluster.HeraldImage()
	if err != nil {
		t.Fatal(err)
	}
	testbed, err := cluster.TestbedImage(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	images := []string{herald, testbed}
	// Registered before the cluster's own cleanup, so it runs after the teardown.
	before := readHostState()
	var prefix string
	t.Cleanup(func() { checkLeftovers(t, before, prefix) })
	c := cluster.Start(t, cluster.Options{Nodes: nodes, Images: images})
	prefix = c.Lab.Prefix
	mlb, err := metallbclient.NewForConfig(c.Server.AdminConfig())
	if err != nil {
		t.Fatal(err)
	}
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	return &env{t: t, c: c, mlb: mlb, root: root}
}

// run runs a tool (helm, kubectl, herald) with the admin kubeconfig, bounded by 5 minutes.
func (e *env) run(name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append(os.Environ(), "KUBECONFIG="+e.c.Kubeconfig)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func (e *env) must(name string, args ...string) string {
	e.t.Helper()
	out, err := e.run(name, args...)
	if err != nil {
		e.t.Fatalf("%s %s: %v\n%s\n%s", name, strings.Join(args, " "), err, out, e.diagnose())
	}
	return out
}

// herald is the binary `make build` wrote.
func (e *env) herald() string {
	if p := os.Getenv("HERALD_BIN_DIR"); p != "" {
		return filepath.Join(p, "herald")
	}
	return filepath.Join(e.root, "bin", "herald")
}

// diagnose gathers what explains a failure: pods, events, Herald's logs, the components'.
func (e *env) diagnose() string {
	var b strings.Builder
	pods, _ := e.c.Client.CoreV1().Pods("").List(context.Background(), metav1.ListOptions{})
	if pods != nil {
		for _, p := range pods.Items {
			fmt.Fprintf(&b, "pod %s/%s on %s: %s", p.Namespace, p.Name, p.Spec.NodeName, p.Status.Phase)
			for _, cs := range p.Status.ContainerStatuses {
				fmt.Fprintf(&b, " [%s ready=%v restarts=%d %+v]", cs.Name, cs.Ready, cs.RestartCount, cs.State)
			}
			b.WriteString("\n")
			if p.Namespace == heraldNS {
				for _, cs := range p.Spec.Containers {
					b.WriteString(e.c.PodLogs(p.Namespace, p.Name, cs.Name, 30) + "\n")
				}
			}
		}
	}
	evs, _ := e.c.Client.CoreV1().Events("").List(context.Background(), metav1.ListOptions{})
	if evs != nil {
		for _, ev := range evs.Items {
			if ev.Type == corev1.EventTypeWarning {
				fmt.Fprintf(&b, "event %s/%s %s: %s\n", ev.InvolvedObject.Kind, ev.InvolvedObject.Name, ev.Reason, ev.Message)
			}
		}
	}
	b.WriteString(e.c.Logs(20))
	return b.String()
}

// eventually polls cond every 200 ms until it holds or timeout passes; then it fails the
// test with cond's last explanation and the cluster's state.
func (e *env) eventually(timeout time.Duration, what string, cond func() (bool, string)) {
	e.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ok, why := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("after %s waiting for %s: %s\n%s", timeout, what, why, e.diagnose())
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// helmInstall installs the chart with Herald's image (imported, never pulled).
func (e *env) helmInstall(extra ...string) {
	e.t.Helper()
	args := append([]string{"install", "herald", filepath.Join(e.root, "deploy/helm/herald"), "--namespace", heraldNS,
		"--create-namespace", "--wait", "--timeout", "4m", "--set", "image.pullPolicy=Never"}, extra...)
	e.must("helm", args...)
}

// createPool creates an IPAddressPool and an L2Advertisement for it in Herald's namespace.
func (e *env) createPool(name, addresses string) {
	e.t.Helper()
	ctx := context.Background()
	m := e.mlb.MetallbV1beta1()
	if _, err := m.IPAddressPools(heraldNS).Create(ctx, &metallbv1beta1.IPAddressPool{ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: metallbv1beta1.IPAddressPoolSpec{Addresses: []string{addresses}}}, metav1.CreateOptions{}); err != nil {
		e.t.Fatal(err)
	}
	if _, err := m.L2Advertisements(heraldNS).Create(ctx, &metallbv1beta1.L2Advertisement{ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: metallbv1beta1.L2AdvertisementSpec{IPAddressPools: []string{name}}}, metav1.CreateOptions{}); err != nil {
		e.t.Fatal(err)
	}
}

// deployEcho runs the echo server (replicas pods) behind a LoadBalancer Service in ns and
// returns the Service's IP once it has one.
func (e *env) deployEcho(ns, name string, replicas int32) netip.Addr {
	e.t.Helper()
	ctx := context.Background()
	cs := e.c.Client
	if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		e.t.Fatal(err)
	}
	labels := map[string]string{"app": name}
	env := func(n, path string) corev1.EnvVar {
		return corev1.EnvVar{Name: n, ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: path}}}
	}
	d := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: appsv1.DeploymentSpec{Replicas: &replicas, Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels}, Spec: corev1.PodSpec{
				Containers: []corev1.Container{{Name: "echo", Image: cluster.SandboxImage, ImagePullPolicy: corev1.PullNever,
					Command: []string{"/usr/local/bin/echo"}, Env: []corev1.EnvVar{env("POD_NAME", "metadata.name"), env("NODE_NAME", "spec.nodeName")},
					Ports:          []corev1.ContainerPort{{ContainerPort: 8080}},
					ReadinessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/", Port: intstr.FromInt32(8080)}}, PeriodSeconds: 1},
				}},
			}}}}
	if _, err := cs.AppsV1().Deployments(ns).Create(ctx, d, metav1.CreateOptions{}); err != nil {
		e.t.Fatal(err)
	}
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer,
		Selector: labels, Ports: []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromInt32(8080)}}}}
	if _, err := cs.CoreV1().Services(ns).Create(ctx, svc, metav1.CreateOptions{}); err != nil {
		e.t.Fatal(err)
	}
	var ip netip.Addr
	e.eventually(2*time.Minute, fmt.Sprintf("Service %s/%s to get an address and %d ready endpoints", ns, name, replicas), func() (bool, string) {
		s, err := cs.CoreV1().Services(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		if len(s.Status.LoadBalancer.Ingress) == 0 {
			return false, fmt.Sprintf("no ingress; conditions %+v", s.Status.Conditions)
		}
		ip = netip.MustParseAddr(s.Status.LoadBalancer.Ingress[0].IP)
		dep, err := cs.AppsV1().Deployments(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		return dep.Status.ReadyReplicas == replicas, fmt.Sprintf("%d/%d echo pods ready", dep.Status.ReadyReplicas, replicas)
	})
	return ip
}

var replyRE = regexp.MustCompile(`reply from (\S+) \[([0-9A-Fa-f:]+)\]`)

// arping returns the MACs that answer ARP for ip on the segment, asked from the lab's client.
func (e *env) arping(ip netip.Addr) []string {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	client := e.c.Lab.Client
	out, _ := client.Command(ctx, "arping", "-c", "1", "-w", "2", "-I", client.Iface, ip.String()).CombinedOutput()
	var macs []string
	for _, m := range replyRE.FindAllStringSubmatch(string(out), -1) {
		if m[1] == ip.String() {
			macs = append(macs, strings.ToLower(m[2]))
		}
	}
	slices.Sort(macs)
	return slices.Compact(macs)
}

// nodeOfMAC names the cluster node whose eth0 has mac ("" if none).
func (e *env) nodeOfMAC(mac string) string {
	for _, n := range e.c.Nodes {
		if strings.EqualFold(n.Host.MAC.String(), mac) {
			return n.Name
		}
	}
	return ""
}

// curl asks http://ip/ from the lab's client, within 2 s, and returns the body.
func (e *env) curl(ip netip.Addr) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	out, err := e.c.Lab.Client.Command(ctx, "curl", "-sS", "--max-time", "2", "http://"+ip.String()+"/").CombinedOutput()
	return string(out), err
}

// l2Owner returns the nodes the ServiceL2Status objects of ns/svc name.
func (e *env) l2Owner(ns, svc string) []string {
	list, err := e.mlb.MetallbV1beta1().ServiceL2Statuses(heraldNS).List(context.Background(), metav1.ListOptions{})
	if err != nil {
		return []string{"error: " + err.Error()}
	}
	var nodes []string
	for _, s := range list.Items {
		if s.Status.ServiceName == svc && s.Status.ServiceNamespace == ns {
			nodes = append(nodes, s.Status.Node)
		}
	}
	slices.Sort(nodes)
	return nodes
}

// procStatus reads fields of /proc/<pid>/status.
func procStatus(pid int) map[string]string {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return nil
	}
	out := map[string]string{}
	for _, line := range strings.Split(string(data), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok {
			out[k] = strings.TrimSpace(v)
		}
	}
	return out
}

// processesOf lists the pids whose command line starts with argv0 (and then arg1, when
// given), in the named network namespace.
func processesOf(netns, argv0, arg1 string) []int {
	var target, st syscallStat
	if statIno("/var/run/netns/"+netns, &target) != nil {
		return nil
	}
	entries, _ := os.ReadDir("/proc")
	var pids []int
	for _, d := range entries {
		pid, err := strconv.Atoi(d.Name())
		if err != nil {
			continue
		}
		cmdline, err := os.ReadFile("/proc/" + d.Name() + "/cmdline")
		if err != nil {
			continue
		}
		args := strings.Split(strings.TrimRight(string(cmdline), "\x00"), "\x00")
		if len(args) == 0 || args[0] != argv0 || (arg1 != "" && (len(args) < 2 || args[1] != arg1)) {
			continue
		}
		if statIno("/proc/"+d.Name()+"/ns/net", &st) == nil && st == target {
			pids = append(pids, pid)
		}
	}
	return pids
}

// syscallStat identifies a namespace file.
type syscallStat struct{ dev, ino uint64 }

func statIno(path string, out *syscallStat) error {
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		return err
	}
	*out = syscallStat{dev: st.Dev, ino: st.Ino}
	return nil
}

// arpReply is one ARP reply the probe saw.
type arpReply struct {
	mac string
	at  time.Time
}

// arpWatch runs test/arpprobe -all in the client namespace, asking for ip every interval,
// and records every reply until stop is called (or deadline passes).
type arpWatch struct {
	mu      sync.Mutex
	replies []arpReply
	cancel  func()
	done    chan struct{}
}

func (e *env) watchARP(ip netip.Addr, interval, deadline time.Duration) *arpWatch {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), deadline+5*time.Second)
	client := e.c.Lab.Client
	cmd := client.Command(ctx, testbin.Build(e.t, "./test/arpprobe"), "-all", "-i", client.Iface, "-interval", interval.String(), "-deadline", deadline.String(), ip.String())
	out, err := cmd.StdoutPipe()
	if err != nil {
		e.t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		e.t.Fatal(err)
	}
	w := &arpWatch{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(w.done)
		for sc := bufio.NewScanner(out); sc.Scan(); {
			f := strings.Fields(sc.Text())
			if len(f) != 3 || f[0] != ip.String() {
				continue
			}
			if ns, err := strconv.ParseInt(f[2], 10, 64); err == nil {
				w.mu.Lock()
				w.replies = append(w.replies, arpReply{mac: strings.ToLower(f[1]), at: time.Unix(0, ns)})
				w.mu.Unlock()
			}
		}
		_ = cmd.Wait()
	}()
	e.t.Cleanup(w.stop)
	return w
}

func (w *arpWatch) stop() {
	w.cancel()
	<-w.done
}

// snapshot returns the replies so far.
func (w *arpWatch) snapshot() []arpReply {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.replies)
}

// maxGap is the longest time without a reply between from and to (both ends included).
func maxGap(replies []arpReply, from, to time.Time) (time.Duration, time.Time) {
	var worst time.Duration
	var at time.Time
	last := from
	for _, r := range replies {
		if r.at.Before(from) || r.at.After(to) {
			continue
		}
		if g := r.at.Sub(last); g > worst {
			worst, at = g, last
		}
		last = r.at
	}
	if g := to.Sub(last); g > worst {
		worst, at = g, last
	}
	return worst, at
}

// curlLoop asks http://ip/ from the client every interval until stop, counting failures.
type curlLoop struct {
	ok, failed int
	errors     []string
	quit       chan struct{}
	done       chan struct{}
}

func (e *env) startCurlLoop(ip netip.Addr, interval, limit time.Duration) *curlLoop {
	l := &curlLoop{quit: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(l.done)
		end := time.Now().Add(limit)
		for time.Now().Before(end) {
			body, err := e.curl(ip)
			if err == nil && strings.HasPrefix(body, "pod=echo-") {
				l.ok++
			} else {
				l.failed++
				if len(l.errors) < 10 {
					l.errors = append(l.errors, fmt.Sprintf("%s: %v %q", time.Now().Format("15:04:05.000"), err, body))
				}
			}
			select {
			case <-l.quit:
				return
			case <-time.After(interval):
			}
		}
	}()
	e.t.Cleanup(l.stop)
	return l
}

func (l *curlLoop) stop() {
	select {
	case <-l.quit:
	default:
		close(l.quit)
	}
	<-l.done
}

// hostState is what of the machine outside the lab a cluster could change: the teardown must
// leave it as it was.
type hostState struct {
	sysctls  map[string]string
	paths    map[string]bool
	mounts   int
	cgroups  map[string]bool
	netns    map[string]bool
	iptables string
}

var watchedSysctls = []string{"vm/overcommit_memory", "vm/panic_on_oom", "kernel/panic", "kernel/panic_on_oops", "kernel/keys/root_maxkeys", "kernel/keys/root_maxbytes", "net/ipv4/ip_forward"}

func readHostState() hostState {
	s := hostState{sysctls: map[string]string{}, paths: map[string]bool{}, cgroups: map[string]bool{}, netns: map[string]bool{}}
	for _, k := range watchedSysctls {
		v, _ := os.ReadFile("/proc/sys/" + k)
		s.sysctls[k] = strings.TrimSpace(string(v))
	}
	for _, p := range []string{"/var/lib/kubelet", "/var/log/containers", "/var/log/pods", "/var/lib/cni", "/run/containerd", "/etc/cni", "/opt/containerd"} {
		_, err := os.Lstat(p)
		s.paths[p] = err == nil
	}
	// Mounts a cluster makes: kubelet's and containerd's under its directory, the pods'
	// network namespaces, the fixed host paths (other tests' labs mount their own namespaces).
	if data, err := os.ReadFile("/proc/self/mountinfo"); err == nil {
		for _, line := range strings.Split(string(data), "\n") {
			for _, marker := range []string{"/herald-cluster-", "/netns/cni-", "/var/lib/kubelet", "/run/containerd"} {
				if strings.Contains(line, marker) {
					s.mounts++
					break
				}
			}
		}
	}
	for _, h := range []string{"pids", "memory", "cpu", "cpuset", "systemd"} {
		entries, _ := os.ReadDir("/sys/fs/cgroup/" + h)
		for _, e := range entries {
			if e.IsDir() {
				s.cgroups[h+"/"+e.Name()] = true
			}
		}
	}
	entries, _ := os.ReadDir("/var/run/netns")
	for _, e := range entries {
		s.netns[e.Name()] = true
	}
	out, _ := exec.Command("iptables-save").Output()
	for _, line := range strings.Split(string(out), "\n") {
		if !strings.HasPrefix(line, "#") && !strings.HasPrefix(line, ":") {
			s.iptables += line + "\n"
		}
	}
	return s
}

// checkLeftovers compares the machine after teardown with before; labs and clusters of other
// tests running meanwhile (cgroups and namespaces with their own prefixes) are not counted.
func checkLeftovers(t *testing.T, before hostState, prefix string) {
	after := readHostState()
	for k, v := range before.sysctls {
		if after.sysctls[k] != v {
			t.Errorf("teardown left sysctl %s = %s (was %s)", k, after.sysctls[k], v)
		}
	}
	for p, existed := range before.paths {
		if after.paths[p] && !existed {
			t.Errorf("teardown left %s", p)
		}
	}
	for cg := range after.cgroups {
		if !before.cgroups[cg] && strings.Contains(cg, "herald-"+prefix) {
			t.Errorf("teardown left cgroup %s", cg)
		}
	}
	for n := range after.netns {
		// The lab's own namespaces are its to check (another test's lab may reuse the id).
		if !before.netns[n] && strings.HasPrefix(n, "cni-") {
			t.Errorf("teardown left network namespace %s", n)
		}
	}
	if after.mounts > before.mounts {
		t.Errorf("teardown left %d more mounts (%d, was %d)", after.mounts-before.mounts, after.mounts, before.mounts)
	}
	if after.iptables != before.iptables {
		t.Errorf("the root namespace's iptables rules changed:\nbefore:\n%s\nafter:\n%s", before.iptables, after.iptables)
	}
}
