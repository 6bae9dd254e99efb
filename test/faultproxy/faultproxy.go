// Package faultproxy is a reverse proxy for tests that sits between Herald's components and
// the API server and breaks what passes through it on demand: it answers a share of requests
// with a 5xx status (before forwarding them, or after the API server applied them, so the
// client cannot tell whether its write happened), delays requests, stalls watch streams
// (they stay open but deliver nothing) and cuts them, or refuses everything as if the API
// server were down.
//
// Clients reach it over plain HTTP on loopback (Config points a rest.Config at it); it talks
// to the API server over TLS with the server's CA and passes the client's credentials on.
package faultproxy

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"sync"
	"time"

	"k8s.io/client-go/rest"
)

// Faults is what the proxy does to the requests it matches.
type Faults struct {
	// ErrorRate is the share (0..1) of matching requests, watches included, answered with an
	// error status (500, 503 or 504, no Retry-After, so client-go does not retry on its own).
	ErrorRate float64
	// AppliedShare is the share (0..1) of those errors given after forwarding the request:
	// the API server applied it but the client sees a failure, as when a response is lost.
	// Watches always fail before forwarding.
	AppliedShare float64
	// Delay holds every matching request this long before it is forwarded.
	Delay time.Duration
	// StallWatches keeps every watch stream open but delivers nothing until cleared: events
	// held back meanwhile are delivered late, none is lost, as on a slow link.
	StallWatches bool
	// Down refuses every request (matching or not) with 503 and ends open watches, as an API
	// server that is not running.
	Down bool
	// Match limits ErrorRate and Delay to the requests it returns true for; nil matches all.
	Match func(*http.Request) bool
}

// Stats counts what the proxy did.
type Stats struct {
	// Requests forwarded or refused, watches included.
	Requests int
	// Failed requests answered with an error without forwarding; FailedApplied after
	// forwarding.
	Failed, FailedApplied int
	// WatchesCut counts watch streams ended by CutWatches or Down.
	WatchesCut int
}

// Proxy is a running fault proxy.
type Proxy struct {
	// URL is the proxy's http://127.0.0.1:port address.
	URL string

	srv     *http.Server
	rp      *httputil.ReverseProxy
	mu      sync.Mutex
	faults  Faults
	rng     *rand.Rand
	stats   Stats
	watches map[*watch]struct{}
	// unstall is closed when StallWatches is cleared.
	unstall chan struct{}
	// token is the bearer token added to requests that carry none (see Authorize).
	token string
}

// Authorize makes the proxy add token as the bearer token of every request that carries
// none: a process loading a kubeconfig (clientcmd) sends no credentials to a plain-HTTP
// server, so a kubeconfig pointed at the proxy cannot carry them.
func (p *Proxy) Authorize(token string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.token = token
}

type watch struct {
	cancel context.CancelFunc
}

// Start proxies to the API server at target (an https URL) whose serving certificate caData
// verifies. seed makes the choice of failed requests repeatable.
func Start(target string, caData []byte, seed uint64) (*Proxy, error) {
	return StartOn("127.0.0.1:0", target, caData, seed)
}

// StartOn is Start listening on listen (host:port), e.g. the lab's gateway address, which
// processes in the lab's node namespaces reach.
func StartOn(listen, target string, caData []byte, seed uint64) (*Proxy, error) {
	u, err := url.Parse(target)
	if err != nil {
		return nil, fmt.Errorf("faultproxy: target %q: %w", target, err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caData) {
		return nil, errors.New("faultproxy: no certificate in the CA data")
	}
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return nil, fmt.Errorf("faultproxy: %w", err)
	}
	p := &Proxy{
		URL:     "http://" + ln.Addr().String(),
		rng:     rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
		watches: map[*watch]struct{}{},
		unstall: make(chan struct{}),
	}
	close(p.unstall)
	p.rp = &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(u)
			r.Out.Host = u.Host
			p.mu.Lock()
			token := p.token
			p.mu.Unlock()
			if token != "" && r.Out.Header.Get("Authorization") == "" {
				r.Out.Header.Set("Authorization", "Bearer "+token)
			}
		},
		Transport: &http.Transport{
			TLSClientConfig:     &tls.Config{RootCAs: pool},
			MaxIdleConnsPerHost: 100,
		},
		// Watch events go out as they arrive.
		FlushInterval: -1,
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			// The client went away or the proxy cut the stream: nothing to answer.
			if r.Context().Err() != nil {
				return
			}
			writeStatus(w, http.StatusBadGateway, "faultproxy: "+err.Error())
		},
	}
	p.srv = &http.Server{Handler: http.HandlerFunc(p.serve), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = p.srv.Serve(ln) }()
	return p, nil
}

// Config returns a copy of cfg that reaches the API server through the proxy.
func (p *Proxy) Config(cfg *rest.Config) *rest.Config {
	out := rest.CopyConfig(cfg)
	out.Host = p.URL
	out.TLSClientConfig = rest.TLSClientConfig{}
	return out
}

