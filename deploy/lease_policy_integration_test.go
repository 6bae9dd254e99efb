//go:build integration

package deploy_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/herald-lb/herald/heartbeat"
	"github.com/herald-lb/herald/test/kubeapi"
)

// TestIntegrationLeasesCannotBeForged applies the chart's lease policies (rbac.leasePolicy) to
// a real API server and writes Leases as the chart's accounts, with tokens bound to pods on
// nodes as the kubelet projects them: the speaker of node A writes its own heartbeat and is
// refused on node B's heartbeat (create, renew, or its own Lease name claiming node B), on the
// controller's election Lease, and with a token bound to no node; the election Lease is
// written by the controller's account and refused to anyone else, cluster admins included.
// RBAC alone allows every one of the refused writes (the speaker's Role may update any Lease of
// the namespace), so each refusal is the policies' doing.
func TestIntegrationLeasesCannotBeForged(t *testing.T) {
	env := kubeapi.Env(t)
	env.InstallCRDs(t)
	ctx := context.Background()
	ns := env.Namespace(t)
	objs := decode(t, helmTemplate(t, "leases", ns, ""))
	apply(t, env.AdminConfig(), objs)
	admin := env.Client(t)
	nodeA, nodeB := "node-a-"+ns, "node-b-"+ns
	createReadyNode(t, admin, nodeA)
	createReadyNode(t, admin, nodeB)
	spkSA := typedOne[appsDaemonSet](t, objs, "DaemonSet").Spec.Template.Spec.ServiceAccountName
	ctrlSA := typedOne[appsDeployment](t, objs, "Deployment").Spec.Template.Spec.ServiceAccountName
	speakerA := kubernetes.NewForConfigOrDie(env.ServiceAccountConfigOnNode(t, ns, spkSA, nodeA)).CoordinationV1().Leases(ns)
	unbound := kubernetes.NewForConfigOrDie(env.ServiceAccountConfig(t, ns, spkSA)).CoordinationV1().Leases(ns)
	ctrl := kubernetes.NewForConfigOrDie(env.ServiceAccountConfig(t, ns, ctrlSA)).CoordinationV1().Leases(ns)
	adminLeases := admin.CoordinationV1().Leases(ns)
	election := "herald-controller"

	// The policies take effect a moment after they are created: wait until a forged heartbeat
	// is refused on a dry run (which writes nothing but runs admission).
	waitFor(t, "the heartbeat policy to refuse a forged heartbeat", func() (string, bool) {
		_, err := speakerA.Create(ctx, beat(t, ns, nodeB), metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		return fmt.Sprint(err), apierrors.IsForbidden(err) && strings.Contains(err.Error(), "ValidatingAdmissionPolicy")
	})
	waitFor(t, "the election policy to refuse an admin", func() (string, bool) {
		_, err := adminLeases.Create(ctx, electionLease(ns, election), metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		return fmt.Sprint(err), apierrors.IsForbidden(err)
	})

	// What must work: each account writes its own Lease, create then renew.
	own, err := speakerA.Create(ctx, beat(t, ns, nodeA), metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("speaker of %s creating its own heartbeat: %v", nodeA, err)
	}
	own.Spec.RenewTime = &metav1.MicroTime{Time: time.Now()}
	if own, err = speakerA.Update(ctx, own, metav1.UpdateOptions{}); err != nil {
		t.Fatalf("speaker of %s renewing its own heartbeat: %v", nodeA, err)
	}
	lead, err := ctrl.Create(ctx, electionLease(ns, election), metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("controller creating its election Lease: %v", err)
	}
	if lead, err = ctrl.Update(ctx, lead, metav1.UpdateOptions{}); err != nil {
		t.Fatalf("controller renewing its election Lease: %v", err)
	}
	// Node B's heartbeat exists (its own speaker wrote it: here the admin, whom the heartbeat
	// policy does not concern).
	theirs, err := adminLeases.Create(ctx, beat(t, ns, nodeB), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}

	ownClaimingB := own.DeepCopy()
	ownClaimingB.Annotations[heartbeat.AnnotationNode] = nodeB
	theirs.Spec.RenewTime = &metav1.MicroTime{Time: time.Now()}
	stolen := lead.DeepCopy()
	holder := "speaker-" + nodeA
	stolen.Spec.HolderIdentity = &holder
	refused := []struct {
		name string
		do   func() error
		// want is a part of the refusal's message; either part, when two policies refuse the
		// write (the API server names whichever it evaluated first).
		want []string
	}{
		{"speaker A creates node B's heartbeat", func() error {
			_, err := speakerA.Create(ctx, beat(t, ns, nodeB), metav1.CreateOptions{})
			return err
		}, []string{"may write only its own heartbeat Lease"}},
		{"speaker A renews node B's heartbeat", func() error {
			_, err := speakerA.Update(ctx, theirs, metav1.UpdateOptions{})
			return err
		}, []string{"may write only its own heartbeat Lease"}},
		{"speaker A renames its own heartbeat to node B", func() error {
			_, err := speakerA.Update(ctx, ownClaimingB, metav1.UpdateOptions{})
			return err
		}, []string{"may publish a heartbeat only for that node"}},
		{"speaker A takes the election Lease", func() error {
			_, err := speakerA.Update(ctx, stolen, metav1.UpdateOptions{})
			return err
		}, []string{"may write only its own heartbeat Lease", "may write the controller election Lease"}},
		{"an admin takes the election Lease", func() error {
			_, err := adminLeases.Update(ctx, stolen, metav1.UpdateOptions{})
			return err
		}, []string{"may write the controller election Lease"}},
		{"a speaker token bound to no node writes a heartbeat", func() error {
			_, err := unbound.Create(ctx, beat(t, ns, nodeB), metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
			return err
		}, []string{"not bound to a node"}},
	}
	for _, tt := range refused {
		err := tt.do()
		if !apierrors.IsForbidden(err) || !slices.ContainsFunc(tt.want, func(w string) bool { return strings.Contains(err.Error(), w) }) {
			t.Errorf("%s: want Forbidden saying %q, got %v", tt.name, tt.want, err)
		}
	}
	// Nothing refused was written.
	got, err := adminLeases.Get(ctx, election, metav1.GetOptions{})
	if err != nil || got.Spec.HolderIdentity == nil || *got.Spec.HolderIdentity != *lead.Spec.HolderIdentity {
		t.Errorf("election Lease after the refusals: %v, %+v", err, got.Spec)
	}
	if got, err := adminLeases.Get(ctx, own.Name, metav1.GetOptions{}); err != nil || got.Annotations[heartbeat.AnnotationNode] != nodeA {
		t.Errorf("heartbeat of %s after the refusals: %v, %v", nodeA, err, got.Annotations)
	}
}

func beat(t *testing.T, ns, node string) *coordinationv1.Lease {
	t.Helper()
	l, err := heartbeat.Encode(heartbeat.Heartbeat{NodeName: node, LeaseDuration: 10 * time.Second, RenewTime: time.Now()}, ns)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func electionLease(ns, name string) *coordinationv1.Lease {
	holder := "controller-0"
	secs := int32(15)
	return &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: coordinationv1.LeaseSpec{HolderIdentity: &holder, LeaseDurationSeconds: &secs}}
}
