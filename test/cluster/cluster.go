package cluster

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/herald-lb/herald/test/kubeapi"
	"github.com/herald-lb/herald/test/lab"
)

// Options describe a cluster.
type Options struct {
	// Nodes is the number of kubelets, one per lab node (at least 1).
	Nodes int
	// Images are OCI archives imported into every node's containerd before kubelet starts.
	Images []string
}

// Cluster is a running cluster; its cleanup tears it down.
type Cluster struct {
	Lab    *lab.Lab
	Server *kubeapi.Server
	// Kubeconfig is an admin kubeconfig (the API server on loopback), for helm and kubectl.
	Kubeconfig string
	Client     kubernetes.Interface
	Nodes      []*Node
	// StartupTime is how long Start took, from the lab to every node Ready.
	StartupTime time.Duration

	dir     string
	control []*proc
	td      *teardown
}

// Node is one kubelet with its runtime and kube-proxy, in a lab node's namespace.
type Node struct {
	Name    string
	Host    *lab.Host
	PodCIDR netip.Prefix

	dir                        string
	socket                     string
	cgroupRoot                 string
	containerd, kubelet, proxy *proc
}

// clusterCIDR holds every node's pod range (198.18.(16+i).0/24).
const clusterCIDR = "198.18.0.0/16"

// Start brings up a cluster of o.Nodes nodes, waits until every node is Ready, and tears it
// down when the test ends. It fails the test, with the logs that say why, when it cannot.
func Start(t testing.TB, o Options) *Cluster {
	t.Helper()
	c, err := New(o)
	if err != nil {
		t.Fatalf("cluster: %v", err)
	}
	t.Cleanup(func() {
		if err := c.Close(); err != nil {
			t.Errorf("cluster teardown: %v", err)
		}
	})
	t.Logf("cluster: %d nodes Ready in %s (lab %d, API server %s)", len(c.Nodes), c.StartupTime.Round(100*time.Millisecond), c.Lab.ID, c.Server.Host)
	return c
}

