//go:build integration

package kubeapi_test

import (
	"context"
	"path/filepath"
	"testing"

	apiextensionsclient "k8s.io/apiextensions-apiserver/pkg/client/clientset/clientset"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/herald-lb/herald/test/kubeapi"
)

func TestIntegrationInstallCRDsIsIdempotentAndEstablishesEveryCRD(t *testing.T) {
	env := kubeapi.Env(t)
	root, err := kubeapi.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	want, err := kubeapi.ReadCRDs(filepath.Join(root, kubeapi.CRDDir))
	if err != nil {
		t.Fatal(err)
	}
	env.InstallCRDs(t)
	env.InstallCRDs(t) // the second run updates in place
	client := apiextensionsclient.NewForConfigOrDie(env.AdminConfig())
	for _, crd := range want {
		got, err := client.ApiextensionsV1().CustomResourceDefinitions().Get(context.Background(), crd.Name, metav1.GetOptions{})
		if err != nil {
			t.Fatalf("CRD %s from %s not installed: %v", crd.Name, kubeapi.CRDDir, err)
		}
		if got.Generation != 1 {
			t.Errorf("CRD %s generation %d after installing the same manifest twice, want 1", crd.Name, got.Generation)
		}
	}
}
