// Package fastpath tells a speaker, within a second, which other speakers are gone, by probing
// between speakers over hashicorp/memberlist (SWIM with Lifeguard, what MetalLB's speakers use),
// so failover after a crash no longer waits for a heartbeat Lease to lapse.
//
// Each node probes one other node per probe interval, and asks a few others to probe it
// indirectly when it does not answer, so a node sends O(1) probes per second whatever the
// cluster's size. A node that fails its probes is suspected, and declared dead when the
// suspicion is not refuted in time; the verdict spreads by gossip. Every packet is encrypted
// and authenticated with a shared AES key (memberlist's keyring): a host on the segment
// without the key can neither join nor fake a node's liveness.
//
// The package only reports reachability (View); what a speaker does with it is
// liveness.FastPath's rule, which the simulation runs too.
package fastpath

import (
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/hashicorp/memberlist"
	"k8s.io/klog/v2"

	"github.com/herald-lb/herald/liveness"
)

// DefaultPort is the fast path's UDP and TCP port, memberlist's and MetalLB's (7946).
const DefaultPort = 7946

// Config configures the fast path of one speaker.
type Config struct {
	// Name is the node's name; every speaker must use its node's name.
	Name string
	// BindAddr is the address to listen on (":7946", "192.0.2.11:7946"); AdvertiseAddr is
	// the address the others reach this node at, published in the heartbeat Lease (empty:
	// BindAddr's, which must then name an address).
	BindAddr, AdvertiseAddr string
	// SecretKey is the shared AES key (16, 24 or 32 bytes) every packet is sealed with.
	SecretKey []byte
	// ProbeInterval is how often the node probes another (default 100ms): a dead node is
	// declared so within about ProbeInterval times (2 + SuspicionMult).
	ProbeInterval time.Duration
	// OnChange is called, without locks held, after a node's reachability changed.
	OnChange func()
	// Logger receives memberlist's own log lines at verbosity 4.
	Logger klog.Logger
	// ID names this process (a random value per start), sent with every probe answer: the
	// others tell a restarted speaker from the one whose heartbeat they last saw by it.
	ID string
}

// Defaults of Config.
const (
	DefaultProbeInterval = 100 * time.Millisecond
	// suspicionMult is how many probe intervals (times log10 of the cluster size, at least
	// one) a suspected node has to refute the suspicion before it is declared dead.
	suspicionMult = 2
)

// Detector is one speaker's fast path: its memberlist and the reachability it reports.
type Detector struct {
	list      *memberlist.Memberlist
	self      string
	advertise string
	onChange  func()
	logger    klog.Logger

	mu    sync.Mutex
	reach map[string]liveness.Reach
	// addrs is each known node's fast-path address, to avoid rejoining reachable nodes.
	addrs map[string]string
}

// New starts the fast path: it listens at once, and joins the others as Join is given their
// addresses.
func New(c Config) (*Detector, error) {
	if len(c.SecretKey) == 0 {
		return nil, errors.New("fast path: a secret key is required: without one any host on the segment could fake a node's liveness")
	}
	if n := len(c.SecretKey); n != 16 && n != 24 && n != 32 {
		return nil, fmt.Errorf("fast path: the secret key must be 16, 24 or 32 bytes (AES-128/192/256), got %d", n)
	}
	host, port, err := splitAddr(c.BindAddr)
	if err != nil {
		return nil, fmt.Errorf("fast path: bind address: %w", err)
	}
	advertise := c.AdvertiseAddr
	if advertise == "" {
		advertise = c.BindAddr
	}
	adHost, adPort, err := splitAddr(advertise)
	if err != nil || adHost == "0.0.0.0" || adHost == "::" || adHost == "" {
		return nil, fmt.Errorf("fast path: advertise address %q: must name the address other nodes reach this one at", advertise)
	}
	d := &Detector{self: c.Name, advertise: net.JoinHostPort(adHost, strconv.Itoa(adPort)), onChange: c.OnChange, logger: c.Logger,
		reach: map[string]liveness.Reach{}, addrs: map[string]string{}}
	mc := memberlistConfig(c, host, port, adHost, adPort)
	mc.Events = d
	mc.Delegate = meta{id: []byte(c.ID)}
	d.list, err = memberlist.Create(mc)
	if err != nil {
		return nil, fmt.Errorf("fast path: %w", err)
	}
	return d, nil
}

