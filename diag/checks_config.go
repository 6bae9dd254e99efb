package diag

import (
	"fmt"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/herald-lb/herald/controller"
	"github.com/herald-lb/herald/framework"
	"github.com/herald-lb/herald/ipam"
)

func (x *index) poolRef(name string) ObjectRef {
	return ObjectRef{Kind: kindPool, Namespace: x.ConfigNamespace, Name: name}
}

func checkPools(x *index) []Finding {
	var out []Finding
	if len(x.pools) == 0 && len(x.services) > 0 {
		out = append(out, finding("pool.none", Critical, ObjectRef{Kind: "Namespace", Name: x.ConfigNamespace},
			"create an IPAddressPool in namespace "+x.ConfigNamespace+" with addresses your network routes to the nodes",
			"there is no IPAddressPool in namespace %s: no LoadBalancer Service can get an address", x.ConfigNamespace))
	}
	for _, p := range x.pools {
		obj := x.poolRef(p.name)
		if p.problem != nil {
			out = append(out, poolProblem(p, obj))
			continue
		}
		st := p.stats
		if st.Size > 0 && st.Free == 0 {
			out = append(out, finding("pool.exhausted", Warning, obj,
				"add addresses to spec.addresses of pool "+p.name+", add another pool, or delete unused LoadBalancer Services",
				"pool %s is exhausted: all %d addresses are in use, new Services asking for it stay Pending", p.name, st.Size))
		}
		if len(p.advs) == 0 {
			sev, tail := Warning, "addresses from it would never be announced"
			if st.Used > 0 {
				sev, tail = Critical, fmt.Sprintf("the %d address(es) in use from it are not announced and unreachable", st.Used)
			}
			out = append(out, finding("pool.no-advertisement", sev, obj,
				"create an L2Advertisement or BGPAdvertisement in namespace "+x.ConfigNamespace+" listing "+p.name+" in spec.ipAddressPools",
				"no L2Advertisement or BGPAdvertisement covers pool %s: %s", p.name, tail))
		}
	}
	return out
}

func poolProblem(p *poolInfo, obj ObjectRef) Finding {
	if p.problem.Reason == ipam.ReasonPoolOverlap {
		return finding("pool.overlap", Warning, obj,
			"make the address ranges of "+p.name+" and "+p.problem.OtherPool+" disjoint, or delete one of them",
			"%s", p.problem.Message)
	}
	return finding("pool.invalid", Critical, obj, "fix spec.addresses of pool "+p.name, "pool %s is not used: %s", p.name, p.problem.Message)
}

func advRef(x *index, a *framework.Advertisement) ObjectRef {
	kind := "L2Advertisement"
	if a.Mode == framework.ModeBGP {
		kind = "BGPAdvertisement"
	}
	return ObjectRef{Kind: kind, Namespace: x.ConfigNamespace, Name: a.Name}
}

func checkAdvertisements(x *index) []Finding {
	var out []Finding
	for _, a := range x.advertisements() {
		obj := advRef(x, a)
		if err := x.advErrors[string(a.Mode)+"/"+a.Name]; err != nil {
			out = append(out, finding("advertisement.invalid", Critical, obj, "fix the selector named in the message",
				"%v (an invalid selector selects nothing)", err))
		}
		out = append(out, x.advertisementPools(a, obj)...)
		out = append(out, x.advertisementNodes(a, obj)...)
	}
	return out
}

// advertisementPools reports names of pools that do not exist, and an advertisement that
// covers no pool at all.
func (x *index) advertisementPools(a *framework.Advertisement, obj ObjectRef) []Finding {
	var out []Finding
	known := map[string]bool{}
	covered := 0
	for _, p := range x.pools {
		known[p.name] = true
		if coversPool(a, p) {
			covered++
		}
	}
	var unknown []string
	for _, name := range a.IPAddressPools {
		if !known[name] {
			unknown = append(unknown, name)
		}
	}
	if len(unknown) > 0 {
		out = append(out, finding("advertisement.unknown-pool", Warning, obj,
			"fix spec.ipAddressPools or create the pool(s) in namespace "+x.ConfigNamespace,
			"%s %s names pool(s) that do not exist: %s", obj.Kind, a.Name, strings.Join(unknown, ", ")))
	}
	if covered == 0 && len(x.pools) > 0 && len(unknown) == 0 {
		out = append(out, finding("advertisement.no-pool", Warning, obj,
			"fix spec.ipAddressPools / spec.ipAddressPoolSelectors so they match a pool's name or labels",
			"%s %s covers no existing pool: its ipAddressPoolSelectors match no pool's labels", obj.Kind, a.Name))
	}
	return out
}

