//go:build integration

package deploy_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spf13/pflag"
	appsv1 "k8s.io/api/apps/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apiextensionsclient "k8s.io/apiextensions-apiserver/pkg/client/clientset/clientset"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"

	"github.com/herald-lb/herald/test/kubeapi"
)

// TestMain runs the roles with client-go's streaming lists off. Informers list by watch
// (sendInitialEvents) where the API server supports it and fall back to a plain LIST where
// it does not (older etcd, the feature disabled), so the charts must grant list as well as
// watch; on the fallback path every list the RBAC test finds granted is also exercised.
func TestMain(m *testing.M) {
	if err := os.Setenv("KUBE_FEATURE_WatchListClient", "false"); err != nil {
		panic(err)
	}
	os.Exit(kubeapi.Main(m))
}

// cacheBin is where test/tools/install.sh installs tools: $HERALD_CACHE/bin.
func cacheBin() string {
	cache := os.Getenv("HERALD_CACHE")
	if cache == "" {
		home, _ := os.UserHomeDir()
		cache = filepath.Join(home, ".cache", "herald")
	}
	return filepath.Join(cache, "bin")
}

// tool finds a tool test/tools/install.sh installs: on $PATH, else in $HERALD_CACHE/bin.
func tool(t *testing.T, name string) string {
	t.Helper()
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	p := filepath.Join(cacheBin(), name)
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("%s not found on $PATH or in %s: run `bash test/tools/install.sh tools`", name, filepath.Dir(p))
	}
	return p
}

// run runs a command and returns its standard output; it fails the test with stderr.
func run(t *testing.T, name string, args ...string) []byte {
	t.Helper()
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(name, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s: %v\n%s", filepath.Base(name), strings.Join(args, " "), err, stderr.String())
	}
	return stdout.Bytes()
}

// helmTemplate renders the chart as release in namespace, with values (YAML) when not empty.
func helmTemplate(t *testing.T, release, namespace, values string) []byte {
	t.Helper()
	args := []string{"template", release, "helm/herald", "--namespace", namespace, "--include-crds"}
	if values != "" {
		path := filepath.Join(t.TempDir(), "values.yaml")
		if err := os.WriteFile(path, []byte(values), 0o600); err != nil {
			t.Fatal(err)
		}
		args = append(args, "--values", path)
	}
	return run(t, tool(t, "helm"), args...)
}

// decode splits a multi-document YAML stream into objects, skipping empty documents.
func decode(t *testing.T, data []byte) []*unstructured.Unstructured {
	t.Helper()
	var objs []*unstructured.Unstructured
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), 4096)
	for {
		var m map[string]any
		if err := dec.Decode(&m); err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			t.Fatalf("decoding rendered manifests: %v", err)
		}
		if len(m) == 0 {
			continue
		}
		objs = append(objs, &unstructured.Unstructured{Object: m})
	}
	if len(objs) == 0 {
		t.Fatal("the rendering holds no objects")
	}
	return objs
}

// find returns the objects of a kind.
func find(objs []*unstructured.Unstructured, kind string) []*unstructured.Unstructured {
	var out []*unstructured.Unstructured
	for _, o := range objs {
		if o.GetKind() == kind {
			out = append(out, o)
		}
	}
	return out
}

// typed converts an unstructured object into T.
func typed[T any](t *testing.T, u *unstructured.Unstructured) *T {
	t.Helper()
	out := new(T)
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, out); err != nil {
		t.Fatalf("%s %s: %v", u.GetKind(), u.GetName(), err)
	}
	return out
}

