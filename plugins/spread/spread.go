// Package spread is the Spread score plugin: a rendezvous (highest-random-weight) hash of node
// and IP. Every node gets a pseudo-random score per IP that depends only on the two names, so
// each IP goes to its own best node and IPs spread evenly; when a node joins it wins only the
// IPs it now ranks first for (about 1/(n+1) of them), and when a node leaves only its IPs move.
//
// The hash is scaled to 0..100, so with many nodes several share the top score; the runtime
// then breaks the tie with framework.TieBreakHash, which also depends only on node and IP. The
// ranking is therefore the lexicographic order of (Spread score, tie-break hash), still a
// function of node and IP alone, and keeps the rendezvous property. That holds while Spread
// dominates the sum: give it the largest weight among score plugins whose scores differ
// between nodes (the default profile does).
package spread

import (
	"context"
	"net/netip"

	"github.com/herald-lb/herald/framework"
)

// Name is the plugin's registry name.
const Name = "Spread"

// Plugin is the Spread score plugin.
type Plugin struct{}

var _ framework.ScorePlugin = (*Plugin)(nil)

// New is the plugin's framework.Factory; the plugin takes no args.
func New(framework.PluginArgs, framework.Handle) (framework.Plugin, error) { return &Plugin{}, nil }

// Name implements framework.Plugin.
func (p *Plugin) Name() string { return Name }

// Score returns the node's rendezvous weight for the unit's IP, in 0..100.
func (p *Plugin) Score(_ context.Context, _ *framework.CycleState, unit *framework.Unit, node *framework.NodeInfo) (int64, *framework.Status) {
	return Scale(Hash(node.Name, unit.IP)), nil
}

// ScoreExtensions implements framework.ScorePlugin; scores are already in range.
func (p *Plugin) ScoreExtensions() framework.ScoreExtensions { return nil }

// Scale maps a hash uniformly onto MinNodeScore..MaxNodeScore.
func Scale(h uint64) int64 {
	return int64(((h >> 32) * uint64(framework.MaxNodeScore+1)) >> 32)
}

// Hash is the rendezvous weight of a node for an IP: FNV-1a over the node name and the IP's
// 16-byte form, then a 64-bit finalizer so that names differing only in their last characters
// ("node-1", "node-2") still spread over the whole range.
func Hash(node string, ip netip.Addr) uint64 {
	b := ip.As16()
	return mix(framework.FNV1aNodeIP(node, b[:]))
}

// mix is the splitmix64 finalizer: every input bit affects every output bit.
func mix(h uint64) uint64 {
	h ^= h >> 30
	h *= 0xbf58476d1ce4e5b9
	h ^= h >> 27
	h *= 0x94d049bb133111eb
	h ^= h >> 31
	return h
}
