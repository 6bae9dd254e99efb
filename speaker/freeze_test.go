package speaker

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/herald-lb/herald/framework"
)

// freezeEnv is a heartbeater on a fake clock and a fake API server that fails renewals
// while down is set.
type freezeEnv struct {
	t    *testing.T
	now  time.Time
	down bool
	hb   *heartbeater
}

func newFreezeEnv(t *testing.T) *freezeEnv {
	e := &freezeEnv{t: t, now: time.Date(2026, 12, 7, 5, 0, 0, 0, time.UTC)}
	client := fake.NewClientset()
	fail := func(k8stesting.Action) (bool, runtime.Object, error) {
		if e.down {
			return true, nil, errors.New("dial tcp 127.0.0.1:6443: connect: connection refused")
		}
		return false, nil, nil
	}
	client.PrependReactor("*", "leases", fail)
	e.hb = &heartbeater{client: client.CoordinationV1(), namespace: "herald-system", node: "node-a",
		duration: 2500 * time.Millisecond, interval: time.Second, now: func() time.Time { return e.now },
		interfaces: func() ([]framework.Interface, error) { return nil, nil }}
	return e
}

// renew advances the clock by d and renews; it returns the renew time as stored.
// backAndRenewing renews, fails one renewal (the API server down), renews again every second
// from the first renewal that succeeds after it until after is nearly over, and returns the
// renew time of the last renewal with the clock at after since that first one.
func (e *freezeEnv) backAndRenewing(after time.Duration) time.Time {
	e.t.Helper()
	e.renew(0)
	e.down = true
	e.renew(time.Second)
	e.down = false
	seen := e.renew(time.Second)
	back := e.now
	for e.now.Add(time.Second).Before(back.Add(after)) {
		seen = e.renew(time.Second)
	}
	e.now = back.Add(after)
	return seen
}

func (e *freezeEnv) renew(d time.Duration) time.Time {
	e.t.Helper()
	e.now = e.now.Add(d)
	err := e.hb.attempt(context.Background())
	if (err != nil) != e.down {
		e.t.Fatalf("renewal at %s: err %v, API server down %v", e.now.Format("15:04:05.000"), err, e.down)
	}
	if e.hb.lease == nil || e.hb.lease.Spec.RenewTime == nil {
		return time.Time{}
	}
	return e.hb.lease.Spec.RenewTime.Time
}

