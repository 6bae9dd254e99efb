//go:build integration

package controller

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"

	metallbv1beta1 "github.com/herald-lb/herald/config/metallb/v1beta1"
)

// addressLog records every distinct non-empty ingress each Service of a namespace shows, from
// a watch, so a test can say an address never changed, not only that it is right at the end.
type addressLog struct {
	mu   sync.Mutex
	seen map[string][]string
}

func (f *fixture) watchAddresses(ctx context.Context) *addressLog {
	f.t.Helper()
	w, err := f.client.CoreV1().Services(f.ns).Watch(ctx, metav1.ListOptions{})
	if err != nil {
		f.t.Fatalf("watching services: %v", err)
	}
	l := &addressLog{seen: map[string][]string{}}
	go func() {
		defer w.Stop()
		for ev := range w.ResultChan() {
			s, ok := ev.Object.(*corev1.Service)
			if !ok || ev.Type == watch.Deleted {
				continue
			}
			l.mu.Lock()
			ips := ingressIPs(s)
			if prev := l.seen[s.Name]; len(prev) == 0 || prev[len(prev)-1] != ips {
				l.seen[s.Name] = append(prev, ips)
			}
			l.mu.Unlock()
		}
	}()
	return l
}

// waitSeen waits until the watch delivered ip for the Service: watch events come in order,
// so every earlier write has been recorded too.
func (l *addressLog) waitSeen(f *fixture, name, ip string) {
	f.t.Helper()
	f.waitFor(fmt.Sprintf("the watch to deliver %s for %s", ip, name), func() (bool, string) {
		l.mu.Lock()
		defer l.mu.Unlock()
		got := l.seen[name]
		return len(got) > 0 && got[len(got)-1] == ip, fmt.Sprintf("%q", got)
	})
}

// check fails unless every Service showed exactly one address since the watch began.
func (l *addressLog) check(t *testing.T, want map[string]string) {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	for name, ip := range want {
		if got := l.seen[name]; len(got) != 1 || got[0] != ip {
			t.Errorf("%s showed addresses %q, want only %q", name, got, ip)
		}
	}
}

func (f *fixture) setPoolAddresses(name string, addrs []string) {
	f.t.Helper()
	p, err := f.mlb.MetallbV1beta1().IPAddressPools(f.ns).Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		f.t.Fatal(err)
	}
	p.Spec.Addresses = addrs
	if _, err := f.mlb.MetallbV1beta1().IPAddressPools(f.ns).Update(context.Background(), p, metav1.UpdateOptions{}); err != nil {
		f.t.Fatalf("updating pool %s: %v", name, err)
	}
}

func (f *fixture) deletePool(name string) {
	f.t.Helper()
	if err := f.mlb.MetallbV1beta1().IPAddressPools(f.ns).Delete(context.Background(), name, metav1.DeleteOptions{}); err != nil {
		f.t.Fatalf("deleting pool %s: %v", name, err)
	}
}

// extraEvents lists the controller's Events on the fixture's Services other than the first
// Allocated one per Service: after a rename or split there must be none. Events of other
// components are not Herald's to explain (kube-apiserver's ClusterIP repair loop, run on a
// timer, may report a Service it caught mid-creation).
func (f *fixture) extraEvents(names []string) []string {
	f.t.Helper()
	var out []string
	for _, n := range names {
		allocated := 0
		for _, e := range f.events(f.ns, n) {
			if e.Source.Component != "herald-controller" {
				continue
			}
			if e.Reason == ReasonAllocated && e.Type == corev1.EventTypeNormal {
				allocated += int(max(e.Count, 1))
				if allocated == 1 {
					continue
				}
			}
			out = append(out, fmt.Sprintf("%s: %s %s %q", n, e.Type, e.Reason, e.Message))
		}
	}
	return out
}

