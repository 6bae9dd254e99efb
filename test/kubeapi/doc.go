// Package kubeapi runs a real etcd and kube-apiserver for tests and for manual use.
//
// Test packages start the pair lazily, at most once per test binary:
//
//	func TestMain(m *testing.M) { os.Exit(kubeapi.Main(m)) }
//
//	func TestIntegrationSomething(t *testing.T) {
//		env := kubeapi.Env(t) // starts etcd + kube-apiserver on first use
//		client := kubernetes.NewForConfigOrDie(env.Config)
//		...
//	}
//
// Each test binary gets its own etcd and kube-apiserver on free ports chosen at start, with
// their data, certificates and logs in a private temporary directory, so test packages run in
// parallel. Main stops both processes and removes the directory after the tests, also when
// tests fail. If the test binary dies abruptly (a panic, a -timeout), the kernel kills both
// processes (parent-death signal) and the next start removes the orphaned directory.
//
// Security setup: authorization is RBAC; the admin identity is a static token in
// system:masters (--token-auth-file); service-account tokens come from the TokenRequest API,
// so tests can prove least privilege with [Environment.ServiceAccountConfig]. The serving
// certificate is signed by a CA generated at start; every rest.Config and kubeconfig
// verifies it (no insecure-skip-verify).
//
// Reaching the server from network namespaces: kube-apiserver binds 0.0.0.0 on its random
// port, so it also listens on the per-lab gateway address that package test/lab puts in the
// root namespace (an address in 203.0.113.0/24, routed from the lab's node namespaces). The
// serving certificate's SANs cover loopback, localhost and all of 203.0.113.0/24, so
// [Environment.LabServer] gives a URL that verifies from inside a lab node.
//
// The binaries come from test/tools/install.sh, both built from the Go module proxy:
// kube-apiserver from $HERALD_CACHE/bin/kube-apiserver-v<KubeVersion> (override with
// $HERALD_KUBE_APISERVER) and etcd from $HERALD_CACHE/bin/etcd-v<EtcdVersion> (override with
// $HERALD_ETCD). The etcd is the one Kubernetes ships with, new enough for kube-apiserver to
// serve streaming lists (watch-list), so informers sync the way they do on a real cluster.
package kubeapi
