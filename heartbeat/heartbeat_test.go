package heartbeat

import (
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"

	"github.com/herald-lb/herald/framework"
)

func TestRoundTrip(t *testing.T) {
	renew := time.Date(2026, 11, 22, 12, 0, 0, 123456000, time.UTC)
	hb := Heartbeat{
		NodeName: "node-1", Holder: "speaker-abcde", RenewTime: renew, LeaseDuration: 15 * time.Second, Draining: true,
		FastPath: "192.0.2.5:7946", FastPathID: "3f2a9c",
		Interfaces: []framework.Interface{
			{Name: "eth1", Up: false, Prefixes: []netip.Prefix{netip.MustParsePrefix("2001:db8::5/64")}},
			{Name: "eth0", Up: true, MAC: "02:00:00:00:00:01", Prefixes: []netip.Prefix{netip.MustParsePrefix("192.0.2.5/24")}},
		},
	}
	l, err := Encode(hb, "herald-system")
	if err != nil {
		t.Fatal(err)
	}
	if l.Name != "herald-speaker-node-1" || l.Namespace != "herald-system" || !IsHeartbeat(l) {
		t.Fatalf("lease %s/%s labels %v", l.Namespace, l.Name, l.Labels)
	}
	if *l.Spec.HolderIdentity != "speaker-abcde" || *l.Spec.LeaseDurationSeconds != 15 {
		t.Fatalf("spec %+v", l.Spec)
	}
	got, err := Decode(l)
	if err != nil {
		t.Fatal(err)
	}
	want := hb
	want.Interfaces = []framework.Interface{hb.Interfaces[1], hb.Interfaces[0]} // sorted by name
	if !reflect.DeepEqual(*got, want) {
		t.Fatalf("decoded %+v\nwant    %+v", *got, want)
	}

	// Renewing into the same Lease clears draining and keeps foreign annotations.
	l.Annotations["other"] = "kept"
	hb.Draining = false
	if err := EncodeInto(l, hb); err != nil {
		t.Fatal(err)
	}
	if _, ok := l.Annotations[AnnotationDraining]; ok || l.Annotations["other"] != "kept" {
		t.Fatalf("annotations %v", l.Annotations)
	}
	si := mustDecode(t, l).SpeakerInfo()
	if si.Draining || !si.AliveAt(renew.Add(14*time.Second)) || si.AliveAt(renew.Add(15*time.Second)) {
		t.Fatalf("speaker info %+v", si)
	}
}

func mustDecode(t *testing.T, l *coordinationv1.Lease) *Heartbeat {
	t.Helper()
	hb, err := Decode(l)
	if err != nil {
		t.Fatal(err)
	}
	return hb
}

func TestEncodeRejects(t *testing.T) {
	for _, hb := range []Heartbeat{
		{LeaseDuration: time.Second},
		{NodeName: "n", LeaseDuration: 0},
		{NodeName: "n", LeaseDuration: time.Second, Interfaces: []framework.Interface{{Up: true}}},
	} {
		if _, err := Encode(hb, "ns"); err == nil {
			t.Errorf("Encode(%+v) succeeded", hb)
		}
	}
}