func TestFrozen(t *testing.T) {
	tests := []struct {
		name string
		// run drives the heartbeater and returns the renew time the node's own watch has
		// delivered.
		run  func(e *freezeEnv) (seen time.Time)
		want string // a part of the reason; "" for not frozen
	}{
		{"no renewal yet", func(*freezeEnv) time.Time { return time.Time{} }, "no heartbeat renewal has succeeded"},
		{"renewals succeed and come back through the watch: not frozen", func(e *freezeEnv) time.Time {
			e.renew(0)
			e.renew(time.Second)
			seen := e.renew(time.Second)
			e.now = e.now.Add(900 * time.Millisecond)
			return seen
		}, ""},
		{"renewals succeed, the watch lags a little: not frozen", func(e *freezeEnv) time.Time {
			e.renew(0)
			seen := e.renew(time.Second)
			e.renew(time.Second)
			e.now = e.now.Add(300 * time.Millisecond)
			return seen
		}, ""},
		{"renewals succeed, the watch stalls: frozen, its view is stale", func(e *freezeEnv) time.Time {
			seen := e.renew(0)
			e.renew(time.Second)
			e.now = e.now.Add(500 * time.Millisecond)
			return seen
		}, "its view of the heartbeats is stale"},
		{"the watch caught up after a stall: not frozen (nobody else was cut off)", func(e *freezeEnv) time.Time {
			stalled := e.renew(0)
			e.renew(time.Second)
			e.renew(time.Second)
			if got := e.hb.frozen(stalled); !strings.Contains(got, "stale") {
				e.t.Fatalf("frozen during the stall = %q, want stale", got)
			}
			seen := e.renew(time.Second)
			e.now = e.now.Add(100 * time.Millisecond)
			return seen
		}, ""},
		{"last renewal failed", func(e *freezeEnv) time.Time {
			seen := e.renew(0)
			e.down = true
			e.renew(time.Second)
			return seen
		}, "its last heartbeat renewal failed"},
		{"renewal pending longer than half the margin", func(e *freezeEnv) time.Time {
			seen := e.renew(0)
			e.hb.renewals.Started(e.now.Add(time.Second))
			e.now = e.now.Add(time.Second + 800*time.Millisecond)
			return seen
		}, "pending for 800ms"},
		{"renewal pending briefly", func(e *freezeEnv) time.Time {
			seen := e.renew(0)
			e.hb.renewals.Started(e.now.Add(time.Second))
			e.now = e.now.Add(time.Second + 400*time.Millisecond)
			return seen
		}, ""},
		{"last success older than the lease duration", func(e *freezeEnv) time.Time {
			seen := e.renew(0)
			e.now = e.now.Add(2500 * time.Millisecond)
			return seen
		}, "longer than the lease duration"},
		{"back, own watch not caught up", func(e *freezeEnv) time.Time {
			seen := e.renew(0)
			e.down = true
			e.renew(time.Second)
			e.down = false
			e.renew(time.Second)
			return seen
		}, "its watch has not delivered its renewal"},
		{"back, watch caught up, grace for the others", func(e *freezeEnv) time.Time {
			e.renew(0)
			e.down = true
			e.renew(time.Second)
			e.down = false
			e.renew(time.Second)
			e.renew(time.Second)
			seen := e.renew(time.Second)
			e.now = e.now.Add(400 * time.Millisecond)
			return seen
		}, "the other nodes have until"},
		{"back, under two lease durations after the first renewal", func(e *freezeEnv) time.Time {
			return e.backAndRenewing(4900 * time.Millisecond)
		}, "the other nodes have until"},
		{"back, two lease durations after the first renewal", func(e *freezeEnv) time.Time {
			return e.backAndRenewing(5 * time.Second)
		}, ""},
		{"a renewal after a lapse without a failure", func(e *freezeEnv) time.Time {
			e.renew(0)
			seen := e.renew(3 * time.Second)
			return seen
		}, "the other nodes have until"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newFreezeEnv(t)
			seen := tt.run(e)
			got := e.hb.frozen(seen)
			if tt.want == "" && got != "" || tt.want != "" && !strings.Contains(got, tt.want) {
				t.Fatalf("frozen = %q, want %q", got, tt.want)
			}
		})
	}
}

// dialFail fails the first n round trips as a refused connection would.
type dialFail struct {
	n, calls int
}

func (d *dialFail) RoundTrip(*http.Request) (*http.Response, error) {
	d.calls++
	if d.calls <= d.n {
		return nil, &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connect: connection refused")}
	}
	return &http.Response{StatusCode: http.StatusOK, Body: http.NoBody}, nil
}

func TestRedial(t *testing.T) {
	tests := []struct {
		name      string
		method    string
		fails     int
		cancel    bool
		wantErr   bool
		wantCalls int
	}{
		{"GET waits for the server", http.MethodGet, 3, false, false, 4},
		{"PUT fails fast", http.MethodPut, 3, false, true, 1},
		{"GET gives up when its context ends", http.MethodGet, 1000, true, true, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			next := &dialFail{n: tt.fails}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			if tt.cancel {
				time.AfterFunc(50*time.Millisecond, cancel)
			}
			req, _ := http.NewRequestWithContext(ctx, tt.method, "https://192.0.2.1:6443/api", nil)
			_, err := (&redial{next: next, every: time.Millisecond}).RoundTrip(req)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, want error %v", err, tt.wantErr)
			}
			if tt.wantCalls > 0 && next.calls != tt.wantCalls {
				t.Fatalf("%d round trips, want %d", next.calls, tt.wantCalls)
			}
		})
	}
}
