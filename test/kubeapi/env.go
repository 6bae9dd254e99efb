package kubeapi

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// Environment is the running API server of one test binary, as tests see it.
type Environment struct {
	// Config is an admin client config (user "admin", group system:masters).
	Config *rest.Config
	// Kubeconfig is the path of an admin kubeconfig file for Host.
	Kubeconfig string
	// Host is the https URL of the API server on loopback.
	Host string
	// CAFile is the path of the PEM CA certificate every client must verify the server with.
	CAFile string
	// Port is the API server's port; it listens on every address of the root namespace.
	Port int
	// StartupTime is how long etcd + kube-apiserver took to become ready.
	StartupTime time.Duration

	server *Server
	crdMu  sync.Mutex
}

var shared struct {
	once sync.Once
	env  *Environment
	err  error
}

// Main runs the tests of a package and then stops the API server if any test started it.
// Use it from TestMain: os.Exit(kubeapi.Main(m)).
func Main(m *testing.M) int {
	defer func() {
		if shared.env != nil {
			shared.env.server.Stop()
		}
	}()
	return m.Run()
}

// Env returns the package's API server, starting etcd and kube-apiserver on first use. It
// fails the test, with the servers' log tails, if they cannot start. Use Main in TestMain so
// they are stopped after the tests.
func Env(t testing.TB) *Environment {
	t.Helper()
	shared.once.Do(func() {
		s, err := Start(context.Background(), Options{})
		if err != nil {
			shared.err = err
			return
		}
		shared.env = &Environment{
			Config:      s.AdminConfig(),
			Kubeconfig:  s.Kubeconfig,
			Host:        s.Host,
			CAFile:      s.CAFile,
			Port:        s.Port,
			StartupTime: s.StartupTime,
			server:      s,
		}
		t.Logf("kubeapi: etcd + kube-apiserver ready at %s in %s", s.Host, s.StartupTime.Round(time.Millisecond))
	})
	if shared.err != nil {
		t.Fatalf("kubeapi: starting the API server: %v", shared.err)
	}
	return shared.env
}

// AdminConfig returns a fresh copy of the admin config, safe to modify.
func (e *Environment) AdminConfig() *rest.Config { return rest.CopyConfig(e.Config) }

// Client returns a typed clientset authenticated as admin.
func (e *Environment) Client(t testing.TB) kubernetes.Interface {
	t.Helper()
	c, err := kubernetes.NewForConfig(e.AdminConfig())
	if err != nil {
		t.Fatalf("kubeapi: admin clientset: %v", err)
	}
	return c
}

// LogTail returns the last n lines of the etcd and kube-apiserver logs, for failure messages.
func (e *Environment) LogTail(n int) string { return e.server.LogTail(n) }

// PIDs returns the process ids of kube-apiserver and etcd, for benchmarks that measure
// what a workload costs them (CPU from /proc/<pid>/stat).
func (e *Environment) PIDs() (apiserver, etcd int) { return e.server.api.pid, e.server.etcd.pid }

// LabServer returns the https URL at which processes inside lab node namespaces reach this
// API server: the lab's gateway address in the root namespace, where kube-apiserver listens
// because it binds 0.0.0.0. The serving certificate covers every address of
// LabGatewayPrefix.
func (e *Environment) LabServer(gateway netip.Addr) string {
	return "https://" + netip.AddrPortFrom(gateway, uint16(e.Port)).String()
}

// KubeconfigFor writes a kubeconfig file with cfg's credentials and CA, pointed at server
// (cfg.Host when empty), and returns its path. The file is removed with the test's TempDir.
func (e *Environment) KubeconfigFor(t testing.TB, cfg *rest.Config, server string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "kubeconfig")
	if err := WriteKubeconfig(path, cfg, server); err != nil {
		t.Fatalf("kubeapi: %v", err)
	}
	return path
}

// ServiceAccountConfig returns a client config authenticated as service account
// namespace/name, with a token from the TokenRequest API. The namespace and the service
// account are created when missing; the account has no permissions beyond what RBAC grants
// it, so tests can prove least privilege.
func (e *Environment) ServiceAccountConfig(t testing.TB, namespace, name string) *rest.Config {
	t.Helper()
	return e.serviceAccountConfig(t, namespace, name, nil)
}

// ServiceAccountConfigOnNode is ServiceAccountConfig with a token bound to a Pod of the
// account on the node, as the kubelet projects into a DaemonSet's pod: the API server adds
// the node to the token's claims (user extra authentication.kubernetes.io/node-name), which
// admission policies can check. The Pod is only an object (no kubelet runs it); the Node
// object should exist first, so the claim carries its UID too.
func (e *Environment) ServiceAccountConfigOnNode(t testing.TB, namespace, name, node string) *rest.Config {
	t.Helper()
	return e.serviceAccountConfig(t, namespace, name, func(client kubernetes.Interface) *authenticationv1.BoundObjectReference {
		pod := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Namespace: namespace, GenerateName: name + "-"},
			Spec: corev1.PodSpec{ServiceAccountName: name, NodeName: node,
				Containers: []corev1.Container{{Name: "pause", Image: "registry.k8s.io/pause:3.10"}}},
		}
		got, err := client.CoreV1().Pods(namespace).Create(context.Background(), pod, metav1.CreateOptions{})
		if err != nil {
			t.Fatalf("kubeapi: creating a pod of %s/%s on node %s: %v", namespace, name, node, err)
		}
		return &authenticationv1.BoundObjectReference{Kind: "Pod", APIVersion: "v1", Name: got.Name, UID: got.UID}
	})
}

