package speaker

import (
	"net/netip"
	"testing"

	"k8s.io/client-go/util/workqueue"
)

// The work queue merges equal keys: an IP queued twice before a worker takes it runs once,
// and the full pass is one key apart from every IP's.
func TestQueueKeysMerge(t *testing.T) {
	q := workqueue.NewTyped[queueKey]()
	defer q.ShutDown()
	ip := netip.MustParseAddr("192.0.2.10")
	for _, k := range []queueKey{ipKey(ip), allKey, ipKey(netip.MustParseAddr("192.0.2.10")), allKey, ipKey(netip.MustParseAddr("2001:db8::10"))} {
		q.Add(k)
	}
	if q.Len() != 3 {
		t.Fatalf("queue holds %d keys, want 3 (192.0.2.10, all, 2001:db8::10)", q.Len())
	}
	for k, want := range map[queueKey]string{allKey: "*", ipKey(ip): "192.0.2.10"} {
		if k.String() != want {
			t.Errorf("%#v logs as %q, want %q", k, k.String(), want)
		}
	}
}
