package controller

import (
	"errors"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/herald-lb/herald/ipam"
)

// maxMessage bounds a refusal message: user input is quoted shortened, never a whole
// annotation into an Event or a condition.
const maxMessage = 1024

// FuzzServiceAnnotations: any value of metallb.io/loadBalancerIPs, metallb.io/address-pool and
// metallb.io/allow-shared-ip (in either spelling) is assigned or refused with a reason and a
// short message, never a panic; what is assigned lies in the pool it is reported from, and a
// refusal leaves the Service holding nothing and the other Service untouched.
func FuzzServiceAnnotations(f *testing.F) {
	f.Add("192.0.2.5", "", "", false)
	f.Add("192.0.2.5,2001:db8::5", "dual", "key", false)
	f.Add(" 192.0.2.5 , ", "default", "", true)
	f.Add("::ffff:192.0.2.6", "", "k", false)
	f.Add("192.0.2.1,192.0.2.2", "", "", false)
	f.Add("not-an-ip", "nope", strings.Repeat("k", 300), true)
	f.Add("", strings.Repeat("p", 5000), "", false)
	f.Add("fe80::1%eth0", "", "", false)
	f.Fuzz(func(t *testing.T, ips, pool, key string, legacy bool) {
		a := ipam.New()
		pools := []ipam.Pool{
			{Name: "default", Addresses: []string{"192.0.2.0/28"}, AutoAssign: true},
			{Name: "dual", Addresses: []string{"198.51.100.0/28", "2001:db8::/124"}, AutoAssign: true},
		}
		if problems, _ := a.SetPools(pools); len(problems) > 0 {
			t.Fatal(problems)
		}
		otherKey := ipam.ServiceKey{Namespace: "default", Name: "other"}
		other, err := a.Assign(ipam.Service{Key: otherKey, SharingKey: "k", Ports: []ipam.Port{{Protocol: "TCP", Port: 80}}})
		if err != nil {
			t.Fatal(err)
		}
		prefix := "metallb.io/"
		if legacy {
			prefix = "metallb.universe.tf/"
		}
		dual := corev1.IPFamilyPolicyPreferDualStack
		svc := &corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "fuzzed", Annotations: map[string]string{
				prefix + "loadBalancerIPs": ips, prefix + "address-pool": pool, prefix + "allow-shared-ip": key,
			}},
			Spec: corev1.ServiceSpec{
				Type: corev1.ServiceTypeLoadBalancer, IPFamilyPolicy: &dual,
				IPFamilies: []corev1.IPFamily{corev1.IPv4Protocol, corev1.IPv6Protocol},
				Ports:      []corev1.ServicePort{{Protocol: corev1.ProtocolTCP, Port: 80}},
			},
		}
		req := toIPAM(svc, nil)
		res, err := a.Assign(req)
		if err != nil {
			var e *ipam.Error
			if !errors.As(err, &e) || e.Reason == "" || len(e.Message) > maxMessage {
				t.Fatalf("refusal %T %+v", err, err)
			}
			if _, held := a.Lookup(req.Key); held {
				t.Fatal("a refused Service holds addresses")
			}
		} else {
			name, _ := a.PoolOf(res.IPs...)
			if name == "" || name != res.Pool || res.Kept != nil {
				t.Fatalf("assigned %v from pool %q, which is not the pool holding them (%q), kept %v", res.IPs, res.Pool, name, res.Kept)
			}
		}
		if got, ok := a.Lookup(otherKey); !ok || got.IPs[0] != other.IPs[0] {
			t.Fatalf("the other Service was disturbed: %+v", got)
		}
	})
}
