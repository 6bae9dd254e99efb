package speaker

import (
	"context"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"sort"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/client-go/tools/record"
	"k8s.io/klog/v2"

	"github.com/herald-lb/herald/announcers"
	"github.com/herald-lb/herald/announcers/manager"
	metallbv1beta1 "github.com/herald-lb/herald/config/metallb/v1beta1"
	metallbv1beta2 "github.com/herald-lb/herald/config/metallb/v1beta2"
)

// Event reasons recorded on BGPPeers.
const (
	// ReasonPeerInvalid: the speaker could not turn the BGPPeer into a session for this node.
	ReasonPeerInvalid = "InvalidBGPPeer"
	// ReasonPeerRejected: the BGP announcer refused the peer's configuration.
	ReasonPeerRejected = "BGPPeerRejected"
)

// peerInputs is what the BGP configuration of one node is computed from.
type peerInputs struct {
	// Namespace is the speaker's namespace: BGPPeers, BFDProfiles and password Secrets are
	// read there only, as in MetalLB, so a tenant cannot point a session at its own Secret.
	Namespace  string
	NodeLabels map[string]string
	Peers      []*metallbv1beta2.BGPPeer
	BFD        map[string]*metallbv1beta1.BFDProfile
	// Secret returns a Secret of Namespace (an apierrors NotFound error when missing).
	Secret func(name string) (*corev1.Secret, error)
}

// peerProblem is a BGPPeer the speaker left out, and why (the error names the field).
type peerProblem struct {
	Peer *metallbv1beta2.BGPPeer
	Err  error
}

