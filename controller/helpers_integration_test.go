//go:build integration

package controller

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/herald-lb/herald/config/metallb/client/clientset/versioned"
	metallbv1beta1 "github.com/herald-lb/herald/config/metallb/v1beta1"
	"github.com/herald-lb/herald/test/kubeapi"
)

func TestMain(m *testing.M) { os.Exit(kubeapi.Main(m)) }

// fixture is one test's world: its own namespace (Lease, pools and Services) and its own
// loadBalancerClass, so controllers of different tests sharing the API server never see each
// other's Services.
type fixture struct {
	t      testing.TB
	env    *kubeapi.Environment
	client kubernetes.Interface
	mlb    versioned.Interface
	ns     string
	class  string
	// timeout bounds every wait.
	timeout time.Duration
}

func newFixture(t testing.TB) *fixture {
	env := kubeapi.Env(t)
	env.InstallCRDs(t)
	ns := env.Namespace(t)
	return &fixture{
		t: t, env: env, client: env.Client(t),
		mlb: versioned.NewForConfigOrDie(env.AdminConfig()),
		ns:  ns, class: "herald.dev/" + ns, timeout: 20 * time.Second,
	}
}

func (f *fixture) options(identity string) Options {
	o := DefaultOptions()
	o.Namespace = f.ns
	o.LoadBalancerClass = f.class
	o.HandleNoClass = false
	o.Identity = identity
	o.LeaseDuration, o.RenewDeadline, o.RetryPeriod = 3*time.Second, 2*time.Second, 250*time.Millisecond
	o.PoolStatusInterval = time.Second
	// Several controllers run at once in this process; the metrics test gives its own a listener.
	o.MetricsBindAddress = ""
	return o
}

// start runs a controller in-process; the returned stop cancels it and waits for Run to return.
func (f *fixture) start(identity string, cfg *rest.Config, mutate ...func(*Options)) (stop func()) {
	return f.run(context.Background(), identity, cfg, mutate...)
}

// run is start with ctx (its logger) as the parent of the controller's context.
func (f *fixture) run(parent context.Context, identity string, cfg *rest.Config, mutate ...func(*Options)) (stop func()) {
	o := f.options(identity)
	for _, m := range mutate {
		m(&o)
	}
	if cfg == nil {
		cfg = f.env.AdminConfig()
	}
	ctx, cancel := context.WithCancel(parent)
	done := make(chan error, 1)
	go func() { done <- Run(ctx, cfg, o) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					f.t.Errorf("controller %s: Run: %v", identity, err)
				}
			case <-time.After(30 * time.Second):
				f.t.Errorf("controller %s did not stop", identity)
			}
		})
	}
	f.t.Cleanup(stop)
	return stop
}

func (f *fixture) pool(name string, addrs []string, mutate ...func(*metallbv1beta1.IPAddressPool)) {
	f.t.Helper()
	p := &metallbv1beta1.IPAddressPool{
		ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: name},
		Spec:       metallbv1beta1.IPAddressPoolSpec{Addresses: addrs},
	}
	for _, m := range mutate {
		m(p)
	}
	if _, err := f.mlb.MetallbV1beta1().IPAddressPools(f.ns).Create(context.Background(), p, metav1.CreateOptions{}); err != nil {
		f.t.Fatalf("creating pool %s: %v", name, err)
	}
}

type svcMod func(*corev1.Service)

func annotate(k, v string) svcMod {
	return func(s *corev1.Service) {
		if s.Annotations == nil {
			s.Annotations = map[string]string{}
		}
		s.Annotations[k] = v
	}
}

func ports(proto corev1.Protocol, port int32) svcMod {
	return func(s *corev1.Service) {
		s.Spec.Ports = []corev1.ServicePort{{Name: strings.ToLower(string(proto)), Protocol: proto, Port: port}}
	}
}

func localPolicy(selector map[string]string) svcMod {
	return func(s *corev1.Service) {
		s.Spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyLocal
		s.Spec.Selector = selector
	}
}

func class(c string) svcMod { return func(s *corev1.Service) { s.Spec.LoadBalancerClass = &c } }

func inNamespace(ns string) svcMod { return func(s *corev1.Service) { s.Namespace = ns } }

