// Package owner finds the ServiceAccount a Herald process runs as, so the objects it creates
// at run time (heartbeat and election Leases, ServiceL2Status and ServiceBGPStatus) name it as
// their owner and Kubernetes' garbage collector removes them with the installation: `helm
// uninstall` deletes the ServiceAccount, and the objects follow, although the pods that wrote
// them lose their RBAC before they stop.
package owner

import (
	"context"
	"fmt"
	"strings"

	authenticationv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
)

// serviceAccountPrefix starts the user name of every ServiceAccount token.
const serviceAccountPrefix = "system:serviceaccount:"

// ServiceAccount returns an owner reference to the ServiceAccount the client authenticates
// as, when that account lives in namespace (an owner must share its dependents' namespace);
// nil, without error, for any other user (a kubeconfig's admin, an account elsewhere). It asks
// the API server (SelfSubjectReview, which every authenticated user may create).
func ServiceAccount(ctx context.Context, client kubernetes.Interface, namespace string) (*metav1.OwnerReference, error) {
	r, err := client.AuthenticationV1().SelfSubjectReviews().Create(ctx, &authenticationv1.SelfSubjectReview{}, metav1.CreateOptions{})
	if err != nil {
		return nil, fmt.Errorf("who am I (SelfSubjectReview): %w", err)
	}
	return fromUser(r.Status.UserInfo, namespace), nil
}

// fromUser is the owner reference for a ServiceAccount user of namespace, or nil.
func fromUser(u authenticationv1.UserInfo, namespace string) *metav1.OwnerReference {
	rest, ok := strings.CutPrefix(u.Username, serviceAccountPrefix)
	if !ok || u.UID == "" {
		return nil
	}
	ns, name, ok := strings.Cut(rest, ":")
	if !ok || ns != namespace || name == "" {
		return nil
	}
	return &metav1.OwnerReference{APIVersion: "v1", Kind: "ServiceAccount", Name: name, UID: types.UID(u.UID)}
}

// Set adds ref to the object's owners unless it is nil or there already; it reports whether
// it changed them.
func Set(obj metav1.Object, ref *metav1.OwnerReference) bool {
	if ref == nil {
		return false
	}
	refs := obj.GetOwnerReferences()
	for _, r := range refs {
		if r.UID == ref.UID {
			return false
		}
	}
	obj.SetOwnerReferences(append(refs, *ref))
	return true
}
