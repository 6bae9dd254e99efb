package metallb

import (
	"context"
	"errors"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	fakediscovery "k8s.io/client-go/discovery/fake"
	clienttesting "k8s.io/client-go/testing"
)

func served(gv schema.GroupVersion, resources ...string) *metav1.APIResourceList {
	l := &metav1.APIResourceList{GroupVersion: gv.String()}
	for _, r := range resources {
		l.APIResources = append(l.APIResources, metav1.APIResource{Name: r})
	}
	return l
}

func TestCheckServed(t *testing.T) {
	all := []schema.GroupVersionResource{IPAddressPools, L2Advertisements, BGPPeers}
	v1beta1, v1beta2 := IPAddressPools.GroupVersion(), BGPPeers.GroupVersion()
	tests := []struct {
		name   string
		served []*metav1.APIResourceList
		want   string // "" means no error
	}{
		{"everything", []*metav1.APIResourceList{served(v1beta1, "ipaddresspools", "l2advertisements", "ipaddresspools/status"), served(v1beta2, "bgppeers")}, ""},
		{"one CRD missing", []*metav1.APIResourceList{served(v1beta1, "ipaddresspools"), served(v1beta2, "bgppeers")},
			"the speaker cannot start: CRD l2advertisements.metallb.io (version v1beta1) not installed"},
		{"a version not served", []*metav1.APIResourceList{served(v1beta1, "ipaddresspools", "l2advertisements")},
			"CRD bgppeers.metallb.io (version v1beta2) not installed"},
		{"no metallb.io at all", nil,
			"CRDs ipaddresspools.metallb.io (version v1beta1), l2advertisements.metallb.io (version v1beta1), bgppeers.metallb.io (version v1beta2) not installed"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := &fakediscovery.FakeDiscovery{Fake: &clienttesting.Fake{Resources: tc.served}}
			err := CheckServed(context.Background(), d, "the speaker", all)
			if (tc.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.want)) {
				t.Fatalf("CheckServed() = %v, want %q", err, tc.want)
			}
		})
	}
}

// A failing discovery is retried, then reported as such, not as a missing CRD.
func TestCheckServedDiscoveryFails(t *testing.T) {
	old := discoveryBackoff
	discoveryBackoff.Duration, discoveryBackoff.Steps = 0, 3
	defer func() { discoveryBackoff = old }()
	fake := &clienttesting.Fake{}
	calls := 0
	fake.AddReactor("get", "resource", func(clienttesting.Action) (bool, runtime.Object, error) {
		calls++
		return true, nil, errors.New("connection refused")
	})
	err := CheckServed(context.Background(), &fakediscovery.FakeDiscovery{Fake: fake}, "the controller", []schema.GroupVersionResource{IPAddressPools})
	if err == nil || !strings.Contains(err.Error(), "connection refused") || strings.Contains(err.Error(), "not installed") {
		t.Fatalf("CheckServed() = %v, want the discovery error", err)
	}
	if calls < 2 {
		t.Fatalf("discovery asked %d times, want retries", calls)
	}
}
