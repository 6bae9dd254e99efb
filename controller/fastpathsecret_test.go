package controller

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"testing/iotest"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	k8sfake "k8s.io/client-go/kubernetes/fake"
	clienttesting "k8s.io/client-go/testing"
)

func TestNewFastPathSecret(t *testing.T) {
	ref := &metav1.OwnerReference{APIVersion: "v1", Kind: "ServiceAccount", Name: "herald-controller", UID: "u1"}
	random := bytes.NewReader(bytes.Repeat([]byte{0xa5}, 64))
	s, err := newFastPathSecret("herald-system", "herald-fast-path", ref, random)
	if err != nil {
		t.Fatal(err)
	}
	if s.Namespace != "herald-system" || s.Name != "herald-fast-path" || s.Type != corev1.SecretTypeOpaque {
		t.Errorf("Secret %s/%s of type %s", s.Namespace, s.Name, s.Type)
	}
	if len(s.OwnerReferences) != 1 || s.OwnerReferences[0].UID != "u1" {
		t.Errorf("owners %+v, want the ServiceAccount", s.OwnerReferences)
	}
	if len(s.Data) != 1 {
		t.Errorf("keys %v, want only %q", s.Data, FastPathSecretKey)
	}
	raw, err := base64.StdEncoding.DecodeString(string(s.Data[FastPathSecretKey]))
	if err != nil || !bytes.Equal(raw, bytes.Repeat([]byte{0xa5}, fastPathSecretBytes)) {
		t.Errorf("content decodes to %x (%v), want the first %d random bytes", raw, err, fastPathSecretBytes)
	}
	if err := checkFastPathSecret(s); err != nil {
		t.Errorf("the speakers would refuse a new Secret: %v", err)
	}
	// The content is text with no surrounding white space: the speakers' trim keeps it whole.
	if d := s.Data[FastPathSecretKey]; strings.TrimSpace(string(d)) != string(d) {
		t.Errorf("content %q changes when trimmed", d)
	}

	// Without an owner (a kubeconfig user, not a ServiceAccount), none is set.
	if s, err := newFastPathSecret("ns", "n", nil, bytes.NewReader(make([]byte, 32))); err != nil || len(s.OwnerReferences) != 0 {
		t.Errorf("without an owner: owners %v, err %v", s.OwnerReferences, err)
	}
	// Too little randomness is an error, never a short secret.
	if _, err := newFastPathSecret("ns", "n", nil, bytes.NewReader(make([]byte, 31))); err == nil {
		t.Error("31 random bytes: no error")
	}
	if _, err := newFastPathSecret("ns", "n", nil, iotest.ErrReader(errors.New("no entropy"))); err == nil || !strings.Contains(err.Error(), "no entropy") {
		t.Errorf("failing random source: got %v", err)
	}
}

func TestCheckFastPathSecret(t *testing.T) {
	const content = "0123456789abcdef0123456789abcdef"
	for _, tc := range []struct {
		name string
		data map[string][]byte
		want string // "" for none
	}{
		{"ok", map[string][]byte{FastPathSecretKey: []byte(content)}, ""},
		{"16 bytes with a newline", map[string][]byte{FastPathSecretKey: []byte("0123456789abcdef\n")}, ""},
		{"no key", map[string][]byte{"other": []byte(content)}, `has no key "secret"`},
		{"empty", nil, `has no key "secret"`},
		{"short once trimmed", map[string][]byte{FastPathSecretKey: []byte("  0123456789abcde \n")}, "holds 15 bytes, the speakers need at least 16"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "fp"}, Data: tc.data}
			err := checkFastPathSecret(s)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("got %v, want none", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "ns/fp") {
				t.Fatalf("got %v, want an error naming ns/fp and %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "0123456789") {
				t.Errorf("the error quotes the content: %v", err)
			}
		})
	}
}

