package framework_test

import (
	"context"
	"fmt"
	"net/netip"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/herald-lb/herald/framework"
)

// Test plugins: each is configured with functions so a table can describe behaviour.

type preFilterPlugin struct {
	name string
	fn   func(unit *framework.Unit) *framework.Status
}

func (p *preFilterPlugin) Name() string { return p.name }
func (p *preFilterPlugin) PreFilter(_ context.Context, _ *framework.CycleState, u *framework.Unit) *framework.Status {
	return p.fn(u)
}

type filterPlugin struct {
	name  string
	fn    func(node *framework.NodeInfo) *framework.Status
	calls atomic.Int64
}

func (p *filterPlugin) Name() string { return p.name }
func (p *filterPlugin) Filter(_ context.Context, _ *framework.CycleState, _ *framework.Unit, n *framework.NodeInfo) *framework.Status {
	p.calls.Add(1)
	return p.fn(n)
}

// skippingFilter is a PreFilter that returns Skip and a Filter and Score that count calls.
type skippingPlugin struct {
	filterPlugin
}

func (p *skippingPlugin) PreFilter(context.Context, *framework.CycleState, *framework.Unit) *framework.Status {
	return framework.NewStatus(framework.Skip)
}
func (p *skippingPlugin) Score(context.Context, *framework.CycleState, *framework.Unit, *framework.NodeInfo) (int64, *framework.Status) {
	p.calls.Add(1)
	return 100, nil
}
func (p *skippingPlugin) ScoreExtensions() framework.ScoreExtensions { return nil }

type scorePlugin struct {
	name      string
	fn        func(node *framework.NodeInfo) (int64, *framework.Status)
	normalize func(scores framework.NodeScoreList) *framework.Status
}

func (p *scorePlugin) Name() string { return p.name }
func (p *scorePlugin) Score(_ context.Context, _ *framework.CycleState, _ *framework.Unit, n *framework.NodeInfo) (int64, *framework.Status) {
	return p.fn(n)
}
func (p *scorePlugin) ScoreExtensions() framework.ScoreExtensions {
	if p.normalize == nil {
		return nil
	}
	return p
}
func (p *scorePlugin) NormalizeScore(_ context.Context, _ *framework.CycleState, _ *framework.Unit, s framework.NodeScoreList) *framework.Status {
	return p.normalize(s)
}

type bindPlugin struct {
	name string
	fn   func(selected []string) *framework.Status
	got  []string
}

func (p *bindPlugin) Name() string { return p.name }
func (p *bindPlugin) Bind(_ context.Context, _ *framework.CycleState, _ *framework.Unit, selected []string) *framework.Status {
	p.got = append([]string(nil), selected...)
	return p.fn(selected)
}

var testTime = time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)

// nodes returns n ready nodes named node-00.. with a "score" label equal to their index.
func nodes(n int) []*framework.NodeInfo {
	out := make([]*framework.NodeInfo, n)
	for i := range out {
		out[i] = &framework.NodeInfo{
			Name:   fmt.Sprintf("node-%02d", i),
			Labels: map[string]string{"score": strconv.Itoa(i)},
			Ready:  framework.ConditionTrue,
		}
	}
	return out
}

func unit(ip string, mode framework.Mode) *framework.Unit {
	return &framework.Unit{IP: netip.MustParseAddr(ip), Mode: mode}
}

func constScore(v int64) func(*framework.NodeInfo) (int64, *framework.Status) {
	return func(*framework.NodeInfo) (int64, *framework.Status) { return v, nil }
}
