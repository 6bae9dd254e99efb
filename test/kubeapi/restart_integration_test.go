//go:build integration

package kubeapi_test

import (
	"context"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/herald-lb/herald/test/kubeapi"
)

// Stopping the API server makes every request fail; restarting it serves the same data on
// the same address.
func TestIntegrationStopAndRestartAPIServer(t *testing.T) {
	env := kubeapi.Env(t)
	client := env.Client(t)
	ns := env.Namespace(t)
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "kept"}, Data: map[string]string{"k": "v"}}
	if _, err := client.CoreV1().ConfigMaps(ns).Create(context.Background(), cm, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	env.StopAPIServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := client.CoreV1().ConfigMaps(ns).Get(ctx, "kept", metav1.GetOptions{}); err == nil {
		t.Fatal("the API server answered while stopped")
	}
	began := time.Now()
	env.RestartAPIServer(t)
	t.Logf("restarted in %s", time.Since(began).Round(time.Millisecond))
	got, err := client.CoreV1().ConfigMaps(ns).Get(context.Background(), "kept", metav1.GetOptions{})
	if err != nil || got.Data["k"] != "v" {
		t.Fatalf("after the restart: %v %v", got, err)
	}
}
