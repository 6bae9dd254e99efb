package speaker

import (
	"context"
	"fmt"
	"sync"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/tools/record"

	metallbv1beta1 "github.com/herald-lb/herald/config/metallb/v1beta1"
	"github.com/herald-lb/herald/snapshot"
)

// ReasonInvalidConfiguration is the Warning Event a speaker records on an object it cannot use
// as written (an advertisement whose selector does not parse, a heartbeat with malformed
// interfaces, a Service whose ingress IP does not parse). Each object's problem affects only
// that object; the Event says which node refused it and why, and `herald diag` lists it.
const ReasonInvalidConfiguration = "InvalidConfiguration"

// problemInterval is how often the speaker looks for new conversion problems to report.
const problemInterval = 2 * time.Second

// problemReporter records each conversion problem as an Event on its object once per
// distinct message, and forgets fixed ones so a recurrence is reported again.
type problemReporter struct {
	node     string
	recorder record.EventRecorder
	mu       sync.Mutex
	reported map[string]string
}

func newProblemReporter(node string, rec record.EventRecorder) *problemReporter {
	return &problemReporter{node: node, recorder: rec, reported: map[string]string{}}
}

// objectRef names the problem's object for an Event; false for kinds it does not know.
func objectRef(p snapshot.Problem) (*corev1.ObjectReference, bool) {
	apiVersion := map[string]string{
		"Service":          corev1.SchemeGroupVersion.String(),
		"Lease":            coordinationv1.SchemeGroupVersion.String(),
		"L2Advertisement":  metallbv1beta1.SchemeGroupVersion.String(),
		"BGPAdvertisement": metallbv1beta1.SchemeGroupVersion.String(),
	}[p.Kind]
	if apiVersion == "" {
		return nil, false
	}
	return &corev1.ObjectReference{Kind: p.Kind, APIVersion: apiVersion, Namespace: p.Namespace, Name: p.Name}, true
}

// report records the problems not reported yet with the same message.
func (r *problemReporter) report(problems []snapshot.Problem) {
	seen := make(map[string]bool, len(problems))
	for _, p := range problems {
		key := p.Kind + " " + p.Namespace + "/" + p.Name
		seen[key] = true
		msg := fmt.Sprintf("%s %s/%s is not used as written on node %s: %v", p.Kind, p.Namespace, p.Name, r.node, p.Err)
		r.mu.Lock()
		old := r.reported[key]
		r.reported[key] = msg
		r.mu.Unlock()
		if old == msg {
			continue
		}
		if ref, ok := objectRef(p); ok && r.recorder != nil {
			r.recorder.Event(ref, corev1.EventTypeWarning, ReasonInvalidConfiguration, msg)
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for key := range r.reported {
		if !seen[key] {
			delete(r.reported, key)
		}
	}
}

// run reports the builder's problems every problemInterval until ctx is done.
func (r *problemReporter) run(ctx context.Context, b *snapshot.Builder) {
	t := time.NewTicker(problemInterval)
	defer t.Stop()
	for {
		r.report(b.Problems())
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
