package diag

import (
	"testing"

	"github.com/herald-lb/herald/speaker"
)

// diag matches the speakers' Event reasons by value so that it does not link the speaker; a
// renamed reason would silently stop the checks that look for it.
func TestEventReasonsMatchTheSpeakers(t *testing.T) {
	for _, c := range []struct{ diag, speaker string }{
		{reasonAddressConflict, speaker.ReasonAddressConflict},
		{reasonPeerInvalid, speaker.ReasonPeerInvalid},
		{reasonPeerRejected, speaker.ReasonPeerRejected},
		{reasonInvalidConfiguration, speaker.ReasonInvalidConfiguration},
	} {
		if c.diag != c.speaker {
			t.Errorf("diag looks for Event reason %q, the speaker records %q", c.diag, c.speaker)
		}
	}
}