// New brings up a cluster of o.Nodes nodes and waits until every node is Ready; Close tears
// it down. On error whatever was started is torn down, and the error carries the logs.
func New(o Options) (_ *Cluster, err error) {
	began := time.Now()
	bins, err := findBinaries()
	if err != nil {
		return nil, err
	}
	if o.Nodes < 1 {
		o.Nodes = 1
	}
	c := &Cluster{}
	if c.dir, err = os.MkdirTemp("", "herald-cluster-"); err != nil {
		return nil, err
	}
	if c.Lab, err = lab.Create(lab.Options{Nodes: o.Nodes}); err != nil {
		os.RemoveAll(c.dir)
		return nil, err
	}
	c.td = newTeardown(c)
	c.Lab.OnClose(c.td.run)
	defer func() {
		if err != nil {
			err = fmt.Errorf("%w\n%s", err, c.logs(40))
			err = errors.Join(err, c.Close())
		}
	}()

	tokens := map[string]string{}
	var lines []string
	for _, user := range append(nodeNames(c.Lab), "system:kube-proxy", "system:kube-controller-manager", "system:kube-scheduler") {
		tok := randomHex(16)
		tokens[user] = tok
		groups := ""
		if strings.HasPrefix(user, "system:node:") {
			groups = ",system:nodes"
		}
		lines = append(lines, fmt.Sprintf("%s,%s,uid-%s%s", tok, user, strings.ReplaceAll(user, ":", "-"), groups))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	c.Server, err = kubeapi.Start(ctx, kubeapi.Options{Dir: filepath.Join(c.dir, "apiserver"), Tokens: lines, ExtraArgs: []string{
		"--endpoint-reconciler-type=lease",
		"--advertise-address=" + c.Lab.Gateway.String(),
		"--authorization-mode=Node,RBAC",
		"--enable-admission-plugins=NodeRestriction",
		"--kubelet-preferred-address-types=InternalIP",
	}})
	if err != nil {
		return c, fmt.Errorf("API server: %w", err)
	}
	c.Kubeconfig = c.Server.Kubeconfig
	if c.Client, err = kubernetes.NewForConfig(c.Server.AdminConfig()); err != nil {
		return c, err
	}
	if err := c.startControlPlane(bins, tokens); err != nil {
		return c, err
	}
	for i, h := range c.Lab.Nodes {
		n := &Node{Name: h.Netns, Host: h, PodCIDR: podCIDR(i), dir: filepath.Join(c.dir, "node-"+strconv.Itoa(i))}
		c.Nodes = append(c.Nodes, n)
		if err := c.startNode(n, bins, tokens["system:node:"+n.Name], tokens["system:kube-proxy"], o.Images); err != nil {
			return c, fmt.Errorf("node %s: %w", n.Name, err)
		}
	}
	if err := c.waitNodesReady(3 * time.Minute); err != nil {
		return c, err
	}
	c.StartupTime = time.Since(began)
	return c, nil
}

// Close stops the API server and removes the lab, which first runs the teardown of
// everything the cluster started and changed.
func (c *Cluster) Close() error {
	if c.Server != nil {
		c.Server.Stop()
	}
	return c.Lab.Close()
}

// nodeNames are the kubelets' user names; a node is named after its lab namespace, so two
// labs' nodes never share a name.
func nodeNames(l *lab.Lab) []string {
	var out []string
	for _, h := range l.Nodes {
		out = append(out, "system:node:"+h.Netns)
	}
	return out
}

func podCIDR(i int) netip.Prefix {
	return netip.PrefixFrom(netip.AddrFrom4([4]byte{198, 18, byte(16 + i), 0}), 24)
}

// startControlPlane starts kube-controller-manager and kube-scheduler in the root namespace.
func (c *Cluster) startControlPlane(bins binaries, tokens map[string]string) error {
	kcm, err := c.kubeconfig("kube-controller-manager", tokens["system:kube-controller-manager"], "")
	if err != nil {
		return err
	}
	sched, err := c.kubeconfig("kube-scheduler", tokens["system:kube-scheduler"], "")
	if err != nil {
		return err
	}
	apiDir := c.Server.Dir
	p, err := startProc(c.dir, "kube-controller-manager", "", bins.controllerManager,
		"--kubeconfig="+kcm, "--authentication-kubeconfig="+kcm, "--authorization-kubeconfig="+kcm,
		"--bind-address=127.0.0.1", "--secure-port=0", "--leader-elect=false",
		"--service-account-private-key-file="+filepath.Join(apiDir, "sa.key"),
		"--root-ca-file="+filepath.Join(apiDir, "ca.crt"),
		"--use-service-account-credentials=true", "--allocate-node-cidrs=false",
		"--cluster-cidr="+clusterCIDR, "--service-cluster-ip-range="+strings.Split(kubeapi.ServiceClusterIPRanges, ",")[0],
		"--node-monitor-grace-period=20s", "--v=1")
	if err != nil {
		return err
	}
	c.control = append(c.control, p)
	p, err = startProc(c.dir, "kube-scheduler", "", bins.scheduler,
		"--kubeconfig="+sched, "--authentication-kubeconfig="+sched, "--authorization-kubeconfig="+sched,
		"--bind-address=127.0.0.1", "--secure-port=0", "--leader-elect=false", "--v=1")
	if err != nil {
		return err
	}
	c.control = append(c.control, p)
	return nil
}

// kubeconfig writes a kubeconfig for a static token user; server "" is the API server on
// loopback.
func (c *Cluster) kubeconfig(name, token, server string) (string, error) {
	cfg := rest.CopyConfig(c.Server.AdminConfig())
	cfg.BearerToken = token
	path := filepath.Join(c.dir, name+".kubeconfig")
	return path, kubeapi.WriteKubeconfig(path, cfg, server)
}

// waitNodesReady waits until every node is registered and Ready.
func (c *Cluster) waitNodesReady(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		var notReady []string
		for _, n := range c.Nodes {
			for _, p := range []*proc{n.containerd, n.kubelet, n.proxy} {
				if !p.running() {
					return fmt.Errorf("%s of %s exited", p.name, n.Name)
				}
			}
			node, err := c.Client.CoreV1().Nodes().Get(context.Background(), n.Name, metav1.GetOptions{})
			if err != nil {
				notReady = append(notReady, n.Name+": "+err.Error())
				continue
			}
			if !nodeReady(node) {
				notReady = append(notReady, n.Name+": not Ready")
			}
		}
		if len(notReady) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("after %s, nodes not Ready: %s", timeout, strings.Join(notReady, "; "))
		}
		time.Sleep(500 * time.Millisecond)
	}
}