// advertisementNodes reports selectors matching no node, selected nodes none of which can
// announce, and (L2) interfaces no selected node has.
func (x *index) advertisementNodes(a *framework.Advertisement, obj ObjectRef) []Finding {
	if len(x.nodes) == 0 {
		return nil
	}
	var selected []*corev1.Node
	for _, n := range x.nodes {
		if a.SelectsNode(&framework.NodeInfo{Name: n.Name, Labels: n.Labels}) {
			selected = append(selected, n)
		}
	}
	if len(selected) == 0 {
		return []Finding{finding("advertisement.no-node", Warning, obj,
			"fix spec.nodeSelectors so they match node labels (kubectl get nodes --show-labels)",
			"the nodeSelectors of %s %s match no node: it announces nothing", obj.Kind, a.Name)}
	}
	var out []Finding
	if f, ok := x.noCandidate(a, obj, selected); ok {
		out = append(out, f)
	}
	if a.Mode != framework.ModeL2 {
		return out
	}
	have := map[string]bool{}
	published := false
	for _, n := range selected {
		published = published || x.heartbeats[n.Name] != nil
		for _, itf := range x.upInterfaces(n.Name) {
			have[itf] = true
		}
	}
	if !published {
		return out // no heartbeat says which interfaces exist; the speaker findings cover it
	}
	for _, want := range a.Interfaces {
		if !have[want] {
			out = append(out, finding("advertisement.interface-missing", Warning, obj,
				"fix spec.interfaces (interface names are per node: ip -br link on the node), or check the speaker publishes it in its heartbeat annotation herald.dev/interfaces",
				"no node selected by %s %s has an up interface %q", obj.Kind, a.Name, want))
		}
	}
	return out
}

// noCandidate reports an advertisement whose selected nodes all fail the speakers' node
// filters, with the count per reason as `herald explain` summarises it.
func (x *index) noCandidate(a *framework.Advertisement, obj ObjectRef, selected []*corev1.Node) (Finding, bool) {
	reasons := map[string]int{}
	for _, n := range selected {
		r := x.cannotAnnounce(n)
		if r == "" {
			return Finding{}, false
		}
		reasons[r]++
	}
	var parts []string
	for r, c := range reasons {
		parts = append(parts, fmt.Sprintf("%d %s", c, r))
	}
	sort.Strings(parts)
	return finding("advertisement.no-ready-node", Warning, obj,
		"bring a selected node back (Ready, speaker running, no exclude label) or widen spec.nodeSelectors",
		"0/%d nodes selected by %s %s can announce: %s", len(selected), obj.Kind, a.Name, strings.Join(parts, ", ")), true
}

// Event reasons the speakers record on a BGPPeer they cannot use (speaker.ReasonPeerInvalid
// and speaker.ReasonPeerRejected; constants here so diag does not link the speaker).
const (
	reasonPeerInvalid  = "InvalidBGPPeer"
	reasonPeerRejected = "BGPPeerRejected"
)

