package app

import (
	"bytes"
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	kubefake "k8s.io/client-go/kubernetes/fake"

	"github.com/herald-lb/herald/config"
	metallbfake "github.com/herald-lb/herald/config/metallb/client/clientset/versioned/fake"
	metallbv1beta1 "github.com/herald-lb/herald/config/metallb/v1beta1"
	"github.com/herald-lb/herald/controller"
	"github.com/herald-lb/herald/heartbeat"
)

// TestMigrationCheck: what `herald migrate check` predicts on a MetalLB-shaped cluster read
// from fake clients (the real API server and lab run it end to end in test/e2e): which
// Services keep their addresses (the controller's rule), their pool and advertisement, which
// node announces them, and the MetalLB settings Herald treats differently.
func TestMigrationCheck(t *testing.T) {
	const cfgNS, heraldNS = "metallb-system", "herald-system"
	t0 := metav1.NewTime(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	lb := func(name, ip, annotatedPool string, class *string, created metav1.Time) *corev1.Service {
		s := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: name, CreationTimestamp: created,
			Annotations: map[string]string{"metallb.io/ip-allocated-from-pool": annotatedPool}},
			Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer, LoadBalancerClass: class,
				Ports: []corev1.ServicePort{{Port: 80, Protocol: corev1.ProtocolTCP}}}}
		if ip != "" {
			s.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{{IP: ip}}
		}
		return s
	}
	other := "example.com/other"
	now := time.Now()
	hb, err := heartbeat.Encode(heartbeat.Heartbeat{NodeName: "n1", RenewTime: now, LeaseDuration: time.Hour}, heraldNS)
	if err != nil {
		t.Fatal(err)
	}
	kube := kubefake.NewClientset([]runtime.Object{
		&corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n1"}, Status: corev1.NodeStatus{Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue}}}},
		&corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n2"}, Spec: corev1.NodeSpec{Unschedulable: true},
			Status: corev1.NodeStatus{Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue}}}},
		hb,
		lb("web", "192.0.2.10", "prod", nil, t0),
		lb("lied", "192.0.2.11", "lab", nil, t0), // annotation names another pool
		lb("outside", "203.0.113.9", "prod", nil, t0),                           // in no pool
		lb("dup", "192.0.2.10", "prod", nil, metav1.NewTime(t0.Add(time.Hour))), // a later Service on web's address, no sharing key
		lb("new", "", "", nil, t0),
		lb("theirs", "192.0.2.12", "prod", &other, t0),
	}...)
	mlb := metallbfake.NewSimpleClientset([]runtime.Object{
		&metallbv1beta1.IPAddressPool{ObjectMeta: metav1.ObjectMeta{Namespace: cfgNS, Name: "prod"}, Spec: metallbv1beta1.IPAddressPoolSpec{Addresses: []string{"192.0.2.0/28"}}},
		&metallbv1beta1.IPAddressPool{ObjectMeta: metav1.ObjectMeta{Namespace: cfgNS, Name: "lab"}, Spec: metallbv1beta1.IPAddressPoolSpec{Addresses: []string{"198.51.100.0/28"}}},
		&metallbv1beta1.L2Advertisement{ObjectMeta: metav1.ObjectMeta{Namespace: cfgNS, Name: "l2"}, Spec: metallbv1beta1.L2AdvertisementSpec{IPAddressPools: []string{"prod"}}},
		&metallbv1beta1.IPAddressPool{ObjectMeta: metav1.ObjectMeta{Namespace: heraldNS, Name: "prod"}, Spec: metallbv1beta1.IPAddressPoolSpec{Addresses: []string{"203.0.113.0/24"}}},
	}...)

	o := &options{}
	copts, err := speakerConfigOptions(o)
	if err != nil {
		t.Fatal(err)
	}
	c, err := config.Default(copts)
	if err != nil {
		t.Fatal(err)
	}
	c.ConfigNamespace = cfgNS
	r, err := checkMigration(context.Background(), c, copts.Registry, kube, mlb, controller.DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	if r.APIVersion != MigrateAPIVersion || r.Namespace != heraldNS || r.ConfigNamespace != cfgNS {
		t.Errorf("report header %q %q %q", r.APIVersion, r.Namespace, r.ConfigNamespace)
	}
	byName := map[string]ServicePlan{}
	for _, s := range r.Services {
		byName[s.Name] = s
	}
	for _, tc := range []struct {
		name         string
		owned, keeps bool
		pool         string
		advs         []string
		note         string
	}{
		{"web", true, true, "prod", []string{"L2/l2"}, ""},
		{"lied", true, true, "prod", []string{"L2/l2"}, `names pool "lab" but the address is in pool "prod"`},
		// Kept by the controller's rule, and reported: no pool of the namespace contains it.
		{"outside", true, true, "", []string{}, "kept, and reported"},
		{"dup", true, false, "", []string{"L2/l2"}, "not kept as is"},
		{"new", true, false, "", []string{}, "no address now"},
		{"theirs", false, false, "", []string{}, "is not Herald's"},
	} {
		p, ok := byName[tc.name]
		if !ok {
			t.Errorf("%s: not in the report", tc.name)
			continue
		}
		if p.Owned != tc.owned || p.KeepsIP != tc.keeps || p.Pool != tc.pool || !slices.Equal(p.Advertisements, tc.advs) {
			t.Errorf("%s: owned %v keeps %v pool %q advertisements %v, want %v %v %q %v", tc.name, p.Owned, p.KeepsIP, p.Pool, p.Advertisements, tc.owned, tc.keeps, tc.pool, tc.advs)
		}
		if tc.note != "" && !strings.Contains(strings.Join(p.Notes, "\n"), tc.note) {
			t.Errorf("%s: notes %q lack %q", tc.name, p.Notes, tc.note)
		}
	}
	if got := byName["web"].Announcers; len(got) != 1 || !strings.HasPrefix(got[0], "192.0.2.10 L2 arp") {
		t.Errorf("web announcers %v", got)
	}
	if got := byName["outside"].Announcers; len(got) != 1 || !strings.Contains(got[0], "no advertisement covers pool (none)") {
		t.Errorf("outside announcers %v", got)
	}
	if r.Summary.Services != 6 || r.Summary.Owned != 5 || r.Summary.KeepIP != 3 || r.Summary.Lose != 1 || r.Summary.Pending != 1 {
		t.Errorf("summary %+v", r.Summary)
	}
	settings := map[string][]string{}
	for _, s := range r.Settings {
		settings[s.Setting] = s.Found
	}
	for setting, want := range map[string][]string{
		"metallb.io configuration outside the configuration namespace": {"IPAddressPool/" + heraldNS + "/prod"},
		"metallb.io/ip-allocated-from-pool annotation":                 {`Service/shop/lied names "lab", its address is in "prod"`},
		"L2Advertisement without spec.interfaces":                      {"L2Advertisement/" + cfgNS + "/l2"},
		"cordoned nodes":                        {"Node/n2"},
		"Services of another loadBalancerClass": {`Service/shop/theirs (class "example.com/other")`},
	} {
		if got := settings[setting]; !slices.Equal(got, want) {
			t.Errorf("setting %q: found %q, want %q", setting, got, want)
		}
	}
	var out bytes.Buffer
	printMigration(&out, r)
	t.Log(out.String())
	for _, want := range []string{"configuration from namespace metallb-system", "shop/web", "MetalLB settings Herald treats differently", "IPAddressPool/herald-system/prod"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("table output lacks %q:\n%s", want, out.String())
		}
	}
}