func nodeReady(n *corev1.Node) bool {
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// Logs returns the tail of every component's log, for a failure message.
func (c *Cluster) Logs(n int) string { return c.logs(n) }

func (c *Cluster) logs(n int) string {
	var b strings.Builder
	if c.Server != nil {
		b.WriteString(c.Server.LogTail(n) + "\n")
	}
	for _, p := range c.control {
		b.WriteString(p.tail(n) + "\n")
	}
	for _, node := range c.Nodes {
		for _, p := range []*proc{node.containerd, node.kubelet, node.proxy} {
			if p != nil {
				b.WriteString(p.tail(n) + "\n")
			}
		}
	}
	return b.String()
}

// PodLogs returns the tail of the logs kubelet wrote for a container of a pod on any node
// (namespace_pod_uid/container/N.log under the node's podLogsDir), without the API server's
// proxy to kubelet.
func (c *Cluster) PodLogs(namespace, pod, container string, n int) string {
	var b strings.Builder
	for _, node := range c.Nodes {
		matches, _ := filepath.Glob(filepath.Join(node.dir, "pod-logs", namespace+"_"+pod+"_*", container, "*.log"))
		for _, m := range matches {
			fmt.Fprintf(&b, "--- %s ---\n%s\n", m, tailFile(m, n))
		}
	}
	if b.Len() == 0 {
		return fmt.Sprintf("no logs of %s/%s container %s on any node", namespace, pod, container)
	}
	return b.String()
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// binaries are the executables a cluster runs.
type binaries struct {
	kubelet, proxy, scheduler, controllerManager string
	containerd, ctr                              string
}

func findBinaries() (binaries, error) {
	var b binaries
	var errs []error
	for _, k := range []struct {
		dst  *string
		name string
	}{{&b.kubelet, "kubelet"}, {&b.proxy, "kube-proxy"}, {&b.scheduler, "kube-scheduler"}, {&b.controllerManager, "kube-controller-manager"}} {
		p, err := kubeapi.KubeBinary(k.name)
		errs = append(errs, err)
		*k.dst = p
	}
	for _, k := range []struct {
		dst  *string
		name string
	}{{&b.containerd, "containerd"}, {&b.ctr, "ctr"}} {
		p, err := lookPath(k.name)
		errs = append(errs, err)
		*k.dst = p
	}
	for _, p := range []string{"runc", "containerd-shim-runc-v2", "nsenter", "iptables", "conntrack"} {
		_, err := lookPath(p)
		errs = append(errs, err)
	}
	if _, err := os.Stat(filepath.Join(cniBinDir, "bridge")); err != nil {
		errs = append(errs, fmt.Errorf("CNI plugins: %w (Debian's containernetworking-plugins)", err))
	}
	if err := errors.Join(errs...); err != nil {
		return b, fmt.Errorf("%w\n(run `bash test/tools/install.sh node`)", err)
	}
	return b, nil
}

// cniBinDir is where Debian's containernetworking-plugins installs the plugins.
const cniBinDir = "/usr/lib/cni"

func lookPath(name string) (string, error) {
	for _, dir := range []string{"/usr/bin", "/usr/sbin", "/bin", "/sbin"} {
		p := filepath.Join(dir, name)
		if st, err := os.Stat(p); err == nil && !st.IsDir() {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s not found in /usr/bin, /usr/sbin, /bin or /sbin", name)
}
