//go:build integration

package controller

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr/funcr"
	admissionv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/klog/v2"
)

// logLines collects a controller's log lines.
type logLines struct {
	mu    sync.Mutex
	lines []string
}

func (l *logLines) add(prefix, args string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, prefix+" "+args)
}

func (l *logLines) all() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.lines...)
}

// startLogged runs a controller like fixture.start, logging into the returned lines.
func (f *fixture) startLogged(identity string, mutate func(*Options)) (*logLines, func()) {
	logs := &logLines{}
	ctx := klog.NewContext(context.Background(), funcr.New(logs.add, funcr.Options{Verbosity: 2}))
	return logs, f.run(ctx, identity, nil, mutate)
}

// quickFastPathSecretRetries shortens the controller's re-check and retry intervals for one test.
func quickFastPathSecretRetries(t *testing.T) {
	recheck, backoff := fastPathSecretRecheck, fastPathSecretBackoff
	fastPathSecretRecheck = 200 * time.Millisecond
	fastPathSecretBackoff = wait.Backoff{Duration: 100 * time.Millisecond, Factor: 2, Steps: 1 << 20, Cap: 500 * time.Millisecond}
	t.Cleanup(func() { fastPathSecretRecheck, fastPathSecretBackoff = recheck, backoff })
}

// checkNotLogged fails if any log line holds the secret's content.
func checkNotLogged(t *testing.T, logs *logLines, s *corev1.Secret) {
	t.Helper()
	content := string(s.Data[FastPathSecretKey])
	if content == "" {
		t.Fatal("the Secret has no content to look for")
	}
	for _, l := range logs.all() {
		if strings.Contains(l, content) {
			t.Errorf("the secret's content is logged: %s", l)
		}
	}
}

