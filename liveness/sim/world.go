// Package sim is a deterministic simulation of many speakers deciding who announces which
// load-balancer IP (L2). It runs the speakers' real decision code (snapshot.Builder, the
// framework with the default profile's in-tree plugins, the liveness package's expiry and
// freeze rules, heartbeat encoding) against a simulated API server (Leases with write latency,
// a watch per node with its own delay, partitions, stalls) and a simulated data plane (which
// node answers which IP), on a virtual clock with seeded randomness: no sleeps, no goroutines,
// and one seed always gives the same run.
//
// Faults are drawn from the seed (crashes, restarts, API partitions of one node, outages of the
// API server for every node, watch stalls, write latency, per-node clock offsets). After every
// step the invariants are checked (see checker); a run that breaks one returns its seed and
// event list, which replay it exactly.
package sim

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"strings"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"

	metallbv1beta1 "github.com/herald-lb/herald/config/metallb/v1beta1"
	"github.com/herald-lb/herald/heartbeat"
)

// Config is one simulated cluster and how hard its faults hit.
type Config struct {
	Nodes, IPs int
	// Step is the virtual time between two steps; everything happens on step boundaries.
	Step time.Duration
	// LeaseDuration and RenewInterval are the heartbeat settings.
	LeaseDuration, RenewInterval time.Duration
	// WatchDelay is the largest normal delay of a node's watch (each node gets its own).
	WatchDelay time.Duration
	// FaultTime is how long faults are injected; Settle is the quiet time after them in which
	// everything must converge.
	FaultTime, Settle time.Duration
	// Faults is how many faults a run draws; Kinds the kinds it draws from.
	Faults int
	Kinds  []Kind
	// MaxFault is the longest partition, stall or latency window; MaxLatency the largest
	// injected write latency.
	MaxFault, MaxLatency time.Duration
	// MaxSkew is the largest clock offset of a node (each node gets one in ±MaxSkew).
	MaxSkew time.Duration
	// MinFault is the shortest partition, stall or latency window.
	MinFault time.Duration
	// Still makes the checker require that no IP moves: from when the first fault begins,
	// every IP keeps exactly the one answer it had (the faults drawn must not need a move).
	Still bool
	// FastDetect, when set, runs the fast path (package fastpath, decided on with
	// liveness.FastPath): a speaker finds another's crash, or a cut between them, between a
	// third of FastDetect and FastDetect after it happened, and finds a speaker back within
	// FastJoin (its join loop and memberlist's push-pull). The failover budget after a crash
	// or a cut is then FastDetect plus two steps.
	FastDetect, FastJoin time.Duration
}

// DefaultConfig is the simulation `make test` runs: 20 nodes, 20 IPs, the default heartbeat,
// five faults in 16 s.
func DefaultConfig() Config {
	return Config{
		Nodes: 20, IPs: 20, Step: 50 * time.Millisecond,
		LeaseDuration: 2500 * time.Millisecond, RenewInterval: time.Second,
		WatchDelay: 200 * time.Millisecond,
		FaultTime:  16 * time.Second, Settle: 8 * time.Second,
		Faults: 5, Kinds: []Kind{Crash, Partition, Latency},
		MaxFault: 10 * time.Second, MaxLatency: time.Second,
	}
}

// StallConfig is the simulation of the fault that must move nothing: one node's Lease watch
// stalls for 30 to 60 s while its writes succeed (two such faults a run). Slow writes for
// every node (APILatency) are not in it: a node whose watch caught up after its own slow
// writes decides at once, and may take an IP from a node whose renewal is still on its way
// (issue 15, not solved yet: e.g. Kinds {Stall, APILatency}, MaxLatency 2.4 s, seed 11).
func StallConfig() Config {
	cfg := DefaultConfig()
	cfg.FaultTime, cfg.Settle = 70*time.Second, 8*time.Second
	cfg.Faults, cfg.Kinds = 2, []Kind{Stall}
	cfg.MinFault, cfg.MaxFault = 30*time.Second, 60*time.Second
	cfg.Still = true
	return cfg
}

// OutageConfig is the simulation of the other fault that must move nothing: the API server is
// down for every node at once for 5 to 60 s, and when it comes back one node's writes are
// slow (up to a lease duration each: a write that slow hangs until its deadline and the next
// is tried at once).
func OutageConfig() Config {
	cfg := DefaultConfig()
	cfg.FaultTime, cfg.Settle = 70*time.Second, 12*time.Second
	cfg.Faults, cfg.Kinds = 1, []Kind{Outage}
	cfg.MinFault, cfg.MaxFault = 5*time.Second, 60*time.Second
	cfg.MaxLatency = cfg.LeaseDuration
	cfg.Still = true
	return cfg
}

// FastPathConfig is DefaultConfig with the fast path on (detection within 0.9 s, as
// fastpath's BenchmarkDetection measures 0.61 s at most), cuts of one node's fast path among
// the faults, and every node's clock up to a minute off (the fast path reads only each node's
// own clock).
func FastPathConfig() Config {
	cfg := DefaultConfig()
	cfg.FastDetect, cfg.FastJoin = 900*time.Millisecond, 1500*time.Millisecond
	cfg.Kinds = []Kind{Crash, Partition, Latency, Cut}
	cfg.MaxSkew = time.Minute
	return cfg
}

