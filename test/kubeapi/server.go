package kubeapi

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"k8s.io/client-go/rest"
)

// KubeVersion is the kube-apiserver version test/tools/install.sh builds and caches.
const KubeVersion = "1.37.2"

// EtcdVersion is the etcd version test/tools/install.sh builds and caches: the one Kubernetes
// KubeVersion ships with. Debian's etcd 3.4 lacks RequestWatchProgress, so kube-apiserver
// turns off streaming lists and every informer falls back to a paged LIST, a path real
// clusters do not take.
const EtcdVersion = "3.7.0"

// startTimeout bounds how long etcd plus kube-apiserver may take to become ready; two shared
// cores under a parallel test run are slow, an idle machine needs a few seconds.
const startTimeout = 3 * time.Minute

// ServiceClusterIPRanges is the apiserver's dual-stack Service ClusterIP allocation range,
// from the benchmarking block 198.18.0.0/15 and the documentation prefix: without kube-proxy
// nothing routes them; in package test/cluster kube-proxy does, inside the lab's namespaces.
const ServiceClusterIPRanges = "198.19.0.0/16,2001:db8:96::/112"

// KubernetesServiceIP is the ClusterIP of the default/kubernetes Service (the first of
// ServiceClusterIPRanges); the serving certificate covers it, as pods reach the API there.
const KubernetesServiceIP = "198.19.0.1"

// Options configure Start.
type Options struct {
	// Dir holds data, certificates, logs and the state file. Empty means a new temporary
	// directory, removed by Stop.
	Dir string
	// Detached makes the processes outlive the caller (own session, no parent-death signal),
	// for `kubeapi start`. Otherwise they die with the calling process.
	Detached bool
	// ExtraArgs ("--name=value") replace kube-apiserver's flags of the same name or add to
	// them, e.g. the endpoint reconciler and Node authorizer a cluster with kubelets needs.
	ExtraArgs []string
	// Tokens are extra static tokens, "token,user,uid,group1,group2" lines of the
	// token-auth-file (kubelets, kube-proxy, kube-controller-manager).
	Tokens []string
}

// Server is a running etcd + kube-apiserver pair.
type Server struct {
	// Dir holds data, certificates, logs, the state file and the admin kubeconfig.
	Dir string
	// Host is the https URL of the API server on loopback.
	Host string
	// Port is the API server's secure port, bound on every address of the root namespace.
	Port int
	// CAData is the PEM CA certificate that signed the serving certificate.
	CAData []byte
	// CAFile is the path of CAData on disk, for curl and other tools.
	CAFile string
	// AdminToken authenticates as user "admin" in group system:masters.
	AdminToken string
	// Kubeconfig is the path of an admin kubeconfig for Host.
	Kubeconfig string
	// StartupTime is how long the start took, from key generation to a ready /readyz.
	StartupTime time.Duration

	ownsDir bool
	etcd    *process
	api     *process
	// apiStart starts kube-apiserver again with the same flags, for RestartAPIServer.
	apiStart func() (*process, error)
}

// state is what a Server writes to Dir/state.json, so that another process (`kubeapi stop`,
// or the reaper of orphaned directories) can find and stop it.
type state struct {
	Owner        int    `json:"owner"`
	EtcdPID      int    `json:"etcdPID"`
	APIServerPID int    `json:"apiserverPID"`
	Host         string `json:"host"`
	Kubeconfig   string `json:"kubeconfig"`
}

// Start starts etcd and kube-apiserver and waits until the API server is ready. A port taken
// between choosing and binding it is retried with fresh ports.
func Start(ctx context.Context, opts Options) (*Server, error) {
	reapOrphans()
	var err error
	for attempt := 0; attempt < 3; attempt++ {
		var s *Server
		s, err = start(ctx, opts)
		if err == nil {
			return s, nil
		}
		if !errors.Is(err, errPortTaken) {
			return nil, err
		}
	}
	return nil, err
}

var errPortTaken = errors.New("port already in use")

