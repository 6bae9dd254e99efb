package app

import (
	"os"
	"runtime/debug"
	"testing"

	"github.com/go-logr/logr"
)

func TestTuneMemoryGCPercent(t *testing.T) {
	restore := debug.SetGCPercent(100)
	defer debug.SetGCPercent(restore)
	old, had := os.LookupEnv("GOGC")
	defer func() {
		if had {
			os.Setenv("GOGC", old)
		} else {
			os.Unsetenv("GOGC")
		}
	}()

	os.Unsetenv("GOGC")
	tuneMemory(logr.Discard(), speakerGCPercent)
	if got := debug.SetGCPercent(100); got != speakerGCPercent {
		t.Errorf("without $GOGC the GC percent is %d, want %d", got, speakerGCPercent)
	}
	os.Setenv("GOGC", "100")
	tuneMemory(logr.Discard(), speakerGCPercent)
	if got := debug.SetGCPercent(100); got != 100 {
		t.Errorf("with $GOGC set the GC percent became %d; the operator's setting must win", got)
	}
	os.Unsetenv("GOGC")
	tuneMemory(logr.Discard(), 0)
	if got := debug.SetGCPercent(100); got != 100 {
		t.Errorf("gcPercent 0 changed the GC percent to %d", got)
	}
}