// buildPeers returns the announcer's peers for this node (the BGPPeers whose nodeSelectors
// admit it), sorted by name, and the peers it had to leave out. A bad peer never affects the
// others.
func buildPeers(in peerInputs) ([]announcers.BGPPeer, []peerProblem) {
	var out []announcers.BGPPeer
	var problems []peerProblem
	for _, p := range in.Peers {
		if p.Namespace != in.Namespace {
			continue
		}
		selected, err := selectsNode(p.Spec.NodeSelectors, in.NodeLabels)
		if err != nil {
			problems = append(problems, peerProblem{p, err})
			continue
		}
		if !selected {
			continue
		}
		bp, err := convertPeer(p, in)
		if err != nil {
			problems = append(problems, peerProblem{p, err})
			continue
		}
		out = append(out, bp)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, problems
}

func selectsNode(sels []metav1.LabelSelector, nodeLabels map[string]string) (bool, error) {
	if len(sels) == 0 {
		return true, nil
	}
	path := field.NewPath("spec", "nodeSelectors")
	var errs field.ErrorList
	matched := false
	for i := range sels {
		s, err := metav1.LabelSelectorAsSelector(&sels[i])
		if err != nil {
			errs = append(errs, field.Invalid(path.Index(i), sels[i].String(), err.Error()))
			continue
		}
		if s.Matches(labels.Set(nodeLabels)) {
			matched = true
		}
	}
	if len(errs) > 0 {
		// A selector that cannot be read might have selected this node: leave the peer out
		// rather than guess.
		return false, errs.ToAggregate()
	}
	return matched, nil
}

// convertPeer turns one BGPPeer into the announcer's terms, resolving its password Secret and
// BFD profile. Checks of values the announcer understands (hold time, addresses, BFD limits)
// are the announcer's, which reports them per peer.
func convertPeer(p *metallbv1beta2.BGPPeer, in peerInputs) (announcers.BGPPeer, error) {
	spec := field.NewPath("spec")
	s := p.Spec
	out := announcers.BGPPeer{
		Name: p.Name, MyASN: s.MyASN, PeerASN: s.ASN, DynamicASN: string(s.DynamicASN),
		Address: s.Address, Port: s.Port, SourceAddress: s.SrcAddress, RouterID: s.RouterID,
		HoldTime: duration(s.HoldTime), KeepaliveTime: duration(s.KeepaliveTime), ConnectTime: duration(s.ConnectTime),
		EBGPMultiHop: s.EBGPMultiHop, VRF: s.VRFName, Interface: s.Interface,
		EnableGracefulRestart: s.EnableGracefulRestart, DisableMP: s.DisableMP, DualStackAddressFamily: s.DualStackAddressFamily,
		Password: announcers.Secret(s.Password),
	}
	var errs field.ErrorList
	if ref := s.PasswordSecret; ref != nil && ref.Name != "" {
		pw, err := readPassword(ref, in, spec.Child("passwordSecret"))
		if err != nil {
			errs = append(errs, err)
		}
		if s.Password != "" {
			errs = append(errs, field.Forbidden(spec.Child("password"), "password and passwordSecret are mutually exclusive"))
		}
		out.Password = pw
	}
	if s.BFDProfile != "" {
		prof, ok := in.BFD[s.BFDProfile]
		if !ok {
			errs = append(errs, field.NotFound(spec.Child("bfdProfile"), fmt.Sprintf("BFDProfile %s/%s", in.Namespace, s.BFDProfile)))
		} else {
			out.BFD = convertBFD(prof)
		}
	}
	if len(errs) > 0 {
		return announcers.BGPPeer{}, errs.ToAggregate()
	}
	return out, nil
}

// readPassword reads the "password" key of a kubernetes.io/basic-auth Secret in the speaker's
// namespace. Errors never contain the value.
func readPassword(ref *corev1.SecretReference, in peerInputs, path *field.Path) (announcers.Secret, *field.Error) {
	if ref.Namespace != "" && ref.Namespace != in.Namespace {
		return "", field.Forbidden(path.Child("namespace"), fmt.Sprintf("%q: the Secret must be in the speaker's namespace %q", ref.Namespace, in.Namespace))
	}
	sec, err := in.Secret(ref.Name)
	if apierrors.IsNotFound(err) {
		return "", field.NotFound(path.Child("name"), fmt.Sprintf("Secret %s/%s", in.Namespace, ref.Name))
	}
	if err != nil {
		return "", field.InternalError(path.Child("name"), fmt.Errorf("reading Secret %s/%s: %w", in.Namespace, ref.Name, err))
	}
	if sec.Type != corev1.SecretTypeBasicAuth {
		return "", field.Invalid(path.Child("name"), ref.Name, fmt.Sprintf("Secret %s/%s has type %q, want %q", in.Namespace, ref.Name, sec.Type, corev1.SecretTypeBasicAuth))
	}
	pw, ok := sec.Data[corev1.BasicAuthPasswordKey]
	if !ok || len(pw) == 0 {
		return "", field.Required(path.Child("name"), fmt.Sprintf("Secret %s/%s has no %q key", in.Namespace, ref.Name, corev1.BasicAuthPasswordKey))
	}
	return announcers.Secret(pw), nil
}

func convertBFD(p *metallbv1beta1.BFDProfile) *announcers.BFDProfile {
	ms := func(v *uint32) time.Duration {
		if v == nil {
			return 0
		}
		return time.Duration(*v) * time.Millisecond
	}
	deref := func(v *uint32) uint32 {
		if v == nil {
			return 0
		}
		return *v
	}
	b := func(v *bool) bool { return v != nil && *v }
	return &announcers.BFDProfile{
		Name: p.Name, ReceiveInterval: ms(p.Spec.ReceiveInterval), TransmitInterval: ms(p.Spec.TransmitInterval),
		DetectMultiplier: deref(p.Spec.DetectMultiplier), EchoInterval: ms(p.Spec.EchoInterval),
		EchoMode: b(p.Spec.EchoMode), PassiveMode: b(p.Spec.PassiveMode), MinimumTTL: deref(p.Spec.MinimumTTL),
	}
}

func duration(d *metav1.Duration) time.Duration {
	if d == nil {
		return 0
	}
	return d.Duration
}

// peersLogName names the logger peerSync logs with (see named).
const peersLogName = "bgp-peers"

// peerSync keeps the BGP announcer's peers in step with the cluster: any change of a BGPPeer,
// BFDProfile, Secret of the speaker's namespace or of this node's labels triggers a
// recomputation, and the announcer is configured when the result changed. Problems are logged
// and recorded as Events on the BGPPeer once per distinct message. It logs with the logger of
// the ctx it is given.
type peerSync struct {
	announcer string
	mgr       interface {
		Configure(ctx context.Context, name string, cfg announcers.Config) error
	}
	inputs   func() (peerInputs, error)
	recorder record.EventRecorder
	// changed is called when the set of peer names changes (the units' status lists them).
	changed func()

	trigger chan struct{}

	mu   sync.Mutex
	last []announcers.BGPPeer
	// sent is what the announcer was last given: last without the graceful-restart peers
	// until release.
	sent []announcers.BGPPeer
	// configured is set once the announcer was given sent.
	configured bool
	// released is set once this node has re-announced its routes after starting (release).
	released bool
	names    []string
	reported map[string]string // peer key to the last problem reported
	// rejected are the peers the announcer refused (from its status): no route goes to them.
	rejected map[string]bool
}

func newPeerSync(announcer string, mgr AnnouncerManager, inputs func() (peerInputs, error), rec record.EventRecorder, changed func()) *peerSync {
	return &peerSync{announcer: announcer, mgr: mgr, inputs: inputs, recorder: rec, changed: changed,
		trigger: make(chan struct{}, 1), reported: map[string]string{}, rejected: map[string]bool{}}
}

// poke asks for a recomputation; it never blocks.
func (p *peerSync) poke() {
	select {
	case p.trigger <- struct{}{}:
	default:
	}
}

// run recomputes on every poke until ctx is done.
func (p *peerSync) run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-p.trigger:
		}
		if err := p.sync(ctx); err != nil && ctx.Err() == nil {
			klog.FromContext(ctx).Error(err, "Configuring BGP peers; retrying")
			time.AfterFunc(time.Second, p.poke)
		}
	}
}