// TestIntegrationPoolRenameAndSplitKeepAddresses: renaming a pool (the new one created, the old
// one deleted) and splitting it in two keep every Service's address for the whole test; the
// allocated-from-pool annotation follows the pool that now holds the address, and no Event
// says anything moved.
func TestIntegrationPoolRenameAndSplitKeepAddresses(t *testing.T) {
	f := newFixture(t)
	f.pool("old", []string{"192.0.2.0/28"})
	f.start("c1", nil)
	want := map[string]string{}
	var names []string
	for i := range 10 {
		name := fmt.Sprintf("s%d", i)
		f.service(name)
		want[name] = fmt.Sprintf("192.0.2.%d", i)
		names = append(names, name)
		// One at a time, so each Service's address is known.
		f.waitAllocated(f.ns, name, want[name], "old")
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	log := f.watchAddresses(ctx)

	// Rename: the new pool overlaps the old one (and is unused) until the old one goes.
	f.pool("new", []string{"192.0.2.0/28"})
	f.deletePool("old")
	for _, n := range names {
		f.waitAllocated(f.ns, n, want[n], "new")
	}

	// Split: the upper half gets a pool of its own (unused while it overlaps), then the
	// renamed pool shrinks to the lower half.
	f.pool("upper", []string{"192.0.2.8/29"})
	f.setPoolAddresses("new", []string{"192.0.2.0/29"})
	for _, n := range names {
		pool := "new"
		if strings.HasSuffix(want[n], ".8") || strings.HasSuffix(want[n], ".9") {
			pool = "upper"
		}
		f.waitAllocated(f.ns, n, want[n], pool)
	}
	// A new Service in the upper pool gets the next free address there.
	f.service("later", annotate("metallb.io/address-pool", "upper"))
	f.waitAllocated(f.ns, "later", "192.0.2.10", "upper")

	// The annotation is the controller's output, never its input: a Service that claims
	// another pool is corrected.
	f.service("liar", annotate("metallb.io/address-pool", "upper"), annotate(AnnotationAllocatedFromPool, "new"))
	f.waitAllocated(f.ns, "liar", "192.0.2.11", "upper")

	log.waitSeen(f, "liar", "192.0.2.11")
	log.check(t, want)
	if extra := f.extraEvents(names); len(extra) > 0 {
		t.Errorf("Events after the first allocation: %q", extra)
	}
}

// TestIntegrationNoPoolsKeepsAddresses: a controller that sees no pool at all (they were
// deleted, or live in a namespace it does not read) removes no address: each Service keeps
// its address, reported by a False condition and a Warning, and is allocated normally again
// when a pool holds the address.
func TestIntegrationNoPoolsKeepsAddresses(t *testing.T) {
	f := newFixture(t)
	f.pool("prod", []string{"192.0.2.0/28"})
	stop := f.start("c1", nil)
	f.service("a")
	f.waitAllocated(f.ns, "a", "192.0.2.0", "prod")
	f.service("b")
	f.waitAllocated(f.ns, "b", "192.0.2.1", "prod")
	stop()

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	log := f.watchAddresses(ctx)
	f.deletePool("prod")
	// A new leader with no pool visible, and a running one whose pools all go away.
	f.start("c2", nil)
	kept := func(name, ip string) {
		msg := fmt.Sprintf("keeping %s, which the Service already has, although %s is not in any pool; a pool change never takes an address away: "+
			"add it to a pool that allows the Service, or request another address or pool (metallb.io/loadBalancerIPs, metallb.io/address-pool) to move the Service", ip, ip)
		f.waitFor(name+" kept", func() (bool, string) {
			s := f.get(f.ns, name)
			c := meta.FindStatusCondition(s.Status.Conditions, ConditionAddressAllocated)
			if c == nil {
				return false, "no condition"
			}
			return c.Status == metav1.ConditionFalse && c.Reason == "NotInPool" && c.Message == msg && ingressIPs(s) == ip && s.Annotations[AnnotationAllocatedFromPool] == "prod",
				fmt.Sprintf("condition %s %s %q, ingress %q, annotations %v", c.Status, c.Reason, c.Message, ingressIPs(s), s.Annotations)
		})
		f.waitEvent(f.ns, name, corev1.EventTypeWarning, ReasonAddressKept, msg)
	}
	kept("a", "192.0.2.0")
	kept("b", "192.0.2.1")
	// A new Service is refused: there is nothing to allocate from.
	f.service("c")
	f.waitRefused(f.ns, "c", "NoPools", "no usable address pool is configured")

	// The pool comes back in two parts: a and b are allocated again where they are, and the
	// address each holds is not handed to c.
	f.pool("prod-low", []string{"192.0.2.0/32"}, func(p *metallbv1beta1.IPAddressPool) {
		p.Spec.AllocateTo = &metallbv1beta1.ServiceAllocation{Priority: 1}
	})
	f.pool("prod-rest", []string{"192.0.2.1-192.0.2.3"})
	f.waitAllocated(f.ns, "a", "192.0.2.0", "prod-low")
	f.waitAllocated(f.ns, "b", "192.0.2.1", "prod-rest")
	f.waitAllocated(f.ns, "c", "192.0.2.2", "prod-rest")
	log.waitSeen(f, "c", "192.0.2.2") // the watch has delivered every earlier write
	log.check(t, map[string]string{"a": "192.0.2.0", "b": "192.0.2.1"})
}
