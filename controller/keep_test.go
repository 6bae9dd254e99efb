package controller

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	k8sfake "k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/client-go/tools/record"

	metallbv1beta1 "github.com/herald-lb/herald/config/metallb/v1beta1"
)

func unitPool(name string, addrs ...string) *metallbv1beta1.IPAddressPool {
	return &metallbv1beta1.IPAddressPool{
		ObjectMeta: metav1.ObjectMeta{Name: name, CreationTimestamp: metav1.NewTime(time.Unix(1, 0))},
		Spec:       metallbv1beta1.IPAddressPoolSpec{Addresses: addrs},
	}
}

func (tc *testController) ingress(t *testing.T, name string) string {
	t.Helper()
	s, err := tc.client.CoreV1().Services("default").Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return unitIngress(s)
}

func unitIngress(s *corev1.Service) string {
	var ips []string
	for _, i := range s.Status.LoadBalancer.Ingress {
		ips = append(ips, i.IP)
	}
	return strings.Join(ips, ",")
}

// TestAddressFreedOnlyAfterStatusWrite: a Service that moves to another address keeps the
// old one reserved while the status write that removes it fails; another Service gets the
// old address only after the write succeeded.
func TestAddressFreedOnlyAfterStatusWrite(t *testing.T) {
	tc := newTestController(t, unitPool("p", "192.0.2.0/31"), unitPool("q", "198.51.100.0/32"))
	tc.syncPools(context.Background())
	x := tc.addService(t, "x")
	tc.sync(t, x)
	if got := tc.ingress(t, "x"); got != "192.0.2.0" {
		t.Fatalf("x = %q", got)
	}
	// x asks for another address while status writes fail.
	s, _, _ := tc.services.GetByKey(x)
	moved := s.(*corev1.Service).DeepCopy()
	moved.Annotations = map[string]string{"metallb.io/loadBalancerIPs": "198.51.100.0"}
	if _, err := tc.client.CoreV1().Services("default").Update(context.Background(), moved, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	_ = tc.services.Update(moved)
	fake := tc.client.(*k8sfake.Clientset)
	failing := true
	fake.PrependReactor("update", "services", func(a k8stesting.Action) (bool, runtime.Object, error) {
		if a.GetSubresource() == "status" && failing && a.(k8stesting.UpdateAction).GetObject().(*corev1.Service).Name == "x" {
			return true, nil, errors.New("injected: the API server is unavailable")
		}
		return false, nil, nil
	})
	if err := tc.syncService(context.Background(), x); err == nil {
		t.Fatal("syncService succeeded although the status write failed")
	}
	y := tc.addService(t, "y")
	tc.sync(t, y)
	if got := tc.ingress(t, "y"); got != "192.0.2.1" {
		t.Fatalf("y = %q, want 192.0.2.1: 192.0.2.0 is still in x's status", got)
	}
	z := tc.addService(t, "z")
	tc.sync(t, z)
	if got := tc.ingress(t, "z"); got != "" {
		t.Fatalf("z = %q, want nothing: the pool's other address is still in x's status", got)
	}
	failing = false
	tc.sync(t, x)
	if got := tc.ingress(t, "x"); got != "198.51.100.0" {
		t.Fatalf("x = %q after the write succeeded", got)
	}
	// The write freed 192.0.2.0 and queued the refused z again.
	if n := tc.queue.Len(); n == 0 {
		t.Fatal("nothing queued after an address was freed")
	}
	tc.sync(t, z)
	if got := tc.ingress(t, "z"); got != "192.0.2.0" {
		t.Fatalf("z = %q, want the freed 192.0.2.0", got)
	}
}

// TestPreferDualStackOneFamilyIsReported: one pool per family gives a PreferDualStack Service
// one family (as MetalLB); the condition stays True with reason MissingFamily and a Warning
// says why.
func TestPreferDualStackOneFamilyIsReported(t *testing.T) {
	tc := newTestController(t, unitPool("v4", "192.0.2.0/29"), unitPool("v6", "2001:db8::/125"))
	tc.syncPools(context.Background())
	key := tc.addService(t, "web", corev1.IPv4Protocol, corev1.IPv6Protocol)
	s, _, _ := tc.services.GetByKey(key)
	prefer := s.(*corev1.Service).DeepCopy()
	p := corev1.IPFamilyPolicyPreferDualStack
	prefer.Spec.IPFamilyPolicy = &p
	_ = tc.services.Update(prefer)
	tc.sync(t, key)
	got, _ := tc.client.CoreV1().Services("default").Get(context.Background(), "web", metav1.GetOptions{})
	c := meta.FindStatusCondition(got.Status.Conditions, ConditionAddressAllocated)
	msg := `assigned 192.0.2.0 from pool "v4"; ipFamilyPolicy PreferDualStack, but the Service has only an IPv4 address: no pool allowed for this Service has a free address of each family; all addresses of a Service come from one pool, as in MetalLB`
	if unitIngress(got) != "192.0.2.0" || c == nil || c.Status != metav1.ConditionTrue || c.Reason != "MissingFamily" || c.Message != msg {
		t.Fatalf("ingress %q, condition %+v", unitIngress(got), c)
	}
	events := tc.recorder.(*record.FakeRecorder).Events
	want := "Warning MissingFamily " + msg
	for {
		select {
		case e := <-events:
			if e == want {
				return
			}
		default:
			t.Fatalf("no event %q", want)
		}
	}
}