// apply server-side-applies every object as admin: CustomResourceDefinitions first (waiting
// until each is Established), then the rest in order, so the API server validates each
// object as `kubectl apply --server-side` would. It fails the test on the first error.
func apply(t *testing.T, cfg *rest.Config, objs []*unstructured.Unstructured) {
	t.Helper()
	ctx := context.Background()
	dyn := dynamic.NewForConfigOrDie(cfg)
	var crds, others []*unstructured.Unstructured
	for _, o := range objs {
		if o.GetKind() == "CustomResourceDefinition" {
			crds = append(crds, o)
		} else {
			others = append(others, o)
		}
	}
	crdGVR := apiextensionsv1.SchemeGroupVersion.WithResource("customresourcedefinitions")
	for _, o := range crds {
		if _, err := dyn.Resource(crdGVR).Apply(ctx, o.GetName(), o, applyOptions); err != nil {
			t.Fatalf("applying CustomResourceDefinition %s: %v", o.GetName(), err)
		}
	}
	waitEstablished(t, cfg, crds)
	mapper := restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(discovery.NewDiscoveryClientForConfigOrDie(cfg)))
	for _, o := range others {
		gvk := o.GroupVersionKind()
		m, err := mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
		if err != nil {
			t.Fatalf("%s %s: no API serves it: %v", gvk, o.GetName(), err)
		}
		var ri dynamic.ResourceInterface = dyn.Resource(m.Resource)
		if m.Scope.Name() == "namespace" {
			if o.GetNamespace() == "" {
				t.Fatalf("%s %s is namespaced but the rendering sets no namespace", gvk.Kind, o.GetName())
			}
			ri = dyn.Resource(m.Resource).Namespace(o.GetNamespace())
		}
		if _, err := ri.Apply(ctx, o.GetName(), o, applyOptions); err != nil {
			t.Fatalf("applying %s %s/%s: %v", gvk.Kind, o.GetNamespace(), o.GetName(), err)
		}
	}
}

var applyOptions = metav1.ApplyOptions{FieldManager: "herald-deploy-test", Force: true}

func waitEstablished(t *testing.T, cfg *rest.Config, crds []*unstructured.Unstructured) {
	t.Helper()
	client := apiextensionsclient.NewForConfigOrDie(cfg).ApiextensionsV1().CustomResourceDefinitions()
	for _, o := range crds {
		err := wait.PollUntilContextTimeout(context.Background(), 50*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
			crd, err := client.Get(ctx, o.GetName(), metav1.GetOptions{})
			if err != nil {
				return false, nil
			}
			for _, c := range crd.Status.Conditions {
				if c.Type == apiextensionsv1.Established && c.Status == apiextensionsv1.ConditionTrue {
					return true, nil
				}
			}
			return false, nil
		})
		if err != nil {
			t.Fatalf("CustomResourceDefinition %s not Established: %v", o.GetName(), err)
		}
	}
}

// call is one API request as RBAC sees it.
type call struct {
	Verb, Group, Resource, Subresource, Namespace, Name string
	// Code is the HTTP status of the response (0 when the request failed before one).
	Code int
}

func (c call) String() string {
	r := c.Resource
	if c.Subresource != "" {
		r += "/" + c.Subresource
	}
	g := c.Group
	if g == "" {
		g = "core"
	}
	return fmt.Sprintf("%s %s.%s ns=%q name=%q -> %d", c.Verb, r, g, c.Namespace, c.Name, c.Code)
}

// recorder is an http.RoundTripper wrapper that records every resource request a client makes;
// discovery (non-resource) paths are kept apart.
type recorder struct {
	mu          sync.Mutex
	calls       []call
	nonResource map[string]bool
}

func newRecorder() *recorder { return &recorder{nonResource: map[string]bool{}} }

// wrap returns a copy of cfg whose requests go through the recorder.
func (r *recorder) wrap(cfg *rest.Config) *rest.Config {
	cfg = rest.CopyConfig(cfg)
	cfg.Wrap(func(rt http.RoundTripper) http.RoundTripper {
		return roundTripperFunc(func(req *http.Request) (*http.Response, error) {
			resp, err := rt.RoundTrip(req)
			code := 0
			if resp != nil {
				code = resp.StatusCode
			}
			r.record(req, code)
			return resp, err
		})
	})
	return cfg
}

type roundTripperFunc func(*http.Request) (*http.Response, error)

func (f roundTripperFunc) RoundTrip(req *http.Request) (*http.Response, error) { return f(req) }

func (r *recorder) record(req *http.Request, code int) {
	c, ok := parseRequest(req.Method, req.URL.Path, req.URL.Query().Get("watch"))
	r.mu.Lock()
	defer r.mu.Unlock()
	if !ok {
		r.nonResource[req.URL.Path] = true
		return
	}
	c.Code = code
	r.calls = append(r.calls, c)
}

func (r *recorder) snapshot() ([]call, []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]call(nil), r.calls...), sortedKeys(r.nonResource)
}

