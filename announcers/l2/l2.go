// Package l2 is the engine shared by the ARP and NDP announcers: it keeps the desired set,
// chooses the links each address is announced on, answers resolution requests through a
// protocol Driver, sends the gratuitous burst on announce and the periodic refresh, and turns
// another MAC claiming one of our addresses into a rate-limited conflict event (it never sends
// more packets to win: the speaker decides what to do).
//
// Links: an announcement that names interfaces is announced on exactly those. One that names
// none is announced on every up, non-loopback Ethernet interface that has an address of the
// protocol's family on a subnet containing the address; when no interface has such a subnet,
// on every up, non-loopback Ethernet interface with an address of that family (a VIP outside
// the node subnets is still reachable on the link if the router sends it there).
//
// Links follow the kernel: the engine watches link and address changes over netlink (and
// re-reads the interfaces every resyncInterval in case a notification was lost), closes a
// link that went down or away, opens one that came up or was created after start, reopens one
// whose socket failed (with backoff), and sends the gratuitous burst again on every link that
// comes back, so neighbours and switches learn the path again. While an address has no usable
// link, or a link it needs cannot be opened, the announcer reports itself degraded.
//
// Bad input from the wire never stops a link: a frame a driver cannot parse is counted
// (Announcer.Malformed) and skipped.
//
// Conflicts (RFC 5227 style detection, never defence): before the first gratuitous packet for
// an address on a link, and then about every probeInterval, the link sends a probe (an ARP
// probe, or a Neighbor Solicitation) for it; a foreign answer reaches Handler.Foreign like a
// foreign gratuitous packet. Unlike RFC 5227, announcing does not wait for the probe: a
// failover cannot afford the wait, and Herald reports a conflict rather than giving the address
// up.
//
// The files: l2.go the protocol API and the Link and Driver interfaces, interfaces.go the
// choice of links for an address, links.go the life cycle of links, gratuitous.go the burst
// on announce and the periodic refresh, conflicts.go probing and conflict reports, kernel.go
// the netlink watch.
package l2

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/herald-lb/herald/announcers"
)

// Driver speaks one resolution protocol (ARP or NDP).
type Driver interface {
	// Kind is announcers.KindARP or announcers.KindNDP.
	Kind() string
	// Validate says whether the driver can announce the address.
	Validate(addr netip.Addr) error
	// Suitable says whether an interface address of this family makes the link usable.
	Suitable(ifaceAddr netip.Addr) bool
	// Open starts the protocol on a link; answering and conflict reports go to h.
	Open(ifi *net.Interface, h Handler) (Link, error)
}

// Link is the protocol running on one interface.
type Link interface {
	// Serve reads and answers packets until Close. It skips (and reports to Handler.Malformed)
	// any frame it cannot parse; it returns only on Close (nil) or a socket error, after which
	// the engine closes the link and opens a new one.
	Serve() error
	// Announce sends one gratuitous ARP / unsolicited NA for addr.
	Announce(addr netip.Addr) error
	// Probe asks the link who holds addr (an RFC 5227 ARP probe, a Neighbor Solicitation) in
	// a way that changes no neighbour's cache; an answer from another MAC is reported to
	// Handler.Foreign by Serve.
	Probe(addr netip.Addr) error
	// Watch and Unwatch tell the link an address is (no longer) ours, for links that must
	// prepare to hear requests for it. Both ARP and NDP hear every request already (NDP
	// through one all-multicast packet socket rather than a solicited-node join per address,
	// which the kernel caps near 2,300), so theirs do nothing.
	Watch(addr netip.Addr) error
	Unwatch(addr netip.Addr) error
	Close() error
}

// Handler is what a Link asks of the engine.
type Handler interface {
	// Owns reports whether the link answers for addr now.
	Owns(addr netip.Addr) bool
	// Foreign reports a packet from another MAC claiming addr.
	Foreign(addr netip.Addr, mac net.HardwareAddr, detail string)
	// Answered counts an answer sent (for status and benchmarks).
	Answered()
	// Malformed counts a frame dropped because it could not be parsed; err says why.
	Malformed(err error)
}

