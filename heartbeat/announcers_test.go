package heartbeat

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/herald-lb/herald/framework"
)

// Announcer health round-trips, renewals with unchanged health write the same annotation,
// and a heartbeat without health (nil) drops the annotation: no opinion.
func TestAnnouncersRoundTrip(t *testing.T) {
	anns := map[framework.AnnouncerKind]framework.AnnouncerHealth{
		framework.AnnouncerKindL2v4: {State: framework.AnnouncerUnavailable, Reason: "announcer arp refused: checksum mismatch"},
		framework.AnnouncerKindL2v6: {State: framework.AnnouncerWarming, Reason: "informers not synced"},
		framework.AnnouncerKindBGP:  {State: framework.AnnouncerReady},
	}
	hb := Heartbeat{NodeName: "n1", RenewTime: time.Now(), LeaseDuration: 2 * time.Second, Announcers: anns}
	l, err := Encode(hb, "ns")
	if err != nil {
		t.Fatal(err)
	}
	want := `{"bgp":{"state":"ready"},"l2-v4":{"state":"unavailable","reason":"announcer arp refused: checksum mismatch"},"l2-v6":{"state":"warming","reason":"informers not synced"}}`
	if got := l.Annotations[AnnotationAnnouncers]; got != want {
		t.Fatalf("annotation %s\nwant       %s", got, want)
	}
	if got := mustDecode(t, l).SpeakerInfo().Announcers; !reflect.DeepEqual(got, anns) {
		t.Fatalf("decoded %v, want %v", got, anns)
	}
	hb.Announcers = nil
	if err := EncodeInto(l, hb); err != nil {
		t.Fatal(err)
	}
	if _, ok := l.Annotations[AnnotationAnnouncers]; ok {
		t.Fatalf("nil health left the annotation: %v", l.Annotations)
	}
	if got := mustDecode(t, l).Announcers; got != nil {
		t.Fatalf("no annotation decoded as %v, want nil (no opinion)", got)
	}
}

func TestAnnouncersEncodeBounds(t *testing.T) {
	long := strings.Repeat("é", maxReason) // two bytes each: the cut falls inside one
	hb := Heartbeat{NodeName: "n1", RenewTime: time.Now(), LeaseDuration: 2 * time.Second,
		Announcers: map[framework.AnnouncerKind]framework.AnnouncerHealth{framework.AnnouncerKindL2v4: {State: framework.AnnouncerUnavailable, Reason: long}}}
	l, err := Encode(hb, "ns")
	if err != nil {
		t.Fatal(err)
	}
	got := mustDecode(t, l).Announcers[framework.AnnouncerKindL2v4].Reason
	if len(got) > maxReason || !strings.HasPrefix(long, got) || len(got) < maxReason-1 {
		t.Fatalf("reason of %d bytes, want a valid prefix of at most %d", len(got), maxReason)
	}
	for _, bad := range []map[framework.AnnouncerKind]framework.AnnouncerHealth{
		{"": {State: framework.AnnouncerReady}},
		{framework.AnnouncerKindBGP: {State: "fine"}},
	} {
		hb.Announcers = bad
		if _, err := Encode(hb, "ns"); err == nil {
			t.Errorf("Encode with announcers %v succeeded", bad)
		}
	}
}

// What cannot be read reads as unavailable (the node must not win IPs nobody can tell it
// answers), with an error naming the field; the rest of the heartbeat survives.
func TestAnnouncersDecodeErrors(t *testing.T) {
	unavailable := func(kinds ...framework.AnnouncerKind) map[framework.AnnouncerKind]framework.AnnouncerState {
		out := map[framework.AnnouncerKind]framework.AnnouncerState{}
		for _, k := range kinds {
			out[k] = framework.AnnouncerUnavailable
		}
		return out
	}
	all := unavailable(framework.AnnouncerKinds...)
	tests := []struct {
		name    string
		value   string
		want    map[framework.AnnouncerKind]framework.AnnouncerState
		wantErr string
	}{
		{name: "empty object: nothing reported", value: `{}`, want: map[framework.AnnouncerKind]framework.AnnouncerState{}},
		{name: "future kind kept", value: `{"l3":{"state":"ready"}}`, want: map[framework.AnnouncerKind]framework.AnnouncerState{"l3": framework.AnnouncerReady}},
		{name: "not JSON", value: `l2-v4=ready`, want: all, wantErr: "metadata.annotations[herald.dev/announcers]: invalid character"},
		{name: "null", value: `null`, want: all, wantErr: "not a JSON object"},
		{name: "a list", value: `[]`, want: all, wantErr: "metadata.annotations[herald.dev/announcers]"},
		{name: "unknown state", value: `{"l2-v4":{"state":"fine"},"bgp":{"state":"ready"}}`,
			want:    map[framework.AnnouncerKind]framework.AnnouncerState{framework.AnnouncerKindL2v4: framework.AnnouncerUnavailable, framework.AnnouncerKindBGP: framework.AnnouncerReady},
			wantErr: `metadata.annotations[herald.dev/announcers][l2-v4].state: "fine" is not`},
		{name: "empty kind dropped", value: `{"":{"state":"ready"}}`, want: map[framework.AnnouncerKind]framework.AnnouncerState{}, wantErr: "empty announcer kind"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := mustEncode(t, 2*time.Second)
			l.Annotations[AnnotationAnnouncers] = tt.value
			hb, err := Decode(l)
			if (tt.wantErr == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tt.wantErr)) {
				t.Fatalf("error %v, want %q", err, tt.wantErr)
			}
			if err != nil && !strings.Contains(err.Error(), "lease ns/herald-speaker-n1") {
				t.Fatalf("error %v does not name the lease", err)
			}
			if hb == nil || hb.NodeName != "n1" || !hb.SpeakerInfo().AliveAt(time.Now()) {
				t.Fatalf("heartbeat %+v lost its liveness", hb)
			}
			got := map[framework.AnnouncerKind]framework.AnnouncerState{}
			for k, h := range hb.Announcers {
				got[k] = h.State
				if h.State != framework.AnnouncerReady && h.Reason == "" {
					t.Errorf("%s is %s without a reason", k, h.State)
				}
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("states %v, want %v", got, tt.want)
			}
		})
	}
}
