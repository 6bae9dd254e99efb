package speaker

import (
	"errors"
	"net"
	"net/http"
	"time"

	utilnet "k8s.io/apimachinery/pkg/util/net"
	"k8s.io/client-go/rest"
)

// redialEvery is how often an informer's request that could not connect is tried again.
const redialEvery = 250 * time.Millisecond

// informerConfig is cfg for the informers' clients: a GET that cannot connect is tried again
// every redialEvery until its context ends, instead of failing. client-go's reflector backs
// off exponentially on failed lists and watches, up to 30 s with as much again of jitter, so
// after a minute without an API server a speaker's informers caught up as much as a minute
// after it returned; meanwhile the speaker stays frozen (its watch has not delivered its own
// renewal). Waiting inside the request keeps the reflector out of its backoff: it reconnects
// within redialEvery of the return. Only connection failures are retried (nothing was sent,
// and a GET has no body to replay); an error from the API server reaches the reflector as
// before. The heartbeat and the status writers use the plain client and fail fast.
func informerConfig(cfg *rest.Config) *rest.Config {
	c := rest.CopyConfig(cfg)
	c.Wrap(func(rt http.RoundTripper) http.RoundTripper { return &redial{next: rt, every: redialEvery} })
	return c
}

type redial struct {
	next  http.RoundTripper
	every time.Duration
}

func (r *redial) RoundTrip(req *http.Request) (*http.Response, error) {
	for {
		resp, err := r.next.RoundTrip(req)
		if err == nil || req.Method != http.MethodGet || !notConnected(err) {
			return resp, err
		}
		t := time.NewTimer(r.every)
		select {
		case <-req.Context().Done():
			t.Stop()
			return nil, err
		case <-t.C:
		}
	}
}

// notConnected reports whether err means the request never reached a server.
func notConnected(err error) bool {
	var op *net.OpError
	return utilnet.IsConnectionRefused(err) || (errors.As(err, &op) && op.Op == "dial")
}
