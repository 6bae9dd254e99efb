package snapshot

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	metallbv1beta1 "github.com/herald-lb/herald/config/metallb/v1beta1"
)

func TestProblemsNameTheirObjects(t *testing.T) {
	b := NewBuilder(nil)
	b.SetL2Advertisement(&metallbv1beta1.L2Advertisement{
		ObjectMeta: metav1.ObjectMeta{Namespace: "herald-system", Name: "bad"},
		Spec: metallbv1beta1.L2AdvertisementSpec{NodeSelectors: []metav1.LabelSelector{{
			MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "zone", Operator: "Near"}},
		}}},
	})
	b.SetService(&corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "web"},
		Spec:       corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer},
		Status:     corev1.ServiceStatus{LoadBalancer: corev1.LoadBalancerStatus{Ingress: []corev1.LoadBalancerIngress{{IP: "192.0.2.300"}}}},
	})
	got := b.Problems()
	want := []struct{ kind, ns, name string }{{"L2Advertisement", "herald-system", "bad"}, {"Service", "shop", "web"}}
	if len(got) != len(want) || len(b.Errors()) != len(want) {
		t.Fatalf("Problems() = %+v, Errors() = %v; want %v", got, b.Errors(), want)
	}
	for i, w := range want {
		if got[i].Kind != w.kind || got[i].Namespace != w.ns || got[i].Name != w.name || got[i].Err == nil {
			t.Errorf("problem %d = %+v, want %v", i, got[i], w)
		}
	}
}
