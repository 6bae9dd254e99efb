package cluster

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/herald-lb/herald/test/kubeapi"
)

// startNode starts containerd, imports the images, writes the CNI configuration and the
// routes to the other nodes' pods, and starts kubelet and kube-proxy in the node's namespace.
func (c *Cluster) startNode(n *Node, bins binaries, nodeToken, proxyToken string, images []string) error {
	for _, d := range []string{"containerd", "cni", "cni-ipam", "kubelet", "kubelet-certs", "pod-logs"} {
		if err := os.MkdirAll(filepath.Join(n.dir, d), 0o755); err != nil {
			return err
		}
	}
	n.socket = filepath.Join(n.dir, "containerd.sock")
	n.cgroupRoot = "/herald-" + n.Name
	if err := c.td.makeCgroupRoot(n.cgroupRoot); err != nil {
		return err
	}
	files := map[string]string{
		"containerd.toml":        containerdConfig(n),
		"cni/10-herald.conflist": cniConfig(n),
		"kubelet.yaml":           kubeletConfig(n),
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(n.dir, name), []byte(data), 0o600); err != nil {
			return err
		}
	}
	var err error
	if n.containerd, err = startProc(n.dir, "containerd", n.Host.Netns, bins.containerd, "--config", filepath.Join(n.dir, "containerd.toml")); err != nil {
		return err
	}
	if err := waitSocket(n.socket, n.containerd, time.Minute); err != nil {
		return err
	}
	for _, img := range images {
		if err := importImage(bins.ctr, n.socket, img); err != nil {
			return err
		}
	}
	// Nodes have no default route: locally generated traffic to a ClusterIP needs a route
	// before kube-proxy's OUTPUT rules translate it (hostNetwork pods reach the API so).
	serviceCIDR := strings.Split(kubeapi.ServiceClusterIPRanges, ",")[0]
	if out, err := exec.Command("ip", "-n", n.Host.Netns, "route", "replace", serviceCIDR, "dev", n.Host.Iface).CombinedOutput(); err != nil {
		return fmt.Errorf("route to the Service range: %v: %s", err, out)
	}
	for i, h := range c.Lab.Nodes {
		if h == n.Host {
			continue
		}
		if out, err := exec.Command("ip", "-n", n.Host.Netns, "route", "replace", podCIDR(i).String(), "via", h.IPv4.String()).CombinedOutput(); err != nil {
			return fmt.Errorf("route to %s's pods: %v: %s", h.Netns, err, out)
		}
	}
	// The API server binds every address; nodes reach it at the lab's gateway.
	server := "https://" + netip.AddrPortFrom(c.Lab.Gateway, uint16(c.Server.Port)).String()
	kubeletKC, err := c.kubeconfig(n.Name+"-kubelet", nodeToken, server)
	if err != nil {
		return err
	}
	proxyKC, err := c.kubeconfig(n.Name+"-kube-proxy", proxyToken, server)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(n.dir, "kube-proxy.yaml"), []byte(proxyConfig(n, proxyKC)), 0o600); err != nil {
		return err
	}
	if n.kubelet, err = startProc(n.dir, "kubelet", n.Host.Netns, bins.kubelet,
		"--config="+filepath.Join(n.dir, "kubelet.yaml"), "--kubeconfig="+kubeletKC,
		"--hostname-override="+n.Name, "--node-ip="+n.Host.IPv4.String(),
		"--root-dir="+filepath.Join(n.dir, "kubelet"), "--cert-dir="+filepath.Join(n.dir, "kubelet-certs"), "--v=1"); err != nil {
		return err
	}
	n.proxy, err = startProc(n.dir, "kube-proxy", n.Host.Netns, bins.proxy,
		"--config="+filepath.Join(n.dir, "kube-proxy.yaml"), "--v=1")
	return err
}