// Announcer is an announcers.Announcer for one L2 protocol.
type Announcer struct {
	driver     Driver
	log        hclog.Logger
	interfaces Interfaces
	version    string
	events     announcers.EventHub

	mu       sync.Mutex
	cfg      announcers.L2Config
	table    *announcers.Table
	links    map[string]*link // by interface name
	problems map[string]string
	refresh  context.CancelFunc
	conflict conflictLimiter
	// malformed counts frames dropped on links already closed (open ones count their own).
	malformed uint64

	stop context.CancelFunc // ends the link and probe loops
	kick chan struct{}      // asks the link loop to re-read the interfaces

	warnMu         sync.Mutex
	warnLast       map[string]time.Time
	warnSuppressed map[string]int
}

// New returns an L2 announcer speaking the driver's protocol. It starts the refresh, link and
// probe loops; Close stops everything. With interfaces nil it reads the host's interfaces and
// follows the kernel's link and address notifications; tests passing their own interfaces
// call Resync after changing them.
func New(driver Driver, log hclog.Logger, interfaces Interfaces, version string) *Announcer {
	system := interfaces == nil
	if system {
		interfaces = SystemInterfaces
	}
	a := &Announcer{
		driver: driver, log: log, interfaces: interfaces, version: version,
		cfg:   announcers.L2Config{}.WithDefaults(),
		links: map[string]*link{}, problems: map[string]string{},
		warnLast: map[string]time.Time{}, warnSuppressed: map[string]int{},
		kick: make(chan struct{}, 1),
	}
	a.table = announcers.NewTable(a.validate)
	a.restartRefreshLocked()
	ctx, stop := context.WithCancel(context.Background())
	a.stop = stop
	go a.linkLoop(ctx)
	go a.probeLoop(ctx)
	if system {
		go watchKernel(ctx, log, a.Resync)
	}
	return a
}

// Resync makes the engine re-read the interfaces and reconcile its links soon (after settle).
func (a *Announcer) Resync() {
	select {
	case a.kick <- struct{}{}:
	default:
	}
}

func (a *Announcer) validate(an announcers.Announcement) error {
	p := an.Prefix
	if !p.IsValid() {
		return fmt.Errorf("prefix: missing")
	}
	if !p.IsSingleIP() {
		return fmt.Errorf("prefix %s: the %s announcer announces single addresses only", p, a.driver.Kind())
	}
	if err := a.driver.Validate(p.Addr()); err != nil {
		return fmt.Errorf("prefix %s: %w", p, err)
	}
	for i, name := range an.Interfaces {
		if name == "" {
			return fmt.Errorf("interfaces[%d]: empty name", i)
		}
	}
	return nil
}

// Info implements announcers.Announcer.
func (a *Announcer) Info(context.Context) (announcers.Info, error) {
	family := announcers.CapabilityIPv4
	if a.driver.Kind() == announcers.KindNDP {
		family = announcers.CapabilityIPv6
	}
	return announcers.Info{
		ProtocolVersion: announcers.ProtocolVersion, Kind: a.driver.Kind(), Version: a.version,
		Capabilities: []announcers.Capability{family, announcers.CapabilityL2, announcers.CapabilityConflictDetection},
	}, nil
}

