package controller

import (
	"errors"
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
		{"leader whose rebuild failed says why", func(r *readiness) {
			r.startLeading()
			r.rebuildFailed(errors.New("etcdserver: request timed out"))
		}, "last attempt failed (retrying): etcdserver: request timed out"},
		{"a retried rebuild that succeeded", func(r *readiness) {
			r.startLeading()
			r.rebuildFailed(errors.New("boom"))
			r.expect([]string{"a/x"})
			r.processed("a/x")
		}, ""},
		{"gave up leading", func(r *readiness) {
			r.startLeading()
			r.rebuildFailed(errors.New("boom"))
			r.gaveUp(errors.New("rebuilding failed for 10s: boom"))
			r.stopLeading()
		}, "released the leader Lease, cannot lead: rebuilding failed for 10s: boom"},
		{"campaigning again after giving up", func(r *readiness) {
			r.startLeading()
			r.gaveUp(errors.New("boom"))
			r.stopLeading()
			r.campaignAgain()
		}, ""},
		{"leads again after giving up: a fresh start", func(r *readiness) {
			r.startLeading()
			r.rebuildFailed(errors.New("boom"))
			r.gaveUp(errors.New("boom"))
			r.stopLeading()
			r.startLeading()
		}, "leader: rebuilding allocations from Service status"},
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