func start(ctx context.Context, opts Options) (s *Server, err error) {
	began := time.Now()
	apiBin, err := APIServerBinary()
	if err != nil {
		return nil, err
	}
	etcdBin, err := EtcdBinary()
	if err != nil {
		return nil, err
	}
	s = &Server{Dir: opts.Dir}
	if s.Dir == "" {
		s.Dir, err = os.MkdirTemp("", fmt.Sprintf("herald-kubeapi-%d-", os.Getpid()))
		if err != nil {
			return nil, fmt.Errorf("state directory: %w", err)
		}
		s.ownsDir = true
	} else if err := os.MkdirAll(s.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("state directory: %w", err)
	}
	// The error returns below give a nil *Server: the deferred cleanup keeps its own.
	srv := s
	defer func() {
		if err != nil {
			err = fmt.Errorf("%w\n%s", err, srv.LogTail(30))
			srv.Stop()
		}
	}()

	keys, err := newPKI()
	if err != nil {
		return nil, err
	}
	s.CAData = keys.caPEM
	s.CAFile = filepath.Join(s.Dir, "ca.crt")
	s.AdminToken = randomHex(16)
	files := map[string][]byte{
		"ca.crt":        keys.caPEM,
		"serving.crt":   keys.servingCertPEM,
		"serving.key":   keys.servingKeyPEM,
		"sa.key":        keys.saKeyPEM,
		"sa.pub":        keys.saPubPEM,
		"tokens.csv":    []byte(tokenFile(s.AdminToken, opts.Tokens)),
		"etcd.log":      nil,
		"apiserver.log": nil,
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(s.Dir, name), data, 0o600); err != nil {
			return nil, fmt.Errorf("writing %s: %w", name, err)
		}
	}

	ports, err := freePorts(3)
	if err != nil {
		return nil, err
	}
	clientURL := fmt.Sprintf("http://127.0.0.1:%d", ports[0])
	peerURL := fmt.Sprintf("http://127.0.0.1:%d", ports[1])
	s.Port = ports[2]
	s.Host = fmt.Sprintf("https://127.0.0.1:%d", s.Port)

	s.etcd, err = startProcess(opts.Detached, filepath.Join(s.Dir, "etcd.log"), etcdBin,
		"--name=herald-test",
		"--data-dir="+filepath.Join(s.Dir, "etcd"),
		"--listen-client-urls="+clientURL,
		"--advertise-client-urls="+clientURL,
		"--listen-peer-urls="+peerURL,
		"--initial-advertise-peer-urls="+peerURL,
		"--initial-cluster=herald-test="+peerURL,
		"--logger=zap",
		"--log-outputs=stderr",
		// Test data is disposable: skip fsync so etcd keeps up on a busy machine.
		"--unsafe-no-fsync",
	)
	if err != nil {
		return nil, err
	}
	if err := waitHTTP(ctx, http.DefaultClient, clientURL+"/health", "", s.etcd); err != nil {
		return nil, fmt.Errorf("etcd: %w", err)
	}

	apiArgs := []string{
		"--etcd-servers=" + clientURL,
		// 0.0.0.0 so that lab node namespaces reach it at their gateway address too.
		"--bind-address=0.0.0.0",
		"--secure-port=" + strconv.Itoa(s.Port),
		"--advertise-address=127.0.0.1",
		"--endpoint-reconciler-type=none",
		"--cert-dir=" + filepath.Join(s.Dir, "certs"),
		"--tls-cert-file=" + filepath.Join(s.Dir, "serving.crt"),
		"--tls-private-key-file=" + filepath.Join(s.Dir, "serving.key"),
		"--token-auth-file=" + filepath.Join(s.Dir, "tokens.csv"),
		"--authorization-mode=RBAC",
		"--service-account-key-file=" + filepath.Join(s.Dir, "sa.pub"),
		"--service-account-signing-key-file=" + filepath.Join(s.Dir, "sa.key"),
		"--service-account-issuer=https://kubernetes.default.svc",
		"--service-cluster-ip-range=" + ServiceClusterIPRanges,
		"--allow-privileged=true",
		"--profiling=false",
		"--v=1",
	}
	apiArgs = mergeFlags(apiArgs, opts.ExtraArgs)
	s.apiStart = func() (*process, error) {
		return startProcess(opts.Detached, filepath.Join(s.Dir, "apiserver.log"), apiBin, apiArgs...)
	}
	if s.api, err = s.apiStart(); err != nil {
		return nil, err
	}
	if err := waitHTTP(ctx, s.httpClient(), s.Host+"/readyz", s.AdminToken, s.api); err != nil {
		if strings.Contains(s.tail("apiserver.log", 50), "address already in use") {
			return nil, fmt.Errorf("kube-apiserver port %d: %w", s.Port, errPortTaken)
		}
		return nil, fmt.Errorf("kube-apiserver: %w", err)
	}

	s.Kubeconfig = filepath.Join(s.Dir, "admin.kubeconfig")
	if err := WriteKubeconfig(s.Kubeconfig, s.AdminConfig(), ""); err != nil {
		return nil, err
	}
	if err := s.writeState(); err != nil {
		return nil, err
	}
	s.StartupTime = time.Since(began)
	return s, nil
}

// StopAPIServer stops kube-apiserver and leaves etcd running with its data, as a control
// plane whose API server is down: clients get connection refused until RestartAPIServer.
func (s *Server) StopAPIServer() {
	s.api.stop()
}

