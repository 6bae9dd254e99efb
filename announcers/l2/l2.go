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
package l2

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
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

// Resync intervals: how often the interfaces are re-read without a kernel notification, and
// the backoff for reopening a link that failed.
const (
	resyncInterval = 10 * time.Second
	reopenMin      = 100 * time.Millisecond
	reopenMax      = 5 * time.Second
	// settle lets the burst of notifications one change makes (link, then addresses) arrive
	// before the interfaces are read.
	settle = 20 * time.Millisecond
)

// Probing: every owned address on every link is probed about once per probeInterval, spread
// evenly over it, at most maxProbesPerTick per link per probeTick (so a link with many
// addresses stretches the cycle rather than bursting).
const (
	probeInterval    = 30 * time.Second
	probeTick        = time.Second
	maxProbesPerTick = 50
)

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

// Interfaces lists the host's interfaces with their addresses; tests replace it.
type Interfaces func() ([]Interface, error)

// Interface is a link and its addresses.
type Interface struct {
	net.Interface
	Prefixes []netip.Prefix
}

// SystemInterfaces reads the host's interfaces.
func SystemInterfaces() ([]Interface, error) {
	ifis, err := net.Interfaces()
	if err != nil {
		return nil, fmt.Errorf("list interfaces: %w", err)
	}
	out := make([]Interface, 0, len(ifis))
	for _, ifi := range ifis {
		addrs, err := ifi.Addrs()
		if err != nil {
			return nil, fmt.Errorf("interface %s addresses: %w", ifi.Name, err)
		}
		it := Interface{Interface: ifi}
		for _, a := range addrs {
			if p, err := netip.ParsePrefix(a.String()); err == nil {
				it.Prefixes = append(it.Prefixes, p)
			}
		}
		out = append(out, it)
	}
	return out, nil
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

func (a *Announcer) closeLocked(name string, l *link) {
	l.close()
	a.malformed += l.malformed.Load()
	delete(a.links, name)
}

// reconcileLocked makes the links answer for exactly the desired addresses on the interfaces
// as the kernel has them now. It reports whether a link it needs failed to open (the link
// loop then retries with backoff).
func (a *Announcer) reconcileLocked() (retry bool) {
	want, ifaces, problems := a.wantedLocked()
	a.problems = problems
	for name, l := range a.links {
		ifi, wanted := ifaces[name]
		_, hasAddrs := want[name]
		switch {
		case !wanted || !hasAddrs:
			a.closeLocked(name, l)
		case l.dead.Load():
			a.log.Info("reopening link", "interface", name, "error", l.deadErr())
			a.closeLocked(name, l)
		case ifi.Index != l.index || string(ifi.HardwareAddr) != string(l.mac):
			// The interface was deleted and created again under the same name, or its MAC
			// changed: the socket is bound to the old one, or answers with the old MAC.
			a.log.Info("interface changed, reopening link", "interface", name, "index", ifi.Index, "mac", ifi.HardwareAddr.String())
			a.closeLocked(name, l)
		}
	}
	for name, addrs := range want {
		l, ok := a.links[name]
		if !ok {
			var err error
			if l, err = a.openLocked(ifaces[name]); err != nil {
				a.problems["link/"+name] = err.Error()
				a.log.Error("cannot open link", "interface", name, "error", err)
				retry = true
				continue
			}
		}
		running := ifaces[name].Flags&net.FlagRunning != 0
		if running && !l.running {
			// The carrier came back while the link stayed open (a cable, a switch port, a
			// veth peer): neighbours may have lost us, so announce everything again.
			l.reburst(a.cfg)
		}
		l.running = running
		l.set(addrs, a.cfg)
		for addr, err := range l.unwatched {
			a.problems["watch/"+name+"/"+addr.String()] = fmt.Sprintf("interface %s: address %s: %v", name, addr, err)
		}
	}
	return retry
}

// reconcileRetryLocked reconciles for a change of the desired set; a link that fails to open
// is retried by the link loop.
func (a *Announcer) reconcileRetryLocked() {
	if a.reconcileLocked() {
		a.Resync()
	}
}

// linkLoop re-reads the interfaces and reconciles the links when the kernel reports a change
// (Resync), every resyncInterval in case a notification was lost, and with backoff while a
// link cannot be opened.
func (a *Announcer) linkLoop(ctx context.Context) {
	backoff := reopenMin
	t := time.NewTimer(resyncInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-a.kick:
		case <-t.C:
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(settle):
		}
		select { // notifications that arrived while settling are covered by this pass
		case <-a.kick:
		default:
		}
		a.mu.Lock()
		if ctx.Err() != nil { // Close ran while we waited: open nothing again
			a.mu.Unlock()
			return
		}
		retry := a.reconcileLocked()
		a.mu.Unlock()
		next := resyncInterval
		if retry {
			next, backoff = backoff, min(2*backoff, reopenMax)
		} else {
			backoff = reopenMin
		}
		if !t.Stop() {
			select {
			case <-t.C:
			default:
			}
		}
		t.Reset(next)
	}
}

