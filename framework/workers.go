package framework

import (
	"sync"
	"sync/atomic"
)

// chunkSize is how many nodes a worker claims at a time: large enough that claiming costs
// nothing next to the plugin calls, small enough to balance uneven plugins across workers.
const chunkSize = 64

// worker is one goroutine's share of a stage: its verdict counts, sampled durations, and the
// first error it met (by node index, so the cycle's error does not depend on scheduling).
type worker struct {
	counts  []int32
	samples []durationSample
	errIdx  int
	err     error
}

func (w *worker) fail(i int, err error) {
	if w.err == nil || i < w.errIdx {
		w.err, w.errIdx = err, i
	}
}

// workers returns p workers with zeroed counters for the given number of plugin slots,
// reusing the record's buffers.
func (rec *cycleRecord) workers(p, plugins int) []worker {
	rec.ws = resize(rec.ws, p)
	// Each worker's counters get their own cache lines: they change on every plugin call,
	// and sharing a line between cores would serialize the workers.
	const pad = 16
	stride := plugins*numCodes + pad
	rec.counts = resize(rec.counts, p*stride)
	clear(rec.counts)
	for i := range rec.ws {
		w := &rec.ws[i]
		w.counts = rec.counts[i*stride : i*stride+plugins*numCodes]
		w.samples = w.samples[:0]
		w.err, w.errIdx = nil, 0
	}
	return rec.ws
}

func (f *Framework) workerCount(n int) int {
	p := min(f.parallelism, (n+chunkSize-1)/chunkSize)
	return max(p, 1)
}

// firstError returns the error of the lowest node index among the workers.
func firstError(ws []worker) error {
	var err error
	idx := 0
	for i := range ws {
		if ws[i].err != nil && (err == nil || ws[i].errIdx < idx) {
			err, idx = ws[i].err, ws[i].errIdx
		}
	}
	return err
}

// forEach calls fn for every index in [0, n) on a bounded number of goroutines. Workers claim
// chunks of indices; results are written by index, so the outcome is independent of timing.
func forEach(ws []worker, n int, fn func(w *worker, i int)) {
	if len(ws) == 1 {
		for i := 0; i < n; i++ {
			fn(&ws[0], i)
		}
		return
	}
	var next atomic.Int64
	run := func(w *worker) {
		for {
			start := int(next.Add(chunkSize)) - chunkSize
			if start >= n {
				return
			}
			end := min(start+chunkSize, n)
			for i := start; i < end; i++ {
				fn(w, i)
			}
		}
	}
	var wg sync.WaitGroup
	for k := 1; k < len(ws); k++ {
		wg.Add(1)
		go func(w *worker) {
			defer wg.Done()
			run(w)
		}(&ws[k])
	}
	run(&ws[0])
	wg.Wait()
}
