package announce

import (
	"context"
	"errors"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/herald-lb/herald/framework"
)

// slowStatus records writes, failing the first one, and blocks until released.
type slowStatus struct {
	mu      sync.Mutex
	writes  []string
	failed  bool
	release chan struct{}
}

func (s *slowStatus) record(what string) error {
	<-s.release
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.failed {
		s.failed = true
		return errors.New("apiserver unavailable")
	}
	s.writes = append(s.writes, what)
	return nil
}

func (s *slowStatus) Publish(_ context.Context, svc framework.ServiceKey, ip netip.Addr, list []string) error {
	return s.record("publish " + svc.String() + "@" + ip.String() + "=" + strings.Join(list, ","))
}

func (s *slowStatus) Retract(_ context.Context, svc framework.ServiceKey, ip netip.Addr) error {
	return s.record("retract " + svc.String() + "@" + ip.String())
}

func TestAsyncStatusWritesLatestWishAndRetries(t *testing.T) {
	inner := &slowStatus{release: make(chan struct{})}
	a := NewAsyncStatus(inner)
	svc := framework.ServiceKey{Namespace: "default", Name: "web"}
	ip := netip.MustParseAddr("203.0.113.10")
	// The calls return at once, whatever the API server does.
	start := time.Now()
	_ = a.Publish(context.Background(), svc, ip, []string{"r1"})
	_ = a.Publish(context.Background(), svc, ip, []string{"r1", "r2"})
	if time.Since(start) > time.Second {
		t.Fatal("Publish waited for the write")
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { a.Run(ctx, 1); close(done) }()
	close(inner.release)
	fctx, fcancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer fcancel()
	if err := a.Flush(fctx); err != nil {
		t.Fatal(err)
	}
	_ = a.Retract(context.Background(), svc, ip)
	if err := a.Flush(fctx); err != nil {
		t.Fatal(err)
	}
	cancel()
	<-done
	want := []string{"publish default/web@203.0.113.10=r1,r2", "retract default/web@203.0.113.10"}
	if !slices.Equal(inner.writes, want) {
		t.Fatalf("writes %v, want %v (the failed write retried, the superseded wish skipped)", inner.writes, want)
	}
}