// wantedLocked maps each interface to the addresses it should answer for, and reports
// announcements that have nowhere to go.
func (a *Announcer) wantedLocked() (map[string]map[netip.Addr]struct{}, map[string]net.Interface, map[string]string) {
	problems := map[string]string{}
	ifaces, err := a.interfaces()
	if err != nil {
		problems["interfaces"] = err.Error()
		return map[string]map[netip.Addr]struct{}{}, nil, problems
	}
	byName := map[string]net.Interface{}
	for _, it := range ifaces {
		byName[it.Name] = it.Interface
	}
	want := map[string]map[netip.Addr]struct{}{}
	for _, an := range a.table.Announcements() {
		addr := an.Prefix.Addr()
		names, missing := a.linksFor(addr, an.Interfaces, ifaces)
		for _, m := range missing {
			problems["announcement/"+an.Key()+"/"+m] = fmt.Sprintf("announcement %s: interface %q is missing, down or has no usable address", an.Key(), m)
		}
		if len(names) == 0 && len(an.Interfaces) == 0 {
			problems["announcement/"+an.Key()] = fmt.Sprintf("announcement %s: no suitable interface", an.Key())
		}
		for _, n := range names {
			if want[n] == nil {
				want[n] = map[netip.Addr]struct{}{}
			}
			want[n][addr] = struct{}{}
		}
	}
	return want, byName, problems
}

// linksFor picks the interfaces for addr (see the package comment) and names the requested
// interfaces that cannot be used.
func (a *Announcer) linksFor(addr netip.Addr, requested []string, ifaces []Interface) (names, missing []string) {
	usable := map[string]Interface{}
	for _, it := range ifaces {
		if it.Flags&net.FlagUp == 0 || it.Flags&net.FlagLoopback != 0 || len(it.HardwareAddr) != 6 {
			continue
		}
		if slices.ContainsFunc(it.Prefixes, func(p netip.Prefix) bool { return a.driver.Suitable(p.Addr()) }) {
			usable[it.Name] = it
		}
	}
	if len(requested) > 0 {
		for _, r := range requested {
			if _, ok := usable[r]; ok {
				names = append(names, r)
			} else {
				missing = append(missing, r)
			}
		}
		return names, missing
	}
	var all []string
	for name, it := range usable {
		all = append(all, name)
		if slices.ContainsFunc(it.Prefixes, func(p netip.Prefix) bool { return p.Masked().Contains(addr) }) {
			names = append(names, name)
		}
	}
	if len(names) == 0 {
		names = all
	}
	sort.Strings(names)
	return names, nil
}

