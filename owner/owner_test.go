package owner

import (
	"testing"

	authenticationv1 "k8s.io/api/authentication/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestFromUser(t *testing.T) {
	for _, tc := range []struct {
		name string
		user authenticationv1.UserInfo
		want string // owner name, "" for none
	}{
		{"the account in the namespace", authenticationv1.UserInfo{Username: "system:serviceaccount:herald-system:herald-speaker", UID: "u1"}, "herald-speaker"},
		{"an account elsewhere", authenticationv1.UserInfo{Username: "system:serviceaccount:other:herald-speaker", UID: "u1"}, ""},
		{"no UID", authenticationv1.UserInfo{Username: "system:serviceaccount:herald-system:herald-speaker"}, ""},
		{"a user", authenticationv1.UserInfo{Username: "admin", UID: "u2"}, ""},
		{"a malformed account name", authenticationv1.UserInfo{Username: "system:serviceaccount:herald-system", UID: "u3"}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := fromUser(tc.user, "herald-system")
			if (got == nil) != (tc.want == "") || got != nil && (got.Name != tc.want || got.Kind != "ServiceAccount" || got.APIVersion != "v1" || string(got.UID) != tc.user.UID) {
				t.Fatalf("fromUser = %+v, want owner %q", got, tc.want)
			}
		})
	}
}

func TestSet(t *testing.T) {
	l := &coordinationv1.Lease{}
	ref := &metav1.OwnerReference{APIVersion: "v1", Kind: "ServiceAccount", Name: "sa", UID: "u1"}
	if Set(l, nil) || len(l.OwnerReferences) != 0 {
		t.Fatal("a nil owner was set")
	}
	if !Set(l, ref) || len(l.OwnerReferences) != 1 {
		t.Fatalf("owner not set: %+v", l.OwnerReferences)
	}
	if Set(l, ref) || len(l.OwnerReferences) != 1 {
		t.Fatalf("owner set twice: %+v", l.OwnerReferences)
	}
}