func TestEnsureFastPathSecret(t *testing.T) {
	ctx := context.Background()
	gr := schema.GroupResource{Resource: "secrets"}
	existing := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "fp"},
		Data: map[string][]byte{FastPathSecretKey: []byte("an operator's own secret, kept")}}

	t.Run("creates a missing Secret", func(t *testing.T) {
		client := fakeWithWhoAmI()
		created, err := ensureFastPathSecret(ctx, client, "ns", "fp")
		if err != nil || !created {
			t.Fatalf("created %v, err %v", created, err)
		}
		s, err := client.CoreV1().Secrets("ns").Get(ctx, "fp", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if err := checkFastPathSecret(s); err != nil {
			t.Error(err)
		}
		if len(s.OwnerReferences) != 1 || s.OwnerReferences[0].Name != "herald-controller" || s.OwnerReferences[0].UID != "sa-uid" {
			t.Errorf("owners %+v, want the controller's ServiceAccount", s.OwnerReferences)
		}
		// Again: nothing is written, the content stays.
		client.ClearActions()
		if created, err := ensureFastPathSecret(ctx, client, "ns", "fp"); err != nil || created {
			t.Fatalf("second call: created %v, err %v", created, err)
		}
		for _, a := range client.Actions() {
			if a.GetVerb() != "get" {
				t.Errorf("second call made a %s", a.GetVerb())
			}
		}
		again, _ := client.CoreV1().Secrets("ns").Get(ctx, "fp", metav1.GetOptions{})
		if !bytes.Equal(again.Data[FastPathSecretKey], s.Data[FastPathSecretKey]) {
			t.Error("the content changed")
		}
	})

	t.Run("never touches an existing Secret", func(t *testing.T) {
		client := fakeWithWhoAmI(existing.DeepCopy())
		if created, err := ensureFastPathSecret(ctx, client, "ns", "fp"); err != nil || created {
			t.Fatalf("created %v, err %v", created, err)
		}
		for _, a := range client.Actions() {
			if a.GetVerb() != "get" {
				t.Errorf("made a %s on an existing Secret", a.GetVerb())
			}
		}
	})

	t.Run("an unusable existing Secret is reported, not replaced", func(t *testing.T) {
		bad := existing.DeepCopy()
		bad.Data = map[string][]byte{"password": []byte("0123456789abcdef0123")}
		client := fakeWithWhoAmI(bad)
		_, err := ensureFastPathSecret(ctx, client, "ns", "fp")
		if err == nil || !strings.Contains(err.Error(), `has no key "secret"`) {
			t.Fatalf("got %v", err)
		}
		s, _ := client.CoreV1().Secrets("ns").Get(ctx, "fp", metav1.GetOptions{})
		if _, ok := s.Data["password"]; !ok || len(s.Data) != 1 {
			t.Errorf("the Secret was changed: %v", s.Data)
		}
	})

	t.Run("another replica created it first", func(t *testing.T) {
		client := fakeWithWhoAmI()
		client.PrependReactor("create", "secrets", func(clienttesting.Action) (bool, runtime.Object, error) {
			return true, nil, apierrors.NewAlreadyExists(gr, "fp")
		})
		if created, err := ensureFastPathSecret(ctx, client, "ns", "fp"); err != nil || created {
			t.Fatalf("created %v, err %v; want neither", created, err)
		}
	})

	t.Run("a refused create names the Secret and the reason", func(t *testing.T) {
		client := fakeWithWhoAmI()
		client.PrependReactor("create", "secrets", func(clienttesting.Action) (bool, runtime.Object, error) {
			return true, nil, apierrors.NewForbidden(gr, "", errors.New("no RBAC rule allows it"))
		})
		_, err := ensureFastPathSecret(ctx, client, "ns", "fp")
		if !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), "creating Secret ns/fp") || !strings.Contains(err.Error(), "no RBAC rule allows it") {
			t.Fatalf("got %v", err)
		}
	})

	t.Run("a failed read is not taken for a missing Secret", func(t *testing.T) {
		client := fakeWithWhoAmI()
		client.PrependReactor("get", "secrets", func(clienttesting.Action) (bool, runtime.Object, error) {
			return true, nil, apierrors.NewServiceUnavailable("etcd is down")
		})
		_, err := ensureFastPathSecret(ctx, client, "ns", "fp")
		if err == nil || !strings.Contains(err.Error(), "reading Secret ns/fp") {
			t.Fatalf("got %v", err)
		}
		for _, a := range client.Actions() {
			if a.GetVerb() == "create" {
				t.Error("created the Secret although its read failed")
			}
		}
	})
}

// fakeWithWhoAmI is a fake clientset that answers SelfSubjectReview (which the fake does not
// serve) as the API server would for the controller's ServiceAccount in namespace "ns".
func fakeWithWhoAmI(objs ...runtime.Object) *k8sfake.Clientset {
	client := k8sfake.NewClientset(objs...)
	client.PrependReactor("create", "selfsubjectreviews", func(clienttesting.Action) (bool, runtime.Object, error) {
		return true, &authenticationv1.SelfSubjectReview{Status: authenticationv1.SelfSubjectReviewStatus{
			UserInfo: authenticationv1.UserInfo{Username: "system:serviceaccount:ns:herald-controller", UID: "sa-uid"}}}, nil
	})
	return client
}

func TestFastPathSecretOption(t *testing.T) {
	o := DefaultOptions()
	if o.FastPathSecret != "" {
		t.Errorf("default --fast-path-secret %q, want empty (off)", o.FastPathSecret)
	}
	o.FastPathSecret = "herald-fast-path"
	if err := o.Validate(); err != nil {
		t.Errorf("herald-fast-path: %v", err)
	}
	o.FastPathSecret = "Not_A_Name"
	if err := o.Validate(); err == nil || !strings.Contains(err.Error(), "--fast-path-secret") {
		t.Errorf("Not_A_Name: got %v", err)
	}
}
