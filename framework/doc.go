// Package framework is Herald's scheduling framework: the plugin interfaces for each extension
// point (PreFilter, Filter, Score with NormalizeScore, Bind), the Status they return, the
// per-cycle CycleState, the plugin Registry, and the immutable Snapshot (one NodeInfo per node
// and the announcement Unit being scheduled) that every plugin reads.
//
// The model is kube-scheduler's framework with one difference that shapes everything: every
// speaker runs the same cycle on its own and must reach the same answer, so plugins are pure
// functions of the snapshot (no clock, no randomness, no API calls) and ties break on a stable
// hash rather than at random.
package framework
