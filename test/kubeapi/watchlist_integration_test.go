//go:build integration

package kubeapi_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/wait"
	clientfeatures "k8s.io/client-go/features"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"

	"github.com/herald-lb/herald/test/kubeapi"
)

// TestIntegrationInformersSyncByStreamingList proves the test API server serves streaming
// lists (watch=true&sendInitialEvents=true), as a real cluster's does: an informer's initial
// sync is one watch that replays the objects, with no LIST request. With an etcd that lacks
// RequestWatchProgress (Debian's 3.4) kube-apiserver refuses the stream and client-go falls
// back to a paged LIST, so the memory and latency figures measured here would not be the
// production ones.
func TestIntegrationInformersSyncByStreamingList(t *testing.T) {
	if !clientfeatures.FeatureGates().Enabled(clientfeatures.WatchListClient) {
		t.Fatalf("client-go feature gate %s is off (KUBE_FEATURE_%s?); informers would not ask for a stream",
			clientfeatures.WatchListClient, clientfeatures.WatchListClient)
	}
	env := kubeapi.Env(t)
	ctx := context.Background()
	ns := env.Namespace(t)
	admin := env.Client(t)
	want := map[string]bool{}
	for i := range 3 {
		cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("cm-%d", i)}}
		if _, err := admin.CoreV1().ConfigMaps(ns).Create(ctx, cm, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		want[cm.Name] = true
	}

	rec := &urlRecorder{}
	cfg := env.AdminConfig()
	cfg.Wrap(rec.wrap)
	factory := informers.NewSharedInformerFactoryWithOptions(kubernetes.NewForConfigOrDie(cfg), 0, informers.WithNamespace(ns))
	lister := factory.Core().V1().ConfigMaps().Lister()
	stop := make(chan struct{})
	defer func() { close(stop); factory.Shutdown() }()
	factory.Start(stop)
	syncCtx, cancel := context.WithTimeout(ctx, wait.ForeverTestTimeout)
	defer cancel()
	for typ, ok := range factory.WaitForCacheSync(syncCtx.Done()) {
		if !ok {
			t.Fatalf("informer for %v did not sync in %s; requests: %v\n%s", typ, wait.ForeverTestTimeout, rec.urls(), env.LogTail(20))
		}
	}

	cms, err := lister.List(labels.Everything())
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, cm := range cms {
		got[cm.Name] = true
	}
	for name := range want {
		if !got[name] {
			t.Errorf("synced cache lacks ConfigMap %s/%s; cache holds %v", ns, name, got)
		}
	}

	requests := rec.urls()
	if len(requests) == 0 {
		t.Fatal("the informer made no ConfigMap request")
	}
	first, err := url.Parse(requests[0])
	if err != nil {
		t.Fatal(err)
	}
	if q := first.Query(); q.Get("watch") != "true" || q.Get("sendInitialEvents") != "true" {
		t.Errorf("the first ConfigMap request is %s, want a watch with sendInitialEvents=true", requests[0])
	}
	for _, r := range requests {
		u, err := url.Parse(r)
		if err != nil {
			t.Fatal(err)
		}
		if u.Query().Get("watch") != "true" {
			t.Errorf("the informer fell back to a plain LIST (%s): the API server refused the streaming list; is etcd older than 3.4.31/3.5.13? (EtcdBinary: %s)\nall requests: %v",
				r, etcdBinary(), requests)
		}
	}
}

// urlRecorder records the URL of every ConfigMap request a client sends.
type urlRecorder struct {
	mu   sync.Mutex
	seen []string
}

func (r *urlRecorder) wrap(rt http.RoundTripper) http.RoundTripper {
	return roundTripperFunc(func(req *http.Request) (*http.Response, error) {
		if strings.HasSuffix(req.URL.Path, "/configmaps") {
			r.mu.Lock()
			r.seen = append(r.seen, req.URL.String())
			r.mu.Unlock()
		}
		return rt.RoundTrip(req)
	})
}

func (r *urlRecorder) urls() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.seen...)
}

type roundTripperFunc func(*http.Request) (*http.Response, error)

func (f roundTripperFunc) RoundTrip(req *http.Request) (*http.Response, error) { return f(req) }

func etcdBinary() string {
	p, err := kubeapi.EtcdBinary()
	if err != nil {
		return err.Error()
	}
	return p
}