// Configure implements announcers.Announcer; it reads the L2 part only.
func (a *Announcer) Configure(_ context.Context, cfg announcers.Config) error {
	l2 := announcers.L2Config{}
	if cfg.L2 != nil {
		l2 = *cfg.L2
	}
	if l2.GratuitousCount < 0 || l2.RefreshInterval < 0 || l2.GratuitousInterval < 0 || l2.ConflictReportInterval < 0 {
		return fmt.Errorf("l2: negative count or interval: %w", announcers.ErrInvalid)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.cfg = l2.WithDefaults()
	a.restartRefreshLocked()
	a.log.Info("configured", "refresh", a.cfg.RefreshInterval, "gratuitousCount", a.cfg.GratuitousCount,
		"gratuitousInterval", a.cfg.GratuitousInterval, "conflictReportInterval", a.cfg.ConflictReportInterval)
	return nil
}

// SetDesired implements announcers.Announcer.
func (a *Announcer) SetDesired(_ context.Context, set announcers.DesiredSet) (announcers.ApplyResult, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	res := a.table.SetDesired(set)
	a.reconcileRetryLocked()
	a.logRejected(res)
	return res, nil
}

// Apply implements announcers.Announcer.
func (a *Announcer) Apply(_ context.Context, d announcers.Delta) (announcers.ApplyResult, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	res, err := a.table.Apply(d)
	if err != nil {
		return res, err
	}
	a.reconcileRetryLocked()
	a.logRejected(res)
	return res, nil
}

func (a *Announcer) logRejected(res announcers.ApplyResult) {
	for _, r := range res.Rejected {
		a.log.Warn("announcement rejected", "id", r.ID, "reason", r.Reason)
	}
}

// Status implements announcers.Announcer.
func (a *Announcer) Status(context.Context) (announcers.Status, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	st := announcers.Status{Generation: a.table.Generation(), Health: announcers.HealthHealthy}
	where := map[netip.Addr][]string{}
	for name, l := range a.links {
		for addr := range *l.owned.Load() {
			where[addr] = append(where[addr], name)
		}
	}
	for addr, names := range where {
		sort.Strings(names)
		st.Announced = append(st.Announced, announcers.AnnouncedPrefix{Prefix: netip.PrefixFrom(addr, addr.BitLen()), Interfaces: names})
	}
	sort.Slice(st.Announced, func(i, j int) bool { return st.Announced[i].Prefix.Addr().Less(st.Announced[j].Prefix.Addr()) })
	if len(a.problems) > 0 {
		st.Health = announcers.HealthDegraded
		msgs := make([]string, 0, len(a.problems))
		for _, m := range a.problems {
			msgs = append(msgs, m)
		}
		sort.Strings(msgs)
		if len(msgs) > maxProblems {
			msgs = append(msgs[:maxProblems], fmt.Sprintf("and %d more", len(msgs)-maxProblems))
		}
		st.Message = strings.Join(msgs, "; ")
	}
	return st, nil
}

// Events implements announcers.Announcer.
func (a *Announcer) Events(ctx context.Context) (<-chan announcers.Event, error) {
	return a.events.Subscribe(ctx), nil
}

// Drain implements announcers.Announcer: it stops answering for everything at once.
func (a *Announcer) Drain(context.Context) (int, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	n := a.table.Clear()
	a.reconcileRetryLocked()
	a.log.Info("drained", "withdrawn", n)
	return n, nil
}

// Close stops the loops and closes every link.
func (a *Announcer) Close() {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.refresh()
	a.stop()
	for name, l := range a.links {
		a.closeLocked(name, l)
	}
}

// Answered returns how many answers all links have sent.
func (a *Announcer) Answered() uint64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	var n uint64
	for _, l := range a.links {
		n += l.answered.Load()
	}
	return n
}

// Malformed returns how many frames all links, open or closed since, have dropped because
// they could not be parsed.
func (a *Announcer) Malformed() uint64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	n := a.malformed
	for _, l := range a.links {
		n += l.malformed.Load()
	}
	return n
}

// maxProblems bounds the problems listed in a status message.
const maxProblems = 10

// warn logs a per-address failure at most once a second per message, with the number of
// like failures left out since, so 10,000 addresses failing the same way make one line.
func (a *Announcer) warn(msg string, kv ...any) {
	a.warnMu.Lock()
	now := time.Now()
	if now.Sub(a.warnLast[msg]) < time.Second {
		a.warnSuppressed[msg]++
		a.warnMu.Unlock()
		return
	}
	suppressed := a.warnSuppressed[msg]
	a.warnLast[msg], a.warnSuppressed[msg] = now, 0
	a.warnMu.Unlock()
	a.log.Warn(msg, append(kv, "suppressedSinceLast", suppressed)...)
}