// waitSocket waits until containerd listens on its socket.
func waitSocket(path string, p *proc, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		if _, err := os.Stat(path); err == nil {
			return nil
		}
		if !p.running() {
			return fmt.Errorf("containerd exited before listening on %s", path)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("containerd did not listen on %s within %s", path, timeout)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// importImage imports an OCI archive into the CRI namespace (k8s.io) of a node's containerd,
// under the name its index gives.
func importImage(ctr, socket, archive string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, ctr, "--address", socket, "--namespace", "k8s.io", "images", "import", "--no-unpack=false", archive).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ctr images import %s: %v: %s", archive, err, out)
	}
	return nil
}

// SandboxImage is the pod sandbox every node's containerd uses: the test bed's pause, which
// tests import with the other images (TestbedImage builds it).
const SandboxImage = "docker.io/herald-lb/testbed:1"

func containerdConfig(n *Node) string {
	d := n.dir
	return fmt.Sprintf(`version = 2
root = %[1]q
state = %[2]q
[grpc]
  address = %[3]q
[ttrpc]
  address = %[4]q
[plugins."io.containerd.internal.v1.opt"]
  path = %[5]q
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = %[6]q
  # Without CAP_SYS_RESOURCE no sandbox may lower its oom_score_adj below the runtime's.
  restrict_oom_score_adj = true
  disable_apparmor = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = %[7]q
    conf_dir = %[8]q
`, filepath.Join(d, "containerd", "root"), filepath.Join(d, "containerd", "state"), n.socket, n.socket+".ttrpc",
		filepath.Join(d, "containerd", "opt"), SandboxImage, cniBinDir, filepath.Join(d, "cni"))
}

// cniConfig: a bridge with the node's pod range; pods' traffic to anything outside it is
// masqueraded to the node's address, so the lab's hosts and the API server (which route only
// the segment) can answer it.
func cniConfig(n *Node) string {
	return fmt.Sprintf(`{
  "cniVersion": "1.0.0",
  "name": "herald-%s",
  "plugins": [
    {"type": "bridge", "bridge": "cni0", "isGateway": true, "ipMasq": true, "hairpinMode": true,
     "ipam": {"type": "host-local", "dataDir": %q, "ranges": [[{"subnet": %q}]], "routes": [{"dst": "0.0.0.0/0"}]}},
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
`, n.Name, filepath.Join(n.dir, "cni-ipam"), n.PodCIDR)
}

func kubeletConfig(n *Node) string {
	return fmt.Sprintf(`apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
containerRuntimeEndpoint: unix://%s
cgroupDriver: cgroupfs
cgroupRoot: %s
failCgroupV1: false
podLogsDir: %s
address: %s
port: 10250
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {}
authorization:
  mode: Webhook
clusterDNS: [198.19.0.10]
clusterDomain: cluster.local
resolvConf: ""
failSwapOn: false
oomScoreAdj: 0
nodeStatusUpdateFrequency: 2s
nodeStatusReportFrequency: 10s
serializeImagePulls: false
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard: {memory.available: "1Mi", nodefs.available: "1%%", nodefs.inodesFree: "1%%", imagefs.available: "1%%"}
rotateCertificates: false
`, n.socket, n.cgroupRoot, filepath.Join(n.dir, "pod-logs"), n.Host.IPv4)
}

// proxyConfig: iptables mode; conntrack sysctls untouched (zero values), since most of
// them are not per network namespace. With --config, the kubeconfig must be in the file.
func proxyConfig(n *Node, kubeconfig string) string {
	return fmt.Sprintf(`apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection:
  kubeconfig: %s
mode: iptables
hostnameOverride: %s
bindAddress: %s
healthzBindAddress: 127.0.0.1:10256
metricsBindAddress: 127.0.0.1:10249
clusterCIDR: %s
oomScoreAdj: 0
conntrack:
  maxPerCore: 0
  min: 0
  tcpEstablishedTimeout: 0s
  tcpCloseWaitTimeout: 0s
`, kubeconfig, n.Name, n.Host.IPv4, clusterCIDR)
}
