package speaker

import (
	"github.com/herald-lb/herald/announcers"
	"github.com/herald-lb/herald/framework"
	"github.com/herald-lb/herald/speaker/announce"
)

// changeGate is the ledger's gate: this node withdraws only while its heartbeat is current
// (frozen says why not) and it is not draining (the drain withdraws at the end, after the
// hand-over); it claims on the same terms, or while it settles (see mayClaim).
type changeGate struct{ s *Speaker }

var _ announce.Gate = changeGate{}

// MayClaim implements announce.Gate.
func (g changeGate) MayClaim() bool { return g.s.mayClaim() }

// MayWithdraw implements announce.Gate.
func (g changeGate) MayWithdraw() bool { return g.s.frozen() == "" && !g.s.hb.isDraining() }

// announcerRoutes is the Announce plugin's router: the manager's announcer of each kind of
// unit, and whether it answers as this node's readiness counts it.
type announcerRoutes struct{ s *Speaker }

var _ announce.Router = announcerRoutes{}

// managerKinds maps a kind of unit to the kind of announcer that serves it (the inverse of
// announcerKinds).
var managerKinds = map[framework.AnnouncerKind]string{
	framework.AnnouncerKindL2v4: announcers.KindARP,
	framework.AnnouncerKindL2v6: announcers.KindNDP,
	framework.AnnouncerKindBGP:  announcers.KindBGP,
}

// AnnouncerFor implements announce.Router.
func (r announcerRoutes) AnnouncerFor(kind framework.AnnouncerKind) string {
	return r.s.mgr.For(managerKinds[kind])
}

// Answers implements announce.Router.
func (r announcerRoutes) Answers(name string) error { return r.s.answers(name) }
