package framework

import (
	"context"

	"github.com/go-logr/logr"
)

// Plugin is the parent of every extension-point interface.
type Plugin interface {
	Name() string
}

// PreFilterPlugin runs once per cycle before any Filter. It may store per-cycle data in the
// CycleState, reject the whole unit (every node), or return Skip to opt out of this unit.
type PreFilterPlugin interface {
	Plugin
	PreFilter(ctx context.Context, state *CycleState, unit *Unit) *Status
}

// FilterPlugin decides whether one node may announce the unit. Filters run for every node in
// parallel and must not mutate the unit or the node.
type FilterPlugin interface {
	Plugin
	Filter(ctx context.Context, state *CycleState, unit *Unit, node *NodeInfo) *Status
}

// NodeScore is one node's score from one plugin.
type NodeScore struct {
	Name  string
	Score int64
}

// NodeScoreList is one plugin's scores for every feasible node, in the snapshot's node order.
type NodeScoreList []NodeScore

// Score bounds: after NormalizeScore every score is within [MinNodeScore, MaxNodeScore].
const (
	MinNodeScore int64 = 0
	MaxNodeScore int64 = 100
)

// ScorePlugin ranks feasible nodes. Scores run for every feasible node in parallel.
type ScorePlugin interface {
	Plugin
	Score(ctx context.Context, state *CycleState, unit *Unit, node *NodeInfo) (int64, *Status)
	// ScoreExtensions returns the NormalizeScore hook, or nil when raw scores are already in
	// [MinNodeScore, MaxNodeScore].
	ScoreExtensions() ScoreExtensions
}

// ScoreExtensions holds the optional NormalizeScore hook of a ScorePlugin.
type ScoreExtensions interface {
	NormalizeScore(ctx context.Context, state *CycleState, unit *Unit, scores NodeScoreList) *Status
}

// BindPlugin acts on the cycle's selection: in a speaker, announce the unit when this node is
// selected and withdraw it when it is not. Bind plugins run in profile order; the first that
// returns a non-Skip status handles the unit.
type BindPlugin interface {
	Plugin
	Bind(ctx context.Context, state *CycleState, unit *Unit, selected []string) *Status
}

// Handle gives a plugin what it may use besides the snapshot: never clients, globals or the
// name of the node it runs on (a plugin preferring its own node would make every speaker
// pick itself), so a plugin stays a pure function of what it is given.
type Handle interface {
	// Logger is the plugin's structured logger.
	Logger() logr.Logger
}
