package announce

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/tools/record"

	"github.com/herald-lb/herald/announcers"
	"github.com/herald-lb/herald/announcers/manager"
	"github.com/herald-lb/herald/framework"
)

type fakeAnnouncer struct {
	upserts []announcers.Announcement
	removes []string
	// result and err are what Apply returns.
	result manager.Result
	err    error
}

func (f *fakeAnnouncer) Apply(_ context.Context, _ string, up []announcers.Announcement, rm []string) (manager.Result, error) {
	f.upserts = append(f.upserts, up...)
	f.removes = append(f.removes, rm...)
	return f.result, f.err
}

type fakeStatus struct{ published, retracted []string }

func (f *fakeStatus) Publish(_ context.Context, svc framework.ServiceKey, ip netip.Addr, itfs []string) error {
	f.published = append(f.published, svc.String()+"@"+ip.String()+"="+strings.Join(itfs, ","))
	return nil
}

func (f *fakeStatus) Retract(_ context.Context, svc framework.ServiceKey, ip netip.Addr) error {
	f.retracted = append(f.retracted, svc.String()+"@"+ip.String())
	return nil
}

func testUnit(announcers ...string) *framework.Unit {
	return &framework.Unit{
		IP:              netip.MustParseAddr("192.0.2.10"),
		Mode:            framework.ModeL2,
		Services:        []*framework.ServiceInfo{{Key: framework.ServiceKey{Namespace: "default", Name: "web"}}, {Key: framework.ServiceKey{Namespace: "default", Name: "web-udp"}}},
		AnnouncingNodes: announcers,
	}
}

func testState() *framework.CycleState {
	node := &framework.NodeInfo{Name: "node-a", Speaker: &framework.SpeakerInfo{RenewTime: time.Unix(0, 0), LeaseDuration: time.Minute,
		Interfaces: []framework.Interface{{Name: "eth0", Up: true, Prefixes: []netip.Prefix{netip.MustParsePrefix("192.0.2.1/24")}}}}}
	st := framework.NewCycleState(framework.NewSnapshot(time.Unix(1, 0), []*framework.NodeInfo{node, {Name: "node-b"}}))
	st.SetSummary(func() string { return "2/2 nodes can announce 192.0.2.10; selected node-a" })
	st.Write(framework.InterfaceChoiceKey, eth0Choice{})
	return st
}

// eth0Choice is the Interfaces filter's recorded choice: announce on eth0.
type eth0Choice struct{}

func (eth0Choice) Clone() framework.StateData { return eth0Choice{} }
func (eth0Choice) Interfaces(*framework.Unit, *framework.NodeInfo) []string {
	return []string{"eth0"}
}

type env struct {
	p      *Plugin
	ann    *fakeAnnouncer
	status *fakeStatus
	rec    *record.FakeRecorder
	claim  bool
	leave  bool
	// down, when set, is why the announcer cannot answer (Router.Answers).
	down error
}

func newEnv() *env {
	e := &env{ann: &fakeAnnouncer{}, status: &fakeStatus{}, rec: record.NewFakeRecorder(10), claim: true, leave: true}
	e.p = New("node-a", Deps{
		Ledger:   NewLedger(e.ann, StatusWriters{L2: e.status}, e),
		Router:   fakeRouter{e: e, names: map[framework.AnnouncerKind]string{framework.AnnouncerKindL2v4: "arp", framework.AnnouncerKindL2v6: "ndp"}},
		Recorder: e.rec,
	})
	return e
}

// MayClaim and MayWithdraw are the env's gate.
func (e *env) MayClaim() bool    { return e.claim }
func (e *env) MayWithdraw() bool { return e.leave }

// fakeRouter routes each kind of unit to the named announcer, which answers unless e.down.
type fakeRouter struct {
	e     *env
	names map[framework.AnnouncerKind]string
}

func (r fakeRouter) AnnouncerFor(kind framework.AnnouncerKind) string { return r.names[kind] }
func (r fakeRouter) Answers(string) error                             { return r.e.down }

func (e *env) events() []string {
	var out []string
	for {
		select {
		case ev := <-e.rec.Events:
			out = append(out, ev)
		default:
			return out
		}
	}
}

