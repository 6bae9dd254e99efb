package speaker

import (
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"k8s.io/klog/v2/ktesting"

	"github.com/herald-lb/herald/announcers/manager"
	"github.com/herald-lb/herald/config"
	"github.com/herald-lb/herald/snapshot"
)

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestListenHTTPServesMetricsAndHealthOnTheirAddresses(t *testing.T) {
	clock := time.Now()
	hb := newFreezeEnv(t)
	hb.renew(0)
	_, ctx := ktesting.NewTestContext(t)
	s := &Speaker{synced: make(chan struct{}), ready: newReadiness([]string{"arp"}, time.Second, 10*time.Second, func() time.Time { return clock }),
		hb: hb.hb, builder: snapshot.NewBuilder(nil),
		o: Options{Config: &config.SpeakerConfiguration{MetricsBindAddress: "127.0.0.1:0", HealthBindAddress: "127.0.0.1:0"}}}
	srvs, err := s.listenHTTP(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer srvs.close(context.Background())
	if len(srvs.addrs) != 2 {
		t.Fatalf("listening on %v, want the metrics and the health address", srvs.addrs)
	}
	metrics, health := "http://"+srvs.addrs[0], "http://"+srvs.addrs[1]

	tests := []struct {
		url      string
		wantCode int
		wantBody string
	}{
		{metrics + "/metrics", http.StatusOK, "process_start_time_seconds"},
		{metrics + "/healthz", http.StatusOK, "ok"},
		{health + "/healthz", http.StatusOK, "ok"},
		{health + "/readyz", http.StatusServiceUnavailable, "informers not synced"},
		{metrics + "/readyz", http.StatusServiceUnavailable, "informers not synced"},
		{health + "/metrics", http.StatusNotFound, ""},
	}
	for _, tt := range tests {
		code, body := get(t, tt.url)
		if code != tt.wantCode || !strings.Contains(body, tt.wantBody) {
			t.Errorf("GET %s = %d %.200q, want %d containing %q", tt.url, code, body, tt.wantCode, tt.wantBody)
		}
	}
	// Synced, with the announcer up and the units it wins announced: ready.
	s.ready.setSynced()
	s.ready.update([]manager.Health{{Name: "arp", State: manager.StateHealthy}})
	_, pre := s.ready.local()
	s.ready.warmed(pre)
	if code, body := get(t, health+"/readyz"); code != http.StatusOK {
		t.Errorf("readyz when synced and warm = %d %q, want 200", code, body)
	}
	// A speaker that cannot renew its heartbeat is frozen, and not ready.
	hb.down = true
	hb.renew(time.Second)
	if code, body := get(t, health+"/readyz"); code != http.StatusServiceUnavailable || !strings.Contains(body, "frozen: its last heartbeat renewal failed") {
		t.Errorf("readyz when frozen = %d %q, want 503 saying it is frozen and why", code, body)
	}
	hb.down = false
	hb.renew(time.Second)
	// A refused announcer makes the node unready, and says why.
	s.ready.update([]manager.Health{{Name: "arp", State: manager.StateRefused, Message: "checksum mismatch"}})
	if code, body := get(t, metrics+"/readyz"); code != http.StatusServiceUnavailable || !strings.Contains(body, "l2-v4 (arp) unavailable: announcer arp refused: checksum mismatch") {
		t.Errorf("readyz with arp refused = %d %q, want 503 naming the announcer and the reason", code, body)
	}
}

func TestListenHTTPTakenPortIsAnError(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	_, ctx := ktesting.NewTestContext(t)
	s := &Speaker{synced: make(chan struct{}),
		o: Options{Config: &config.SpeakerConfiguration{MetricsBindAddress: "127.0.0.1:0", HealthBindAddress: taken.Addr().String()}}}
	srvs, err := s.listenHTTP(ctx)
	if err == nil {
		srvs.close(context.Background())
		t.Fatal("listening on a taken health port succeeded")
	}
	if !strings.Contains(err.Error(), "healthBindAddress") {
		t.Errorf("error %q does not name the field", err)
	}
}
