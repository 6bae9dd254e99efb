package liveness

import (
	"testing"
	"time"

	"github.com/herald-lb/herald/framework"
)

func heartbeatNode(name string, renew time.Time, lease time.Duration) *framework.NodeInfo {
	return &framework.NodeInfo{Name: name, Speaker: &framework.SpeakerInfo{RenewTime: renew, LeaseDuration: lease}}
}

func TestNextExpiryAndLapse(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	nodes := []*framework.NodeInfo{
		heartbeatNode("a", t0, 3*time.Second),                // expires t0+3s
		heartbeatNode("b", t0.Add(time.Second), time.Second), // expires t0+2s
		{Name: "no-speaker"},
		heartbeatNode("dead", t0.Add(-time.Hour), time.Second),
	}
	tests := []struct {
		name       string
		after      time.Time
		wantNext   time.Time
		since, now time.Time
		wantLapsed bool
	}{
		{name: "earliest live expiry", after: t0, wantNext: t0.Add(2 * time.Second), since: t0, now: t0.Add(time.Second)},
		{name: "one expired in the window", after: t0.Add(2 * time.Second), wantNext: t0.Add(3 * time.Second),
			since: t0.Add(time.Second), now: t0.Add(2 * time.Second), wantLapsed: true},
		{name: "expired before the window is old news", after: t0.Add(2500 * time.Millisecond), wantNext: t0.Add(3 * time.Second),
			since: t0.Add(2500 * time.Millisecond), now: t0.Add(2900 * time.Millisecond)},
		{name: "none alive", after: t0.Add(time.Minute), since: t0.Add(time.Minute), now: t0.Add(2 * time.Minute)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := NextExpiry(nodes, tt.after); !got.Equal(tt.wantNext) {
				t.Errorf("NextExpiry(%s) = %s, want %s", tt.after, got, tt.wantNext)
			}
			if got := LapsedBetween(nodes, tt.since, tt.now); got != tt.wantLapsed {
				t.Errorf("LapsedBetween(%s, %s) = %v, want %v", tt.since, tt.now, got, tt.wantLapsed)
			}
		})
	}
}
