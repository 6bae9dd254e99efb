package kubeapi

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apiextensionsclient "k8s.io/apiextensions-apiserver/pkg/client/clientset/clientset"
	apiextensionsv1client "k8s.io/apiextensions-apiserver/pkg/client/clientset/clientset/typed/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/yaml"
)

// CRDDir is where the CRD manifests live, relative to the module root.
const CRDDir = "deploy/crds"

// InstallCRDs creates or updates every CRD in deploy/crds/*.yaml (found from the module root)
// and waits until each is Established and served by discovery. It is idempotent.
func (e *Environment) InstallCRDs(t testing.TB) {
	t.Helper()
	root, err := ModuleRoot()
	if err != nil {
		t.Fatalf("kubeapi: %v", err)
	}
	e.crdMu.Lock()
	defer e.crdMu.Unlock()
	if err := InstallCRDFiles(context.Background(), e.AdminConfig(), filepath.Join(root, CRDDir)); err != nil {
		t.Fatalf("kubeapi: %v", err)
	}
}

// ModuleRoot walks up from the working directory to the directory holding go.mod.
func ModuleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no go.mod above the working directory")
		}
		dir = parent
	}
}

// ReadCRDs parses every CustomResourceDefinition in dir/*.yaml (several per file allowed).
func ReadCRDs(dir string) ([]*apiextensionsv1.CustomResourceDefinition, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil {
		return nil, err
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("no CRD manifests in %s", dir)
	}
	var crds []*apiextensionsv1.CustomResourceDefinition
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		for i, doc := range bytes.Split(data, []byte("\n---")) {
			if len(bytes.TrimSpace(bytes.TrimPrefix(bytes.TrimSpace(doc), []byte("---")))) == 0 {
				continue
			}
			crd := &apiextensionsv1.CustomResourceDefinition{}
			if err := yaml.UnmarshalStrict(doc, crd); err != nil {
				return nil, fmt.Errorf("%s document %d: %w", f, i, err)
			}
			if crd.Kind != "CustomResourceDefinition" {
				return nil, fmt.Errorf("%s document %d: kind %q, want CustomResourceDefinition", f, i, crd.Kind)
			}
			crds = append(crds, crd)
		}
	}
	return crds, nil
}

// InstallCRDFiles applies the CRDs in dir with the client config cfg and waits for them.
func InstallCRDFiles(ctx context.Context, cfg *rest.Config, dir string) error {
	crds, err := ReadCRDs(dir)
	if err != nil {
		return err
	}
	client, err := apiextensionsclient.NewForConfig(cfg)
	if err != nil {
		return err
	}
	api := client.ApiextensionsV1().CustomResourceDefinitions()
	for _, crd := range crds {
		err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
			existing, err := api.Get(ctx, crd.Name, metav1.GetOptions{})
			if apierrors.IsNotFound(err) {
				_, err = api.Create(ctx, crd, metav1.CreateOptions{})
				return err
			}
			if err != nil {
				return err
			}
			crd.ResourceVersion = existing.ResourceVersion
			_, err = api.Update(ctx, crd, metav1.UpdateOptions{})
			return err
		})
		if err != nil {
			return fmt.Errorf("applying CRD %s: %w", crd.Name, err)
		}
	}
	disc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		return err
	}
	for _, crd := range crds {
		if err := waitServed(ctx, api, disc, crd); err != nil {
			return fmt.Errorf("CRD %s not established and served: %w", crd.Name, err)
		}
	}
	return nil
}

// waitServed waits until crd is Established and discovery lists every served version.
func waitServed(ctx context.Context, api apiextensionsv1client.CustomResourceDefinitionInterface, disc discovery.DiscoveryInterface, crd *apiextensionsv1.CustomResourceDefinition) error {
	return wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		got, err := api.Get(ctx, crd.Name, metav1.GetOptions{})
		if err != nil {
			return false, nil
		}
		established := false
		for _, c := range got.Status.Conditions {
			if c.Type == apiextensionsv1.Established && c.Status == apiextensionsv1.ConditionTrue {
				established = true
			}
		}
		if !established {
			return false, nil
		}
		for _, v := range crd.Spec.Versions {
			if !v.Served {
				continue
			}
			list, err := disc.ServerResourcesForGroupVersion(crd.Spec.Group + "/" + v.Name)
			if err != nil {
				return false, nil
			}
			found := false
			for _, r := range list.APIResources {
				found = found || r.Name == crd.Spec.Names.Plural
			}
			if !found {
				return false, nil
			}
		}
		return true, nil
	})
}
