//go:build integration

package metallb_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"

	"github.com/herald-lb/herald/config/metallb/client/clientset/versioned"
	"github.com/herald-lb/herald/config/metallb/v1beta2"
	"github.com/herald-lb/herald/test/kubeapi"
)

const seedNamespace = "metallb-system"

// resources maps each metallb.io kind to its plural resource name, for the dynamic client.
var resources = map[string]string{
	"IPAddressPool":    "ipaddresspools",
	"L2Advertisement":  "l2advertisements",
	"BGPAdvertisement": "bgpadvertisements",
	"BGPPeer":          "bgppeers",
	"BFDProfile":       "bfdprofiles",
	"Community":        "communities",
	"ServiceL2Status":  "servicel2statuses",
	"ServiceBGPStatus": "servicebgpstatuses",
}

// clients holds the API server's clients for one test, with the CRDs installed and the
// test's namespace created.
type clients struct {
	dynamic dynamic.Interface
	metallb versioned.Interface
}

func setup(t *testing.T, namespace string) clients {
	t.Helper()
	env := kubeapi.Env(t)
	env.InstallCRDs(t)
	cfg := env.AdminConfig()
	kube := kubernetes.NewForConfigOrDie(cfg)
	ctx := t.Context()
	_, err := kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: namespace}}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatalf("create namespace %s: %v", namespace, err)
	}
	return clients{dynamic: dynamic.NewForConfigOrDie(cfg), metallb: versioned.NewForConfigOrDie(cfg)}
}

// readObjects parses every YAML document of a testdata file.
func readObjects(t *testing.T, path string) []*unstructured.Unstructured {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), 4096)
	var objs []*unstructured.Unstructured
	for {
		var m map[string]any
		if err := dec.Decode(&m); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if m == nil {
			continue
		}
		objs = append(objs, &unstructured.Unstructured{Object: m})
	}
	return objs
}

// create stores obj with strict field validation, so unknown or duplicate fields fail too.
func (c clients) create(ctx context.Context, obj *unstructured.Unstructured) error {
	gv, err := schema.ParseGroupVersion(obj.GetAPIVersion())
	if err != nil {
		return err
	}
	gvr := gv.WithResource(resources[obj.GetKind()])
	_, err = c.dynamic.Resource(gvr).Namespace(obj.GetNamespace()).Create(ctx, obj, metav1.CreateOptions{FieldValidation: metav1.FieldValidationStrict})
	return err
}

