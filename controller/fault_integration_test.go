//go:build integration

package controller

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"sort"
	"strings"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/component-base/metrics/testutil"

	"github.com/herald-lb/herald/test/faultproxy"
)

// runVia runs a controller whose every request goes through a new fault proxy, and serves its
// /readyz on a listener of its own. Run's error arrives on done; stop cancels it and waits.
func (f *fixture) runVia(identity string, faults faultproxy.Faults) (p *faultproxy.Proxy, readyz string, done <-chan error, stop func()) {
	f.t.Helper()
	p, err := faultproxy.Start(f.env.Host, f.env.AdminConfig().CAData, uint64(len(identity)))
	if err != nil {
		f.t.Fatal(err)
	}
	f.t.Cleanup(p.Close)
	p.Set(faults)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		f.t.Fatal(err)
	}
	o := f.options(identity)
	o.listener = ln
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- Run(ctx, p.Config(f.env.AdminConfig()), o) }()
	stopped := false
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case err := <-errc:
			errc <- err
		case <-time.After(30 * time.Second):
			f.t.Errorf("controller %s did not stop", identity)
		}
	}
	f.t.Cleanup(stop)
	return p, "http://" + ln.Addr().String() + "/readyz", errc, stop
}

// readyz returns the status code and body of a /readyz.
func readyz(url string) (int, string) {
	resp, err := http.Get(url)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, strings.TrimSpace(string(body))
}

func (f *fixture) lease() *coordinationv1.Lease {
	l, err := f.client.CoordinationV1().Leases(f.ns).Get(context.Background(), "herald-controller", metav1.GetOptions{})
	if err != nil {
		return &coordinationv1.Lease{}
	}
	return l
}

// rebuildList matches the new leader's fresh list of Services: a GET of the collection that is
// not a watch (the informers sync by streaming watch).
func rebuildList(r *http.Request) bool {
	return r.Method == http.MethodGet && r.URL.Path == "/api/v1/services" && !faultproxy.IsWatch(r)
}

// A leader whose rebuild keeps failing must not sit on the Lease allocating nothing: it
// retries, says so in /readyz, gives the Lease up, and the standby leads within the lease
// duration.
func TestIntegrationLeaderRebuildFailsStandbyTakesOver(t *testing.T) {
	f := newFixture(t)
	f.pool("default", []string{"192.0.2.0/24"})
	proxy, readyA, _, _ := f.runVia("a", faultproxy.Faults{ErrorRate: 1, Match: rebuildList})
	f.waitFor("a leads", func() (bool, string) { return f.leaseHolder() == "a", f.leaseHolder() })
	acquiredA := f.lease().Spec.AcquireTime.Time
	f.start("b", nil)

	f.waitFor("a's /readyz to report the failing rebuild", func() (bool, string) {
		code, body := readyz(readyA)
		return code == http.StatusServiceUnavailable && strings.Contains(body, "rebuilding allocations from Service status, last attempt failed (retrying)") &&
			strings.Contains(body, "injected failure"), fmt.Sprintf("%d %q", code, body)
	})
	f.waitFor("b leads", func() (bool, string) { return f.leaseHolder() == "b", f.leaseHolder() })
	acquiredB := f.lease().Spec.AcquireTime.Time
	took := acquiredB.Sub(acquiredA)
	t.Logf("a acquired the Lease at %s, b at %s: %s (lease duration %s); rebuild attempts failed: %d",
		acquiredA.Format(time.StampMicro), acquiredB.Format(time.StampMicro), took, f.options("").LeaseDuration, proxy.Stats().Failed)
	if took > f.options("").LeaseDuration {
		t.Errorf("b took the Lease %s after a did, more than the lease duration %s", took, f.options("").LeaseDuration)
	}
	code, body := readyz(readyA)
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "released the leader Lease, cannot lead") {
		t.Errorf("a's /readyz after giving up: %d %q", code, body)
	}
	f.service("after")
	f.waitAllocated(f.ns, "after", "192.0.2.0", "default")

	// Once the API answers again, a becomes an ordinary ready standby.
	proxy.Set(faultproxy.Faults{})
	f.waitFor("a ready as a standby", func() (bool, string) {
		code, body := readyz(readyA)
		return code == http.StatusOK, fmt.Sprintf("%d %q", code, body)
	})
	if h := f.leaseHolder(); h != "b" {
		t.Errorf("the Lease moved back to %q", h)
	}
}