// memberlistConfig tunes memberlist's LAN defaults for sub-second detection on one segment.
func memberlistConfig(c Config, host string, port int, adHost string, adPort int) *memberlist.Config {
	mc := memberlist.DefaultLANConfig()
	mc.Name = c.Name
	mc.BindAddr, mc.BindPort = host, port
	mc.AdvertiseAddr, mc.AdvertisePort = adHost, adPort
	mc.SecretKey = c.SecretKey
	mc.ProbeInterval = c.ProbeInterval
	if mc.ProbeInterval <= 0 {
		mc.ProbeInterval = DefaultProbeInterval
	}
	// An answer on one segment takes well under a millisecond; two thirds of the interval
	// leaves the indirect probes the rest of it.
	mc.ProbeTimeout = mc.ProbeInterval * 2 / 3
	mc.SuspicionMult = suspicionMult
	// The suspicion timeout stays at its minimum: Lifeguard's longer first timeout, shortened
	// as other nodes confirm, would put the detection past a second on a small cluster.
	mc.SuspicionMaxTimeoutMult = 1
	// Lifeguard's awareness slows a node's probing when its own probes fail, so that a
	// degraded node does not declare the others dead; but a node whose probes alone are
	// blocked then finds the others gone one by one over seconds, and meanwhile, still on the
	// larger side, claims the IPs of those it found (lab, 6 nodes: two MACs for 0.9-1.1 s with
	// it, 0.32-0.34 s without). A wrong verdict of a slow node is refuted by its subject.
	mc.AwarenessMaxMultiplier = 1
	// Verdicts spread in a few hops of one gossip interval each.
	mc.GossipInterval = 50 * time.Millisecond
	mc.GossipToTheDeadTime = 5 * time.Second
	mc.PushPullInterval = 15 * time.Second
	mc.TCPTimeout = 2 * time.Second
	mc.DeadNodeReclaimTime = time.Second
	mc.Logger = log.New(logWriter{c.Logger}, "", 0)
	return mc
}

func splitAddr(addr string) (string, int, error) {
	host, p, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, err
	}
	if host == "" {
		host = "0.0.0.0"
	}
	port, err := strconv.Atoi(p)
	if err != nil || port <= 0 || port > 65535 {
		return "", 0, fmt.Errorf("port %q: must be 1-65535", p)
	}
	return host, port, nil
}

// Address is the address this node's fast path is reached at, to publish in its heartbeat.
func (d *Detector) Address() string { return d.advertise }

