package bgp

import (
	"context"
	"net/netip"
	"sort"
	"time"

	"github.com/herald-lb/herald/announcers"
)

// reconcileLocked makes the speaker originate what the table wants: export filters first (so a
// path is never sent to a peer it is restricted from), then changed paths, then withdrawals.
// Failures are reported in res when given.
func (a *Announcer) reconcileLocked(ctx context.Context, res *announcers.ApplyResult) {
	if a.speaker == nil {
		return
	}
	want, owners := mergeRoutes(a.table.Announcements())
	peerAddr := map[string]netip.Addr{}
	for n, p := range a.peers {
		if p.added {
			peerAddr[n] = p.cfg.Address
		}
	}
	// Export filters, per peer: the prefixes restricted to other peers. They are installed
	// before paths are added, so a new path never reaches a peer it is restricted from.
	var refresh []netip.Addr
	for name, addr := range peerAddr {
		var deny []netip.Prefix
		for pfx, r := range want {
			if !r.allows(name) {
				deny = append(deny, pfx)
			}
		}
		sortPrefixes(deny)
		if samePrefixes(deny, a.denied[addr]) {
			continue
		}
		if err := a.speaker.SetExportFilter(ctx, addr, deny); err != nil {
			a.log.Error("export filter", "peer", name, "error", err)
			a.events.Publish(announcers.Event{Time: time.Now(), Error: &announcers.EventError{Message: err.Error()}})
			continue
		}
		refresh = append(refresh, addr)
		if len(deny) == 0 {
			delete(a.denied, addr)
		} else {
			a.denied[addr] = deny
		}
	}
	// Paths already sent are re-evaluated against a changed filter by refreshing the peer.
	defer func() {
		for _, addr := range refresh {
			if err := a.speaker.RefreshPeer(ctx, addr); err != nil {
				a.log.Warn("refresh after export filter change", "address", addr, "error", err)
			}
		}
	}()

	var add []Path
	for pfx, r := range want {
		old := a.announced[pfx]
		if old == nil || !old.path.equal(r.path) {
			add = append(add, r.path)
		}
	}
	sort.Slice(add, func(i, j int) bool { return prefixLess(add[i].Prefix, add[j].Prefix) })
	ids, errs := a.speaker.AddPaths(add)
	for i, p := range add {
		if errs[i] != nil {
			delete(a.announced, p.Prefix)
			for _, id := range owners[p.Prefix] {
				if res != nil {
					res.Rejected = append(res.Rejected, announcers.Rejection{ID: id, Reason: errs[i].Error()})
				}
			}
			continue
		}
		r := want[p.Prefix]
		r.id = ids[i]
		a.announced[p.Prefix] = r
	}
	for pfx, r := range want {
		if cur := a.announced[pfx]; cur != nil && cur != r {
			r.id = cur.id
			a.announced[pfx] = r
		}
	}
	var gone []netip.Prefix
	var goneIDs []PathID
	for pfx, r := range a.announced {
		if want[pfx] == nil {
			gone = append(gone, pfx)
			goneIDs = append(goneIDs, r.id)
		}
	}
	if err := a.speaker.DeletePaths(goneIDs, gone); err != nil {
		a.log.Error("withdraw", "error", err)
		a.events.Publish(announcers.Event{Time: time.Now(), Error: &announcers.EventError{Message: err.Error()}})
		return
	}
	for _, p := range gone {
		delete(a.announced, p)
	}
}
