// Package framework is Herald's scheduling framework: the plugin interfaces for each extension
// point (PreFilter, Filter, Score with NormalizeScore, Bind), the Status they return, the
// per-cycle CycleState, the plugin Registry, and the immutable Snapshot (one NodeInfo per node
// and the announcement Unit being scheduled) that every plugin reads.
//
// The model is kube-scheduler's framework with one difference that shapes everything: every
// speaker runs the same cycle on its own and must reach the same answer, so plugins are pure
// functions of the snapshot (no clock, no randomness, no API calls) and ties break on a stable
// hash rather than at random.
//
// The runtime: NewFramework instantiates a ProfileSpec's plugins from a Registry, and
// Framework.Schedule runs one cycle for a Unit over a Snapshot: PreFilter (a Skip there skips
// the same plugin's Filter and Score for the unit; a rejection rejects every node), then for
// every node on a bounded worker pool its filters in order until one rejects it and, when it
// is feasible, every score; then NormalizeScore per plugin, a range check (0..100), the
// weighted sum and the selection (L2: the best total, ties broken by TieBreakHash; BGP: every
// feasible node). Results are written by node index, so neither parallelism nor timing can
// change them. Any Error status, a Filter or Score returning Skip, a panic (recovered into an
// Error naming the plugin) or a cancelled context aborts the cycle with Result.Err and no
// selection; the speaker then keeps its last decision. Plugins receive the cycle's context
// and must return when it is done; the runtime checks it before every node. RunCycle also
// binds: its CycleOptions put what only the caller knows into the state first, and the bind
// plugins read the cycle's summary lazily (CycleState.Summary). Result.Diagnosis explains the cycle for herald explain, and RegisterMetrics exposes
// per-plugin durations and verdict counts.
package framework