func (a *Announcer) openLocked(ifi net.Interface) (*link, error) {
	name := ifi.Name
	var err error
	l := &link{name: name, index: ifi.Index, mac: ifi.HardwareAddr, announcer: a, bursts: map[netip.Addr]context.CancelFunc{},
		unwatched: map[netip.Addr]error{}, running: ifi.Flags&net.FlagRunning != 0}
	empty := map[netip.Addr]struct{}{}
	l.owned.Store(&empty)
	if l.proto, err = a.driver.Open(&ifi, l); err != nil {
		return nil, fmt.Errorf("interface %s: %w", name, err)
	}
	// The burst probes every address now; the periodic cycle starts one interval later.
	l.probe.cycle = time.Now()
	a.links[name] = l
	go a.serve(l)
	a.log.Info("link opened", "interface", name, "mac", ifi.HardwareAddr.String())
	return l, nil
}

// serve runs the link's read loop. If it ends with an error (ENETDOWN when the link went
// down, or any socket failure) the link is marked dead, the announcer reports degraded, and
// the link loop reopens it: a responder never stays stopped.
func (a *Announcer) serve(l *link) {
	err := l.proto.Serve()
	if l.closed.Load() {
		return
	}
	if err == nil {
		err = errors.New("read loop ended")
	}
	l.deadReason.Store(&err)
	l.dead.Store(true)
	a.mu.Lock()
	if a.links[l.name] == l {
		a.problems["link/"+l.name] = fmt.Sprintf("interface %s: %v (reopening)", l.name, err)
	}
	a.mu.Unlock()
	a.log.Error("link stopped, reopening", "interface", l.name, "error", err)
	a.events.Publish(announcers.Event{Time: time.Now(), Error: &announcers.EventError{Message: fmt.Sprintf("interface %s: %v (reopening)", l.name, err)}})
	a.Resync()
}

func (a *Announcer) restartRefreshLocked() {
	if a.refresh != nil {
		a.refresh()
	}
	ctx, cancel := context.WithCancel(context.Background())
	a.refresh = cancel
	go a.refreshLoop(ctx, a.cfg.RefreshInterval)
}

// refreshLoop re-announces every address so switch tables and neighbour caches stay fresh.
func (a *Announcer) refreshLoop(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		a.mu.Lock()
		links := make([]*link, 0, len(a.links))
		for _, l := range a.links {
			links = append(links, l)
		}
		a.mu.Unlock()
		for _, l := range links {
			for addr := range *l.owned.Load() {
				if err := l.proto.Announce(addr); err != nil {
					a.warn("refresh failed", "interface", l.name, "address", addr, "error", err)
				}
			}
		}
	}
}

// probeLoop sends each link's conflict probes: every probeTick, the next share of the link's
// queue, so every owned address is probed about once per probeInterval at a bounded rate.
func (a *Announcer) probeLoop(ctx context.Context) {
	t := time.NewTicker(probeTick)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		a.mu.Lock()
		links := make([]*link, 0, len(a.links))
		for _, l := range a.links {
			links = append(links, l)
		}
		a.mu.Unlock()
		now := time.Now()
		for _, l := range links {
			for _, addr := range l.probe.next(now, *l.owned.Load()) {
				if !l.Owns(addr) {
					continue // withdrawn since the cycle began
				}
				if err := l.proto.Probe(addr); err != nil {
					a.warn("conflict probe failed", "interface", l.name, "address", addr, "error", err)
				}
			}
		}
	}
}

// prober is one link's probe schedule. Only the probe loop uses it.
type prober struct {
	queue []netip.Addr
	batch int
	cycle time.Time // when the current cycle began
}

// next returns the addresses to probe now: a new cycle (a sorted snapshot of owned) starts
// once the last one is done and probeInterval has passed since it began; each call takes
// the cycle's share for one tick, at most maxProbesPerTick.
func (p *prober) next(now time.Time, owned map[netip.Addr]struct{}) []netip.Addr {
	if len(p.queue) == 0 {
		if now.Sub(p.cycle) < probeInterval || len(owned) == 0 {
			return nil
		}
		p.cycle = now
		p.queue = make([]netip.Addr, 0, len(owned))
		for addr := range owned {
			p.queue = append(p.queue, addr)
		}
		slices.SortFunc(p.queue, netip.Addr.Compare)
		ticks := int(probeInterval / probeTick)
		p.batch = min(max((len(p.queue)+ticks-1)/ticks, 1), maxProbesPerTick)
	}
	n := min(p.batch, len(p.queue))
	out := p.queue[:n]
	p.queue = p.queue[n:]
	return out
}

