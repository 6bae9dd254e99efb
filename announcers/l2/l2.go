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
package l2

import (
	"context"
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

// Link is the protocol running on one interface.
type Link interface {
	// Serve reads and answers packets until Close.
	Serve() error
	// Announce sends one gratuitous ARP / unsolicited NA for addr.
	Announce(addr netip.Addr) error
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

	warnMu         sync.Mutex
	warnLast       map[string]time.Time
	warnSuppressed map[string]int
}

// New returns an L2 announcer speaking the driver's protocol. It starts the refresh loop;
// Close stops everything.
func New(driver Driver, log hclog.Logger, interfaces Interfaces, version string) *Announcer {
	if interfaces == nil {
		interfaces = SystemInterfaces
	}
	a := &Announcer{
		driver: driver, log: log, interfaces: interfaces, version: version,
		cfg:   announcers.L2Config{}.WithDefaults(),
		links: map[string]*link{}, problems: map[string]string{},
		warnLast: map[string]time.Time{}, warnSuppressed: map[string]int{},
	}
	a.table = announcers.NewTable(a.validate)
	a.conflict.last = map[netip.Addr]time.Time{}
	a.restartRefreshLocked()
	return a
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
	a.reconcileLocked()
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
	a.reconcileLocked()
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
	a.reconcileLocked()
	a.log.Info("drained", "withdrawn", n)
	return n, nil
}

// Close stops the refresh loop and closes every link.
func (a *Announcer) Close() {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.refresh()
	for name, l := range a.links {
		l.close()
		delete(a.links, name)
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

// reconcileLocked makes the links answer for exactly the desired addresses.
func (a *Announcer) reconcileLocked() {
	want, ifaces, problems := a.wantedLocked()
	a.problems = problems
	for name, l := range a.links {
		if _, ok := want[name]; !ok {
			l.close()
			delete(a.links, name)
		}
	}
	for name, addrs := range want {
		l, ok := a.links[name]
		if !ok {
			var err error
			if l, err = a.openLocked(ifaces[name]); err != nil {
				a.problems["link/"+name] = err.Error()
				a.log.Error("cannot open link", "interface", name, "error", err)
				continue
			}
		}
		l.set(addrs, a.cfg)
		for addr, err := range l.unwatched {
			a.problems["watch/"+name+"/"+addr.String()] = fmt.Sprintf("interface %s: address %s: %v", name, addr, err)
		}
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
	l := &link{name: name, mac: ifi.HardwareAddr, announcer: a, bursts: map[netip.Addr]context.CancelFunc{}, unwatched: map[netip.Addr]error{}}
	empty := map[netip.Addr]struct{}{}
	l.owned.Store(&empty)
	if l.proto, err = a.driver.Open(&ifi, l); err != nil {
		return nil, fmt.Errorf("interface %s: %w", name, err)
	}
	a.links[name] = l
	go func() {
		if err := l.proto.Serve(); err != nil && !l.closed.Load() {
			a.log.Error("link stopped", "interface", name, "error", err)
			a.events.Publish(announcers.Event{Time: time.Now(), Error: &announcers.EventError{Message: fmt.Sprintf("interface %s: %v", name, err)}})
		}
	}()
	a.log.Info("link opened", "interface", name, "mac", ifi.HardwareAddr.String())
	return l, nil
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

// foreign turns a foreign claim into a conflict event, at most one per address per interval.
func (a *Announcer) foreign(l *link, addr netip.Addr, mac net.HardwareAddr, detail string) {
	a.mu.Lock()
	every := a.cfg.ConflictReportInterval
	a.mu.Unlock()
	if !a.conflict.allow(addr, time.Now(), every) {
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

type conflictLimiter struct {
	mu   sync.Mutex
	last map[netip.Addr]time.Time
}

func (c *conflictLimiter) allow(addr netip.Addr, now time.Time, every time.Duration) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if t, ok := c.last[addr]; ok && now.Sub(t) < every {
		return false
	}
	c.last[addr] = now
	return true
}

// link is one interface's state. owned is read on every packet without the engine lock.
type link struct {
	name      string
	mac       net.HardwareAddr
	announcer *Announcer
	proto     Link
	owned     atomic.Pointer[map[netip.Addr]struct{}]
	answered  atomic.Uint64
	closed    atomic.Bool
	bursts    map[netip.Addr]context.CancelFunc // guarded by the engine lock
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

// burst sends count gratuitous packets, interval apart, unless the address is withdrawn.
func (l *link) burst(ctx context.Context, addr netip.Addr, count int, interval time.Duration) {
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
