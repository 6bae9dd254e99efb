//go:build e2e

package lab_test

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/herald-lb/herald/test/kubeapi"
	"github.com/herald-lb/herald/test/lab"
)

func TestMain(m *testing.M) {
	if os.Getenv("HERALD_LAB_CHILD") == "1" {
		holdLab()
	}
	os.Exit(kubeapi.Main(m))
}

func TestE2EPingEveryPairOverIPv4AndIPv6(t *testing.T) {
	l := lab.New(t, lab.Options{Nodes: 3})
	hosts := l.Hosts()
	if len(hosts) != 5 {
		t.Fatalf("got %d hosts, want router + client + 3 nodes", len(hosts))
	}
	// All pairs at once, so simultaneous ARP/ND in both directions is exercised too.
	var wg sync.WaitGroup
	for _, from := range hosts {
		for _, to := range hosts {
			if from == to {
				continue
			}
			for _, dst := range []string{to.IPv4.String(), to.IPv6.String()} {
				wg.Go(func() {
					out, err := from.Command(context.Background(), "ping", "-c", "1", "-W", "2", dst).CombinedOutput()
					if err != nil {
						t.Errorf("%s -> %s (%s): %v\n%s", from.Name, to.Name, dst, err, out)
					}
				})
			}
		}
	}
	wg.Wait()
	// Every neighbour entry must name the owner's MAC: nothing else (such as the root
	// namespace, which may own a lab address) may answer for a lab address.
	for _, from := range hosts {
		for _, to := range hosts {
			if from == to {
				continue
			}
			for _, dst := range []string{to.IPv4.String(), to.IPv6.String()} {
				out := from.Run(t, "ip", "neigh", "show", dst, "dev", "eth0")
				if !strings.Contains(out, "lladdr "+to.MAC.String()) {
					t.Errorf("%s's neighbour entry for %s (%s) is %q, want MAC %s", from.Name, to.Name, dst, out, to.MAC)
				}
			}
		}
	}
	// Nodes have no way out: only the data network and the gateway host route.
	if out := l.Nodes[0].Run(t, "ip", "route", "show", "default"); strings.TrimSpace(out) != "" {
		t.Fatalf("node-0 has a default route: %s", out)
	}
}

func TestE2ENodeReachesTheAPIServer(t *testing.T) {
	env := kubeapi.Env(t)
	l := lab.New(t, lab.Options{Nodes: 1})
	url := env.LabServer(l.Gateway) + "/readyz"
	out := l.Nodes[0].Run(t, "curl", "-sS", "--max-time", "10", "--cacert", env.CAFile, url)
	if strings.TrimSpace(out) != "ok" {
		t.Fatalf("GET %s from node-0: %q, want ok", url, out)
	}
	// The client namespace has no route to the gateway.
	if out, err := l.Client.Command(context.Background(), "curl", "-sS", "--max-time", "3", "--cacert", env.CAFile, url).CombinedOutput(); err == nil {
		t.Fatalf("client reached the API server, want no route: %s", out)
	}
}

func TestE2ECleanupLeavesNothingBehind(t *testing.T) {
	l, err := lab.Create(lab.Options{Nodes: 3, ExtraInterfaces: map[int][]string{1: {"eth1"}}})
	if err != nil {
		t.Fatal(err)
	}
	// A process that would survive if cleanup did not kill it.
	sleeper := l.Nodes[1].Command(context.Background(), "sleep", "300")
	if err := sleeper.Start(); err != nil {
		t.Fatal(err)
	}
	go sleeper.Wait()
	node1 := l.Nodes[1]
	if got := len(node1.Interfaces); got != 2 || node1.Interfaces[1].IPv4.String() != "198.51.100.11" {
		t.Fatalf("node-1 interfaces %+v, want eth0 and eth1 at 198.51.100.11", node1.Interfaces)
	}
	l.Client.Run(t, "ping", "-c", "1", "-W", "2", node1.Interfaces[1].IPv4.String())
	if netns := listNetns(t, l.Prefix); len(netns) != 5 {
		t.Fatalf("namespaces with prefix %s: %v, want 5", l.Prefix, netns)
	}

	if err := l.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	if netns := listNetns(t, l.Prefix); len(netns) != 0 {
		t.Errorf("namespaces left: %v", netns)
	}
	if links := listLinks(t, l.Prefix); len(links) != 0 {
		t.Errorf("links left: %v", links)
	}
	if _, err := os.Stat(lab.StateRoot + "/" + itoa(l.ID)); !os.IsNotExist(err) {
		t.Errorf("state directory left: %v", err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for sleeper.ProcessState == nil && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if sleeper.ProcessState == nil {
		t.Errorf("process %d in node-1 survived cleanup", sleeper.Process.Pid)
	}
	if out, _ := exec.Command("ip", "rule", "show").Output(); strings.Contains(string(out), l.Gateway.String()+" ") {
		t.Errorf("policy rule left:\n%s", out)
	}
}

func TestE2ECleanupRefusesForeignNamespace(t *testing.T) {
	l, err := lab.Create(lab.Options{Nodes: 1})
	if err != nil {
		t.Fatal(err)
	}
	// Someone else replaces node-0's namespace with their own under the same name, and adds
	// another one with the lab's prefix.
	pid := startIn(t, l.Nodes[0].Netns)
	mustIP(t, "netns", "del", l.Nodes[0].Netns)
	mustIP(t, "netns", "add", l.Nodes[0].Netns)
	foreign := l.Prefix + "foreign"
	mustIP(t, "netns", "add", foreign)
	t.Cleanup(func() {
		exec.Command("ip", "netns", "del", l.Nodes[0].Netns).Run()
		exec.Command("ip", "netns", "del", foreign).Run()
		exec.Command("kill", "-9", itoa(pid)).Run()
	})

	err = l.Close()
	if err == nil || !strings.Contains(err.Error(), "refused") {
		t.Fatalf("close: %v, want a refusal for %s", err, l.Nodes[0].Netns)
	}
	got := listNetns(t, l.Prefix)
	if strings.Join(got, ",") != strings.Join(sorted(l.Nodes[0].Netns, foreign), ",") {
		t.Fatalf("namespaces after close: %v, want only the two foreign ones", got)
	}
	if links := listLinks(t, l.Prefix); len(links) != 0 {
		t.Errorf("links left: %v", links)
	}
}

func BenchmarkE2ELabSetupTeardown(b *testing.B) {
	for _, nodes := range []int{3, 6} {
		b.Run(itoa(nodes)+"nodes", func(b *testing.B) {
			var setup, teardown time.Duration
			for b.Loop() {
				began := time.Now()
				l, err := lab.Create(lab.Options{Nodes: nodes})
				if err != nil {
					b.Fatal(err)
				}
				setup += time.Since(began)
				began = time.Now()
				if err := l.Close(); err != nil {
					b.Fatal(err)
				}
				teardown += time.Since(began)
			}
			b.ReportMetric(float64(setup.Milliseconds())/float64(b.N), "setup-ms/op")
			b.ReportMetric(float64(teardown.Milliseconds())/float64(b.N), "teardown-ms/op")
		})
	}
}