// foreign turns a foreign claim into a conflict event, at most one per address and MAC per
// interval.
func (a *Announcer) foreign(l *link, addr netip.Addr, mac net.HardwareAddr, detail string) {
	a.mu.Lock()
	every := a.cfg.ConflictReportInterval
	a.mu.Unlock()
	if !a.conflict.allow(addr, mac.String(), time.Now(), every) {
		return
	}
	a.log.Warn("address conflict", "address", addr, "interface", l.name, "foreignMAC", mac.String(), "detail", detail)
	a.events.Publish(announcers.Event{Time: time.Now(), Conflict: &announcers.Conflict{
		Address: addr, Interface: l.name, ForeignMAC: mac.String(), Detail: detail,
	}})
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

// conflictLimiter allows one conflict report per address and foreign MAC per interval: a
// Herald peer answering during a hand-over (the speaker drops that report) must not hide a
// foreign host claiming the same address a moment later. Its map holds only reports of the
// last interval (older entries are swept once an interval), at most maxConflictMACs MACs per
// address, and only announced addresses are ever reported, so it is bounded by the desired
// set whatever the wire sends.
type conflictLimiter struct {
	mu      sync.Mutex
	last    map[conflictKey]time.Time
	perAddr map[netip.Addr]int
	swept   time.Time
}

type conflictKey struct {
	addr netip.Addr
	mac  string
}

// maxConflictMACs bounds the MACs reported for one address within an interval (a neighbour
// spraying random MACs gets that many reports, not one per frame).
const maxConflictMACs = 4

func (c *conflictLimiter) allow(addr netip.Addr, mac string, now time.Time, every time.Duration) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.last == nil {
		c.last, c.perAddr = map[conflictKey]time.Time{}, map[netip.Addr]int{}
	}
	if now.Sub(c.swept) >= every {
		for k, t := range c.last {
			if now.Sub(t) >= every {
				delete(c.last, k)
				if c.perAddr[k.addr]--; c.perAddr[k.addr] <= 0 {
					delete(c.perAddr, k.addr)
				}
			}
		}
		c.swept = now
	}
	k := conflictKey{addr, mac}
	t, ok := c.last[k]
	if ok && now.Sub(t) < every || !ok && c.perAddr[addr] >= maxConflictMACs {
		return false
	}
	if !ok {
		c.perAddr[addr]++
	}
	c.last[k] = now
	return true
}

// tracked is how many reports the limiter holds (for tests).
func (c *conflictLimiter) tracked() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.last)
}

// link is one interface's state. owned is read on every packet without the engine lock.
type link struct {
	name      string
	index     int
	mac       net.HardwareAddr
	announcer *Announcer
	proto     Link
	owned     atomic.Pointer[map[netip.Addr]struct{}]
	answered  atomic.Uint64
	malformed atomic.Uint64
	closed    atomic.Bool
	// dead is set when Serve ended on its own; the link loop then reopens the link.
	dead       atomic.Bool
	deadReason atomic.Pointer[error]
	running    bool                              // the interface had carrier at the last reconcile; engine lock
	probe      prober                            // probe loop only
	bursts     map[netip.Addr]context.CancelFunc // guarded by the engine lock
	// unwatched holds addresses whose Watch failed (e.g. too many multicast groups on the
	// socket); they are retried on every change and reported in status. Engine lock.
	unwatched map[netip.Addr]error
}

// Owns implements Handler.
func (l *link) Owns(addr netip.Addr) bool {
	_, ok := (*l.owned.Load())[addr]
	return ok
}