// Set replaces the faults; the zero Faults passes everything through.
func (p *Proxy) Set(f Faults) {
	p.mu.Lock()
	defer p.mu.Unlock()
	wasStalled := p.stalled()
	p.faults = f
	if f.Down {
		p.cutLocked()
	}
	switch {
	case f.StallWatches && !wasStalled:
		p.unstall = make(chan struct{})
	case !f.StallWatches && wasStalled:
		close(p.unstall)
	}
}

func (p *Proxy) stalled() bool {
	select {
	case <-p.unstall:
		return false
	default:
		return true
	}
}

// CutWatches ends every open watch stream (the client sees its watch end and starts a new
// one) and returns how many it cut.
func (p *Proxy) CutWatches() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cutLocked()
}

func (p *Proxy) cutLocked() int {
	n := len(p.watches)
	for w := range p.watches {
		w.cancel()
		delete(p.watches, w)
	}
	p.stats.WatchesCut += n
	return n
}

// Stats returns the counts so far.
func (p *Proxy) Stats() Stats {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stats
}

// Close stops the proxy and ends every connection through it.
func (p *Proxy) Close() {
	p.CutWatches()
	_ = p.srv.Close()
}

// decision is what happens to one request.
type decision struct {
	down       bool
	delay      time.Duration
	fail       int // status to answer with, 0 to forward
	afterApply bool
}

var failStatuses = []int{http.StatusInternalServerError, http.StatusServiceUnavailable, http.StatusGatewayTimeout}

func (p *Proxy) decide(r *http.Request, isWatch bool) decision {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.stats.Requests++
	f := p.faults
	if f.Down {
		return decision{down: true}
	}
	if f.Match != nil && !f.Match(r) {
		return decision{}
	}
	d := decision{delay: f.Delay}
	if f.ErrorRate > 0 && p.rng.Float64() < f.ErrorRate {
		d.fail = failStatuses[p.rng.IntN(len(failStatuses))]
		d.afterApply = !isWatch && p.rng.Float64() < f.AppliedShare
		if d.afterApply {
			p.stats.FailedApplied++
		} else {
			p.stats.Failed++
		}
	}
	return d
}

// IsWatch reports whether r opens a watch stream.
func IsWatch(r *http.Request) bool {
	return r.Method == http.MethodGet && r.URL.Query().Get("watch") == "true"
}

func (p *Proxy) serve(w http.ResponseWriter, r *http.Request) {
	isWatch := IsWatch(r)
	d := p.decide(r, isWatch)
	if d.down {
		writeStatus(w, http.StatusServiceUnavailable, "faultproxy: the API server is down")
		return
	}
	if d.delay > 0 {
		select {
		case <-time.After(d.delay):
		case <-r.Context().Done():
			return
		}
	}
	if d.fail != 0 && !d.afterApply {
		writeStatus(w, d.fail, "faultproxy: injected failure")
		return
	}
	if d.afterApply {
		// Forward, discard the answer, fail.
		p.rp.ServeHTTP(discard{h: http.Header{}}, r)
		writeStatus(w, d.fail, "faultproxy: injected failure after the request was applied")
		return
	}
	if !isWatch {
		p.rp.ServeHTTP(w, r)
		return
	}
	p.serveWatch(w, r)
}

// serveWatch forwards a watch stream that CutWatches can end and StallWatches can hold.
func (p *Proxy) serveWatch(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	wt := &watch{cancel: cancel}
	p.mu.Lock()
	p.watches[wt] = struct{}{}
	p.mu.Unlock()
	defer func() {
		p.mu.Lock()
		delete(p.watches, wt)
		p.mu.Unlock()
	}()
	p.rp.ServeHTTP(&stallWriter{ResponseWriter: w, p: p, ctx: ctx}, r.WithContext(ctx))
}

// stallWriter blocks each write while watches are stalled, so the stream stays open and
// quiet; the events wait in the proxy.
type stallWriter struct {
	http.ResponseWriter
	p   *Proxy
	ctx context.Context
}

func (s *stallWriter) Write(b []byte) (int, error) {
	s.p.mu.Lock()
	unstall := s.p.unstall
	s.p.mu.Unlock()
	select {
	case <-unstall:
	case <-s.ctx.Done():
		return 0, s.ctx.Err()
	}
	return s.ResponseWriter.Write(b)
}

// Flush passes flushes on, so events are not buffered in the proxy once unstalled.
func (s *stallWriter) Flush() {
	if f, ok := s.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (s *stallWriter) Unwrap() http.ResponseWriter { return s.ResponseWriter }

type discard struct{ h http.Header }

func (d discard) Header() http.Header         { return d.h }
func (d discard) Write(b []byte) (int, error) { return len(b), nil }
func (d discard) WriteHeader(int)             {}

// writeStatus answers as the API server does: a metav1.Status body, so clients decode the
// error as the API server's own.
func writeStatus(w http.ResponseWriter, code int, msg string) {
	reason := map[int]string{
		http.StatusInternalServerError: "InternalError",
		http.StatusServiceUnavailable:  "ServiceUnavailable",
		http.StatusGatewayTimeout:      "Timeout",
		http.StatusBadGateway:          "InternalError",
	}[code]
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_, _ = fmt.Fprintf(w, `{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":%q,"reason":%q,"code":%d}`, msg, reason, code)
}
