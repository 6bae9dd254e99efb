package cluster

import (
	"testing"
)

func TestUnescapeMount(t *testing.T) {
	for in, want := range map[string]string{
		"/tmp/herald-cluster-1/node-0/kubelet": "/tmp/herald-cluster-1/node-0/kubelet",
		`/tmp/with\040space/x`:                 "/tmp/with space/x",
		`/tmp/tab\011and\134backslash`:         "/tmp/tab\tand\\backslash",
		`/tmp/not-octal\9x`:                    `/tmp/not-octal\9x`,
	} {
		if got := unescapeMount(in); got != want {
			t.Errorf("unescapeMount(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestPodCIDRsAreDisjointAndInTheClusterCIDR(t *testing.T) {
	seen := map[string]bool{}
	for i := 0; i < 50; i++ {
		p := podCIDR(i)
		if seen[p.String()] || p.Bits() != 24 || !p.Addr().Is4() || p.Addr().As4()[0] != 198 || p.Addr().As4()[1] != 18 {
			t.Fatalf("node %d: pod range %s repeats or leaves %s", i, p, clusterCIDR)
		}
		seen[p.String()] = true
	}
}
