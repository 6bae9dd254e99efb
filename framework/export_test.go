package framework

// WithParallelism lets the determinism tests and benchmarks vary the number of workers.
var WithParallelism = withParallelism