func TestBindAnnouncesWhenSelected(t *testing.T) {
	e := newEnv()
	st := e.p.Bind(context.Background(), testState(), testUnit("node-b"), []string{"node-a"})
	if !st.IsSuccess() {
		t.Fatalf("Bind: %v", st.AsError())
	}
	if len(e.ann.upserts) != 1 || e.ann.upserts[0].Prefix.String() != "192.0.2.10/32" || !slices.Equal(e.ann.upserts[0].Interfaces, []string{"eth0"}) {
		t.Fatalf("upserts = %+v", e.ann.upserts)
	}
	want := []string{"default/web@192.0.2.10=eth0", "default/web-udp@192.0.2.10=eth0"}
	if !slices.Equal(e.status.published, want) {
		t.Fatalf("published = %v, want %v", e.status.published, want)
	}
	evs := e.events()
	if len(evs) != 2 || !strings.Contains(evs[0], ReasonNodeChanged) || !strings.Contains(evs[0], "(was node-b)") || !strings.Contains(evs[0], "selected node-a") {
		t.Fatalf("events = %v", evs)
	}
	// A second cycle with the same answer sends nothing to the announcer and records no Event.
	e.p.Bind(context.Background(), testState(), testUnit("node-a"), []string{"node-a"})
	if len(e.ann.upserts) != 1 || len(e.events()) != 0 {
		t.Fatalf("repeat cycle changed something: upserts %d", len(e.ann.upserts))
	}
	if got := e.p.ledger.ServicesOf(netip.MustParseAddr("192.0.2.10")); len(got) != 2 {
		t.Fatalf("ServicesOf = %v", got)
	}
}

func TestBindWithdrawsWhenNotSelected(t *testing.T) {
	e := newEnv()
	e.p.Bind(context.Background(), testState(), testUnit(), []string{"node-a"})
	e.events()
	st := e.p.Bind(context.Background(), testState(), testUnit("node-a"), []string{"node-b"})
	if !st.IsSuccess() {
		t.Fatalf("Bind: %v", st.AsError())
	}
	if !slices.Equal(e.ann.removes, []string{"192.0.2.10/L2"}) {
		t.Fatalf("removes = %v", e.ann.removes)
	}
	if len(e.status.retracted) != 2 || len(e.p.ledger.List()) != 0 {
		t.Fatalf("retracted = %v, announced = %v", e.status.retracted, e.p.ledger.List())
	}
	if evs := e.events(); len(evs) != 0 {
		t.Fatalf("a handover to another node is that node's event, got %v", evs)
	}
}

func TestBindWithdrawsWithNoNodeRecordsWarning(t *testing.T) {
	e := newEnv()
	e.p.Bind(context.Background(), testState(), testUnit(), []string{"node-a"})
	e.events()
	e.p.Bind(context.Background(), testState(), testUnit("node-a"), nil)
	evs := e.events()
	if len(evs) != 2 || !strings.HasPrefix(evs[0], "Warning "+ReasonNoNode) {
		t.Fatalf("events = %v", evs)
	}
}

func TestBindKeepsAndDoesNotClaimWhenToldSo(t *testing.T) {
	e := newEnv()
	e.p.Bind(context.Background(), testState(), testUnit(), []string{"node-a"})
	e.leave = false
	e.p.Bind(context.Background(), testState(), testUnit("node-a"), nil)
	if len(e.ann.removes) != 0 || len(e.p.ledger.List()) != 1 {
		t.Fatalf("withdrew while MayWithdraw is false: removes %v", e.ann.removes)
	}
	e2 := newEnv()
	e2.claim = false
	e2.p.Bind(context.Background(), testState(), testUnit(), []string{"node-a"})
	if len(e2.ann.upserts) != 0 || len(e2.status.published) != 0 {
		t.Fatalf("claimed while MayClaim is false: %v", e2.ann.upserts)
	}
}

func TestBindSkipsBGPAndRetractsStaleStatus(t *testing.T) {
	e := newEnv()
	u := testUnit()
	u.Mode = framework.ModeBGP
	if st := e.p.Bind(context.Background(), testState(), u, []string{"node-a"}); !st.IsSkip() {
		t.Fatalf("BGP unit: got %v, want Skip", st.Code())
	}
	// Not announcing, but the status objects still name this node (written before a restart).
	e.p.Bind(context.Background(), testState(), testUnit("node-a"), []string{"node-b"})
	if len(e.status.retracted) != 2 || len(e.ann.removes) != 0 {
		t.Fatalf("retracted = %v removes = %v", e.status.retracted, e.ann.removes)
	}
}