// service creates a LoadBalancer Service of the fixture's class.
func (f *fixture) service(name string, mods ...svcMod) *corev1.Service {
	f.t.Helper()
	s := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: name},
		Spec: corev1.ServiceSpec{
			Type:              corev1.ServiceTypeLoadBalancer,
			LoadBalancerClass: &f.class,
			Ports:             []corev1.ServicePort{{Name: "http", Protocol: corev1.ProtocolTCP, Port: 80}},
		},
	}
	for _, m := range mods {
		m(s)
	}
	got, err := f.client.CoreV1().Services(s.Namespace).Create(context.Background(), s, metav1.CreateOptions{})
	if err != nil {
		f.t.Fatalf("creating service %s: %v", name, err)
	}
	return got
}

func (f *fixture) get(ns, name string) *corev1.Service {
	f.t.Helper()
	s, err := f.client.CoreV1().Services(ns).Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		f.t.Fatalf("getting service %s/%s: %v", ns, name, err)
	}
	return s
}

func ingressIPs(s *corev1.Service) string {
	var ips []string
	for _, i := range s.Status.LoadBalancer.Ingress {
		ips = append(ips, i.IP)
	}
	return strings.Join(ips, ",")
}

// waitFor polls cond until it returns true, failing with the last description.
func (f *fixture) waitFor(what string, cond func() (bool, string)) {
	f.t.Helper()
	var last string
	err := wait.PollUntilContextTimeout(context.Background(), 100*time.Millisecond, f.timeout, true, func(context.Context) (bool, error) {
		ok, desc := cond()
		last = desc
		return ok, nil
	})
	if err != nil {
		f.t.Fatalf("waiting for %s: last seen %s", what, last)
	}
}

// waitAllocated waits until the Service's ingress is want (comma-separated) and its condition is
// True, and checks the pool annotation.
func (f *fixture) waitAllocated(ns, name, want, pool string) *corev1.Service {
	f.t.Helper()
	var s *corev1.Service
	f.waitFor(fmt.Sprintf("%s/%s to get %s", ns, name, want), func() (bool, string) {
		s = f.get(ns, name)
		c := meta.FindStatusCondition(s.Status.Conditions, ConditionAddressAllocated)
		return ingressIPs(s) == want && c != nil && c.Status == metav1.ConditionTrue && s.Annotations[AnnotationAllocatedFromPool] == pool,
			fmt.Sprintf("ingress %q condition %+v annotations %v", ingressIPs(s), c, s.Annotations)
	})
	return s
}

// waitAnyIP waits until the Service has an address and returns it.
func (f *fixture) waitAnyIP(ns, name string) string {
	f.t.Helper()
	var ip string
	f.waitFor(fmt.Sprintf("%s/%s to get an address", ns, name), func() (bool, string) {
		ip = ingressIPs(f.get(ns, name))
		return ip != "", "no address"
	})
	return ip
}

// waitRefused waits for the False condition with reason and message, the matching Warning Event,
// and no address.
func (f *fixture) waitRefused(ns, name, reason, message string) {
	f.t.Helper()
	f.waitFor(fmt.Sprintf("%s/%s refused with %s", ns, name, reason), func() (bool, string) {
		s := f.get(ns, name)
		c := meta.FindStatusCondition(s.Status.Conditions, ConditionAddressAllocated)
		if c == nil {
			return false, "no condition"
		}
		return c.Status == metav1.ConditionFalse && c.Reason == reason && c.Message == message && ingressIPs(s) == "",
			fmt.Sprintf("condition %s %s %q, ingress %q", c.Status, c.Reason, c.Message, ingressIPs(s))
	})
	f.waitEvent(ns, name, corev1.EventTypeWarning, reason, message)
}

func (f *fixture) events(ns, name string) []corev1.Event {
	f.t.Helper()
	list, err := f.client.CoreV1().Events(ns).List(context.Background(), metav1.ListOptions{
		FieldSelector: fields.OneTermEqualSelector("involvedObject.name", name).String(),
	})
	if err != nil {
		f.t.Fatalf("listing events: %v", err)
	}
	return list.Items
}

func (f *fixture) waitEvent(ns, name, typ, reason, message string) {
	f.t.Helper()
	f.waitFor(fmt.Sprintf("event %s %q on %s/%s", reason, message, ns, name), func() (bool, string) {
		evs := f.events(ns, name)
		var seen []string
		for _, e := range evs {
			if e.Type == typ && e.Reason == reason && e.Message == message {
				return true, ""
			}
			seen = append(seen, e.Reason+": "+e.Message)
		}
		return false, fmt.Sprintf("%q", seen)
	})
}

func (f *fixture) leaseHolder() string {
	l, err := f.client.CoordinationV1().Leases(f.ns).Get(context.Background(), "herald-controller", metav1.GetOptions{})
	if err != nil || l.Spec.HolderIdentity == nil {
		return ""
	}
	return *l.Spec.HolderIdentity
}
