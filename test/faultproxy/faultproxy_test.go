package faultproxy

import (
	"bufio"
	"encoding/pem"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// upstream is a TLS server that counts requests, answers "ok", and for ?watch=true writes a
// line every 10 ms until the client leaves.
func upstream(t *testing.T) (*httptest.Server, []byte, *atomic.Int64) {
	t.Helper()
	var hits atomic.Int64
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		if !IsWatch(r) {
			_, _ = io.WriteString(w, "ok")
			return
		}
		for i := 0; ; i++ {
			if _, err := io.WriteString(w, "event\n"); err != nil {
				return
			}
			w.(http.Flusher).Flush()
			select {
			case <-r.Context().Done():
				return
			case <-time.After(10 * time.Millisecond):
			}
		}
	}))
	t.Cleanup(srv.Close)
	ca := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	return srv, ca, &hits
}

func start(t *testing.T) (*Proxy, *atomic.Int64) {
	t.Helper()
	srv, ca, hits := upstream(t)
	p, err := Start(srv.URL, ca, 1)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return p, hits
}

func get(t *testing.T, url string) int {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode
}

func TestFaults(t *testing.T) {
	tests := []struct {
		name        string
		faults      Faults
		path        string
		wantFail    bool
		wantForward bool
	}{
		{"pass through", Faults{}, "/api", false, true},
		{"fail before forwarding", Faults{ErrorRate: 1}, "/api", true, false},
		{"fail after applying", Faults{ErrorRate: 1, AppliedShare: 1}, "/api", true, true},
		{"not matched", Faults{ErrorRate: 1, Match: func(r *http.Request) bool { return r.URL.Path == "/other" }}, "/api", false, true},
		{"down", Faults{Down: true}, "/api", true, false},
		{"delay", Faults{Delay: 50 * time.Millisecond}, "/api", false, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, hits := start(t)
			p.Set(tc.faults)
			began := time.Now()
			code := get(t, p.URL+tc.path)
			if took := time.Since(began); took < tc.faults.Delay {
				t.Errorf("answered after %s, want at least the delay %s", took, tc.faults.Delay)
			}
			if failed := code >= 500; failed != tc.wantFail {
				t.Errorf("status %d, want failure %v", code, tc.wantFail)
			}
			if forwarded := hits.Load() == 1; forwarded != tc.wantForward {
				t.Errorf("upstream saw %d requests, want forwarded %v", hits.Load(), tc.wantForward)
			}
		})
	}
}

func TestErrorRateShare(t *testing.T) {
	p, _ := start(t)
	p.Set(Faults{ErrorRate: 0.2})
	const n = 500
	failed := 0
	for range n {
		if get(t, p.URL+"/api") >= 500 {
			failed++
		}
	}
	// 100 expected; the seeded generator makes this exact run repeatable, the bounds say what
	// the share means.
	if failed < 60 || failed > 140 {
		t.Fatalf("%d of %d requests failed, want about 20%%", failed, n)
	}
	if st := p.Stats(); st.Failed != failed || st.Requests != n {
		t.Fatalf("stats %+v, want %d failed of %d", st, failed, n)
	}
}

// openWatch starts a watch through the proxy and returns its lines as they arrive; the
// channel closes when the stream ends.
func openWatch(t *testing.T, p *Proxy) <-chan string {
	t.Helper()
	resp, err := http.Get(p.URL + "/api/v1/services?watch=true")
	if err != nil {
		t.Fatal(err)
	}
	lines := make(chan string, 1000)
	go func() {
		defer close(lines)
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	return lines
}

func TestWatchStallAndCut(t *testing.T) {
	p, _ := start(t)
	lines := openWatch(t, p)
	if l := <-lines; !strings.HasPrefix(l, "event") {
		t.Fatalf("first line %q", l)
	}
	p.Set(Faults{StallWatches: true})
	// Drain what was in flight, then nothing may arrive while stalled.
	time.Sleep(50 * time.Millisecond)
	for len(lines) > 0 {
		<-lines
	}
	select {
	case l := <-lines:
		t.Fatalf("got %q while stalled", l)
	case <-time.After(200 * time.Millisecond):
	}
	p.Set(Faults{})
	select {
	case <-lines:
	case <-time.After(5 * time.Second):
		t.Fatal("no event within 5 s after the stall ended")
	}
	if n := p.CutWatches(); n != 1 {
		t.Fatalf("cut %d watches, want 1", n)
	}
	deadline := time.After(5 * time.Second)
	for {
		select {
		case _, open := <-lines:
			if !open {
				return
			}
		case <-deadline:
			t.Fatal("the watch stream did not end within 5 s of CutWatches")
		}
	}
}
