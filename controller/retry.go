package controller

import (
	"context"
	"errors"
	"io"
	"net"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilnet "k8s.io/apimachinery/pkg/util/net"
	"k8s.io/apimachinery/pkg/util/wait"
)

// writeBackoff paces the retries of a write that failed transiently: five more attempts
// within about 1.5 s. A write still failing after that returns its error and the Service goes
// back to the rate-limited queue.
var writeBackoff = wait.Backoff{Duration: 50 * time.Millisecond, Factor: 2, Jitter: 0.2, Steps: 6, Cap: time.Second}

// writeTimeout bounds one attempt of a write: a stalled connection must not hold a worker.
const writeTimeout = 10 * time.Second

// transient reports whether a failed request may succeed if repeated unchanged: the API
// server or the way to it failed (5xx, timeouts, throttling, a lost or refused connection),
// not the request.
func transient(err error) bool {
	if err == nil {
		return false
	}
	switch {
	case apierrors.IsInternalError(err), apierrors.IsServerTimeout(err), apierrors.IsTimeout(err),
		apierrors.IsServiceUnavailable(err), apierrors.IsTooManyRequests(err), apierrors.IsUnexpectedServerError(err):
		return true
	}
	var status apierrors.APIStatus
	if errors.As(err, &status) {
		return status.Status().Code >= 500
	}
	var netErr net.Error
	return errors.Is(err, context.DeadlineExceeded) || errors.Is(err, io.ErrUnexpectedEOF) || errors.As(err, &netErr) ||
		utilnet.IsProbableEOF(err) || utilnet.IsConnectionReset(err) || utilnet.IsConnectionRefused(err)
}

// retryWrite runs write, each attempt bounded by writeTimeout, and repeats it with backoff
// while it fails transiently and ctx is live. Every write the controller makes is idempotent
// or guarded by the object's resourceVersion, so repeating one whose response was lost
// (applied but reported failed) cannot apply it twice: a repeated update conflicts and
// writeStatus then compares instead of writing.
func retryWrite(ctx context.Context, resource string, write func(context.Context) error) error {
	var last error
	attempts := 0
	err := wait.ExponentialBackoffWithContext(ctx, writeBackoff, func(ctx context.Context) (bool, error) {
		if attempts++; attempts > 1 {
			writeRetriesTotal.WithLabelValues(resource).Inc()
		}
		attemptCtx, cancel := context.WithTimeout(ctx, writeTimeout)
		defer cancel()
		last = write(attemptCtx)
		switch {
		case last == nil:
			return true, nil
		case ctx.Err() == nil && transient(last):
			return false, nil
		default:
			return false, last
		}
	})
	if err != nil && last != nil && wait.Interrupted(err) {
		return last
	}
	return err
}

// conflictRetries bounds how often a status write is rebased on the latest version after a
// conflict.
const conflictRetries = 3

// putStatus writes ingress and cond to the Service's status; svc is the version the decision
// was made from (the informer's). A conflict means svc was behind the API server. If the
// latest version still asks for what svc asked (same spec, labels and annotations other than
// the pool annotation Herald writes), the status is put on the latest version, or found there
// already when an earlier attempt of ours was applied although its response was lost;
// otherwise the conflict is returned and the informer's event for the newer version brings the
// Service back for a fresh decision.
func (c *controller) putStatus(ctx context.Context, svc *corev1.Service, ingress []corev1.LoadBalancerIngress, cond metav1.Condition) error {
	services := c.client.CoreV1().Services(svc.Namespace)
	base := svc
	for attempt := 0; ; attempt++ {
		updated := base.DeepCopy()
		updated.Status.LoadBalancer.Ingress = ingress
		meta.SetStatusCondition(&updated.Status.Conditions, cond)
		err := retryWrite(ctx, "services", func(ctx context.Context) error {
			_, err := services.UpdateStatus(ctx, updated, metav1.UpdateOptions{})
			return err
		})
		if err == nil || !apierrors.IsConflict(err) || attempt == conflictRetries {
			return err
		}
		var latest *corev1.Service
		if gerr := retryWrite(ctx, "services", func(ctx context.Context) (err error) {
			latest, err = services.Get(ctx, svc.Name, metav1.GetOptions{})
			return err
		}); gerr != nil || !sameRequest(svc, latest) {
			return err
		}
		if hasStatus(latest, ingress, cond) {
			return nil
		}
		writeRetriesTotal.WithLabelValues("services").Inc()
		base = latest
	}
}

// sameRequest reports whether b asks the allocator for what a asks: the same spec, labels and
// annotations, the pool annotation (Herald's own output) aside.
func sameRequest(a, b *corev1.Service) bool {
	if a.UID != b.UID || a.Generation != b.Generation || b.DeletionTimestamp != nil || !mapsEqual(a.Labels, b.Labels) {
		return false
	}
	strip := func(m map[string]string) map[string]string {
		out := make(map[string]string, len(m))
		for k, v := range m {
			if k != AnnotationAllocatedFromPool {
				out[k] = v
			}
		}
		return out
	}
	return mapsEqual(strip(a.Annotations), strip(b.Annotations))
}

// hasStatus reports whether svc's status already holds ingress and cond.
func hasStatus(svc *corev1.Service, ingress []corev1.LoadBalancerIngress, cond metav1.Condition) bool {
	old := meta.FindStatusCondition(svc.Status.Conditions, cond.Type)
	return old != nil && old.Status == cond.Status && old.Reason == cond.Reason && old.Message == cond.Message &&
		sameIngress(svc.Status.LoadBalancer.Ingress, ingress)
}
