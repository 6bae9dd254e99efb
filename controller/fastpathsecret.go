package controller

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"io"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/klog/v2"

	"github.com/herald-lb/herald/owner"
)

// FastPathSecretKey is the key of the fast path's Secret: the file the speakers mount and
// name in fastPath.secretKeyFile.
const FastPathSecretKey = "secret"

// fastPathSecretBytes is the secret's randomness: 256 bits, as much as the AES-256 key the
// speakers derive from it (its SHA-256) can hold.
const fastPathSecretBytes = 32

// minFastPathSecret is the shortest secret a speaker accepts (its readSecret), checked here
// too so that a Secret the speakers would refuse is reported where it can be fixed.
const minFastPathSecret = 16

// fastPathSecretRecheck is how often the controller looks again once the Secret exists: a
// Secret deleted by hand, or by the garbage collector after a reinstall that raced it, is
// created again, since new speaker pods cannot start without it.
var fastPathSecretRecheck = time.Minute

// fastPathSecretBackoff spaces the attempts while the Secret is missing and cannot be created
// (or exists but is unusable): quick for a transient error, at most a minute for one that
// needs an operator (RBAC, an admission policy).
var fastPathSecretBackoff = wait.Backoff{Duration: time.Second, Factor: 2, Jitter: 0.2, Steps: 1 << 20, Cap: time.Minute}

// newFastPathSecret returns the fast path's Secret with fresh random content from random. The
// content is text (base64) rather than raw bytes because the speakers trim surrounding white
// space from the file, which could shorten raw random bytes.
func newFastPathSecret(namespace, name string, ref *metav1.OwnerReference, random io.Reader) (*corev1.Secret, error) {
	raw := make([]byte, fastPathSecretBytes)
	if _, err := io.ReadFull(random, raw); err != nil {
		return nil, fmt.Errorf("reading %d random bytes: %w", fastPathSecretBytes, err)
	}
	s := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace},
		Type:       corev1.SecretTypeOpaque,
		Data:       map[string][]byte{FastPathSecretKey: []byte(base64.StdEncoding.EncodeToString(raw))},
	}
	owner.Set(s, ref)
	return s, nil
}

// checkFastPathSecret reports why the speakers would refuse s, if they would. It never
// quotes the content.
func checkFastPathSecret(s *corev1.Secret) error {
	data, ok := s.Data[FastPathSecretKey]
	if !ok {
		return fmt.Errorf("the fast path's Secret %s/%s has no key %q, the file the speakers read: delete it and the controller creates a new one", s.Namespace, s.Name, FastPathSecretKey)
	}
	if n := len(strings.TrimSpace(string(data))); n < minFastPathSecret {
		return fmt.Errorf("the fast path's Secret %s/%s: key %q holds %d bytes, the speakers need at least %d: delete it and the controller creates a new one", s.Namespace, s.Name, FastPathSecretKey, n, minFastPathSecret)
	}
	return nil
}

// ensureFastPathSecret creates the Secret namespace/name when it does not exist, owned by the
// controller's ServiceAccount (see package owner) so that it goes with the installation. An
// existing Secret is never changed, only checked; one created meanwhile by another replica
// counts as existing. It reports whether it created the Secret.
func ensureFastPathSecret(ctx context.Context, client kubernetes.Interface, namespace, name string) (bool, error) {
	secrets := client.CoreV1().Secrets(namespace)
	s, err := secrets.Get(ctx, name, metav1.GetOptions{})
	if err == nil {
		return false, checkFastPathSecret(s)
	}
	if !apierrors.IsNotFound(err) {
		return false, fmt.Errorf("reading Secret %s/%s: %w", namespace, name, err)
	}
	ref, err := owner.ServiceAccount(ctx, client, namespace)
	if err != nil {
		return false, err
	}
	s, err = newFastPathSecret(namespace, name, ref, rand.Reader)
	if err != nil {
		return false, err
	}
	if _, err := secrets.Create(ctx, s, metav1.CreateOptions{}); err != nil {
		if apierrors.IsAlreadyExists(err) {
			return false, nil
		}
		return false, fmt.Errorf("creating Secret %s/%s: %w", namespace, name, err)
	}
	return true, nil
}

// keepFastPathSecret makes sure, until ctx is done, that the fast path's Secret exists: every
// replica does (creating it is idempotent), leading or not, since the speakers need it
// whoever allocates. A failure is logged with its reason and retried; it never stops the
// controller's other work.
func keepFastPathSecret(ctx context.Context, client kubernetes.Interface, namespace, name string) {
	logger := klog.FromContext(ctx).WithValues("secret", klog.KRef(namespace, name))
	backoff := fastPathSecretBackoff
	for {
		created, err := ensureFastPathSecret(ctx, client, namespace, name)
		next := fastPathSecretRecheck
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			next = backoff.Step()
			logger.Error(err, "The fast path's Secret is not usable: speaker pods cannot start until it is; retrying", "retryIn", next.Round(time.Millisecond))
		case created:
			backoff = fastPathSecretBackoff
			logger.Info("Created the fast path's Secret", "key", FastPathSecretKey)
		default:
			backoff = fastPathSecretBackoff
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(next):
		}
	}
}