// RestartAPIServer starts kube-apiserver again after StopAPIServer, on the same port with
// the same flags, certificates and etcd data, and waits until it is ready.
func (s *Server) RestartAPIServer(ctx context.Context) error {
	if alive(s.api.pid) {
		return errors.New("kube-apiserver is still running")
	}
	api, err := s.apiStart()
	if err != nil {
		return err
	}
	s.api = api
	if err := waitHTTP(ctx, s.httpClient(), s.Host+"/readyz", s.AdminToken, s.api); err != nil {
		return fmt.Errorf("kube-apiserver restart: %w\n%s", err, s.LogTail(30))
	}
	return s.writeState()
}

// AdminConfig returns a client config authenticated as a member of system:masters.
func (s *Server) AdminConfig() *rest.Config {
	return &rest.Config{
		Host:            s.Host,
		BearerToken:     s.AdminToken,
		TLSClientConfig: rest.TLSClientConfig{CAData: append([]byte(nil), s.CAData...)},
		// Tests create many objects quickly; client-side throttling would only slow them.
		QPS:   200,
		Burst: 400,
	}
}

func (s *Server) httpClient() *http.Client {
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(s.CAData)
	return &http.Client{
		Timeout:   5 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}},
	}
}

func (s *Server) writeState() error {
	st := state{Owner: os.Getpid(), Host: s.Host, Kubeconfig: s.Kubeconfig}
	if s.etcd != nil {
		st.EtcdPID = s.etcd.pid
	}
	if s.api != nil {
		st.APIServerPID = s.api.pid
	}
	data, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(s.Dir, "state.json"), data, 0o600)
}

// Stop kills both process groups and, if Start created it, removes the state directory.
func (s *Server) Stop() {
	// The API server first, so it does not log a storm of etcd connection errors.
	s.api.stop()
	s.etcd.stop()
	if s.ownsDir {
		os.RemoveAll(s.Dir)
	}
}

// LogTail returns the last n lines of the etcd and kube-apiserver logs.
func (s *Server) LogTail(n int) string {
	return "--- kube-apiserver log tail ---\n" + s.tail("apiserver.log", n) +
		"--- etcd log tail ---\n" + s.tail("etcd.log", n)
}

func (s *Server) tail(name string, n int) string {
	data, err := os.ReadFile(filepath.Join(s.Dir, name))
	if err != nil {
		return err.Error() + "\n"
	}
	lines := strings.SplitAfter(string(data), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "")
}

// StopDir stops the servers a detached Start left in dir and removes dir.
func StopDir(dir string) error {
	data, err := os.ReadFile(filepath.Join(dir, "state.json"))
	if err != nil && !os.IsNotExist(err) {
		return fmt.Errorf("reading state of %s: %w", dir, err)
	}
	if err == nil {
		var st state
		if err := json.Unmarshal(data, &st); err != nil {
			return fmt.Errorf("parsing %s/state.json: %w", dir, err)
		}
		killGroup(st.APIServerPID)
		killGroup(st.EtcdPID)
	}
	return os.RemoveAll(dir)
}

// ReadyDir reports whether dir holds a running server and returns its admin kubeconfig path.
func ReadyDir(dir string) (string, bool) {
	data, err := os.ReadFile(filepath.Join(dir, "state.json"))
	if err != nil {
		return "", false
	}
	var st state
	if json.Unmarshal(data, &st) != nil || !alive(st.EtcdPID) || !alive(st.APIServerPID) {
		return "", false
	}
	return st.Kubeconfig, true
}

// tokenFile is the token-auth-file: the admin's token, then extra lines, each quoted where
// a group list needs it ("token,user,uid,\"g1,g2\"").
func tokenFile(admin string, extra []string) string {
	var b strings.Builder
	b.WriteString(admin + ",admin,admin-uid,system:masters\n")
	for _, line := range extra {
		parts := strings.SplitN(line, ",", 4)
		if len(parts) == 4 && strings.Contains(parts[3], ",") {
			line = strings.Join(parts[:3], ",") + ",\"" + parts[3] + "\""
		}
		b.WriteString(line + "\n")
	}
	return b.String()
}

// mergeFlags returns base with every "--name=value" of extra replacing base's flag of that
// name (list flags such as --authorization-mode append when repeated, so they are replaced,
// not repeated), and the rest of extra appended.
func mergeFlags(base, extra []string) []string {
	name := func(f string) string { n, _, _ := strings.Cut(f, "="); return n }
	out := make([]string, 0, len(base)+len(extra))
	for _, b := range base {
		if !slices.ContainsFunc(extra, func(e string) bool { return name(e) == name(b) }) {
			out = append(out, b)
		}
	}
	return append(out, extra...)
}
