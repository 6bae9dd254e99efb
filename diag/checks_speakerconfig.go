package diag

import (
	"sort"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// reasonInvalidConfiguration is speaker.ReasonInvalidConfiguration: a speaker could not use
// an object as written (an advertisement's selector, a heartbeat, a Service's ingress IP).
const reasonInvalidConfiguration = "InvalidConfiguration"

// checkSpeakerConfig reports each object a speaker recorded as not usable on its node, with
// the latest such Event's message (which names the node, the field and the reason) and the
// nodes that reported it. These are problems only a speaker finds while converting what it
// watches, so diag reads them from the speakers' Events rather than guessing them again.
func checkSpeakerConfig(x *index) []Finding {
	type objKey struct{ kind, ns, name string }
	latest := map[objKey]*corev1.Event{}
	nodes := map[objKey]map[string]bool{}
	for i := range x.Events {
		e := &x.Events[i]
		if e.Type != corev1.EventTypeWarning || e.Reason != reasonInvalidConfiguration {
			continue
		}
		k := objKey{e.InvolvedObject.Kind, e.InvolvedObject.Namespace, e.InvolvedObject.Name}
		if nodes[k] == nil {
			nodes[k] = map[string]bool{}
		}
		nodes[k][e.Source.Host] = true
		if old := latest[k]; old == nil || eventTime(e).After(eventTime(old)) {
			latest[k] = e
		}
	}
	out := make([]Finding, 0, len(latest))
	for k, e := range latest {
		var hosts []string
		for h := range nodes[k] {
			hosts = append(hosts, h)
		}
		sort.Strings(hosts)
		out = append(out, finding("config.invalid-on-node", Warning, ObjectRef{Kind: k.kind, Namespace: k.ns, Name: k.name},
			"fix the field the message names (kubectl -n "+k.ns+" describe "+k.kind+" "+k.name+"); the speakers report it again while it stays",
			"%s (Event %s from %d node(s) %v, latest %s)", e.Message, reasonInvalidConfiguration, len(hosts), hosts, eventTime(e).UTC().Format(time.RFC3339)))
	}
	return out
}
