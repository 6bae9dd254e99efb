// Package snapshot builds the framework's inputs from API objects: one NodeInfo per Node (with
// its speaker's heartbeat from the speaker namespace's Leases) and one announcement Unit per
// load-balancer IP and mode (the Services sharing the IP, their serving endpoints per node,
// the IP's pool, the advertisements, the nodes announcing it now).
//
// The Builder is fed object by object (from informer events, see Watch) and keeps derived
// state so that a change costs in proportion to what it touches: a Node or Lease event rebuilds
// that node's NodeInfo only; a Service, EndpointSlice or status event invalidates the units of
// that Service's IPs only; only pool, advertisement and community changes (rare) invalidate
// every unit. Snapshot and Units return immutable values that cycles may share.
package snapshot

import (
	"fmt"
	"net/netip"
	"sort"
	"strings"
	"sync"
	"time"

	metallbv1beta1 "github.com/herald-lb/herald/config/metallb/v1beta1"
	"github.com/herald-lb/herald/framework"
)

// Change tells the consumer (the speaker's work queue) which units to reconsider: every unit
// (All: nodes, heartbeats, pools or advertisements changed) or the units of IPs.
type Change struct {
	All bool
	IPs []netip.Addr
}

// Builder keeps the cluster state the snapshot is built from. It is safe for concurrent use.
type Builder struct {
	mu sync.Mutex

	nodes     map[string]*framework.NodeInfo // without Speaker
	speakers  map[string]*framework.SpeakerInfo
	leaseNode map[string]string // lease namespace/name → node
	// merged holds each node's NodeInfo with its heartbeat, rebuilt only when that node's
	// Node or Lease changes; nodeList is the snapshot's list, rebuilt from merged on demand.
	merged   map[string]*framework.NodeInfo
	nodeList []*framework.NodeInfo

	services map[framework.ServiceKey]*service
	// endpoints holds each Service's slices' serving counts per node. A slice list rather
	// than a map by slice name: most Services have one slice, and a map per Service is
	// megabytes in a large cluster.
	endpoints    map[framework.ServiceKey][]sliceCounts
	serviceInfos map[framework.ServiceKey]*framework.ServiceInfo
	byIP         map[netip.Addr][]framework.ServiceKey

	pools       map[string]*poolInfo // pool name → what units read of it
	l2          map[string]*framework.Advertisement
	bgpRaw      map[string]*metallbv1beta1.BGPAdvertisement
	bgp         map[string]*framework.Advertisement
	communities map[string]map[string]string // Community namespace/name → alias → value
	advLists    map[framework.Mode][]*framework.Advertisement

	l2Status  map[framework.ServiceKey]map[string]string // status namespace/name → node
	bgpStatus map[framework.ServiceKey]map[string]string
	statusSvc map[string]framework.ServiceKey // "L2|BGP " + status namespace/name → Service

	units map[netip.Addr][]*framework.Unit

	errs   map[string]error
	notify func(Change)
	// now is this node's clock (time.Now unless SetClock): a simulation runs many builders
	// on virtual clocks.
	now func() time.Time
}

// NewBuilder returns an empty builder. notify, when not nil, is called after every change
// (outside the builder's lock) with what it affects.
func NewBuilder(notify func(Change)) *Builder {
	return &Builder{
		nodes: map[string]*framework.NodeInfo{}, merged: map[string]*framework.NodeInfo{}, speakers: map[string]*framework.SpeakerInfo{}, leaseNode: map[string]string{},
		services: map[framework.ServiceKey]*service{}, endpoints: map[framework.ServiceKey][]sliceCounts{},
		serviceInfos: map[framework.ServiceKey]*framework.ServiceInfo{}, byIP: map[netip.Addr][]framework.ServiceKey{},
		pools: map[string]*poolInfo{}, l2: map[string]*framework.Advertisement{},
		bgpRaw: map[string]*metallbv1beta1.BGPAdvertisement{}, bgp: map[string]*framework.Advertisement{},
		communities: map[string]map[string]string{},
		l2Status:    map[framework.ServiceKey]map[string]string{}, bgpStatus: map[framework.ServiceKey]map[string]string{},
		statusSvc: map[string]framework.ServiceKey{},
		units:     map[netip.Addr][]*framework.Unit{},
		errs:      map[string]error{},
		notify:    notify,
		now:       time.Now,
	}
}

// SetClock makes the builder read the time from now instead of time.Now. Call it before the
// builder is fed.
func (b *Builder) SetClock(now func() time.Time) { b.now = now }

func (b *Builder) done(c Change) {
	b.mu.Unlock()
	if b.notify != nil && (c.All || len(c.IPs) > 0) {
		b.notify(c)
	}
}

func (b *Builder) setErr(key string, err error) {
	if err != nil {
		b.errs[key] = err
	} else {
		delete(b.errs, key)
	}
}

// Errors returns the current conversion problems (bad selectors, bad heartbeats, bad ingress
// IPs), one per object, sorted. Each affected only its own object.
func (b *Builder) Errors() []error {
	b.mu.Lock()
	defer b.mu.Unlock()
	keys := make([]string, 0, len(b.errs))
	for k := range b.errs {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make([]error, len(keys))
	for i, k := range keys {
		out[i] = b.errs[k]
	}
	return out
}

// Problem is a conversion problem of one object: what Errors returns, with the object named.
type Problem struct {
	// Kind is the object's kind (Service, Lease, L2Advertisement, BGPAdvertisement).
	Kind, Namespace, Name string
	Err                   error
}

// Problems returns the current conversion problems with the object each belongs to, sorted
// like Errors, so the speaker can report each on its object.
func (b *Builder) Problems() []Problem {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make([]Problem, 0, len(b.errs))
	for k, err := range b.errs {
		kind, id, _ := strings.Cut(k, " ")
		ns, name, found := strings.Cut(id, "/")
		if !found {
			ns, name = "", id
		}
		out = append(out, Problem{Kind: kind, Namespace: ns, Name: name, Err: err})
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		return a.Kind+" "+a.Namespace+"/"+a.Name < b.Kind+" "+b.Namespace+"/"+b.Name
	})
	return out
}

// String summarizes the builder's contents, for logs.
func (b *Builder) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return fmt.Sprintf("%d nodes, %d heartbeats, %d LoadBalancer Services on %d IPs, %d pools, %d L2 and %d BGP advertisements",
		len(b.nodes), len(b.speakers), len(b.services), len(b.byIP), len(b.pools), len(b.l2), len(b.bgp))
}