// A node selected while its announcer cannot answer claims nothing: no status names it, no
// Event says it took over, and the cycle fails so that it is retried.
func TestBindDoesNotClaimWhereNothingAnswers(t *testing.T) {
	e := newEnv()
	e.down = errors.New("announcer arp refused: checksum mismatch")
	st := e.p.Bind(context.Background(), testState(), testUnit("node-b"), []string{"node-a"})
	if st.IsSuccess() || !strings.Contains(st.AsError().Error(), "checksum mismatch") {
		t.Fatalf("Bind = %v, want an error with the announcer's reason", st.AsError())
	}
	if len(e.ann.upserts) != 0 || len(e.status.published) != 0 || len(e.events()) != 0 || len(e.p.ledger.List()) != 0 {
		t.Fatalf("claimed: upserts %v published %v announced %v", e.ann.upserts, e.status.published, e.p.ledger.List())
	}
}

// An announcer that stops between the health check and Apply: the manager keeps the
// announcement (it is this node's to withdraw), but nothing claims it until it answers.
func TestBindClaimsOnlyOnceTheAnnouncerHasIt(t *testing.T) {
	e := newEnv()
	e.ann.err = fmt.Errorf("arp: %w", manager.ErrUnavailable)
	if st := e.p.Bind(context.Background(), testState(), testUnit("node-b"), []string{"node-a"}); st.IsSuccess() {
		t.Fatal("Bind succeeded while the announcer was unavailable")
	}
	if a := e.p.ledger.List(); len(a) != 1 || a[0].Claimed || len(e.status.published) != 0 || len(e.events()) != 0 {
		t.Fatalf("announced %+v, published %v", a, e.status.published)
	}
	e.ann.err = nil
	if st := e.p.Bind(context.Background(), testState(), testUnit("node-b"), []string{"node-a"}); !st.IsSuccess() {
		t.Fatalf("Bind once back: %v", st.AsError())
	}
	if a := e.p.ledger.List(); len(a) != 1 || !a[0].Claimed || len(e.status.published) != 2 {
		t.Fatalf("announced %+v, published %v", a, e.status.published)
	}
	if evs := e.events(); len(evs) != 2 || !strings.Contains(evs[0], "(was node-b)") {
		t.Fatalf("events %v", evs)
	}
	e.p.Bind(context.Background(), testState(), testUnit("node-a"), []string{"node-b"})
	if !slices.Equal(e.ann.removes, []string{"192.0.2.10/L2"}) {
		t.Fatalf("removes %v", e.ann.removes)
	}
}

// Make before break: a warming node announces what it will win without claiming it; when
// the others see it as a candidate the same unit is claimed, without sending it again.
func TestBindWithoutClaimAnnouncesAhead(t *testing.T) {
	e := newEnv()
	quietState := testState()
	WithoutClaim(quietState)
	if st := e.p.Bind(context.Background(), quietState, testUnit("node-b"), []string{"node-a"}); !st.IsSuccess() {
		t.Fatalf("Bind: %v", st.AsError())
	}
	if len(e.ann.upserts) != 1 || len(e.status.published) != 0 || len(e.events()) != 0 {
		t.Fatalf("ahead: upserts %v published %v", e.ann.upserts, e.status.published)
	}
	if a := e.p.ledger.List(); len(a) != 1 || a[0].Claimed {
		t.Fatalf("announced %+v", a)
	}
	e.p.Bind(context.Background(), testState(), testUnit("node-b"), []string{"node-a"})
	if len(e.ann.upserts) != 1 || len(e.status.published) != 2 {
		t.Fatalf("claim: upserts %v published %v", e.ann.upserts, e.status.published)
	}
	if evs := e.events(); len(evs) != 2 || !strings.Contains(evs[0], ReasonNodeChanged) {
		t.Fatalf("events %v", evs)
	}
}

