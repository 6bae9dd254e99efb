package app

import (
	"bufio"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/herald-lb/herald/test/testbin"
)

func TestEverySubcommandHasLoggingFlags(t *testing.T) {
	root := NewHeraldCommand()
	for _, sub := range root.Commands() {
		for _, name := range []string{"logging-format", "v", "vmodule"} {
			if sub.Flag(name) == nil {
				t.Errorf("herald %s has no --%s", sub.Name(), name)
			}
		}
	}
	if f := root.PersistentFlags().ShorthandLookup("v"); f == nil || f.Name != "v" {
		t.Errorf("-v is not the verbosity shorthand: %+v", f)
	}
}

func TestLoggingFormatRejectsUnknown(t *testing.T) {
	out, err := execute(t, nil, "version", "--logging-format", "yaml")
	if err == nil || !strings.Contains(err.Error(), `logging flags`) || !strings.Contains(err.Error(), `"yaml": Unsupported log format`) {
		t.Errorf("--logging-format yaml: err = %v, output %q", err, out)
	}
	if strings.Contains(out, "herald ") {
		t.Errorf("the command ran despite the bad flag: %q", out)
	}
}

// logLinesUntil runs `herald controller` against an API server that is not there (nothing
// listens on 127.0.0.1:1), with args added, and returns its stderr lines up to the first one
// containing want. The controller logs where it serves metrics before it talks to the API
// server.
func logLinesUntil(t *testing.T, want string, args ...string) []string {
	t.Helper()
	herald := testbin.Build(t, "./cmd/herald")
	kubeconfig := filepath.Join(t.TempDir(), "kubeconfig")
	const kc = `apiVersion: v1
kind: Config
clusters: [{name: none, cluster: {server: "https://127.0.0.1:1"}}]
users: [{name: none, user: {token: x}}]
contexts: [{name: none, context: {cluster: none, user: none}}]
current-context: none
`
	if err := os.WriteFile(kubeconfig, []byte(kc), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(herald, append([]string{"controller", "--kubeconfig", kubeconfig,
		"--metrics-bind-address", "127.0.0.1:0", "--namespace", "logging-test"}, args...)...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	lines := make(chan string)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64*1024), 1024*1024)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	var got []string
	deadline := time.After(30 * time.Second)
	for len(got) == 0 || !strings.Contains(got[len(got)-1], want) {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("herald controller exited after %d lines: %q", len(got), got)
			}
			got = append(got, l)
		case <-deadline:
			t.Fatalf("only %d log lines in 30s: %q", len(got), got)
		}
	}
	return got
}

func TestLoggingFormatJSON(t *testing.T) {
	lines := logLinesUntil(t, "Serving metrics and health", "--logging-format", "json", "-v", "2")
	for i, l := range lines {
		var entry map[string]any
		if err := json.Unmarshal([]byte(l), &entry); err != nil {
			t.Fatalf("line %d is not JSON: %v\n%s", i, err, l)
		}
		if _, ok := entry["ts"]; !ok {
			t.Errorf("line %d has no ts: %s", i, l)
		}
		if _, ok := entry["msg"].(string); !ok {
			t.Errorf("line %d has no msg: %s", i, l)
		}
	}
	var last struct {
		Msg     string  `json:"msg"`
		V       float64 `json:"v"`
		Address string  `json:"address"`
		Logger  string  `json:"logger"`
	}
	_ = json.Unmarshal([]byte(lines[len(lines)-1]), &last)
	if last.Msg != "Serving metrics and health" || !strings.HasPrefix(last.Address, "127.0.0.1:") || last.V != 0 || last.Logger != "controller" {
		t.Errorf("line = %s; want the metrics address as a structured field", lines[len(lines)-1])
	}
	// -v 2 took effect: client-go's verbosity-1 start-up lines are there.
	verbose := false
	for _, l := range lines {
		verbose = verbose || strings.Contains(l, `"v":1`)
	}
	if !verbose {
		t.Errorf("no verbosity-1 line with -v 2: %q", lines)
	}
}

func TestLoggingFormatTextIsDefault(t *testing.T) {
	lines := logLinesUntil(t, "Serving metrics and health")
	for _, l := range lines {
		if json.Valid([]byte(l)) || !strings.HasPrefix(l, "I") {
			t.Errorf("default format line = %q, want klog text", l)
		}
	}
	if l := lines[len(lines)-1]; !strings.Contains(l, `"Serving metrics and health" logger="controller" address="127.0.0.1:`) {
		t.Errorf("line = %q, want the message quoted, the role's logger named and the address as key=value", l)
	}
	// At the default verbosity client-go's verbosity-1 start-up lines are not logged.
	if len(lines) != 1 {
		t.Errorf("lines before the first controller line at -v 0: %q", lines[:len(lines)-1])
	}
}
