// Package nodeready is the NodeReady filter plugin: only healthy nodes may announce. A node
// qualifies when its Ready condition is True, its NetworkUnavailable condition is not True,
// its speaker's heartbeat is fresh at the snapshot's time and not draining, the node's
// announcer for the unit's kind (ARP for IPv4 L2, NDP for IPv6 L2, BGP) is ready as its
// speaker publishes it, and (by default) it is not cordoned.
//
// Announcer health is a fact only the node itself sees, so its speaker publishes it in its
// heartbeat: a node whose ARP announcer was refused (checksum mismatch) or is crash-looping is
// no candidate for IPv4 L2 units on any speaker, and the IPs go to a node that can answer. A
// speaker that is (re)starting publishes "warming" until it has synced, its announcers are up
// and it announces the IPs it is about to win, so a returning node takes IPs back only once it
// answers for them (make before break).
//
// Cordoned nodes are excluded by default: field reports (seed 001) show nodes that are
// "NotReady,SchedulingDisabled" keep being picked by other implementations, and cordoning is
// the operator's usual way of taking a node out before maintenance, so the IP should move
// before the node goes away rather than after. Set excludeCordoned: false to keep announcing
// from cordoned nodes.
package nodeready

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/herald-lb/herald/framework"
)

// Name is the plugin's registry name.
const Name = "NodeReady"

// Stable rejection reasons, checked in this order; a node gets the first that applies (its
// Detail lists every problem).
const (
	ReasonNotReady           = "node(s) not ready"
	ReasonNetworkUnavailable = "node(s) network unavailable"
	ReasonNoHeartbeat        = "node(s) have no speaker heartbeat"
	ReasonUnreachable        = "node(s) speaker unreachable"
	ReasonHeld               = "node(s) speaker cut off from the API server"
	ReasonDraining           = "node(s) speaker draining"
	ReasonWarming            = "node(s) speaker warming up"
	ReasonAnnouncer          = "node(s) announcer unavailable"
	ReasonCordoned           = "node(s) cordoned"
)

// NodeReadyArgs are the plugin's args.
type NodeReadyArgs struct {
	// ExcludeCordoned keeps cordoned (spec.unschedulable) nodes from announcing. Default true.
	ExcludeCordoned *bool `json:"excludeCordoned,omitempty"`
}

// Default implements framework.PluginArgs.
func (a *NodeReadyArgs) Default() {
	if a.ExcludeCordoned == nil {
		t := true
		a.ExcludeCordoned = &t
	}
}

// Validate implements framework.PluginArgs; every value is valid.
func (a *NodeReadyArgs) Validate(*field.Path) field.ErrorList { return nil }

// Plugin is the NodeReady filter.
type Plugin struct {
	excludeCordoned bool
}

var _ framework.FilterPlugin = (*Plugin)(nil)

// New is the plugin's framework.Factory: args are defaulted and valid (framework.Factory).
func New(args framework.PluginArgs, _ framework.Handle) (framework.Plugin, error) {
	a, ok := args.(*NodeReadyArgs)
	if !ok {
		return nil, fmt.Errorf("want *NodeReadyArgs, got %T", args)
	}
	return &Plugin{excludeCordoned: *a.ExcludeCordoned}, nil
}

// NewArgs returns the plugin's empty args, for the configuration to decode into.
func NewArgs() framework.PluginArgs { return &NodeReadyArgs{} }

// Name implements framework.Plugin.
func (p *Plugin) Name() string { return Name }

// Filter rejects unhealthy nodes with Unschedulable: every problem here can go away.
func (p *Plugin) Filter(_ context.Context, state *framework.CycleState, unit *framework.Unit, node *framework.NodeInfo) *framework.Status {
	at := state.Snapshot().Time
	var reason string
	var problems []string
	note := func(r, detail string) {
		if reason == "" {
			reason = r
		}
		problems = append(problems, detail)
	}
	if node.Ready != framework.ConditionTrue {
		ready := string(node.Ready)
		if ready == "" {
			ready = "absent"
		}
		note(ReasonNotReady, "Ready="+ready)
	}
	if node.NetworkUnavailable {
		note(ReasonNetworkUnavailable, "NetworkUnavailable=True")
	}
	switch s := node.Speaker; {
	case s == nil:
		note(ReasonNoHeartbeat, "no speaker heartbeat seen")
	case !s.Unreachable.IsZero() && !at.Before(s.Unreachable):
		note(ReasonUnreachable, fmt.Sprintf("speaker unreachable on the fast path since %s: %s",
			s.Unreachable.UTC().Format("15:04:05.000"), s.UnreachableWhy))
	case !s.AliveAt(at):
		note(ReasonNoHeartbeat, fmt.Sprintf("speaker heartbeat expired at %s (renewed %s, valid %s)",
			s.Expiry().UTC().Format("15:04:05"), s.RenewTime.UTC().Format("15:04:05"), s.LeaseDuration))
	case s.Held && !slices.Contains(unit.AnnouncingNodes, node.Name):
		note(ReasonHeld, "heartbeat lapsed but the fast path reaches the speaker: it keeps what it announces and takes nothing new")
	case s.Draining:
		note(ReasonDraining, "speaker draining")
	default:
		kind := unit.AnnouncerKind()
		switch h, ok := s.Announcers[kind]; {
		case !ok || h.State == framework.AnnouncerReady:
		case h.State == framework.AnnouncerWarming:
			note(ReasonWarming, fmt.Sprintf("%s announcer warming up: %s", kind, h.Reason))
		default:
			note(ReasonAnnouncer, fmt.Sprintf("%s announcer %s: %s", kind, h.State, h.Reason))
		}
	}
	if p.excludeCordoned && node.Unschedulable {
		note(ReasonCordoned, "cordoned (spec.unschedulable)")
	}
	if reason == "" {
		return nil
	}
	return framework.NewStatus(framework.Unschedulable, reason).WithDetail("%s", strings.Join(problems, "; "))
}
