package bgp

import (
	"testing"
	"time"
)

func TestReconnectDelay(t *testing.T) {
	for _, c := range []struct {
		retries int
		want    time.Duration
	}{
		{0, 0}, {1, time.Second}, {2, 2 * time.Second}, {3, 4 * time.Second}, {5, 16 * time.Second},
		{6, maxReconnectDelay}, {7, maxReconnectDelay}, {1000, maxReconnectDelay},
	} {
		if got := reconnectDelay(c.retries); got != c.want {
			t.Errorf("reconnectDelay(%d) = %s, want %s", c.retries, got, c.want)
		}
	}
}