// parseRequest turns a request into the attributes the RBAC authorizer sees, the way the API
// server's request-info resolver does for resource paths:
// /api/v1[/namespaces/NS]/RESOURCE[/NAME[/SUB]] and /apis/GROUP/VERSION/... It reports false
// for non-resource paths (discovery).
func parseRequest(method, path, watch string) (call, bool) {
	parts := strings.Split(strings.Trim(path, "/"), "/")
	var c call
	switch {
	case len(parts) >= 3 && parts[0] == "api":
		parts = parts[2:]
	case len(parts) >= 4 && parts[0] == "apis":
		c.Group = parts[1]
		parts = parts[3:]
	default:
		return c, false
	}
	if parts[0] == "namespaces" && len(parts) >= 3 {
		c.Namespace = parts[1]
		parts = parts[2:]
	} else if parts[0] == "namespaces" && len(parts) == 2 {
		// A Namespace itself: /api/v1/namespaces/NAME.
		c.Namespace = parts[1]
	}
	c.Resource = parts[0]
	if len(parts) > 1 {
		c.Name = parts[1]
	}
	if len(parts) > 2 {
		c.Subresource = parts[2]
	}
	switch method {
	case http.MethodGet:
		switch {
		case watch == "true" || watch == "1":
			c.Verb = "watch"
		case c.Name == "":
			c.Verb = "list"
		default:
			c.Verb = "get"
		}
	case http.MethodPost:
		c.Verb = "create"
	case http.MethodPut:
		c.Verb = "update"
	case http.MethodPatch:
		c.Verb = "patch"
	case http.MethodDelete:
		c.Verb = "delete"
		if c.Name == "" {
			c.Verb = "deletecollection"
		}
	default:
		c.Verb = strings.ToLower(method)
	}
	return c, true
}

// grant is one rule of a role, bound either cluster-wide or in one namespace.
type grant struct {
	role      string
	namespace string // "" for a ClusterRole bound by a ClusterRoleBinding
	rule      rbacv1.PolicyRule
}

// allows reports whether the grant permits the call, as the RBAC authorizer decides.
func (g grant) allows(c call) bool {
	if g.namespace != "" && g.namespace != c.Namespace {
		return false
	}
	res := c.Resource
	if c.Subresource != "" {
		res += "/" + c.Subresource
	}
	return matches(g.rule.APIGroups, c.Group) && matches(g.rule.Resources, res) && matches(g.rule.Verbs, c.Verb) &&
		(len(g.rule.ResourceNames) == 0 || (c.Name != "" && matches(g.rule.ResourceNames, c.Name)))
}

func matches(list []string, v string) bool {
	for _, x := range list {
		if x == v || x == "*" {
			return true
		}
	}
	return false
}

// grantsFor collects the rules the rendered RBAC objects give service account ns/name.
func grantsFor(t *testing.T, objs []*unstructured.Unstructured, ns, name string) []grant {
	t.Helper()
	subject := func(subjects []rbacv1.Subject) bool {
		for _, s := range subjects {
			if s.Kind == rbacv1.ServiceAccountKind && s.Namespace == ns && s.Name == name {
				return true
			}
		}
		return false
	}
	clusterRoles, roles := map[string][]rbacv1.PolicyRule{}, map[string][]rbacv1.PolicyRule{}
	for _, o := range find(objs, "ClusterRole") {
		clusterRoles[o.GetName()] = typed[rbacv1.ClusterRole](t, o).Rules
	}
	for _, o := range find(objs, "Role") {
		roles[o.GetNamespace()+"/"+o.GetName()] = typed[rbacv1.Role](t, o).Rules
	}
	var out []grant
	for _, o := range find(objs, "ClusterRoleBinding") {
		b := typed[rbacv1.ClusterRoleBinding](t, o)
		if subject(b.Subjects) {
			for _, r := range clusterRoles[b.RoleRef.Name] {
				out = append(out, grant{role: "ClusterRole " + b.RoleRef.Name, rule: r})
			}
		}
	}
	for _, o := range find(objs, "RoleBinding") {
		b := typed[rbacv1.RoleBinding](t, o)
		if !subject(b.Subjects) {
			continue
		}
		rules := roles[b.Namespace+"/"+b.RoleRef.Name]
		if b.RoleRef.Kind == "ClusterRole" {
			rules = clusterRoles[b.RoleRef.Name]
		}
		for _, r := range rules {
			out = append(out, grant{role: b.RoleRef.Kind + " " + b.RoleRef.Name, namespace: b.Namespace, rule: r})
		}
	}
	if len(out) == 0 {
		t.Fatalf("the rendering grants service account %s/%s nothing", ns, name)
	}
	return out
}

type (
	appsDeployment = appsv1.Deployment
	appsDaemonSet  = appsv1.DaemonSet
)

// newFlagSet returns an empty flag set that reports errors instead of exiting.
func newFlagSet() *pflag.FlagSet { return pflag.NewFlagSet("test", pflag.ContinueOnError) }
