package speaker

import (
	"errors"
	"strings"
	"testing"

	"k8s.io/client-go/tools/record"

	"github.com/herald-lb/herald/snapshot"
)

func drain(rec *record.FakeRecorder) []string {
	var out []string
	for {
		select {
		case e := <-rec.Events:
			out = append(out, e)
		default:
			return out
		}
	}
}

func TestProblemReporter(t *testing.T) {
	rec := record.NewFakeRecorder(100)
	r := newProblemReporter("node-a", rec)
	bad := snapshot.Problem{Kind: "L2Advertisement", Namespace: "herald-system", Name: "l2", Err: errors.New(`spec.nodeSelectors[0]: "a b" is not a valid label key`)}
	lease := snapshot.Problem{Kind: "Lease", Namespace: "herald-system", Name: "herald-speaker-node-b", Err: errors.New("interfaces: invalid JSON")}
	steps := []struct {
		name     string
		problems []snapshot.Problem
		want     []string // substrings of the Events recorded by this step, in order
	}{
		{"first report", []snapshot.Problem{bad, lease}, []string{
			`Warning InvalidConfiguration L2Advertisement herald-system/l2 is not used as written on node node-a: spec.nodeSelectors[0]: "a b" is not a valid label key`,
			"Warning InvalidConfiguration Lease herald-system/herald-speaker-node-b is not used as written on node node-a: interfaces: invalid JSON",
		}},
		{"same problems: no new Events", []snapshot.Problem{bad, lease}, nil},
		{"a changed message is reported", []snapshot.Problem{{Kind: bad.Kind, Namespace: bad.Namespace, Name: bad.Name, Err: errors.New("other")}, lease}, []string{
			"L2Advertisement herald-system/l2 is not used as written on node node-a: other",
		}},
		{"fixed", []snapshot.Problem{lease}, nil},
		{"broken again: reported again", []snapshot.Problem{bad, lease}, []string{"L2Advertisement herald-system/l2"}},
		{"unknown kinds are not recorded", []snapshot.Problem{bad, lease, {Kind: "Widget", Name: "w", Err: errors.New("x")}}, nil},
	}
	for _, st := range steps {
		r.report(st.problems)
		got := drain(rec)
		if len(got) != len(st.want) {
			t.Fatalf("%s: Events %q, want %d", st.name, got, len(st.want))
		}
		for i := range got {
			if !strings.Contains(got[i], st.want[i]) {
				t.Errorf("%s: Event %q, want it to contain %q", st.name, got[i], st.want[i])
			}
		}
	}
}
