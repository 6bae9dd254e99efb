// Command cluster runs the test bed's real cluster as a playground (`make cluster`): lab nodes
// with kubelet, containerd and kube-proxy, Herald installed from the chart with the image
// `make image` built, a sample pool and an echo Service behind a LoadBalancer address. It
// writes what to try into <state>/info and its pid into <state>/pid, then runs until SIGINT or
// SIGTERM (`make cluster-down`), which tear everything down.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/herald-lb/herald/test/cluster"
)

func main() {
	nodes := flag.Int("nodes", 2, "number of nodes")
	state := flag.String("state", "", "directory for the pid, info and kubeconfig files (required)")
	flag.Parse()
	if err := run(*nodes, *state); err != nil {
		fmt.Fprintln(os.Stderr, "cluster:", err)
		os.Exit(1)
	}
}

func run(nodes int, state string) error {
	if state == "" {
		return errors.New("-state is required")
	}
	if err := os.MkdirAll(state, 0o700); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(state, "pid"), []byte(strconv.Itoa(os.Getpid())), 0o600); err != nil {
		return err
	}
	herald, err := cluster.HeraldImage()
	if err != nil {
		return err
	}
	testbed, err := cluster.TestbedImage(state)
	if err != nil {
		return err
	}
	fmt.Printf("starting a %d-node cluster…\n", nodes)
	c, err := cluster.New(cluster.Options{Nodes: nodes, Images: []string{herald, testbed}})
	if err != nil {
		return err
	}
	if err := setUp(c, state); err != nil {
		return errors.Join(err, c.Close())
	}
	// The lab's SIGINT/SIGTERM handler tears the cluster down and exits.
	select {}
}

// setUp installs Herald and the sample Service, and writes the info file.
func setUp(c *cluster.Cluster, state string) error {
	kubeconfig := filepath.Join(state, "kubeconfig")
	data, err := os.ReadFile(c.Kubeconfig)
	if err != nil {
		return err
	}
	if err := os.WriteFile(kubeconfig, data, 0o600); err != nil {
		return err
	}
	root, err := os.Getwd()
	if err != nil {
		return err
	}
	steps := [][]string{
		{"helm", "install", "herald", filepath.Join(root, "deploy/helm/herald"), "--namespace", "herald-system", "--create-namespace",
			"--set", "image.pullPolicy=Never", "--wait", "--timeout", "5m"},
		{"kubectl", "apply", "-f", filepath.Join(root, "test/cluster/cmd/cluster/sample.yaml")},
	}
	for _, s := range steps {
		if err := tool(kubeconfig, s...); err != nil {
			return err
		}
	}
	ip, err := serviceIP(kubeconfig, 3*time.Minute)
	if err != nil {
		return err
	}
	info := fmt.Sprintf(`Herald runs on a %d-node cluster (kubelet + containerd in lab namespaces %s).
  export KUBECONFIG=%s
  kubectl get nodes,pods -A -o wide
  kubectl -n demo get svc echo                      # LoadBalancer address %s
  ip netns exec %s curl -s http://%s/   # from the lab's client
  kubectl -n herald-system get servicel2statuses
  make cluster-down                                 # tears it all down
`, len(c.Nodes), c.Lab.Prefix+"*", kubeconfig, ip, c.Lab.Client.Netns, ip)
	if err := os.WriteFile(filepath.Join(state, "info"), []byte(info), 0o600); err != nil {
		return err
	}
	fmt.Print(info)
	return nil
}

func tool(kubeconfig string, args ...string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, args[0], args[1:]...)
	cmd.Env = append(os.Environ(), "KUBECONFIG="+kubeconfig)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s: %w\n%s", strings.Join(args, " "), err, out)
	}
	return nil
}

// serviceIP waits for demo/echo's LoadBalancer address.
func serviceIP(kubeconfig string, timeout time.Duration) (string, error) {
	deadline := time.Now().Add(timeout)
	for {
		cmd := exec.Command("kubectl", "-n", "demo", "get", "svc", "echo", "-o", "jsonpath={.status.loadBalancer.ingress[0].ip}")
		cmd.Env = append(os.Environ(), "KUBECONFIG="+kubeconfig)
		out, err := cmd.Output()
		if ip := strings.TrimSpace(string(out)); err == nil && ip != "" {
			return ip, nil
		}
		if time.Now().After(deadline) {
			return "", fmt.Errorf("demo/echo got no address within %s (kubectl: %v)", timeout, err)
		}
		time.Sleep(time.Second)
	}
}