// Join joins the nodes at addrs (node name to fast-path address) that are not reachable on the
// fast path already, as after a partition healed or a speaker restarted: memberlist forgets
// dead nodes and never looks for them again by itself. A node this one has never reached and
// cannot join counts as unreachable from then on: a speaker that starts while another is cut
// off must not take that one for alive while every other speaker has lost it (sim: the fast
// path's set with clock skew, seed 99: a restarted node left an IP unanswered 2.9 s). Each
// address is tried on its own, side by side; it returns the errors joined.
func (d *Detector) Join(addrs map[string]string) error {
	want := map[string]string{}
	d.mu.Lock()
	for name, addr := range addrs {
		if name == d.self || addr == "" {
			continue
		}
		if r, ok := d.reach[name]; ok && r.Reachable && d.addrs[name] == addr {
			continue
		}
		want[name] = addr
	}
	d.mu.Unlock()
	errs := make([]error, 0, len(want))
	var mu sync.Mutex
	var wg sync.WaitGroup
	for name, addr := range want {
		wg.Go(func() {
			if _, err := d.list.Join([]string{addr}); err != nil {
				d.joinFailed(name)
				mu.Lock()
				errs = append(errs, fmt.Errorf("%s at %s: %w", name, addr, err))
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// joinFailed records a node this one could not join: unreachable, if it never reached it.
func (d *Detector) joinFailed(name string) {
	d.mu.Lock()
	_, known := d.reach[name]
	if !known {
		d.reach[name] = liveness.Reach{Since: time.Now()}
	}
	d.mu.Unlock()
	if !known {
		d.logger.Info("Speaker unreachable on the fast path: joining it failed", "peer", name)
		if d.onChange != nil {
			d.onChange()
		}
	}
}

// View returns what the fast path knows of the other nodes: whether each is reachable, and
// since when (on this node's clock). Nodes it never heard of are absent.
func (d *Detector) View() map[string]liveness.Reach {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make(map[string]liveness.Reach, len(d.reach))
	for k, v := range d.reach {
		out[k] = v
	}
	return out
}

// Leave tells the others this node is going away, so they need not wait for probes to fail,
// and stops the fast path.
func (d *Detector) Leave(timeout time.Duration) error {
	err := d.list.Leave(timeout)
	return errors.Join(err, d.list.Shutdown())
}

// Stop stops the fast path without telling anyone, as a crash would.
func (d *Detector) Stop() error { return d.list.Shutdown() }

// NotifyJoin implements memberlist.EventDelegate.
func (d *Detector) NotifyJoin(n *memberlist.Node) { d.set(n, true) }

// NotifyLeave implements memberlist.EventDelegate: the node was declared dead, or left.
func (d *Detector) NotifyLeave(n *memberlist.Node) { d.set(n, false) }

// NotifyUpdate implements memberlist.EventDelegate.
func (d *Detector) NotifyUpdate(n *memberlist.Node) { d.set(n, n.State == memberlist.StateAlive) }

func (d *Detector) set(n *memberlist.Node, reachable bool) {
	if n.Name == d.self {
		return
	}
	d.mu.Lock()
	prev, known := d.reach[n.Name]
	id := string(n.Meta)
	changed := !known || prev.Reachable != reachable || reachable && prev.ID != id
	if changed {
		d.reach[n.Name] = liveness.Reach{Reachable: reachable, Since: time.Now(), ID: id}
	}
	d.addrs[n.Name] = n.Address()
	d.mu.Unlock()
	if !changed {
		return
	}
	if reachable {
		d.logger.Info("Speaker reachable on the fast path", "peer", n.Name, "address", n.Address())
	} else {
		d.logger.Info("Speaker unreachable on the fast path: it failed its probes or left", "peer", n.Name, "address", n.Address())
	}
	if d.onChange != nil {
		d.onChange()
	}
}

// meta is the memberlist delegate that only publishes the process's ID as its node meta.
type meta struct{ id []byte }

func (m meta) NodeMeta(limit int) []byte {
	if len(m.id) > limit {
		return m.id[:limit]
	}
	return m.id
}
func (meta) NotifyMsg([]byte)                           {}
func (meta) GetBroadcasts(overhead, limit int) [][]byte { return nil }
func (meta) LocalState(join bool) []byte                { return nil }
func (meta) MergeRemoteState(buf []byte, join bool)     {}

// logWriter sends memberlist's log lines to a klog logger at verbosity 4: they are about
// probes, and a dead node is reported by the speaker already.
type logWriter struct{ logger klog.Logger }

func (w logWriter) Write(p []byte) (int, error) {
	w.logger.V(4).Info(string(trimNewline(p)), "component", "memberlist")
	return len(p), nil
}

func trimNewline(p []byte) []byte {
	if n := len(p); n > 0 && p[n-1] == '\n' {
		return p[:n-1]
	}
	return p
}

var _ io.Writer = logWriter{}
