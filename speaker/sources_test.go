package speaker

import (
	"testing"

	"github.com/herald-lb/herald/snapshot"
)

// TestSourcesFollowEveryKind: the speaker watches, and explain lists, exactly the kinds the
// snapshot follows, each once: a kind added to the snapshot without a source here would be
// empty in every speaker and every explain.
func TestSourcesFollowEveryKind(t *testing.T) {
	if len(sources) != len(snapshot.Kinds) {
		t.Fatalf("%d sources for %d kinds", len(sources), len(snapshot.Kinds))
	}
	for i, k := range snapshot.Kinds {
		if sources[i].kind != k {
			t.Errorf("source %d is %s, want %s", i, sources[i].kind, k)
		}
		if sources[i].informer == nil || sources[i].list == nil {
			t.Errorf("source %s has no informer or no list", k)
		}
	}
}
