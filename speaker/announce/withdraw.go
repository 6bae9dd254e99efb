package announce

import (
	"context"
	"errors"
	"fmt"
	"slices"

	corev1 "k8s.io/api/core/v1"

	"github.com/herald-lb/herald/announcers/manager"
	"github.com/herald-lb/herald/framework"
)

func (p *Plugin) withdraw(ctx context.Context, state *framework.CycleState, unit *framework.Unit, selected []string) *framework.Status {
	key := unit.Key()
	p.mu.Lock()
	prev, announced := p.announced[key]
	p.mu.Unlock()
	if !announced {
		// Status objects this node wrote before a restart are cleaned up here too.
		return p.retractAll(ctx, unit)
	}
	if p.deps.MayWithdraw != nil && !p.deps.MayWithdraw() {
		p.deps.Log.Info("keeping an IP this node lost: it cannot withdraw now", "ip", unit.IP, "selected", selected)
		return framework.NewStatus(framework.Success).WithDetail("keeping %s: this node cannot withdraw now", unit.IP)
	}
	p.deps.Log.Info("withdrawing", "ip", unit.IP, "selected", selected)
	if err := p.remove(ctx, prev); err != nil {
		return framework.AsStatus(err)
	}
	// This node announced the unit, so its status objects may exist even if the snapshot
	// does not show them yet: retract them whatever unit.Announcers says (Retract deletes
	// only objects that name this node).
	if err := p.Retract(ctx, prev); err != nil {
		return framework.AsStatus(err)
	}
	if len(selected) == 0 {
		p.recordAll(unit, corev1.EventTypeWarning, ReasonNoNode,
			fmt.Sprintf("%s is no longer announced by node %s and no node can announce it: %s", unit.IP, p.node, state.Summary()))
	}
	return nil
}

// Retract deletes the status objects this node published for cur.
func (p *Plugin) Retract(ctx context.Context, cur Current) error {
	w := p.statusFor(cur.Mode)
	if w == nil {
		return nil
	}
	var errs []error
	for _, svc := range cur.Services {
		if err := w.Retract(ctx, svc, cur.IP); err != nil {
			errs = append(errs, fmt.Errorf("service %s: status: %w", svc, err))
		}
	}
	return errors.Join(errs...)
}

func (p *Plugin) remove(ctx context.Context, cur Current) error {
	// A pending result is fine: the manager withdraws it as soon as it can.
	res, err := p.deps.Announcers.Apply(ctx, cur.Announcer, nil, cur.ids())
	if _, kept := manager.Kept(res, err); err != nil && !kept {
		return fmt.Errorf("withdraw %s through %q: %w", cur.IP, cur.Announcer, err)
	}
	p.mu.Lock()
	delete(p.announced, cur.Key)
	p.mu.Unlock()
	return nil
}

func (p *Plugin) retractAll(ctx context.Context, unit *framework.Unit) *framework.Status {
	w := p.statusFor(unit.Mode)
	if w == nil || !slices.Contains(unit.Announcers, p.node) {
		return nil
	}
	var errs []error
	for _, svc := range unit.Services {
		if err := w.Retract(ctx, svc.Key, unit.IP); err != nil {
			errs = append(errs, fmt.Errorf("service %s: status: %w", svc.Key, err))
		}
	}
	return framework.AsStatus(errors.Join(errs...))
}

// Forget withdraws a unit that no longer exists (its Services were deleted or lost the IP):
// no cycle runs for it any more.
func (p *Plugin) Forget(ctx context.Context, key string) error {
	defer p.lockUnit(key)()
	p.mu.Lock()
	cur, ok := p.announced[key]
	p.mu.Unlock()
	if !ok {
		return nil
	}
	if p.deps.MayWithdraw != nil && !p.deps.MayWithdraw() {
		return nil
	}
	if err := p.remove(ctx, cur); err != nil {
		return err
	}
	return p.Retract(ctx, cur)
}
