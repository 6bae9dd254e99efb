//go:build integration

package kubeapi_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"strconv"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/herald-lb/herald/test/kubeapi"
)

func TestMain(m *testing.M) { os.Exit(kubeapi.Main(m)) }

func TestIntegrationAdminCreatesAndReadsNamespace(t *testing.T) {
	env := kubeapi.Env(t)
	t.Logf("start-up time: %s", env.StartupTime)
	client := env.Client(t)
	ctx := context.Background()
	name := env.Namespace(t)
	got, err := client.CoreV1().Namespaces().Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("reading namespace %s back: %v", name, err)
	}
	if got.Name != name || got.UID == "" {
		t.Fatalf("namespace read back as %q uid %q, want %q with a UID", got.Name, got.UID, name)
	}
	// The name derives from the test's, so a second one must differ.
	if other := env.Namespace(t); other == name {
		t.Fatalf("two namespaces for one test share the name %q", name)
	}
}

func TestIntegrationRBACIsEnforcedForServiceAccounts(t *testing.T) {
	env := kubeapi.Env(t)
	ctx := context.Background()
	ns := env.Namespace(t)
	admin := env.Client(t)
	saClient, err := kubernetes.NewForConfig(env.ServiceAccountConfig(t, ns, "reader"))
	if err != nil {
		t.Fatal(err)
	}

	_, err = saClient.CoreV1().Secrets(ns).List(ctx, metav1.ListOptions{})
	if !apierrors.IsForbidden(err) {
		t.Fatalf("listing Secrets without a RoleBinding: got %v, want Forbidden", err)
	}

	role := &rbacv1.Role{
		ObjectMeta: metav1.ObjectMeta{Name: "secret-reader"},
		Rules:      []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"secrets"}, Verbs: []string{"list"}}},
	}
	if _, err := admin.RbacV1().Roles(ns).Create(ctx, role, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	binding := &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "reader-reads-secrets"},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: "secret-reader"},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Namespace: ns, Name: "reader"}},
	}
	if _, err := admin.RbacV1().RoleBindings(ns).Create(ctx, binding, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	// The RBAC authorizer reads bindings from an informer: allow it a moment to catch up.
	var lastErr error
	err = wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, wait.ForeverTestTimeout, true, func(ctx context.Context) (bool, error) {
		_, lastErr = saClient.CoreV1().Secrets(ns).List(ctx, metav1.ListOptions{})
		return lastErr == nil, nil
	})
	if err != nil {
		t.Fatalf("listing Secrets after the RoleBinding: %v", lastErr)
	}
	// Least privilege: the Role grants list on Secrets in ns only, nothing else.
	if _, err := saClient.CoreV1().ConfigMaps(ns).List(ctx, metav1.ListOptions{}); !apierrors.IsForbidden(err) {
		t.Fatalf("listing ConfigMaps with a Secrets-only Role: got %v, want Forbidden", err)
	}
	if _, err := saClient.CoreV1().Secrets("default").List(ctx, metav1.ListOptions{}); !apierrors.IsForbidden(err) {
		t.Fatalf("listing Secrets in another namespace: got %v, want Forbidden", err)
	}
}

func TestIntegrationKubeconfigFilesWorkThroughClientcmd(t *testing.T) {
	env := kubeapi.Env(t)
	ctx := context.Background()
	ns := env.Namespace(t)

	adminCfg, err := clientcmd.BuildConfigFromFlags("", env.Kubeconfig)
	if err != nil {
		t.Fatalf("loading admin kubeconfig: %v", err)
	}
	if adminCfg.Insecure {
		t.Fatal("admin kubeconfig skips TLS verification")
	}
	admin := kubernetes.NewForConfigOrDie(adminCfg)
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "via-kubeconfig"}, Data: map[string]string{"k": "v"}}
	if _, err := admin.CoreV1().ConfigMaps(ns).Create(ctx, cm, metav1.CreateOptions{}); err != nil {
		t.Fatalf("creating a ConfigMap through the admin kubeconfig: %v", err)
	}

	// A service-account kubeconfig through "localhost" (a DNS SAN, not the IP in Host).
	saPath := env.KubeconfigFor(t, env.ServiceAccountConfig(t, ns, "nobody"), "https://localhost:"+strconv.Itoa(env.Port))
	saCfg, err := clientcmd.BuildConfigFromFlags("", saPath)
	if err != nil {
		t.Fatalf("loading service-account kubeconfig: %v", err)
	}
	_, err = kubernetes.NewForConfigOrDie(saCfg).CoreV1().ConfigMaps(ns).Get(ctx, "via-kubeconfig", metav1.GetOptions{})
	if !apierrors.IsForbidden(err) {
		t.Fatalf("service account without bindings reading a ConfigMap: got %v, want Forbidden", err)
	}

	// A kubeconfig with a CA that did not sign the server's certificate must fail TLS.
	wrong := *adminCfg
	wrong.TLSClientConfig.CAData = otherCA(t)
	if _, err := kubernetes.NewForConfigOrDie(&wrong).CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{}); err == nil {
		t.Fatal("a client trusting another CA talked to the server; TLS is not verified")
	}
}

// otherCA returns a PEM CA certificate unrelated to the server's.
func otherCA(t *testing.T) []byte {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "other"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}
