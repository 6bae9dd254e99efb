package controller

import (
	"context"
	"errors"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	k8sfake "k8s.io/client-go/kubernetes/fake"
	clienttesting "k8s.io/client-go/testing"
	"k8s.io/client-go/tools/record"

	metallbfake "github.com/herald-lb/herald/config/metallb/client/clientset/versioned/fake"
)

func TestTransient(t *testing.T) {
	gr := schema.GroupResource{Resource: "services"}
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{apierrors.NewInternalError(errors.New("etcd")), true},
		{apierrors.NewServiceUnavailable("down"), true},
		{apierrors.NewTimeoutError("slow", 1), true},
		{apierrors.NewServerTimeout(gr, "update", 1), true},
		{apierrors.NewTooManyRequests("slow down", 1), true},
		{apierrors.NewGenericServerResponse(502, "update", gr, "web", "bad gateway", 0, true), true},
		{context.DeadlineExceeded, true},
		{errors.New("read tcp: connection reset by peer"), true},
		{apierrors.NewConflict(gr, "web", errors.New("stale")), false},
		{apierrors.NewNotFound(gr, "web"), false},
		{apierrors.NewInvalid(schema.GroupKind{Kind: "Service"}, "web", nil), false},
		{apierrors.NewForbidden(gr, "web", errors.New("rbac")), false},
		{nil, false},
	} {
		if got := transient(tc.err); got != tc.want {
			t.Errorf("transient(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}

// statusCase drives putStatus against a fake API whose status updates answer with the listed
// errors in turn (nil: the fake applies the update), and whose current object is latest.
type statusCase struct {
	name      string
	latest    func(*corev1.Service)
	updateErr []error
	wantErr   bool
	// wantWrites counts the updates that reached the fake's store.
	wantWrites, wantAttempts int
}

func TestPutStatus(t *testing.T) {
	gr := schema.GroupResource{Resource: "services"}
	conflict := apierrors.NewConflict(gr, "web", errors.New("the object has been modified"))
	ours := []corev1.LoadBalancerIngress{{IP: "192.0.2.10"}}
	cond := metav1.Condition{Type: ConditionAddressAllocated, Status: metav1.ConditionTrue, Reason: ReasonAllocated, Message: `assigned 192.0.2.10 from pool "p"`}
	withOurs := func(s *corev1.Service) {
		s.Status.LoadBalancer.Ingress = ours
		s.Status.Conditions = []metav1.Condition{cond}
	}
	for _, tc := range []statusCase{
		{name: "written at once", wantWrites: 1, wantAttempts: 1},
		{name: "5xx, then written", updateErr: []error{apierrors.NewServiceUnavailable("down"), apierrors.NewInternalError(errors.New("etcd"))}, wantWrites: 1, wantAttempts: 3},
		// The first attempt was applied but its answer lost: the repeat conflicts, and the
		// latest version already says what we wrote, so nothing is written twice.
		{name: "applied, answer lost", latest: withOurs, updateErr: []error{conflict}, wantWrites: 0, wantAttempts: 1},
		// The cache was behind but the Service asks for the same: put on the latest version.
		{name: "stale copy, same request", latest: func(s *corev1.Service) { s.Annotations = map[string]string{AnnotationAllocatedFromPool: "p"} },
			updateErr: []error{conflict}, wantWrites: 1, wantAttempts: 2},
		// The Service changed what it asks for: the decision is stale, the conflict returns.
		{name: "stale copy, new request", latest: func(s *corev1.Service) { s.Annotations = map[string]string{"metallb.io/loadBalancerIPs": "192.0.2.99"} },
			updateErr: []error{conflict}, wantErr: true, wantWrites: 0, wantAttempts: 1},
		{name: "not transient", updateErr: []error{apierrors.NewForbidden(gr, "web", errors.New("rbac"))}, wantErr: true, wantAttempts: 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			registerMetrics()
			cached := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "web", UID: "u1", ResourceVersion: "1"},
				Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer}}
			latest := cached.DeepCopy()
			latest.ResourceVersion = "2"
			if tc.latest != nil {
				tc.latest(latest)
			}
			kube := k8sfake.NewClientset(latest)
			attempts, writes := 0, 0
			kube.PrependReactor("update", "services", func(a clienttesting.Action) (bool, runtime.Object, error) {
				if a.GetSubresource() != "status" {
					return false, nil, nil
				}
				attempts++
				if attempts <= len(tc.updateErr) && tc.updateErr[attempts-1] != nil {
					return true, nil, tc.updateErr[attempts-1]
				}
				writes++
				obj := a.(clienttesting.UpdateAction).GetObject().(*corev1.Service)
				if obj.ResourceVersion != "2" {
					t.Errorf("update %d sent resourceVersion %s, want the latest (2)", attempts, obj.ResourceVersion)
				}
				return false, nil, nil
			})
			if tc.updateErr == nil || tc.name == "5xx, then written" {
				cached.ResourceVersion = "2" // the cache is current
			}
			c := newController(kube, metallbfake.NewSimpleClientset(), DefaultOptions(), record.NewFakeRecorder(10))
			defer c.queue.ShutDown()
			err := c.putStatus(context.Background(), cached, ours, cond)
			if (err != nil) != tc.wantErr {
				t.Fatalf("putStatus() = %v, want error %v", err, tc.wantErr)
			}
			if attempts != tc.wantAttempts || writes != tc.wantWrites {
				t.Errorf("%d status updates sent, %d applied; want %d and %d", attempts, writes, tc.wantAttempts, tc.wantWrites)
			}
			if tc.wantErr {
				return
			}
			got, _ := kube.CoreV1().Services("shop").Get(context.Background(), "web", metav1.GetOptions{})
			if !hasStatus(got, ours, cond) {
				t.Errorf("status after putStatus: %+v", got.Status)
			}
		})
	}
}
