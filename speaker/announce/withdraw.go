package announce

import (
	"context"
	"errors"
	"fmt"
	"slices"

	corev1 "k8s.io/api/core/v1"

	"github.com/herald-lb/herald/framework"
)

func (p *Plugin) withdraw(ctx context.Context, state *framework.CycleState, unit *framework.Unit, selected []string) *framework.Status {
	prev, announced := p.ledger.get(unit.Key())
	if !announced {
		// Status objects this node wrote before a restart are cleaned up here too.
		return p.retractAll(ctx, unit)
	}
	if !p.ledger.mayWithdraw() {
		logger(ctx).Info("Keeping an IP this node lost: it cannot withdraw now", "ip", unit.IP, "selected", selected)
		return framework.NewStatus(framework.Success).WithDetail("keeping %s: this node cannot withdraw now", unit.IP)
	}
	logger(ctx).Info("Withdrawing", "ip", unit.IP, "selected", selected)
	if err := p.ledger.withdraw(ctx, prev); err != nil {
		return framework.AsStatus(err)
	}
	if len(selected) == 0 {
		p.recordAll(unit, corev1.EventTypeWarning, ReasonNoNode,
			fmt.Sprintf("%s is no longer announced by node %s and no node can announce it: %s", unit.IP, p.node, state.Summary()))
	}
	return nil
}

// retractAll deletes the status objects of a unit this node does not hold but that still
// name it (written before a restart).
func (p *Plugin) retractAll(ctx context.Context, unit *framework.Unit) *framework.Status {
	w := p.ledger.status.For(unit.Mode)
	if w == nil || !slices.Contains(unit.AnnouncingNodes, p.node) {
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