// checkBGP checks BGPPeers against nodes and BFD profiles, and BGPAdvertisements' peer names.
// Herald does not publish BGP session state to the API (only as speaker metrics), so when
// peers exist one info finding says so.
func checkBGP(x *index) []Finding {
	var out []Finding
	peers := map[string]bool{}
	bfd := map[string]bool{}
	for _, b := range x.BFDProfiles {
		if b.Namespace == x.ConfigNamespace {
			bfd[b.Name] = true
		}
	}
	var names []string
	for i := range x.BGPPeers {
		p := &x.BGPPeers[i]
		if p.Namespace != x.ConfigNamespace {
			continue
		}
		peers[p.Name] = true
		names = append(names, p.Name)
		obj := ObjectRef{Kind: kindBGPPeer, Namespace: p.Namespace, Name: p.Name}
		if p.Spec.BFDProfile != "" && !bfd[p.Spec.BFDProfile] {
			out = append(out, finding("bgppeer.unknown-bfd-profile", Warning, obj,
				"create BFDProfile "+p.Spec.BFDProfile+" in namespace "+x.ConfigNamespace+" or fix spec.bfdProfile",
				"BGPPeer %s uses BFDProfile %q, which does not exist", p.Name, p.Spec.BFDProfile))
		}
		if f, ok := x.peerNodes(p.Name, p.Spec.NodeSelectors, obj); ok {
			out = append(out, f)
		}
		for _, reason := range []string{reasonPeerInvalid, reasonPeerRejected} {
			if ev := x.latestEventOn(kindBGPPeer, svcKey{p.Namespace, p.Name}, reason); ev != nil {
				out = append(out, finding("bgppeer.rejected", Warning, obj,
					"fix the BGPPeer field the message names (kubectl -n "+p.Namespace+" describe bgppeer "+p.Name+")",
					"%s (Event %s from %s, %s)", ev.Message, reason, ev.Source.Host, eventTime(ev).UTC().Format(time.RFC3339)))
			}
		}
	}
	for _, a := range x.bgpAdvs {
		var unknown []string
		for _, peer := range a.BGP.Peers {
			if !peers[peer] {
				unknown = append(unknown, peer)
			}
		}
		if len(unknown) > 0 {
			out = append(out, finding("advertisement.unknown-peer", Warning, advRef(x, a),
				"fix spec.peers or create the BGPPeer(s)",
				"BGPAdvertisement %s names BGPPeer(s) that do not exist: %s", a.Name, strings.Join(unknown, ", ")))
		}
	}
	if len(names) > 0 {
		sort.Strings(names)
		out = append(out, finding("bgp.session-state-unknown", Info, ObjectRef{Kind: kindBGPPeer, Namespace: x.ConfigNamespace, Name: names[0]},
			"read the speakers' BGP session metrics, or the router's view (show bgp summary)",
			"Herald does not publish BGP session state to the API, so diag cannot tell whether the sessions with %s are established; only their configuration was checked", strings.Join(names, ", ")))
	}
	return out
}

// peerNodes reports a peer whose nodeSelectors are invalid or match no node.
func (x *index) peerNodes(name string, sels []metav1.LabelSelector, obj ObjectRef) (Finding, bool) {
	if len(sels) == 0 || len(x.nodes) == 0 {
		return Finding{}, false
	}
	for i := range sels {
		s, err := metav1.LabelSelectorAsSelector(&sels[i])
		if err != nil {
			return finding("bgppeer.invalid-selector", Critical, obj, "fix spec.nodeSelectors",
				"BGPPeer %s: spec.nodeSelectors[%d]: %v", name, i, err), true
		}
		for _, n := range x.nodes {
			if s.Matches(labels.Set(n.Labels)) {
				return Finding{}, false
			}
		}
	}
	return finding("bgppeer.no-node", Warning, obj,
		"fix spec.nodeSelectors so they match node labels (kubectl get nodes --show-labels)",
		"the nodeSelectors of BGPPeer %s match no node: no session with it is ever opened", name), true
}

// checkIgnoredConfig reports every metallb.io configuration object outside the configuration
// namespace: Herald ignores it, never merges it with its own configuration. A pool left in
// metallb-system while Herald reads herald-system is the usual case after a migration.
func checkIgnoredConfig(x *index) []Finding {
	out := make([]Finding, 0, len(x.Ignored))
	for _, o := range x.Ignored {
		fix := "move it to namespace " + x.ConfigNamespace + ", delete it if it is a leftover, or point Herald at namespace " + o.Namespace +
			" (chart value configNamespace; controller --config-namespace; speaker configNamespace)"
		out = append(out, finding("config.ignored", Warning, o, fix, "%s", controller.IgnoredMessage(o.Kind, o.Namespace, o.Name, x.ConfigNamespace)))
	}
	return out
}