// TestIntegrationSeedGuideYAML applies the MetalLB guide's manifests verbatim and reads every
// field back through the typed clientset.
func TestIntegrationSeedGuideYAML(t *testing.T) {
	c := setup(t, seedNamespace)
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	files, err := filepath.Glob("testdata/seed/*.yaml")
	if err != nil || len(files) != 4 {
		t.Fatalf("want the 4 seed manifests, got %v (%v)", files, err)
	}
	for _, f := range files {
		for _, obj := range readObjects(t, f) {
			if err := c.create(ctx, obj); err != nil {
				t.Fatalf("%s: apply %s %s: %v", f, obj.GetKind(), obj.GetName(), err)
			}
		}
	}

	v1 := c.metallb.MetallbV1beta1()
	get := func(what string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("get %s: %v", what, err)
		}
	}
	eq := func(field string, got, want any) {
		t.Helper()
		if got != want {
			t.Errorf("%s = %v, want %v", field, got, want)
		}
	}

	pool, err := v1.IPAddressPools(seedNamespace).Get(ctx, "default", metav1.GetOptions{})
	get("IPAddressPool default", err)
	eq("default.spec.addresses", len(pool.Spec.Addresses), 1)
	eq("default.spec.addresses[0]", pool.Spec.Addresses[0], "172.18.15.200-172.18.15.210")
	// Defaults from the schema, as MetalLB's CRD sets them.
	if pool.Spec.AutoAssign == nil || !*pool.Spec.AutoAssign {
		t.Errorf("default.spec.autoAssign = %v, want defaulted true", pool.Spec.AutoAssign)
	}
	eq("default.spec.avoidBuggyIPs", pool.Spec.AvoidBuggyIPs, false)

	l2, err := v1.L2Advertisements(seedNamespace).Get(ctx, "default", metav1.GetOptions{})
	get("L2Advertisement default", err)
	eq("l2 default.spec.ipAddressPools", len(l2.Spec.IPAddressPools), 1)
	eq("l2 default.spec.ipAddressPools[0]", l2.Spec.IPAddressPools[0], "default")
	eq("l2 default.spec.interfaces", len(l2.Spec.Interfaces), 0)

	l2if, err := v1.L2Advertisements(seedNamespace).Get(ctx, "l2adv", metav1.GetOptions{})
	get("L2Advertisement l2adv", err)
	eq("l2adv.spec.ipAddressPools", len(l2if.Spec.IPAddressPools), 1)
	eq("l2adv.spec.ipAddressPools[0]", l2if.Spec.IPAddressPools[0], "default")
	eq("l2adv.spec.interfaces", len(l2if.Spec.Interfaces), 1)
	eq("l2adv.spec.interfaces[0]", l2if.Spec.Interfaces[0], "eth0")

	bgpPool, err := v1.IPAddressPools(seedNamespace).Get(ctx, "bgp-pool", metav1.GetOptions{})
	get("IPAddressPool bgp-pool", err)
	eq("bgp-pool.spec.addresses", len(bgpPool.Spec.Addresses), 1)
	eq("bgp-pool.spec.addresses[0]", bgpPool.Spec.Addresses[0], "203.0.113.0/24")

	adv, err := v1.BGPAdvertisements(seedNamespace).Get(ctx, "bgp-adv", metav1.GetOptions{})
	get("BGPAdvertisement bgp-adv", err)
	eq("bgp-adv.spec.ipAddressPools", len(adv.Spec.IPAddressPools), 1)
	eq("bgp-adv.spec.ipAddressPools[0]", adv.Spec.IPAddressPools[0], "bgp-pool")
	if adv.Spec.AggregationLength == nil || *adv.Spec.AggregationLength != 32 {
		t.Errorf("bgp-adv.spec.aggregationLength = %v, want defaulted 32", adv.Spec.AggregationLength)
	}
	if adv.Spec.AggregationLengthV6 == nil || *adv.Spec.AggregationLengthV6 != 128 {
		t.Errorf("bgp-adv.spec.aggregationLengthV6 = %v, want defaulted 128", adv.Spec.AggregationLengthV6)
	}

	bfd, err := v1.BFDProfiles(seedNamespace).Get(ctx, "fast-detect", metav1.GetOptions{})
	get("BFDProfile fast-detect", err)
	for _, f := range []struct {
		name string
		got  *uint32
		want uint32
	}{
		{"receiveInterval", bfd.Spec.ReceiveInterval, 300},
		{"transmitInterval", bfd.Spec.TransmitInterval, 300},
		{"detectMultiplier", bfd.Spec.DetectMultiplier, 3},
		{"echoInterval", bfd.Spec.EchoInterval, 50},
		{"minimumTtl", bfd.Spec.MinimumTTL, 254},
	} {
		if f.got == nil || *f.got != f.want {
			t.Errorf("fast-detect.spec.%s = %v, want %d", f.name, f.got, f.want)
		}
	}
	if bfd.Spec.EchoMode != nil || bfd.Spec.PassiveMode != nil {
		t.Errorf("fast-detect echoMode/passiveMode = %v/%v, want unset", bfd.Spec.EchoMode, bfd.Spec.PassiveMode)
	}

	// The guide writes BGPPeer as v1beta1; it is stored as v1beta2 and readable as both.
	for _, p := range []struct{ name, bfdProfile string }{{"router-peer", ""}, {"router-peer-bfd", "fast-detect"}} {
		v2peer, err := c.metallb.MetallbV1beta2().BGPPeers(seedNamespace).Get(ctx, p.name, metav1.GetOptions{})
		get("BGPPeer v1beta2 "+p.name, err)
		v1peer, err := v1.BGPPeers(seedNamespace).Get(ctx, p.name, metav1.GetOptions{})
		get("BGPPeer v1beta1 "+p.name, err)
		for _, v := range []struct {
			version string
			spec    v1beta2.BGPPeerSpec
		}{{"v1beta2", v2peer.Spec}, {"v1beta1", v1peer.Spec}} {
			version, s := v.version, v.spec
			eq(version+" "+p.name+".spec.myASN", s.MyASN, uint32(64500))
			eq(version+" "+p.name+".spec.peerASN", s.ASN, uint32(64501))
			eq(version+" "+p.name+".spec.peerAddress", s.Address, "10.0.0.1")
			eq(version+" "+p.name+".spec.bfdProfile", s.BFDProfile, p.bfdProfile)
			eq(version+" "+p.name+".spec.peerPort", s.Port, uint16(179)) // schema default
			if s.HoldTime != nil || s.KeepaliveTime != nil {
				t.Errorf("%s %s hold/keepalive = %v/%v, want unset (commented out in the guide)", version, p.name, s.HoldTime, s.KeepaliveTime)
			}
		}
	}
}
