package announce

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"time"

	"k8s.io/client-go/util/workqueue"
	"k8s.io/klog/v2"

	"github.com/herald-lb/herald/framework"
)

// AsyncStatus is a StatusWriter that records the wanted state of each status object and
// writes it from its own workers, so a cycle never waits on the API server: with 100 new
// BGP Services, writing two objects per Service inside the cycle delayed the last route by
// seconds. Only the latest wanted state of an object is written; failures are retried with
// backoff. A cut-off API server therefore never holds announcements back.
type AsyncStatus struct {
	w     StatusWriter
	queue workqueue.TypedRateLimitingInterface[asyncKey]

	mu   sync.Mutex
	want map[asyncKey]asyncWant
}

type asyncKey struct {
	svc framework.ServiceKey
	ip  netip.Addr
}

type asyncWant struct {
	publish bool
	list    []string
}

var _ StatusWriter = (*AsyncStatus)(nil)

// NewAsyncStatus returns a writer that defers to w; Run starts its workers.
func NewAsyncStatus(w StatusWriter) *AsyncStatus {
	return &AsyncStatus{w: w, want: map[asyncKey]asyncWant{},
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(workqueue.DefaultTypedControllerRateLimiter[asyncKey](),
			workqueue.TypedRateLimitingQueueConfig[asyncKey]{Name: "herald-status"})}
}

// Publish implements StatusWriter; it only records the wish.
func (a *AsyncStatus) Publish(_ context.Context, svc framework.ServiceKey, ip netip.Addr, list []string) error {
	a.set(asyncKey{svc, ip}, asyncWant{publish: true, list: slices.Clone(list)})
	return nil
}

// Retract implements StatusWriter; it only records the wish.
func (a *AsyncStatus) Retract(_ context.Context, svc framework.ServiceKey, ip netip.Addr) error {
	a.set(asyncKey{svc, ip}, asyncWant{})
	return nil
}

func (a *AsyncStatus) set(k asyncKey, w asyncWant) {
	a.mu.Lock()
	a.want[k] = w
	a.mu.Unlock()
	a.queue.Add(k)
}

// Run writes until ctx is done, with the given number of workers; they log with ctx's logger.
func (a *AsyncStatus) Run(ctx context.Context, workers int) {
	var wg sync.WaitGroup
	for i := 0; i < workers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for a.next(ctx) {
			}
		}()
	}
	<-ctx.Done()
	a.queue.ShutDown()
	wg.Wait()
}

func (a *AsyncStatus) next(ctx context.Context) bool {
	k, quit := a.queue.Get()
	if quit {
		return false
	}
	defer a.queue.Done(k)
	a.mu.Lock()
	w, ok := a.want[k]
	a.mu.Unlock()
	if !ok {
		a.queue.Forget(k)
		return true
	}
	var err error
	if w.publish {
		err = a.w.Publish(ctx, k.svc, k.ip, w.list)
	} else {
		err = a.w.Retract(ctx, k.svc, k.ip)
	}
	if err != nil {
		if ctx.Err() == nil {
			klog.FromContext(ctx).Error(err, "Writing status; retrying", "service", k.svc, "ip", k.ip)
			a.queue.AddRateLimited(k)
		}
		return true
	}
	a.queue.Forget(k)
	a.mu.Lock()
	if cur, same := a.want[k]; same && cur.publish == w.publish && slices.Equal(cur.list, w.list) {
		delete(a.want, k) // written; a newer wish would have replaced it
	}
	a.mu.Unlock()
	return true
}

// Flush waits until every recorded wish is written, or ctx is done.
func (a *AsyncStatus) Flush(ctx context.Context) error {
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for {
		a.mu.Lock()
		n := len(a.want)
		a.mu.Unlock()
		if n == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%d status writes pending: %w", n, ctx.Err())
		case <-t.C:
		}
	}
}
