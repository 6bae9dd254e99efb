// Package e2e holds Herald's end-to-end suites: a real kube-apiserver (test/kubeapi), a lab of
// network namespaces (test/lab), the real `herald controller` and one real `herald speaker`
// per node namespace, observed from the client namespace with the real arping and curl.
// The tests are behind the e2e build tag and named TestE2E...; run them with make test-e2e.
package e2e
