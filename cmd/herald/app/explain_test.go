package app

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/herald-lb/herald/controller"
)

func TestWhyNoIP(t *testing.T) {
	lb := func(conds ...metav1.Condition) *corev1.Service {
		return &corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "web"},
			Spec:       corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer},
			Status:     corev1.ServiceStatus{Conditions: conds},
		}
	}
	refused := func(reason, msg string) metav1.Condition {
		return metav1.Condition{Type: controller.ConditionAddressAllocated, Status: metav1.ConditionFalse, Reason: reason, Message: msg}
	}
	tests := []struct {
		name, wantReason, wantMessage string
		svc                           *corev1.Service
	}{
		{"exhausted", "PoolExhausted", `service shop/web has no load-balancer IP: the controller refused it: PoolExhausted: pool "small" is exhausted: 2 of 2 addresses in use`,
			lb(refused("PoolExhausted", `pool "small" is exhausted: 2 of 2 addresses in use`))},
		{"port conflict", "PortConflict", "refused it: PortConflict: port TCP/53 of 192.0.2.53 is already used by shop/dns",
			lb(refused("PortConflict", "port TCP/53 of 192.0.2.53 is already used by shop/dns"))},
		{"not handled", "", "the controller has not handled it yet (no herald.dev/AddressAllocated condition", lb()},
		{"other conditions only", "", "has not handled it yet", lb(metav1.Condition{Type: "example.com/Other", Status: metav1.ConditionFalse, Reason: "X"})},
		{"allocated, status on its way", "Allocated", "condition is True (Allocated: assigned 192.0.2.1",
			lb(metav1.Condition{Type: controller.ConditionAddressAllocated, Status: metav1.ConditionTrue, Reason: "Allocated", Message: `assigned 192.0.2.1 from pool "p"`})},
		{"not a LoadBalancer", "", "is of type ClusterIP, not LoadBalancer",
			&corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "web"}, Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeClusterIP}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			msg, reason := whyNoIP(tc.svc)
			if reason != tc.wantReason || !strings.Contains(msg, tc.wantMessage) {
				t.Errorf("whyNoIP() = %q, %q; want reason %q and a message containing %q", msg, reason, tc.wantReason, tc.wantMessage)
			}
			if strings.Contains(msg, "nothing to announce") {
				t.Errorf("message %q still says nothing to announce", msg)
			}
		})
	}
}