// What the announcer manager answers decides the claim: only an acknowledged announcement is
// claimed (status objects, the NodeChanged Event). A change the manager keeps for later (the
// announcer restarting, idle, slow) or for an announcer that was refused is this node's to
// withdraw but not claimed, and the cycle fails so that it is retried; an address the
// announcer rejects fails with an AnnounceFailed Event.
func TestBindFollowsTheManagersResult(t *testing.T) {
	for _, tc := range []struct {
		name      string
		result    manager.Result
		err       error
		claimed   bool
		announced bool
		event     string
	}{
		{name: "acknowledged", claimed: true, announced: true, event: ReasonNodeChanged},
		{name: "pending", result: manager.Result{Pending: "not running (unhealthy: process exited); kept and replayed when it is back"}, announced: true},
		{name: "refused", result: manager.Result{Pending: "refused: checksum mismatch"}, err: fmt.Errorf("announcer %q: %w", "arp", manager.ErrRefused), announced: true},
		{name: "rejected", result: manager.Result{ApplyResult: announcers.ApplyResult{Rejected: []announcers.Rejection{{ID: "192.0.2.10/L2", Reason: "no such interface"}}}}, event: ReasonAnnounceFailed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv()
			e.ann.result, e.ann.err = tc.result, tc.err
			st := e.p.Bind(context.Background(), testState(), testUnit(), []string{"node-a"})
			if st.IsSuccess() != tc.claimed {
				t.Fatalf("Bind = %v, want success %v", st.AsError(), tc.claimed)
			}
			evs := e.events()
			if tc.event == "" && len(evs) > 0 || tc.event != "" && (len(evs) == 0 || !strings.Contains(evs[0], tc.event)) {
				t.Fatalf("events = %v, want %q first", evs, tc.event)
			}
			a := e.p.ledger.List()
			if len(a) == 1 != tc.announced || len(a) == 1 && a[0].Claimed != tc.claimed {
				t.Fatalf("announced = %+v, want announced %v claimed %v", a, tc.announced, tc.claimed)
			}
			if claimed := len(e.status.published) > 0; claimed != tc.claimed {
				t.Fatalf("published = %v, want claimed %v", e.status.published, tc.claimed)
			}
		})
	}
}

// A unit the manager kept without an acknowledgement (the announcer starting on demand,
// restarting) is sent again by the next cycle and claimed only once the announcer has it: a
// warming node that took the record for an answer published itself ready while nothing
// answered, and the old owner withdrew (issue 13, defect 5). Quiet cycles count the same way.
func TestBindSendsAPendingUnitAgain(t *testing.T) {
	pending := manager.Result{Pending: "idle: starting it; the change is sent once it runs"}
	for _, tc := range []struct {
		name    string
		second  manager.Result
		quiet   bool
		success bool
		claimed bool
	}{
		{name: "still pending", second: pending},
		{name: "acknowledged", success: true, claimed: true},
		{name: "still pending, quiet", second: pending, quiet: true},
		{name: "acknowledged, quiet", quiet: true, success: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv()
			e.ann.result = pending
			if st := e.p.Bind(context.Background(), testState(), testUnit(), []string{"node-a"}); st.IsSuccess() {
				t.Fatal("Bind succeeded while the manager only kept the announcement")
			}
			e.ann.result = tc.second
			st := testState()
			if tc.quiet {
				WithoutClaim(st)
			}
			if got := e.p.Bind(context.Background(), st, testUnit(), []string{"node-a"}); got.IsSuccess() != tc.success {
				t.Fatalf("second Bind = %v, want success %v", got.AsError(), tc.success)
			}
			if len(e.ann.upserts) != 2 {
				t.Fatalf("upserts %v, want the announcement sent again", e.ann.upserts)
			}
			if claimed := len(e.status.published) > 0; claimed != tc.claimed {
				t.Fatalf("published %v, want claimed %v", e.status.published, tc.claimed)
			}
			// Once acknowledged, a cycle sends nothing more.
			e.p.Bind(context.Background(), testState(), testUnit(), []string{"node-a"})
			if want := 2 + map[bool]int{true: 0, false: 1}[tc.success]; len(e.ann.upserts) != want {
				t.Fatalf("after a third Bind: upserts %d, want %d", len(e.ann.upserts), want)
			}
		})
	}
}

// A profile whose filters recorded no interface choice (no Interfaces PreFilter) gives Bind
// nothing to announce on: it fails the cycle and announces nothing, rather than guessing.
func TestBindWithoutInterfaceChoiceAnnouncesNothing(t *testing.T) {
	e := newEnv()
	st := framework.NewCycleState(testState().Snapshot())
	got := e.p.Bind(context.Background(), st, testUnit(), []string{"node-a"})
	if got.Code() != framework.Error || !strings.Contains(got.Message(), "no filter chose its interfaces") {
		t.Fatalf("Bind = %v %q, want an Error naming the missing choice", got.Code(), got.Message())
	}
	if len(e.ann.upserts) != 0 || len(e.status.published) != 0 || len(e.p.ledger.List()) != 0 {
		t.Fatalf("announced without a choice: upserts %v, published %v", e.ann.upserts, e.status.published)
	}
}
