package announce

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sort"
	"sync"

	"github.com/herald-lb/herald/announcers"
	"github.com/herald-lb/herald/announcers/manager"
	"github.com/herald-lb/herald/framework"
)

// Gate says whether this node may change what it holds now.
type Gate interface {
	// MayClaim reports whether this node may start announcing a unit it does not hold yet:
	// false while the others may not see it alive (its heartbeat is not current, unless it is
	// settling after an outage) and while it drains.
	MayClaim() bool
	// MayWithdraw reports whether this node may withdraw a unit it holds: false while its view
	// may be stale (its heartbeat is not current) and while it drains (the drain withdraws at
	// the end).
	MayWithdraw() bool
}

// StatusWriters are the writers of this node's status objects, one per mode.
type StatusWriters struct {
	// L2 writes ServiceL2Status objects; the list it publishes is the interfaces.
	L2 StatusWriter
	// BGP writes ServiceBGPStatus objects; the list it publishes is the peers.
	BGP StatusWriter
}

// For returns the writer of a mode; nil when none is given.
func (w StatusWriters) For(mode framework.Mode) StatusWriter {
	if mode == framework.ModeBGP {
		return w.BGP
	}
	return w.L2
}

// Ledger is what this node holds: the units it announces, the announcements it sent for each
// and the Services its status objects name it for. The speaker owns one and every profile's
// Announce plugin decides over it; the ledger keeps the books, withdraws and forgets. A unit
// is in the ledger from the moment its announcements are sent (or kept by the manager) until
// they are removed, so nothing this node announces is ever left without a record to withdraw.
type Ledger struct {
	announcer Announcer
	status    StatusWriters
	gate      Gate

	mu   sync.Mutex
	held map[string]Current
	// units serialises the changes of one unit: the speaker's workers may run a unit's cycle
	// twice at once (a full pass and the unit's own key), and without it both would see the
	// unit as new, send it twice and count it twice.
	units unitLocks
}

// NewLedger returns an empty ledger that sends through a and writes status objects with
// status. A nil gate never closes.
func NewLedger(a Announcer, status StatusWriters, gate Gate) *Ledger {
	return &Ledger{announcer: a, status: status, gate: gate, held: map[string]Current{}}
}

func (l *Ledger) mayClaim() bool { return l.gate == nil || l.gate.MayClaim() }

func (l *Ledger) mayWithdraw() bool { return l.gate == nil || l.gate.MayWithdraw() }

// lock locks the unit's key and returns the unlock.
func (l *Ledger) lock(key string) func() { return l.units.lock(key) }

func (l *Ledger) get(key string) (Current, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	cur, ok := l.held[key]
	return cur, ok
}

func (l *Ledger) hold(cur Current) {
	l.mu.Lock()
	l.held[cur.Key] = cur
	l.mu.Unlock()
}

// errPending is wrapped by send when the manager keeps a change for later.
var errPending = errors.New("pending")

// send applies a delta of one unit's announcements and reports a rejection of any of them.
func (l *Ledger) send(ctx context.Context, name string, ip netip.Addr, upserts []announcers.Announcement, removes []string) error {
	res, err := l.announcer.Apply(ctx, name, upserts, removes)
	if why, kept := manager.Kept(res, err); kept {
		// Kept in the manager's desired state and sent (or replayed) when it can be; until
		// then nothing answers for it here.
		return fmt.Errorf("announce %s through %q: %w: %s", ip, name, errPending, why)
	}
	if err != nil {
		return fmt.Errorf("announce %s through %q: %w", ip, name, err)
	}
	var errs []error
	for _, r := range res.Rejected {
		for _, a := range upserts {
			if r.ID == a.Key() {
				errs = append(errs, fmt.Errorf("announcer %q rejected %s: %s", name, ip, r.Reason))
			}
		}
	}
	return errors.Join(errs...)
}

// List returns what this node holds now, sorted by key.
func (l *Ledger) List() []Current {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]Current, 0, len(l.held))
	for _, c := range l.held {
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out
}

// ServicesOf returns the Services of the unit this node holds for ip, if any.
func (l *Ledger) ServicesOf(ip netip.Addr) []framework.ServiceKey {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, c := range l.held {
		if c.IP == ip {
			return c.Services
		}
	}
	return nil
}

// withdraw removes cur's announcements, drops it from the ledger and deletes the status
// objects this node published for it. The caller holds the unit's lock and has asked the gate.
func (l *Ledger) withdraw(ctx context.Context, cur Current) error {
	if err := l.remove(ctx, cur); err != nil {
		return err
	}
	// This node announced the unit, so its status objects may exist even if the snapshot
	// does not show them yet: retract them whatever the unit's announcers say (Retract
	// deletes only objects that name this node).
	return l.Retract(ctx, cur)
}

func (l *Ledger) remove(ctx context.Context, cur Current) error {
	// A pending result is fine: the manager withdraws it as soon as it can.
	res, err := l.announcer.Apply(ctx, cur.Announcer, nil, cur.ids())
	if _, kept := manager.Kept(res, err); err != nil && !kept {
		return fmt.Errorf("withdraw %s through %q: %w", cur.IP, cur.Announcer, err)
	}
	l.mu.Lock()
	delete(l.held, cur.Key)
	l.mu.Unlock()
	return nil
}

// Retract deletes the status objects this node published for cur.
func (l *Ledger) Retract(ctx context.Context, cur Current) error {
	w := l.status.For(cur.Mode)
	if w == nil {
		return nil
	}
	var errs []error
	for _, svc := range cur.Services {
		if err := w.Retract(ctx, svc, cur.IP); err != nil {
			errs = append(errs, fmt.Errorf("service %s: status: %w", svc, err))
		}
	}
	return errors.Join(errs...)
}

// Forget withdraws a unit that no longer exists (its Services were deleted or lost the IP,
// or its class is not Herald's): no cycle runs for it any more. It keeps the unit while the
// gate is closed.
func (l *Ledger) Forget(ctx context.Context, key string) error {
	defer l.lock(key)()
	cur, ok := l.get(key)
	if !ok {
		return nil
	}
	if !l.mayWithdraw() {
		return nil
	}
	return l.withdraw(ctx, cur)
}
