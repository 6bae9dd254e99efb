//go:build integration

package deploy_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/herald-lb/herald/cmd/herald/app"
	metallbv1beta1 "github.com/herald-lb/herald/config/metallb/v1beta1"
	"github.com/herald-lb/herald/controller"
	"github.com/herald-lb/herald/framework"
	"github.com/herald-lb/herald/speaker/announce"
	"github.com/herald-lb/herald/test/kubeapi"
)

// TestIntegrationConfigurationComesFromOneNamespace runs both roles as the chart configures
// them, with the chart's RBAC, in the two layouts the chart supports: the metallb.io
// configuration in the release namespace (the default), and in another namespace
// (configNamespace, as when Herald is pointed at metallb-system). In each, objects of the same
// names in a third place (a pool "prod" and an advertisement for it that would withdraw the
// address: its only interface does not exist) are reported and change nothing:
//   - a Warning Event IgnoredConfiguration on each, and a `herald diag` finding config.ignored;
//   - the Service keeps its address and its ServiceL2Status (same object, same node) while
//     the stray pool is created and deleted (deleting a leftover metallb-system/prod used to
//     erase herald-system/prod in the speaker, which keyed pools by name) and while the
//     Service's metallb.io/ip-allocated-from-pool annotation names another pool, whose only
//     advertisement would withdraw it too;
//   - the ServiceL2Status lives in the release namespace with MetalLB's labels;
//   - no API call of either role is refused.
func TestIntegrationConfigurationComesFromOneNamespace(t *testing.T) {
	t.Run("release namespace", func(t *testing.T) { checkOneConfigNamespace(t, false) })
	t.Run("configNamespace", func(t *testing.T) { checkOneConfigNamespace(t, true) })
}