// HoldConfig is the fast path's set that must move nothing: one node at a time loses the API
// server (a partition of up to 20 s) or writes its Lease slowly (up to 5 s a write), its
// segment untouched; the fast path holds it alive, and it keeps its IPs.
func HoldConfig() Config {
	cfg := FastPathConfig()
	cfg.FaultTime, cfg.Settle = 40*time.Second, 12*time.Second
	cfg.Faults, cfg.Kinds = 3, []Kind{Partition, Latency}
	cfg.MinFault, cfg.MaxFault = time.Second, 20*time.Second
	cfg.MaxLatency = 5 * time.Second
	cfg.Still = true
	return cfg
}

// Kind is a kind of fault.
type Kind string

// The faults a run draws from.
const (
	// Crash kills a node's speaker (its announcers die with it); it restarts after the
	// fault's duration, or stays down when the duration is zero.
	Crash Kind = "crash"
	// Partition cuts one node off from the API server: writes hang until their deadline,
	// its watch delivers nothing. Its data plane is untouched.
	Partition Kind = "partition"
	// Stall stops one node's watch; its writes still succeed.
	Stall Kind = "stall"
	// Latency makes one node's Lease writes take Latency each.
	Latency Kind = "latency"
	// APILatency makes every node's Lease writes take Latency each (Node is ignored).
	APILatency Kind = "api-latency"
	// Outage cuts every node off from the API server at once (a kube-apiserver restart):
	// writes hang until their deadline, no watch delivers. When it ends, the writes Node
	// starts within a lease duration take Latency each (an API server that has just come
	// back is slow to some clients: one node's first renewal hung ~2 s in the lab).
	Outage Kind = "outage"
	// Cut blocks one node's fast-path traffic (its probes, both ways); its API connection
	// and its data plane work. Only with Config.FastDetect.
	Cut Kind = "cut"
)

// Fault is one injected fault on one node, from At for Dur (virtual time since the start).
type Fault struct {
	Kind    Kind
	Node    int
	At, Dur time.Duration
	Latency time.Duration
}

func (f Fault) String() string {
	s := fmt.Sprintf("%s node-%02d at %s for %s", f.Kind, f.Node, f.At, f.Dur)
	switch f.Kind {
	case APILatency:
		return fmt.Sprintf("%s at %s for %s latency %s", f.Kind, f.At, f.Dur, f.Latency)
	case Outage:
		return fmt.Sprintf("%s at %s for %s, then node-%02d's writes take %s for a lease duration", f.Kind, f.At, f.Dur, f.Node, f.Latency)
	case Latency:
		s += fmt.Sprintf(" latency %s", f.Latency)
	}
	return s
}

// end is when the fault stops (a crash without restart never does).
func (f Fault) end() time.Duration {
	if f.Kind == Crash && f.Dur == 0 {
		return 1<<63 - 1
	}
	return f.At + f.Dur
}

// Plan is everything a seed decides: node clock offsets, watch delays, faults.
type Plan struct {
	Seed    uint64
	Skew    []time.Duration
	Delay   []time.Duration
	Phase   []time.Duration
	Faults  []Fault
	Horizon time.Duration
}

// NewPlan draws a run's plan from the seed.
func NewPlan(cfg Config, seed uint64) Plan {
	r := rand.New(rand.NewPCG(seed, 0x6865_7261_6c64)) // "herald"
	p := Plan{Seed: seed, Horizon: cfg.FaultTime + cfg.Settle}
	for range cfg.Nodes {
		var skew time.Duration
		if cfg.MaxSkew > 0 {
			skew = time.Duration(r.Int64N(int64(2*cfg.MaxSkew)+1)) - cfg.MaxSkew
		}
		p.Skew = append(p.Skew, skew)
		p.Delay = append(p.Delay, time.Duration(r.Int64N(int64(cfg.WatchDelay)+1)))
		p.Phase = append(p.Phase, time.Duration(r.Int64N(int64(cfg.RenewInterval))))
	}
	for range cfg.Faults {
		if len(cfg.Kinds) == 0 {
			break
		}
		f := Fault{Kind: cfg.Kinds[r.IntN(len(cfg.Kinds))], Node: r.IntN(cfg.Nodes)}
		// Faults start once the cluster has settled (two lease durations) and end in FaultTime.
		start := 2 * cfg.LeaseDuration
		f.At = start + time.Duration(r.Int64N(int64(cfg.FaultTime-start)))
		f.At = f.At.Truncate(cfg.Step)
		f.Dur = (cfg.MinFault + time.Duration(r.Int64N(int64(cfg.MaxFault-cfg.MinFault))) + cfg.Step).Truncate(cfg.Step)
		if f.At+f.Dur > cfg.FaultTime {
			f.Dur = cfg.FaultTime - f.At
		}
		if f.Kind == Outage && f.Dur < cfg.MinFault {
			// Shorter, it would be the slow writes of those nodes that had one in flight
			// (hanging until its deadline), which move IPs today (issue 15).
			f.At, f.Dur = cfg.FaultTime-cfg.MinFault, cfg.MinFault
		}
		switch f.Kind {
		case Crash:
			if r.IntN(4) == 0 {
				f.Dur = 0 // stays down
			}
		case Latency, APILatency, Outage:
			f.Latency = (time.Duration(r.Int64N(int64(cfg.MaxLatency))) + cfg.Step).Truncate(cfg.Step)
		}
		p.Faults = append(p.Faults, f)
	}
	slices.SortStableFunc(p.Faults, func(a, b Fault) int { return int(a.At - b.At) })
	return p
}

