package controller

import (
	"strings"
	"testing"
)

func TestReadiness(t *testing.T) {
	for _, tc := range []struct {
		name string
		run  func(r *readiness)
		want string // "" means ready
	}{
		{"standby", func(*readiness) {}, ""},
		{"leader before rebuild", func(r *readiness) { r.startLeading() }, "rebuilding"},
		{"leader with Services to go", func(r *readiness) {
			r.startLeading()
			r.expect([]string{"a/x", "a/y"})
			r.processed("a/x")
			r.processed("pools")
		}, "1 Services to go"},
		{"leader after the first full sync", func(r *readiness) {
			r.startLeading()
			r.expect([]string{"a/x", "a/y"})
			r.processed("a/y")
			r.processed("a/x")
		}, ""},
		{"leader of an empty cluster", func(r *readiness) {
			r.startLeading()
			r.expect(nil)
		}, ""},
		{"lost the lead mid-sync", func(r *readiness) {
			r.startLeading()
			r.expect([]string{"a/x"})
			r.stopLeading()
		}, ""},
		{"leads again: a new first sync", func(r *readiness) {
			r.startLeading()
			r.expect(nil)
			r.stopLeading()
			r.startLeading()
		}, "rebuilding"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var r readiness
			tc.run(&r)
			err := r.leaderReady()
			if (tc.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.want)) {
				t.Errorf("leaderReady() = %v, want %q", err, tc.want)
			}
		})
	}
}