func (e *Environment) serviceAccountConfig(t testing.TB, namespace, name string, bind func(kubernetes.Interface) *authenticationv1.BoundObjectReference) *rest.Config {
	t.Helper()
	ctx := context.Background()
	client := e.Client(t)
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: namespace}}
	if _, err := client.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatalf("kubeapi: creating namespace %q: %v", namespace, err)
	}
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name}}
	if _, err := client.CoreV1().ServiceAccounts(namespace).Create(ctx, sa, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatalf("kubeapi: creating service account %s/%s: %v", namespace, name, err)
	}
	expiry := int64(2 * time.Hour / time.Second)
	spec := authenticationv1.TokenRequestSpec{ExpirationSeconds: &expiry}
	if bind != nil {
		spec.BoundObjectRef = bind(client)
	}
	tr, err := client.CoreV1().ServiceAccounts(namespace).CreateToken(ctx, name, &authenticationv1.TokenRequest{Spec: spec}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("kubeapi: token for service account %s/%s: %v", namespace, name, err)
	}
	cfg := rest.AnonymousClientConfig(e.Config)
	cfg.BearerToken = tr.Status.Token
	cfg.QPS, cfg.Burst = e.Config.QPS, e.Config.Burst
	return cfg
}

// Namespace creates a namespace with a unique name derived from the test's name and returns
// the name. Without a namespace controller a deleted namespace stays Terminating, so it is
// left in place, but its Services are deleted when the test ends: the API server is shared by
// every test of the binary, and a later test's controller would otherwise keep their
// addresses allocated (and count them in its reports).
func (e *Environment) Namespace(t testing.TB) string {
	t.Helper()
	client := e.Client(t)
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: namespacePrefix(t.Name())}}
	got, err := client.CoreV1().Namespaces().Create(context.Background(), ns, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("kubeapi: creating a namespace for %s: %v", t.Name(), err)
	}
	t.Cleanup(func() { deleteServices(t, client, got.Name) })
	return got.Name
}

// deleteServices deletes every Service of a namespace (Services do not support
// DeleteCollection on every server version, so one by one).
func deleteServices(t testing.TB, client kubernetes.Interface, ns string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	list, err := client.CoreV1().Services(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Errorf("kubeapi: listing the Services of %s to delete them: %v", ns, err)
		return
	}
	for _, s := range list.Items {
		if err := client.CoreV1().Services(ns).Delete(ctx, s.Name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			t.Errorf("kubeapi: deleting Service %s/%s: %v", ns, s.Name, err)
		}
	}
}

var nonDNS = regexp.MustCompile(`[^a-z0-9]+`)

// namespacePrefix turns a test name into a DNS-label GenerateName prefix (the server appends
// five random characters; a label holds 63).
func namespacePrefix(testName string) string {
	p := strings.Trim(nonDNS.ReplaceAllString(strings.ToLower(testName), "-"), "-")
	p = strings.TrimPrefix(p, "test")
	p = strings.Trim(p, "-")
	if len(p) > 50 {
		p = strings.Trim(p[:50], "-")
	}
	if p == "" {
		p = "t"
	}
	return p + "-"
}

// RunDir is where `kubeapi start` keeps its detached server: $HERALD_CACHE/run/apiserver.
func RunDir() (string, error) {
	cache := os.Getenv("HERALD_CACHE")
	if cache == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return "", fmt.Errorf("locating $HERALD_CACHE: %w", err)
		}
		cache = filepath.Join(home, ".cache", "herald")
	}
	return filepath.Join(cache, "run", "apiserver"), nil
}

// StopAPIServer stops kube-apiserver and keeps etcd with its data, for tests of an API
// outage; RestartAPIServer brings it back. Should the test end without restarting it, a
// cleanup does, so later tests of the package find it running.
func (e *Environment) StopAPIServer(t testing.TB) {
	t.Helper()
	e.server.StopAPIServer()
	t.Cleanup(func() {
		if !alive(e.server.api.pid) {
			if err := e.server.RestartAPIServer(context.Background()); err != nil {
				t.Errorf("kubeapi: restarting the API server after the test: %v", err)
			}
		}
	})
}

// RestartAPIServer starts kube-apiserver again after StopAPIServer (same port, flags and
// data) and returns when it is ready, failing the test with the log tails if it is not.
func (e *Environment) RestartAPIServer(t testing.TB) {
	t.Helper()
	if err := e.server.RestartAPIServer(context.Background()); err != nil {
		t.Fatalf("kubeapi: %v", err)
	}
}