func TestDecodeErrors(t *testing.T) {
	base := func() *coordinationv1.Lease { return mustEncode(t, 10*time.Second) }
	tests := []struct {
		name        string
		mutate      func(l *coordinationv1.Lease)
		wantErr     string
		wantNil     bool
		wantItfs    int
		wantDrained bool
	}{
		{name: "not a heartbeat", mutate: func(l *coordinationv1.Lease) { delete(l.Labels, LabelHeartbeat) }, wantErr: "metadata.labels[herald.dev/heartbeat]", wantNil: true},
		{name: "no node", mutate: func(l *coordinationv1.Lease) { delete(l.Annotations, AnnotationNode) }, wantErr: "metadata.annotations[herald.dev/node]: missing", wantNil: true},
		{name: "interfaces not JSON", mutate: func(l *coordinationv1.Lease) { l.Annotations[AnnotationInterfaces] = "eth0" }, wantErr: "metadata.annotations[herald.dev/interfaces]"},
		{name: "bad prefix keeps the other interfaces", mutate: func(l *coordinationv1.Lease) {
			l.Annotations[AnnotationInterfaces] = `[{"name":"eth0","up":true,"prefixes":["192.0.2.300/24"]},{"name":"eth1","up":true,"prefixes":["192.0.2.1/24"]}]`
		}, wantErr: "metadata.annotations[herald.dev/interfaces][0].prefixes[0]", wantItfs: 2},
		{name: "bad draining value reads as draining", mutate: func(l *coordinationv1.Lease) { l.Annotations[AnnotationDraining] = "yes" }, wantErr: "herald.dev/draining", wantDrained: true},
		{name: "bad fast-path address is left out", mutate: func(l *coordinationv1.Lease) { l.Annotations[AnnotationFastPath] = "node-1" }, wantErr: "metadata.annotations[herald.dev/fast-path]"},
		{name: "missing spec reads as dead", mutate: func(l *coordinationv1.Lease) { l.Spec = coordinationv1.LeaseSpec{} }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := base()
			tt.mutate(l)
			hb, err := Decode(l)
			if tt.wantErr == "" && err != nil {
				t.Fatal(err)
			}
			if tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr) || !strings.Contains(err.Error(), "lease ns/herald-speaker-n1")) {
				t.Fatalf("error %v, want one naming the lease and %q", err, tt.wantErr)
			}
			if tt.wantNil {
				if hb != nil {
					t.Fatalf("got a heartbeat %+v", hb)
				}
				return
			}
			if hb == nil || hb.NodeName != "n1" || len(hb.Interfaces) != tt.wantItfs || hb.Draining != tt.wantDrained {
				t.Fatalf("heartbeat %+v", hb)
			}
			if tt.name == "missing spec reads as dead" && hb.SpeakerInfo().AliveAt(time.Now()) {
				t.Fatal("a lease without renewTime reads as alive")
			}
		})
	}
}

func TestLeaseNameOfLongNodes(t *testing.T) {
	long := strings.Repeat("a", 250)
	a, b := LeaseName(long+"x"), LeaseName(long+"y")
	if len(a) > 253 || a == b || !strings.HasPrefix(a, leasePrefix) {
		t.Fatalf("names %q (%d) and %q", a, len(a), b)
	}
}

// A fractional lease survives the Lease's whole-second field: spec.leaseDurationSeconds is
// rounded up for other readers, the annotation keeps the exact value, and a bad or longer
// annotation is reported and falls back to the whole seconds.
func TestFractionalLeaseDuration(t *testing.T) {
	encode := func() *coordinationv1.Lease { return mustEncode(t, 2500*time.Millisecond) }
	if l := encode(); *l.Spec.LeaseDurationSeconds != 3 {
		t.Fatalf("leaseDurationSeconds %d, want 3 (rounded up)", *l.Spec.LeaseDurationSeconds)
	}
	tests := []struct {
		name       string
		annotation *string
		want       time.Duration
		wantErr    string
	}{
		{name: "exact", want: 2500 * time.Millisecond},
		{name: "written by an older speaker", annotation: new(string), want: 3 * time.Second, wantErr: ""},
		{name: "not a duration", annotation: ptrTo("soon"), want: 3 * time.Second, wantErr: "herald.dev/lease-duration"},
		{name: "longer than the Lease says", annotation: ptrTo("10s"), want: 3 * time.Second, wantErr: "longer than spec.leaseDurationSeconds"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := encode()
			switch {
			case tt.annotation == nil:
			case *tt.annotation == "":
				delete(l.Annotations, AnnotationLeaseDuration)
			default:
				l.Annotations[AnnotationLeaseDuration] = *tt.annotation
			}
			hb, err := Decode(l)
			if (tt.wantErr == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tt.wantErr)) {
				t.Fatalf("error %v, want %q", err, tt.wantErr)
			}
			if hb.LeaseDuration != tt.want {
				t.Fatalf("lease duration %s, want %s", hb.LeaseDuration, tt.want)
			}
		})
	}
}

func ptrTo[T any](v T) *T { return &v }

// mustEncode is node n1's heartbeat Lease in namespace ns, renewed now.
func mustEncode(t *testing.T, lease time.Duration) *coordinationv1.Lease {
	t.Helper()
	l, err := Encode(Heartbeat{NodeName: "n1", RenewTime: time.Now(), LeaseDuration: lease}, "ns")
	if err != nil {
		t.Fatal(err)
	}
	return l
}