// Foreign implements Handler; frames from this link's own MAC (our own sends, looped back
// to the packet socket) are not foreign.
func (l *link) Foreign(addr netip.Addr, mac net.HardwareAddr, detail string) {
	if string(mac) == string(l.mac) {
		return
	}
	l.announcer.foreign(l, addr, mac, detail)
}

// Answered implements Handler.
func (l *link) Answered() { l.answered.Add(1) }

// Malformed implements Handler: the frame is counted and skipped; the log gets one line a
// second at most (see warn).
func (l *link) Malformed(err error) {
	n := l.malformed.Add(1)
	l.announcer.warn("dropped a malformed frame", "interface", l.name, "reason", err, "droppedOnLink", n)
}

func (l *link) deadErr() error {
	if p := l.deadReason.Load(); p != nil {
		return *p
	}
	return nil
}

// set makes the link answer for exactly addrs: withdrawn addresses stop being answered at
// once, new ones get a gratuitous burst.
func (l *link) set(addrs map[netip.Addr]struct{}, cfg announcers.L2Config) {
	old := *l.owned.Load()
	next := make(map[netip.Addr]struct{}, len(addrs))
	for addr := range addrs {
		next[addr] = struct{}{}
	}
	l.owned.Store(&next)
	for addr := range l.unwatched {
		if _, ok := next[addr]; !ok {
			continue // withdrawn below
		}
		if err := l.proto.Watch(addr); err == nil {
			delete(l.unwatched, addr)
		} else {
			l.unwatched[addr] = err
		}
	}
	for addr := range old {
		if _, ok := next[addr]; ok {
			continue
		}
		if cancel, ok := l.bursts[addr]; ok {
			cancel()
			delete(l.bursts, addr)
		}
		if _, failed := l.unwatched[addr]; failed {
			delete(l.unwatched, addr)
			continue
		}
		if err := l.proto.Unwatch(addr); err != nil {
			l.announcer.warn("unwatch failed", "interface", l.name, "address", addr, "error", err)
		}
	}
	for addr := range next {
		if _, ok := old[addr]; ok {
			continue
		}
		if err := l.proto.Watch(addr); err != nil {
			l.unwatched[addr] = err
			l.announcer.warn("watch failed", "interface", l.name, "address", addr, "error", err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		l.bursts[addr] = cancel
		go l.burst(ctx, addr, cfg.GratuitousCount, cfg.GratuitousInterval)
	}
}

// reburst sends the gratuitous burst again for every owned address (the link came back).
// Engine lock.
func (l *link) reburst(cfg announcers.L2Config) {
	for addr := range *l.owned.Load() {
		if cancel, ok := l.bursts[addr]; ok {
			cancel()
		}
		ctx, cancel := context.WithCancel(context.Background())
		l.bursts[addr] = cancel
		go l.burst(ctx, addr, cfg.GratuitousCount, cfg.GratuitousInterval)
	}
}

// burst probes addr once (conflict detection, see the package comment), then sends count
// gratuitous packets, interval apart, unless the address is withdrawn.
func (l *link) burst(ctx context.Context, addr netip.Addr, count int, interval time.Duration) {
	if err := l.proto.Probe(addr); err != nil {
		l.announcer.warn("conflict probe failed", "interface", l.name, "address", addr, "error", err)
	}
	t := time.NewTimer(0)
	defer t.Stop()
	for i := 0; i < count; i++ {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := l.proto.Announce(addr); err != nil {
			l.announcer.warn("gratuitous announce failed", "interface", l.name, "address", addr, "error", err)
		}
		t.Reset(interval)
	}
}

func (l *link) close() {
	l.closed.Store(true)
	for addr, cancel := range l.bursts {
		cancel()
		delete(l.bursts, addr)
	}
	empty := map[netip.Addr]struct{}{}
	l.owned.Store(&empty)
	if err := l.proto.Close(); err != nil {
		l.announcer.log.Warn("closing link", "interface", l.name, "error", err)
	}
	l.announcer.log.Info("link closed", "interface", l.name)
}