// String is the plan as a replayable trace: the seed, the clocks and the faults in order.
func (p Plan) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "seed %d\n", p.Seed)
	for i := range p.Skew {
		if p.Skew[i] != 0 {
			fmt.Fprintf(&b, "  node-%02d clock offset %s\n", i, p.Skew[i])
		}
	}
	for _, f := range p.Faults {
		fmt.Fprintf(&b, "  %s\n", f)
	}
	return b.String()
}

// apiServer holds the Leases and the order they were written in: every node's watch reads
// that log at its own pace.
type apiServer struct {
	rv     int64
	log    []written
	leases map[string]*coordinationv1.Lease
	// statuses are the ServiceL2Status objects: the node each names, by the IP of its Service.
	statuses map[netip.Addr]string
}

// written is one committed write: a Lease, or a ServiceL2Status (status, deleted when its
// node is "").
type written struct {
	at     time.Duration
	lease  *coordinationv1.Lease
	status *metallbv1beta1.ServiceL2Status
}

// writeStatus commits the status object of ip's Service naming node ("": deletes it).
func (a *apiServer) writeStatus(at time.Duration, ip netip.Addr, node string) {
	if node == "" {
		delete(a.statuses, ip)
	} else {
		a.statuses[ip] = node
	}
	i := int(ip.As4()[3]) - 1
	st := &metallbv1beta1.ServiceL2Status{}
	st.Namespace, st.Name = namespace, fmt.Sprintf("l2-svc-%03d", i)
	st.Status.ServiceNamespace, st.Status.ServiceName, st.Status.Node = "default", fmt.Sprintf("svc-%03d", i), node
	a.log = append(a.log, written{at: at, status: st})
}

// write commits a heartbeat at virtual time at and returns the Lease as stored.
func (a *apiServer) write(at time.Duration, hb heartbeat.Heartbeat, ns string) (*coordinationv1.Lease, error) {
	name := heartbeat.LeaseName(hb.NodeName)
	l, ok := a.leases[name]
	if ok {
		l = l.DeepCopy()
		if err := heartbeat.EncodeInto(l, hb); err != nil {
			return nil, err
		}
	} else {
		var err error
		if l, err = heartbeat.Encode(hb, ns); err != nil {
			return nil, err
		}
	}
	a.rv++
	l.ResourceVersion = fmt.Sprint(a.rv)
	// The API server stores microseconds, as a real one does.
	rt := l.Spec.RenewTime.Truncate(time.Microsecond)
	l.Spec.RenewTime.Time = rt
	a.leases[name] = l
	a.log = append(a.log, written{at: at, lease: l})
	return l, nil
}

// cluster objects every speaker sees from the start (they do not change in a run).
func staticObjects(cfg Config) (nodes []*corev1.Node, services []*corev1.Service, slices []*discoveryv1.EndpointSlice) {
	for i := range cfg.Nodes {
		nodes = append(nodes, &corev1.Node{})
		nodes[i].Name = nodeName(i)
		nodes[i].Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue}}
	}
	for i := range min(cfg.IPs, 250) {
		s := &corev1.Service{}
		s.Namespace, s.Name = "default", fmt.Sprintf("svc-%03d", i)
		s.Spec.Type = corev1.ServiceTypeLoadBalancer
		s.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{{IP: serviceIP(i).String()}}
		services = append(services, s)
		// One serving endpoint per Service (traffic policy Cluster: anywhere will do).
		es := &discoveryv1.EndpointSlice{}
		es.Namespace, es.Name = s.Namespace, s.Name+"-1"
		es.Labels = map[string]string{discoveryv1.LabelServiceName: s.Name}
		es.Endpoints = []discoveryv1.Endpoint{{Addresses: []string{"192.0.2.1"}}}
		slices = append(slices, es)
	}
	return nodes, services, slices
}

func nodeName(i int) string { return fmt.Sprintf("node-%02d", i) }

// serviceIP is the i-th load-balancer IP (at most 250), in 198.51.100.0/24.
func serviceIP(i int) netip.Addr { return netip.AddrFrom4([4]byte{198, 51, 100, byte(1 + i)}) }

// nodePrefixes are the subnets every node's interface is on, so the Interfaces filter passes.
var nodePrefixes = []netip.Prefix{netip.MustParsePrefix("198.51.100.200/24")}
