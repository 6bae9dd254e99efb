// Package frameworktest is the test kit for Herald plugins, in-tree and third-party: builders
// for nodes, units and snapshots, fake plugins, and Run, which puts one plugin through a real
// cycle of the framework's runtime, so a plugin's test needs this package and framework only.
// It is kube-scheduler's testing/framework for Herald.
package frameworktest

import (
	"context"
	"fmt"
	"testing"

	"github.com/go-logr/logr"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/herald-lb/herald/framework"
)

// Run builds the plugin from reg with args as the configuration file gives them (nil: no
// pluginConfig entry), defaulted and validated as the configuration does, puts it at every extension point it implements (score weight
// 1), runs one cycle for unit over snap and returns its diagnosis. The test fails when the
// args are invalid, the factory fails or the cycle aborts; use Cycle to test those.
func Run(t testing.TB, reg framework.Registration, args framework.PluginArgs, snap *framework.Snapshot, unit *framework.Unit) *Outcome {
	t.Helper()
	out, err := Cycle(reg, args, snap, unit)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// Cycle is Run returning the error instead of failing a test: invalid args, a failing factory,
// or the cycle's error (an Error status, a panic, a score out of range). The outcome is nil
// unless the cycle ran.
func Cycle(reg framework.Registration, args framework.PluginArgs, snap *framework.Snapshot, unit *framework.Unit) (*Outcome, error) {
	if args == nil && reg.NewArgs != nil {
		args = reg.NewArgs()
	}
	if args != nil {
		args.Default()
		if errs := args.Validate(field.NewPath("args")); len(errs) > 0 {
			return nil, fmt.Errorf("invalid args: %w", errs.ToAggregate())
		}
	}
	p, err := reg.Factory(args, framework.NewHandle(logr.Discard()))
	if err != nil {
		return nil, fmt.Errorf("factory: %w", err)
	}
	spec := framework.ProfileSpec{Name: "test"}
	if _, ok := p.(framework.PreFilterPlugin); ok {
		spec.PreFilter = []string{p.Name()}
	}
	if _, ok := p.(framework.FilterPlugin); ok {
		spec.Filter = []string{p.Name()}
	}
	if _, ok := p.(framework.ScorePlugin); ok {
		spec.Score = []framework.WeightedPlugin{{Name: p.Name(), Weight: 1}}
	}
	if _, ok := p.(framework.BindPlugin); ok {
		spec.Bind = []string{p.Name()}
	}
	fw, err := framework.NewFramework(Registry(p), spec, nil)
	if err != nil {
		return nil, err
	}
	res := fw.RunCycle(context.Background(), snap, unit)
	if res.Err != nil {
		return nil, res.Err
	}
	return &Outcome{Diagnosis: res.Diagnosis()}, nil
}

// Outcome is a cycle's diagnosis with lookups by node name.
type Outcome struct {
	*framework.Diagnosis
}

// Node returns the named node's diagnosis. When a PreFilter rejected the whole unit, every
// node is rejected by that verdict. It panics for a node not in the snapshot, which is a
// mistake in the test.
func (o *Outcome) Node(name string) framework.NodeDiagnosis {
	for _, n := range o.Nodes {
		if n.Name == name {
			return n
		}
	}
	for _, v := range o.PreFilter {
		if v.Code != framework.Skip.String() {
			return framework.NodeDiagnosis{Name: name, Rejection: &v}
		}
	}
	panic(fmt.Sprintf("frameworktest: node %q is not in the cycle (%d nodes)", name, len(o.Nodes)))
}

// Rejection returns the verdict that rejected the node, or nil when it is feasible.
func (o *Outcome) Rejection(name string) *framework.Verdict { return o.Node(name).Rejection }

// Score returns the node's normalized score from the plugin, or -1 when the node was not scored.
func (o *Outcome) Score(name string) int64 {
	for _, s := range o.Node(name).Scores {
		return s.Normalized
	}
	return -1
}

// Registry registers each plugin instance under its name; the factories return the instances.
func Registry(plugins ...framework.Plugin) framework.Registry {
	r := framework.Registry{}
	for _, p := range plugins {
		if err := r.Register(p.Name(), Registration(p)); err != nil {
			panic(err)
		}
	}
	return r
}

// Registration is a registry entry whose factory returns p.
func Registration(p framework.Plugin) framework.Registration {
	return framework.Registration{Factory: func(framework.PluginArgs, framework.Handle) (framework.Plugin, error) { return p, nil }}
}
