//go:build integration

package owner

import (
	"context"
	"testing"

	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/herald-lb/herald/test/kubeapi"
)

// On the real API server a ServiceAccount token (no RBAC granted) learns its own account's
// UID, the admin gets no owner, and an object created with the owner is accepted.
func TestIntegrationServiceAccountOwns(t *testing.T) {
	env := kubeapi.Env(t)
	ns := env.Namespace(t)
	ctx := context.Background()
	sa, err := kubernetes.NewForConfig(env.ServiceAccountConfig(t, ns, "herald-speaker"))
	if err != nil {
		t.Fatal(err)
	}
	ref, err := ServiceAccount(ctx, sa, ns)
	if err != nil {
		t.Fatal(err)
	}
	admin := env.Client(t)
	acct, err := admin.CoreV1().ServiceAccounts(ns).Get(ctx, "herald-speaker", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if ref == nil || ref.UID != acct.UID || ref.Name != "herald-speaker" {
		t.Fatalf("owner %+v, want ServiceAccount herald-speaker uid %s", ref, acct.UID)
	}
	if other, err := ServiceAccount(ctx, sa, "elsewhere"); err != nil || other != nil {
		t.Fatalf("in another namespace: owner %+v, err %v; want none", other, err)
	}
	if none, err := ServiceAccount(ctx, admin, ns); err != nil || none != nil {
		t.Fatalf("admin: owner %+v, err %v; want none", none, err)
	}
	l := &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: "owned", Namespace: ns}}
	Set(l, ref)
	got, err := admin.CoordinationV1().Leases(ns).Create(ctx, l, metav1.CreateOptions{})
	if err != nil || len(got.OwnerReferences) != 1 || got.OwnerReferences[0].UID != acct.UID {
		t.Fatalf("created %+v, err %v", got, err)
	}
}
