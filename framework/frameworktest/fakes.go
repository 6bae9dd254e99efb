package frameworktest

import (
	"context"
	"sync"
	"sync/atomic"

	"github.com/herald-lb/herald/framework"
)

// Fake plugins answer with functions a test gives them, so a table row can describe a
// plugin's behaviour. Register them with Registry.

// PreFilter is a fake PreFilter plugin.
type PreFilter struct {
	PluginName string
	Fn         func(unit *framework.Unit) *framework.Status
}

// Name implements framework.Plugin.
func (p *PreFilter) Name() string { return p.PluginName }

// PreFilter implements framework.PreFilterPlugin.
func (p *PreFilter) PreFilter(_ context.Context, _ *framework.CycleState, u *framework.Unit) *framework.Status {
	return p.Fn(u)
}

// Filter is a fake Filter plugin that counts its calls.
type Filter struct {
	PluginName string
	Fn         func(node *framework.NodeInfo) *framework.Status

	calls atomic.Int64
}

// Name implements framework.Plugin.
func (p *Filter) Name() string { return p.PluginName }

// Filter implements framework.FilterPlugin.
func (p *Filter) Filter(_ context.Context, _ *framework.CycleState, _ *framework.Unit, n *framework.NodeInfo) *framework.Status {
	p.calls.Add(1)
	return p.Fn(n)
}

// Calls returns how many times Filter ran.
func (p *Filter) Calls() int64 { return p.calls.Load() }

// RejectNodes is a Filter function rejecting the named nodes with code and reason.
func RejectNodes(code framework.Code, reason string, names ...string) func(*framework.NodeInfo) *framework.Status {
	set := map[string]bool{}
	for _, n := range names {
		set[n] = true
	}
	return func(n *framework.NodeInfo) *framework.Status {
		if set[n.Name] {
			return framework.NewStatus(code, reason).WithDetail("detail for %s", n.Name)
		}
		return nil
	}
}

// Score is a fake Score plugin; Normalize, when set, is its NormalizeScore.
type Score struct {
	PluginName string
	Fn         func(node *framework.NodeInfo) (int64, *framework.Status)
	Normalize  func(scores framework.NodeScoreList) *framework.Status
}

// Name implements framework.Plugin.
func (p *Score) Name() string { return p.PluginName }

// Score implements framework.ScorePlugin.
func (p *Score) Score(_ context.Context, _ *framework.CycleState, _ *framework.Unit, n *framework.NodeInfo) (int64, *framework.Status) {
	return p.Fn(n)
}

// ScoreExtensions implements framework.ScorePlugin.
func (p *Score) ScoreExtensions() framework.ScoreExtensions {
	if p.Normalize == nil {
		return nil
	}
	return p
}

// NormalizeScore implements framework.ScoreExtensions.
func (p *Score) NormalizeScore(_ context.Context, _ *framework.CycleState, _ *framework.Unit, s framework.NodeScoreList) *framework.Status {
	return p.Normalize(s)
}

// ScoreByName is a Score function giving each node its score from the map (0 when absent).
func ScoreByName(m map[string]int64) func(*framework.NodeInfo) (int64, *framework.Status) {
	return func(n *framework.NodeInfo) (int64, *framework.Status) { return m[n.Name], nil }
}

// Bind is a fake Bind plugin that records every selection it is given and answers with
// Fn (Success when nil).
type Bind struct {
	PluginName string
	Fn         func(selected []string) *framework.Status

	mu    sync.Mutex
	calls [][]string
}

// Name implements framework.Plugin.
func (p *Bind) Name() string { return p.PluginName }

// Bind implements framework.BindPlugin.
func (p *Bind) Bind(_ context.Context, _ *framework.CycleState, _ *framework.Unit, selected []string) *framework.Status {
	p.mu.Lock()
	p.calls = append(p.calls, append([]string(nil), selected...))
	p.mu.Unlock()
	if p.Fn == nil {
		return nil
	}
	return p.Fn(selected)
}

// Calls returns the selections Bind was called with, in order.
func (p *Bind) Calls() [][]string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([][]string(nil), p.calls...)
}
