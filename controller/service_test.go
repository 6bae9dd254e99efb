package controller

import (
	"reflect"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	metallbv1beta1 "github.com/herald-lb/herald/config/metallb/v1beta1"
	"github.com/herald-lb/herald/ipam"
)

func lbService(mod func(*corev1.Service)) *corev1.Service {
	s := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "web"},
		Spec:       corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer},
	}
	if mod != nil {
		mod(s)
	}
	return s
}

func TestOwns(t *testing.T) {
	herald, other := DefaultLoadBalancerClass, "example.com/other"
	tests := []struct {
		name          string
		handleNoClass bool
		svc           *corev1.Service
		want          bool
	}{
		{"no class handled", true, lbService(nil), true},
		{"no class not handled", false, lbService(nil), false},
		{"our class", false, lbService(func(s *corev1.Service) { s.Spec.LoadBalancerClass = &herald }), true},
		{"other class", true, lbService(func(s *corev1.Service) { s.Spec.LoadBalancerClass = &other }), false},
		{"not a LoadBalancer", true, lbService(func(s *corev1.Service) { s.Spec.Type = corev1.ServiceTypeClusterIP }), false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o := DefaultOptions()
			o.HandleNoClass = tc.handleNoClass
			if got := o.owns(tc.svc); got != tc.want {
				t.Fatalf("owns = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestToIPAM(t *testing.T) {
	policy := corev1.IPFamilyPolicyPreferDualStack
	tests := []struct {
		name string
		mod  func(*corev1.Service)
		want func(*ipam.Service)
	}{
		{
			name: "metallb.io annotations win over the legacy spelling and spec.loadBalancerIP",
			mod: func(s *corev1.Service) {
				s.Annotations = map[string]string{
					"metallb.io/loadBalancerIPs": "192.0.2.1, 2001:db8::1", "metallb.universe.tf/loadBalancerIPs": "192.0.2.9",
					"metallb.io/address-pool": "a", "metallb.universe.tf/address-pool": "b",
					"metallb.universe.tf/allow-shared-ip": "k",
				}
				s.Spec.LoadBalancerIP = "192.0.2.7"
			},
			want: func(w *ipam.Service) {
				w.RequestedIPs = []string{"192.0.2.1", "2001:db8::1"}
				w.RequestedPool = "a"
				w.SharingKey = "k"
			},
		},
		{
			name: "legacy annotation",
			mod: func(s *corev1.Service) {
				s.Annotations = map[string]string{"metallb.universe.tf/loadBalancerIPs": "192.0.2.9"}
			},
			want: func(w *ipam.Service) { w.RequestedIPs = []string{"192.0.2.9"} },
		},
		{
			name: "spec.loadBalancerIP",
			mod:  func(s *corev1.Service) { s.Spec.LoadBalancerIP = "192.0.2.7" },
			want: func(w *ipam.Service) { w.RequestedIPs = []string{"192.0.2.7"} },
		},
		{
			name: "ports, policy, families",
			mod: func(s *corev1.Service) {
				s.Spec.Ports = []corev1.ServicePort{{Port: 53, Protocol: corev1.ProtocolUDP}, {Port: 80}}
				s.Spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyLocal
				s.Spec.Selector = map[string]string{"app": "dns"}
				s.Spec.IPFamilies = []corev1.IPFamily{corev1.IPv6Protocol, corev1.IPv4Protocol}
				s.Spec.IPFamilyPolicy = &policy
			},
			want: func(w *ipam.Service) {
				w.Ports = []ipam.Port{{Protocol: "UDP", Port: 53}, {Protocol: "TCP", Port: 80}}
				w.TrafficPolicy = ipam.TrafficLocal
				w.Selector = map[string]string{"app": "dns"}
				w.Families = []ipam.Family{ipam.IPv6, ipam.IPv4}
				w.FamilyPolicy = ipam.PreferDualStack
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			want := ipam.Service{Key: ipam.ServiceKey{Namespace: "default", Name: "web"}, TrafficPolicy: ipam.TrafficCluster, NamespaceLabels: map[string]string{"team": "a"}}
			tc.want(&want)
			got := toIPAM(lbService(tc.mod), map[string]string{"team": "a"})
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("got  %+v\nwant %+v", got, want)
			}
		})
	}
}

func TestToPoolRejectsBadSelector(t *testing.T) {
	p := &metallbv1beta1.IPAddressPool{ObjectMeta: metav1.ObjectMeta{Name: "p"}}
	p.Spec.Addresses = []string{"192.0.2.0/24"}
	p.Spec.AllocateTo = &metallbv1beta1.ServiceAllocation{ServiceSelectors: []metav1.LabelSelector{
		{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "a", Operator: "Bogus"}}},
	}}
	_, err := toPool(p)
	if err == nil || !strings.Contains(err.Error(), `pool "p": spec.serviceAllocation.serviceSelectors[0]`) {
		t.Fatalf("err = %v", err)
	}
	p.Spec.AllocateTo = &metallbv1beta1.ServiceAllocation{Priority: 3, Namespaces: []string{"x"}}
	got, err := toPool(p)
	if err != nil || got.Priority != 3 || !got.AutoAssign || got.Namespaces[0] != "x" {
		t.Fatalf("toPool = %+v, %v", got, err)
	}
}

func TestOptionsValidate(t *testing.T) {
	o := DefaultOptions()
	if err := o.Validate(); err != nil {
		t.Fatalf("defaults invalid: %v", err)
	}
	o.HandleNoClass, o.LoadBalancerClass = false, ""
	o.RenewDeadline = o.LeaseDuration
	o.Workers = 0
	o.MetricsBindAddress = "7472"
	err := o.Validate()
	for _, want := range []string{"no Service would be handled", "--renew-deadline", "--workers must be at least 1", `--metrics-bind-address "7472": want host:port`} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate() = %v, want it to mention %q", err, want)
		}
	}
}