// A leader cut off from the API server in the middle of a failing rebuild (as good as killed:
// it can neither rebuild, renew nor release) loses the Lease when it expires: the standby leads
// a lease duration after the cut, and a keeps away from the Lease.
func TestIntegrationLeaderKilledDuringFailingRebuild(t *testing.T) {
	f := newFixture(t)
	f.pool("default", []string{"192.0.2.0/24"})
	proxy, readyA, _, _ := f.runVia("a", faultproxy.Faults{ErrorRate: 1, Match: rebuildList})
	f.waitFor("a leads", func() (bool, string) { return f.leaseHolder() == "a", f.leaseHolder() })
	f.start("b", nil)
	f.waitFor("a's rebuild failing", func() (bool, string) {
		code, body := readyz(readyA)
		return strings.Contains(body, "last attempt failed (retrying)"), fmt.Sprintf("%d %q", code, body)
	})
	proxy.Set(faultproxy.Faults{Down: true})
	cutOff := time.Now()
	f.waitFor("b leads", func() (bool, string) { return f.leaseHolder() == "b", f.leaseHolder() })
	took := f.lease().Spec.AcquireTime.Time.Sub(cutOff)
	o := f.options("")
	t.Logf("b acquired the Lease %s after a was cut off mid-rebuild (lease duration %s, retry period %s)", took, o.LeaseDuration, o.RetryPeriod)
	// a renewed at most a retry period before the cut and b notices a change only when it
	// polls, so b's wait is bounded by the lease duration plus two retry periods.
	if bound := o.LeaseDuration + 2*o.RetryPeriod; took > bound {
		t.Errorf("b took the Lease %s after a was cut off, want at most %s", took, bound)
	}
	f.service("after")
	f.waitAllocated(f.ns, "after", "192.0.2.0", "default")
	// a, still cut off, campaigns as a standby and never takes the Lease back.
	time.Sleep(o.LeaseDuration)
	if h := f.leaseHolder(); h != "b" {
		t.Errorf("the Lease is held by %q, want b", h)
	}
}

// With a fifth of all requests failing for a minute (some after the API server applied them,
// as when a response is lost, and every watch cut now and then), 200 Services created
// meanwhile all get distinct addresses, none lost or given twice, and the controller converges
// within 10 s of the faults stopping.
func TestIntegrationFaultyAPIServer200Services(t *testing.T) {
	const (
		services  = 200
		faultTime = 60 * time.Second
		converge  = 10 * time.Second
	)
	f := newFixture(t)
	f.pool("default", []string{"192.0.2.0/24"})
	retriesBefore, _ := testutil.GetCounterMetricValue(writeRetriesTotal.WithLabelValues("services"))
	proxy, _, doneC, _ := f.runVia("c1", faultproxy.Faults{ErrorRate: 0.2, AppliedShare: 0.25})
	began := time.Now()
	cuts := 0
	for i := range services {
		// Spread the creations over the fault window.
		time.Sleep(time.Until(began.Add(faultTime * time.Duration(i) / services)))
		f.service(fmt.Sprintf("s%03d", i))
		if i%50 == 49 {
			cuts += proxy.CutWatches()
		}
	}
	time.Sleep(time.Until(began.Add(faultTime)))
	stats := proxy.Stats()
	proxy.Set(faultproxy.Faults{})
	healed := time.Now()
	select {
	case err := <-doneC:
		t.Fatalf("the controller stopped during the faults: %v", err)
	default:
	}

	var state string
	f.timeout = converge
	f.waitFor(fmt.Sprintf("all %d Services allocated, distinct, annotated", services), func() (bool, string) {
		ok, desc := f.allocatedDistinct(services)
		state = desc
		return ok, desc
	})
	took := time.Since(healed)
	retriesAfter, _ := testutil.GetCounterMetricValue(writeRetriesTotal.WithLabelValues("services"))
	t.Logf("faults for %s: %d requests, %d failed before and %d after being applied, %d watches cut; write retries %v; converged %s after the faults stopped (%s)",
		faultTime, stats.Requests, stats.Failed, stats.FailedApplied, cuts+stats.WatchesCut, retriesAfter-retriesBefore, took.Round(time.Millisecond), state)
	if stats.Failed == 0 || stats.FailedApplied == 0 {
		t.Errorf("the proxy injected no faults: %+v", stats)
	}
	f.timeout = 20 * time.Second
	f.waitFor("pool status to count every Service once", func() (bool, string) {
		p, err := f.mlb.MetallbV1beta1().IPAddressPools(f.ns).Get(context.Background(), "default", metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		return p.Status.AssignedIPv4 == services && p.Status.AvailableIPv4 == 256-services, fmt.Sprintf("%+v", p.Status)
	})
}

// allocatedDistinct reports whether n Services of the fixture hold one address each, all
// different, with a True condition naming it and the pool annotation; the description lists
// what is not there yet.
func (f *fixture) allocatedDistinct(n int) (bool, string) {
	list, err := f.client.CoreV1().Services(f.ns).List(context.Background(), metav1.ListOptions{})
	if err != nil {
		return false, err.Error()
	}
	holders := map[string][]string{}
	var missing, dup []string
	for _, s := range list.Items {
		ip := ingressIPs(&s)
		c := meta.FindStatusCondition(s.Status.Conditions, ConditionAddressAllocated)
		_, valid := netip.ParseAddr(ip)
		if valid != nil || c == nil || c.Status != metav1.ConditionTrue || !strings.HasPrefix(c.Message, "assigned "+ip+" ") ||
			s.Annotations[AnnotationAllocatedFromPool] != "default" {
			missing = append(missing, fmt.Sprintf("%s(ingress %q condition %v)", s.Name, ip, c))
			continue
		}
		holders[ip] = append(holders[ip], s.Name)
	}
	for ip, names := range holders {
		if len(names) > 1 {
			dup = append(dup, fmt.Sprintf("%s held by %v", ip, names))
		}
	}
	sort.Strings(missing)
	sort.Strings(dup)
	ok := len(list.Items) == n && len(missing) == 0 && len(dup) == 0
	if len(missing) > 10 {
		missing = append(missing[:10], fmt.Sprintf("… %d more", len(missing)-10))
	}
	return ok, fmt.Sprintf("%d Services, %d distinct addresses; not allocated: %v; duplicates: %v", len(list.Items), len(holders), missing, dup)
}
