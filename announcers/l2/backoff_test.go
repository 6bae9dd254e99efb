package l2

import (
	"slices"
	"testing"
	"time"
)

// The retries of a link that cannot be opened and of a netlink subscription that ended wait
// lo, then twice as long each time up to hi, and start over from lo after a Reset.
func TestDoubling(t *testing.T) {
	ms := time.Millisecond
	for _, tc := range []struct {
		name   string
		lo, hi time.Duration
		want   []time.Duration
	}{
		{name: "reopen", lo: reopenMin, hi: reopenMax, want: []time.Duration{100 * ms, 200 * ms, 400 * ms, 800 * ms, 1600 * ms, 3200 * ms, 5 * time.Second, 5 * time.Second}},
		{name: "resubscribe", lo: resubscribeMin, hi: resubscribeMax, want: []time.Duration{100 * ms, 200 * ms, 400 * ms, 800 * ms, 1600 * ms, 3200 * ms, 5 * time.Second}},
		{name: "hi not a power of two of lo", lo: 3 * ms, hi: 10 * ms, want: []time.Duration{3 * ms, 6 * ms, 10 * ms, 10 * ms}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := doubling(tc.lo, tc.hi)
			for round := range 2 {
				var got []time.Duration
				for range tc.want {
					got = append(got, b.NextBackOff())
				}
				if !slices.Equal(got, tc.want) {
					t.Fatalf("round %d: waits %v, want %v", round, got, tc.want)
				}
				b.Reset()
			}
		})
	}
}
