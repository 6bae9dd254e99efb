package heartbeat

import (
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/herald-lb/herald/framework"
)

// FuzzDecode decodes heartbeat Leases with arbitrary annotations and lease fields, as any
// client with write access to the speaker namespace could write them. Decode must never panic;
// every error names the Lease and the field; whatever decodes is within bounds and encodes
// again. The seed corpus is in testdata/fuzz/FuzzDecode (`go test` runs it; `make fuzz`
// explores further).
func FuzzDecode(f *testing.F) {
	f.Add("n1", `[{"name":"eth0","up":true,"mac":"02:00:00:00:00:01","prefixes":["192.0.2.5/24"]}]`, "", "2.5s",
		`{"l2-v4":{"state":"ready"},"l2-v6":{"state":"unavailable","reason":"no ndp announcer configured"}}`, int32(3), true)
	f.Fuzz(func(t *testing.T, node, itfs, draining, duration, anns string, seconds int32, withSpec bool) {
		l := &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "herald-speaker-x",
			Labels: map[string]string{LabelHeartbeat: LabelValueSpeaker},
			Annotations: map[string]string{AnnotationNode: node, AnnotationInterfaces: itfs, AnnotationDraining: draining,
				AnnotationLeaseDuration: duration, AnnotationAnnouncers: anns}}}
		if withSpec {
			renew := metav1.NewMicroTime(time.Unix(1_800_000_000, 0))
			holder := node
			l.Spec = coordinationv1.LeaseSpec{HolderIdentity: &holder, LeaseDurationSeconds: &seconds, RenewTime: &renew}
		}
		hb, err := Decode(l)
		if err != nil {
			for _, line := range strings.Split(err.Error(), "\n") {
				if !strings.HasPrefix(line, "lease ns/herald-speaker-x: metadata.") {
					t.Fatalf("error line %q does not start with the lease and a field path", line)
				}
			}
		}
		if hb == nil {
			if err == nil {
				t.Fatal("no heartbeat and no error")
			}
			return
		}
		if hb.NodeName != node {
			t.Fatalf("node %q, want %q", hb.NodeName, node)
		}
		for kind, h := range hb.Announcers {
			if kind == "" || !knownState(h.State) || len(h.Reason) > maxReason || !utf8.ValidString(h.Reason) && utf8.ValidString(anns) {
				t.Fatalf("announcer %q decoded as %+v", kind, h)
			}
		}
		if seconds > 0 && hb.LeaseDuration > time.Duration(seconds)*time.Second {
			t.Fatalf("lease duration %s beyond spec.leaseDurationSeconds %d", hb.LeaseDuration, seconds)
		}
		// What decoded encodes again and reads back the same health and node.
		if hb.LeaseDuration < time.Second {
			hb.LeaseDuration = time.Second
		}
		again, err := Encode(*hb, "ns")
		if err != nil {
			t.Fatalf("re-encoding %+v: %v", hb, err)
		}
		back, err := Decode(again)
		if err != nil {
			t.Fatalf("decoding the re-encoded heartbeat: %v", err)
		}
		if back.NodeName != hb.NodeName || back.Draining != hb.Draining || len(back.Interfaces) != len(hb.Interfaces) || !equalHealth(back.Announcers, hb.Announcers) {
			t.Fatalf("round trip changed the heartbeat:\n%+v\n%+v", hb, back)
		}
	})
}

func equalHealth(a, b map[framework.AnnouncerKind]framework.AnnouncerHealth) bool {
	if len(a) != len(b) || (a == nil) != (b == nil) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}