// Names returns the names of the peers configured for this node that the announcer has not
// refused, sorted: the peers a route from this node can go to.
func (p *peerSync) Names() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]string, 0, len(p.names))
	for _, n := range p.names {
		if !p.rejected[n] {
			out = append(out, n)
		}
	}
	return out
}

// GracefulRestart reports whether a peer configured for this node has graceful restart on:
// the speaker then stops without withdrawing (see manager.StopKeeping).
func (p *peerSync) GracefulRestart() bool {
	if p == nil {
		return false
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, bp := range p.last {
		if bp.EnableGracefulRestart {
			return true
		}
	}
	return false
}

func (p *peerSync) sync(ctx context.Context) error {
	in, err := p.inputs()
	if err != nil {
		return err
	}
	peers, problems := buildPeers(in)
	p.report(ctx, problems)
	p.mu.Lock()
	send, held := peers, []string(nil)
	if !p.released {
		send, held = withoutGracefulRestart(peers)
	}
	unchanged := p.configured && slices.EqualFunc(p.sent, send, func(a, b announcers.BGPPeer) bool { return reflect.DeepEqual(a, b) })
	p.mu.Unlock()
	if !unchanged {
		err = p.mgr.Configure(ctx, p.announcer, announcers.Config{BGP: &announcers.BGPConfig{Peers: send}})
		if _, kept := manager.Kept(manager.Result{}, err); err != nil && !kept {
			return err
		}
	}
	names := make([]string, len(peers))
	for i, bp := range peers {
		names[i] = bp.Name
	}
	p.mu.Lock()
	p.last, p.sent, p.configured = peers, send, true
	namesChanged := !slices.Equal(p.names, names)
	p.names = names
	p.mu.Unlock()
	if !unchanged {
		// Never log the peers themselves: only names (the Secret type redacts anyway).
		klog.FromContext(ctx).Info("BGP peers configured", "peers", names, "leftOut", len(problems), "waitingForRoutes", held)
	}
	if namesChanged && p.changed != nil {
		p.changed()
	}
	return nil
}

// release lets the graceful-restart peers' sessions open: the routes this node is to
// advertise are in the announcer by now. Before it, such a session would send End-of-RIB
// with none of them (RFC 4724 4.2), and the router would drop the paths it kept as stale
// through the restart only to learn them again a moment later.
func (p *peerSync) release() {
	p.mu.Lock()
	was := p.released
	p.released = true
	p.mu.Unlock()
	if !was {
		p.poke()
	}
}

// withoutGracefulRestart returns peers without those with graceful restart on, and the names
// of those.
func withoutGracefulRestart(peers []announcers.BGPPeer) (rest []announcers.BGPPeer, gr []string) {
	rest = make([]announcers.BGPPeer, 0, len(peers))
	for _, bp := range peers {
		if bp.EnableGracefulRestart {
			gr = append(gr, bp.Name)
			continue
		}
		rest = append(rest, bp)
	}
	return rest, gr
}

// report logs and records each problem when its message is new, and forgets fixed ones.
func (p *peerSync) report(ctx context.Context, problems []peerProblem) {
	seen := map[string]bool{}
	for _, pr := range problems {
		key := pr.Peer.Namespace + "/" + pr.Peer.Name
		seen[key] = true
		msg := fmt.Sprintf("BGPPeer %s is not used on this node: %v", key, pr.Err)
		p.mu.Lock()
		old := p.reported[key]
		p.reported[key] = msg
		p.mu.Unlock()
		if old == msg {
			continue
		}
		klog.FromContext(ctx).Info("BGP peer left out", "peer", key, "reason", pr.Err.Error())
		if p.recorder != nil {
			p.recorder.Event(peerRef(pr.Peer.Namespace, pr.Peer.Name), corev1.EventTypeWarning, ReasonPeerInvalid, msg)
		}
	}
	p.mu.Lock()
	for key := range p.reported {
		if !seen[key] && !isAnnouncerReport(key) {
			delete(p.reported, key)
		}
	}
	p.mu.Unlock()
}

// reportStatus turns the announcer's per-peer status into logs and Events: a peer it never
// added (state unknown, with a message) has a configuration the announcer cannot honour.
func (p *peerSync) reportStatus(ctx context.Context, namespace string, st announcers.Status) {
	rejected := map[string]bool{}
	for _, ps := range st.Peers {
		if ps.State == announcers.SessionUnknown && ps.Message != "" {
			rejected[ps.Name] = true
		}
	}
	p.mu.Lock()
	changed := !maps.Equal(rejected, p.rejected)
	p.rejected = rejected
	p.mu.Unlock()
	if changed && p.changed != nil {
		p.changed()
	}
	for _, ps := range st.Peers {
		key := announcerReportPrefix + ps.Name
		msg := ""
		if ps.State == announcers.SessionUnknown && ps.Message != "" {
			msg = ps.Message
		}
		p.mu.Lock()
		old := p.reported[key]
		if msg == "" {
			delete(p.reported, key)
		} else {
			p.reported[key] = msg
		}
		p.mu.Unlock()
		if msg == "" || old == msg {
			continue
		}
		klog.FromContext(ctx).Info("BGP announcer rejected a peer", "peer", ps.Name, "reason", msg)
		if p.recorder != nil {
			p.recorder.Event(peerRef(namespace, ps.Name), corev1.EventTypeWarning, ReasonPeerRejected, msg)
		}
	}
}

const announcerReportPrefix = "announcer:"

func isAnnouncerReport(key string) bool {
	return len(key) > len(announcerReportPrefix) && key[:len(announcerReportPrefix)] == announcerReportPrefix
}

func peerRef(namespace, name string) *corev1.ObjectReference {
	return &corev1.ObjectReference{Kind: "BGPPeer", APIVersion: metallbv1beta2.SchemeGroupVersion.String(), Namespace: namespace, Name: name}
}
