package app

import (
	"os"
	"runtime/debug"

	"github.com/KimMachineGun/automemlimit/memlimit"
	"github.com/go-logr/logr"
)

// speakerGCPercent is the speaker's default GOGC. The speaker runs on every node and holds a
// cache of the whole cluster's Services and EndpointSlices; with Go's default of 100 the heap
// may grow to twice what is live before a collection. Its steady state allocates little, so
// collecting at 1.5× costs little CPU and saves a quarter of its memory on every node.
const speakerGCPercent = 50

// memoryLimitRatio is the share of the container's memory limit given to the Go runtime as
// its soft limit; the rest covers what the runtime does not count (the mapped binary, stacks
// of threads in system calls).
const memoryLimitRatio = 0.9

// tuneMemory sets the runtime's collection target to gcPercent unless $GOGC is set (0 keeps
// Go's default), and, unless $GOMEMLIMIT is set, a soft memory limit of memoryLimitRatio of
// the cgroup's memory limit, so the collector works harder before the kernel's OOM killer
// would.
func tuneMemory(log logr.Logger, gcPercent int) {
	if _, set := os.LookupEnv("GOGC"); !set && gcPercent > 0 {
		debug.SetGCPercent(gcPercent)
	}
	limit, err := memlimit.SetGoMemLimitWithOpts(memlimit.WithRatio(memoryLimitRatio), memlimit.WithProvider(memlimit.FromCgroup))
	switch {
	case err != nil:
		log.V(2).Info("No memory limit from the cgroup; the Go runtime has none", "reason", err.Error())
	case limit > 0:
		log.Info("Go runtime memory limit set from the cgroup", "bytes", limit, "ratio", memoryLimitRatio)
	}
}