// TestIntegrationFastPathSecretCreatedOnceAndKept: the controller creates the fast path's
// Secret once; a restarted controller keeps it as it is (same content, same resourceVersion);
// a deleted one is created again with new content; the content is never logged.
func TestIntegrationFastPathSecretCreatedOnceAndKept(t *testing.T) {
	quickFastPathSecretRetries(t)
	f := newFixture(t)
	ctx := context.Background()
	secrets := f.client.CoreV1().Secrets(f.ns)
	withSecret := func(o *Options) { o.FastPathSecret = "herald-fast-path" }
	get := func(what string) *corev1.Secret {
		t.Helper()
		var s *corev1.Secret
		f.waitFor(what, func() (bool, string) {
			var err error
			s, err = secrets.Get(ctx, "herald-fast-path", metav1.GetOptions{})
			return err == nil, fmt.Sprint(err)
		})
		return s
	}

	logs, stop := f.startLogged("c1", withSecret)
	first := get("the fast path's Secret")
	if err := checkFastPathSecret(first); err != nil {
		t.Fatal(err)
	}
	f.waitFor("the creation logged", func() (bool, string) {
		for _, l := range logs.all() {
			if strings.Contains(l, "Created the fast path's Secret") && strings.Contains(l, f.ns) {
				return true, ""
			}
		}
		return false, strings.Join(logs.all(), "\n")
	})
	// A second replica, then a restart of the first: both find the Secret and keep it.
	_, stop2 := f.startLogged("c2", withSecret)
	f.pool("default", []string{"192.0.2.0/28"})
	f.service("a")
	f.waitAnyIP(f.ns, "a")
	stop()
	logs, _ = f.startLogged("c1", withSecret)
	// A few re-checks pass.
	time.Sleep(time.Second)
	stop2()
	kept := get("the fast path's Secret after the restart")
	if kept.ResourceVersion != first.ResourceVersion || string(kept.Data[FastPathSecretKey]) != string(first.Data[FastPathSecretKey]) {
		t.Errorf("the Secret changed across restarts: resourceVersion %s -> %s", first.ResourceVersion, kept.ResourceVersion)
	}
	list, err := secrets.List(ctx, metav1.ListOptions{})
	if err != nil || len(list.Items) != 1 {
		t.Fatalf("Secrets in %s: %v (%v), want the one", f.ns, list, err)
	}
	for _, l := range logs.all() {
		if strings.Contains(l, "Created the fast path's Secret") {
			t.Errorf("the restarted controller created the Secret again: %s", l)
		}
	}

	// Deleted (by hand, or by the garbage collector after a reinstall): created again.
	if err := secrets.Delete(ctx, "herald-fast-path", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	var again *corev1.Secret
	f.waitFor("the deleted Secret created again", func() (bool, string) {
		s, err := secrets.Get(ctx, "herald-fast-path", metav1.GetOptions{})
		again = s
		return err == nil, fmt.Sprint(err)
	})
	if string(again.Data[FastPathSecretKey]) == string(first.Data[FastPathSecretKey]) {
		t.Error("the new Secret has the old content")
	}
	checkNotLogged(t, logs, first)
	checkNotLogged(t, logs, again)
}

// TestIntegrationFastPathSecretRefusedIsReported: an admission policy refuses the Secret. The
// controller logs the refusal with the API server's reason and keeps allocating; once the
// policy goes, its retries create the Secret.
func TestIntegrationFastPathSecretRefusedIsReported(t *testing.T) {
	quickFastPathSecretRetries(t)
	f := newFixture(t)
	ctx := context.Background()
	const reason = "this test refuses the fast path's Secret"
	name := "herald-test-refuse-secret-" + f.ns
	policy := &admissionv1.ValidatingAdmissionPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: admissionv1.ValidatingAdmissionPolicySpec{
			FailurePolicy: ptrTo(admissionv1.Fail),
			MatchConstraints: &admissionv1.MatchResources{ResourceRules: []admissionv1.NamedRuleWithOperations{{
				RuleWithOperations: admissionv1.RuleWithOperations{
					Operations: []admissionv1.OperationType{admissionv1.Create},
					Rule:       admissionv1.Rule{APIGroups: []string{""}, APIVersions: []string{"v1"}, Resources: []string{"secrets"}},
				},
			}}},
			Validations: []admissionv1.Validation{{Expression: "object.metadata.name != 'herald-fast-path'", Message: reason}},
		},
	}
	binding := &admissionv1.ValidatingAdmissionPolicyBinding{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: admissionv1.ValidatingAdmissionPolicyBindingSpec{
			PolicyName:        name,
			ValidationActions: []admissionv1.ValidationAction{admissionv1.Deny},
			MatchResources: &admissionv1.MatchResources{NamespaceSelector: &metav1.LabelSelector{
				MatchLabels: map[string]string{corev1.LabelMetadataName: f.ns}}},
		},
	}
	vap := f.client.AdmissionregistrationV1()
	if _, err := vap.ValidatingAdmissionPolicies().Create(ctx, policy, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = vap.ValidatingAdmissionPolicies().Delete(context.Background(), name, metav1.DeleteOptions{})
	})
	if _, err := vap.ValidatingAdmissionPolicyBindings().Create(ctx, binding, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = vap.ValidatingAdmissionPolicyBindings().Delete(context.Background(), name, metav1.DeleteOptions{})
	})
	secrets := f.client.CoreV1().Secrets(f.ns)
	probe := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "herald-fast-path"}, StringData: map[string]string{"secret": "x"}}
	f.waitFor("the policy to refuse the Secret", func() (bool, string) {
		_, err := secrets.Create(ctx, probe, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		return err != nil && strings.Contains(err.Error(), reason), fmt.Sprint(err)
	})

	logs, _ := f.startLogged("c1", func(o *Options) { o.FastPathSecret = "herald-fast-path" })
	f.pool("default", []string{"192.0.2.0/28"})
	f.service("a")
	f.waitAnyIP(f.ns, "a")
	f.waitFor("the refusal logged with its reason", func() (bool, string) {
		for _, l := range logs.all() {
			if strings.Contains(l, "The fast path's Secret is not usable") && strings.Contains(l, reason) &&
				strings.Contains(l, "creating Secret "+f.ns+"/herald-fast-path") {
				return true, l
			}
		}
		return false, strings.Join(logs.all(), "\n")
	})
	if _, err := secrets.Get(ctx, "herald-fast-path", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("the refused Secret: got %v, want NotFound", err)
	}
	// Allocation goes on meanwhile.
	f.service("b")
	f.waitAnyIP(f.ns, "b")

	if err := vap.ValidatingAdmissionPolicyBindings().Delete(ctx, name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	var s *corev1.Secret
	f.waitFor("the Secret created once the policy is gone", func() (bool, string) {
		var err error
		s, err = secrets.Get(ctx, "herald-fast-path", metav1.GetOptions{})
		return err == nil, fmt.Sprint(err)
	})
	if err := checkFastPathSecret(s); err != nil {
		t.Error(err)
	}
	checkNotLogged(t, logs, s)
}

func ptrTo[T any](v T) *T { return &v }