func checkOneConfigNamespace(t *testing.T, separate bool) {
	env := kubeapi.Env(t)
	env.InstallCRDs(t)
	extra := env.Namespace(t)
	values := rbacTestValues
	if separate {
		values += "configNamespace: " + extra + "\n"
	}
	// cfgNS holds the configuration; strayNS objects of the same names, which are ignored.
	var cfgNS, strayNS string
	setup := func(h *roles) {
		cfgNS, strayNS = h.ns, extra
		if separate {
			cfgNS, strayNS = extra, h.ns
		}
		ctx, m := context.Background(), h.mlb.MetallbV1beta1()
		no := false
		for _, p := range []*metallbv1beta1.IPAddressPool{
			{ObjectMeta: metav1.ObjectMeta{Namespace: cfgNS, Name: "prod", Labels: map[string]string{"tier": "prod"}},
				Spec: metallbv1beta1.IPAddressPoolSpec{Addresses: []string{"192.0.2.160-192.0.2.169"}}},
			{ObjectMeta: metav1.ObjectMeta{Namespace: cfgNS, Name: "lab"},
				Spec: metallbv1beta1.IPAddressPoolSpec{Addresses: []string{"192.0.2.170-192.0.2.179"}, AutoAssign: &no}},
			{ObjectMeta: metav1.ObjectMeta{Namespace: strayNS, Name: "prod", Labels: map[string]string{"tier": "prod"}},
				Spec: metallbv1beta1.IPAddressPoolSpec{Addresses: []string{"198.51.100.0/30"}}},
		} {
			if _, err := m.IPAddressPools(p.Namespace).Create(ctx, p, metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
		}
		for _, a := range []*metallbv1beta1.L2Advertisement{
			// Selects by label, so a pool's labels vanishing would withdraw the address.
			{ObjectMeta: metav1.ObjectMeta{Namespace: cfgNS, Name: "prod"}, Spec: metallbv1beta1.L2AdvertisementSpec{
				IPAddressPoolSelectors: []metav1.LabelSelector{{MatchLabels: map[string]string{"tier": "prod"}}}}},
			{ObjectMeta: metav1.ObjectMeta{Namespace: cfgNS, Name: "lab"}, Spec: metallbv1beta1.L2AdvertisementSpec{
				IPAddressPools: []string{"lab"}, Interfaces: []string{"absent0"}}},
			{ObjectMeta: metav1.ObjectMeta{Namespace: strayNS, Name: "stray"}, Spec: metallbv1beta1.L2AdvertisementSpec{
				IPAddressPools: []string{"prod"}, Interfaces: []string{"absent0"}}},
		} {
			if _, err := m.L2Advertisements(a.Namespace).Create(ctx, a, metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
		}
		t.Cleanup(func() {
			for _, ns := range []string{cfgNS, strayNS} {
				_ = m.IPAddressPools(ns).DeleteCollection(context.Background(), metav1.DeleteOptions{}, metav1.ListOptions{})
				_ = m.L2Advertisements(ns).DeleteCollection(context.Background(), metav1.DeleteOptions{}, metav1.ListOptions{})
			}
		})
	}
	h := startRoles(t, values, setup)
	ctx, admin, mlb := context.Background(), h.admin, h.mlb

	ip := h.createService("web", nil)
	if !strings.HasPrefix(ip, "192.0.2.16") {
		t.Fatalf("web got %s, want an address of %s/prod", ip, cfgNS)
	}
	statusName := announce.StatusName(framework.ServiceKey{Namespace: h.ns, Name: "web"}, netip.MustParseAddr(ip))
	var status *metallbv1beta1.ServiceL2Status
	waitFor(t, "web's ServiceL2Status in the release namespace, naming "+h.node, func() (string, bool) {
		st, err := mlb.MetallbV1beta1().ServiceL2Statuses(h.ns).Get(ctx, statusName, metav1.GetOptions{})
		if err != nil {
			return err.Error(), false
		}
		status = st
		return fmt.Sprintf("%+v %v", st.Status, st.Labels), st.Status.Node == h.node && len(st.Status.Interfaces) == 1
	})
	wantLabels := map[string]string{announce.LabelNode: h.node, announce.LabelServiceName: "web", announce.LabelServiceNamespace: h.ns}
	for k, v := range wantLabels {
		if status.Labels[k] != v {
			t.Errorf("ServiceL2Status labels %v, want %s=%s (MetalLB's)", status.Labels, k, v)
		}
	}

	// From here on, any change to the status object is a failure.
	w, err := mlb.MetallbV1beta1().ServiceL2Statuses(h.ns).Watch(ctx, metav1.ListOptions{ResourceVersion: status.ResourceVersion})
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var changes []string
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ev := range w.ResultChan() {
			if st, ok := ev.Object.(*metallbv1beta1.ServiceL2Status); ok && ev.Type != watch.Bookmark {
				mu.Lock()
				changes = append(changes, fmt.Sprintf("%s %s node=%s", ev.Type, st.Name, st.Status.Node))
				mu.Unlock()
			}
		}
	}()

	for _, obj := range []struct{ kind, name string }{{"IPAddressPool", "prod"}, {"L2Advertisement", "stray"}} {
		waitFor(t, fmt.Sprintf("Warning Event %s on %s %s/%s", controller.ReasonIgnoredConfiguration, obj.kind, strayNS, obj.name), func() (string, bool) {
			evs, err := admin.CoreV1().Events(strayNS).List(ctx, metav1.ListOptions{FieldSelector: fmt.Sprintf(
				"involvedObject.kind=%s,involvedObject.name=%s,reason=%s", obj.kind, obj.name, controller.ReasonIgnoredConfiguration)})
			if err != nil || len(evs.Items) == 0 {
				return fmt.Sprint(err), false
			}
			e := evs.Items[0]
			return e.Message, e.Type == corev1.EventTypeWarning && strings.Contains(e.Message, fmt.Sprintf("from namespace %q only", cfgNS))
		})
	}
	ignored := diagIgnored(t, env.Kubeconfig, h.ns, cfgNS, strayNS)
	if want := []string{"IPAddressPool/" + strayNS + "/prod", "L2Advertisement/" + strayNS + "/stray"}; !slices.Equal(ignored, want) {
		t.Errorf("herald diag config.ignored findings in %s: %v, want %v", strayNS, ignored, want)
	}

	if err := mlb.MetallbV1beta1().IPAddressPools(strayNS).Delete(ctx, "prod", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	patch := fmt.Sprintf(`{"metadata":{"annotations":{%q:"lab"}}}`, controller.AnnotationAllocatedFromPool)
	if _, err := admin.CoreV1().Services(h.ns).Patch(ctx, "web", types.MergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	// The speakers see both changes within milliseconds; two seconds is ample for a cycle
	// that would withdraw to have done so.
	time.Sleep(2 * time.Second)
	w.Stop()
	<-done
	mu.Lock()
	if len(changes) > 0 {
		t.Errorf("web's ServiceL2Status changed after a stray pool was deleted or the pool annotation was rewritten:\n%s", strings.Join(changes, "\n"))
	}
	mu.Unlock()
	svc, err := admin.CoreV1().Services(h.ns).Get(ctx, "web", metav1.GetOptions{})
	if err != nil || len(svc.Status.LoadBalancer.Ingress) != 1 || svc.Status.LoadBalancer.Ingress[0].IP != ip {
		t.Errorf("web's ingress after the stray changes: %v (err %v), want %s", svc.Status.LoadBalancer.Ingress, err, ip)
	}
	h.stop()
	checkCalls(t, "controller", h.ctrlRec, grantsFor(t, h.objs, h.ns, h.ctrlSA), false, nil)
	checkCalls(t, "speaker", h.spkRec, grantsFor(t, h.objs, h.ns, h.spkSA), false, nil)
}

// diagIgnored runs `herald diag --json` in process and returns its config.ignored findings
// about objects in namespace ns, as kind/namespace/name.
func diagIgnored(t *testing.T, kubeconfig, heraldNS, cfgNS, ns string) []string {
	t.Helper()
	cmd := app.NewHeraldCommand()
	var out, errOut bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&errOut)
	cmd.SetArgs([]string{"diag", "--json", "--kubeconfig", kubeconfig, "--namespace", heraldNS, "--config-namespace", cfgNS})
	_ = cmd.Execute() // non-zero for unrelated critical findings (no Herald pods here)
	var r struct {
		ConfigNamespace string `json:"configNamespace"`
		Findings        []struct {
			Check  string `json:"check"`
			Object struct{ Kind, Namespace, Name string }
		} `json:"findings"`
	}
	if err := json.Unmarshal(out.Bytes(), &r); err != nil {
		t.Fatalf("herald diag --json: %v\n%s\n%s", err, out.String(), errOut.String())
	}
	if r.ConfigNamespace != cfgNS {
		t.Errorf("diag configNamespace %q, want %q", r.ConfigNamespace, cfgNS)
	}
	var got []string
	for _, f := range r.Findings {
		if f.Check == "config.ignored" && f.Object.Namespace == ns {
			got = append(got, f.Object.Kind+"/"+f.Object.Namespace+"/"+f.Object.Name)
		}
	}
	slices.Sort(got)
	return got
}
