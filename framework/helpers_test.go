package framework_test

import (
	"context"
	"fmt"
	"net/netip"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/herald-lb/herald/framework"
	"github.com/herald-lb/herald/framework/frameworktest"
)

// skippingPlugin is a PreFilter that returns Skip, and a Filter and Score that count calls.
type skippingPlugin struct {
	filter     frameworktest.Filter
	scoreCalls atomic.Int64
}

func (p *skippingPlugin) Name() string { return p.filter.Name() }
func (p *skippingPlugin) Filter(ctx context.Context, s *framework.CycleState, u *framework.Unit, n *framework.NodeInfo) *framework.Status {
	return p.filter.Filter(ctx, s, u, n)
}

func (p *skippingPlugin) PreFilter(context.Context, *framework.CycleState, *framework.Unit) *framework.Status {
	return framework.NewStatus(framework.Skip)
}
func (p *skippingPlugin) Score(context.Context, *framework.CycleState, *framework.Unit, *framework.NodeInfo) (int64, *framework.Status) {
	p.scoreCalls.Add(1)
	return 100, nil
}
func (p *skippingPlugin) ScoreExtensions() framework.ScoreExtensions { return nil }

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
