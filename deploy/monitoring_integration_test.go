//go:build integration

package deploy_test

import (
	"encoding/json"
	"os"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"
)

const (
	alertsFile    = "helm/herald/files/alerts.yaml"
	dashboardFile = "helm/herald/files/dashboard.json"
)

// TestIntegrationAlertRulesPassPromtool checks the alerting rules with Prometheus' own tool:
// they parse and type-check, and each alert fires on the series that should trip it and not on
// a healthy neighbour (deploy/monitoring/alerts_test.yaml).
func TestIntegrationAlertRulesPassPromtool(t *testing.T) {
	promtool := tool(t, "promtool")
	run(t, promtool, "check", "rules", alertsFile)
	out := run(t, promtool, "test", "rules", "monitoring/alerts_test.yaml")
	if !strings.Contains(string(out), "SUCCESS") {
		t.Fatalf("promtool test rules did not report SUCCESS:\n%s", out)
	}
}

// TestIntegrationDashboardAndAlertsUseDocumentedMetrics: every metric the dashboard and the
// alerts query is one docs/metrics.md documents (and so, by TestMetricsDocumented, one the
// code defines), so a renamed metric cannot leave a silent panel or a dead alert behind.
func TestIntegrationDashboardAndAlertsUseDocumentedMetrics(t *testing.T) {
	docs := readFile(t, "../docs/metrics.md")
	exprs := append(alertExprs(t), dashboardExprs(t)...)
	name := regexp.MustCompile(`\b(herald_[a-z0-9_]+|up)\b`)
	used := map[string]bool{}
	for _, e := range exprs {
		for _, m := range name.FindAllString(e, -1) {
			used[m] = true
		}
	}
	if !used["herald_speaker_announced_addresses"] || !used["herald_announcer_restarts_total"] {
		t.Fatalf("found only %v in the dashboard and alerts: the extraction is broken", used)
	}
	var missing []string
	for m := range used {
		if !strings.Contains(docs, "`"+m+"`") {
			missing = append(missing, m)
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Errorf("the dashboard or alerts use metrics docs/metrics.md does not document: %v", missing)
	}
}

// TestIntegrationChartRendersMonitoring: with both options on, the chart renders the dashboard
// ConfigMap with the sidecar's label and the JSON byte for byte, and a PrometheusRule whose
// groups are alerts.yaml's.
func TestIntegrationChartRendersMonitoring(t *testing.T) {
	objs := decode(t, helmTemplate(t, "herald", "herald-system", "metrics: {dashboard: {enabled: true}, prometheusRule: {enabled: true}}\n"))
	cms := find(objs, "ConfigMap")
	var dash map[string]any
	for _, cm := range cms {
		if cm.GetLabels()["grafana_dashboard"] == "1" {
			data, _, _ := unstructured.NestedString(cm.Object, "data", "herald.json")
			if err := json.Unmarshal([]byte(data), &dash); err != nil {
				t.Fatalf("dashboard ConfigMap: %v", err)
			}
		}
	}
	var want map[string]any
	if err := json.Unmarshal([]byte(readFile(t, dashboardFile)), &want); err != nil {
		t.Fatal(err)
	}
	if dash == nil || !reflect.DeepEqual(dash, want) {
		t.Errorf("no ConfigMap labelled grafana_dashboard=1 holds %s", dashboardFile)
	}
	rules := find(objs, "PrometheusRule")
	if len(rules) != 1 {
		t.Fatalf("%d PrometheusRules rendered, want 1", len(rules))
	}
	var file map[string]any
	if err := yaml.Unmarshal([]byte(readFile(t, alertsFile)), &file); err != nil {
		t.Fatal(err)
	}
	spec := rules[0].Object["spec"].(map[string]any)
	if !reflect.DeepEqual(spec["groups"], file["groups"]) {
		t.Error("the PrometheusRule's groups differ from alerts.yaml's")
	}
	off := decode(t, helmTemplate(t, "herald", "herald-system", ""))
	if len(find(off, "PrometheusRule")) != 0 {
		t.Error("a PrometheusRule is rendered with the default values (it needs the Prometheus Operator's CRDs)")
	}
}

func alertExprs(t *testing.T) []string {
	t.Helper()
	var file struct {
		Groups []struct {
			Rules []struct {
				Expr string `json:"expr"`
			} `json:"rules"`
		} `json:"groups"`
	}
	if err := yaml.Unmarshal([]byte(readFile(t, alertsFile)), &file); err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, g := range file.Groups {
		for _, r := range g.Rules {
			out = append(out, r.Expr)
		}
	}
	return out
}

func dashboardExprs(t *testing.T) []string {
	t.Helper()
	var d struct {
		Panels []struct {
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	data, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &d); err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, p := range d.Panels {
		for _, tg := range p.Targets {
			out = append(out, tg.Expr)
		}
	}
	return out
}
