// Package heartbeat encodes a speaker's heartbeat in a coordination.k8s.io/v1 Lease, one per
// node in the speaker namespace. The Lease says the speaker is alive (renewTime plus
// leaseDurationSeconds) and carries, in annotations, the facts only that node can see and
// every other speaker needs to reach the same decision: its usable interfaces with their
// prefixes, whether it is draining before a stop, and whether each kind of announcer (ARP,
// NDP, BGP) can answer, is still warming up, or is unavailable and why.
//
// The renewing loop lives in the speaker; this package only converts between a Heartbeat and
// a Lease, so the speaker and the snapshot builder agree on the encoding.
package heartbeat

import (
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"maps"
	"net/netip"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/herald-lb/herald/framework"
)

// Names on the Lease.
const (
	// LabelHeartbeat marks speaker heartbeat Leases (value LabelValueSpeaker), so informers
	// can select them among the namespace's other Leases (leader election).
	LabelHeartbeat    = "herald.dev/heartbeat"
	LabelValueSpeaker = "speaker"
	// AnnotationNode is the node the heartbeat is for (Lease names are derived from it, but
	// long node names are shortened).
	AnnotationNode = "herald.dev/node"
	// AnnotationInterfaces holds the node's usable interfaces as JSON (see wireInterface).
	AnnotationInterfaces = "herald.dev/interfaces"
	// AnnotationDraining is "true" while the speaker hands its IPs over before stopping.
	AnnotationDraining = "herald.dev/draining"
	// AnnotationLeaseDuration holds the lease duration exactly (a Go duration, "2.5s"):
	// spec.leaseDurationSeconds holds whole seconds only, rounded up, which turned the
	// default 2.5 s into 3 s and failover after a crash with it past 3 s.
	AnnotationLeaseDuration = "herald.dev/lease-duration"
	// AnnotationAnnouncers holds, as a JSON object keyed by announcer kind ("l2-v4", "l2-v6",
	// "bgp"), each kind's state and reason: {"l2-v4":{"state":"unavailable","reason":"..."}}.
	// Absent means the speaker reports nothing (an older speaker): every kind counts ready.
	AnnotationAnnouncers = "herald.dev/announcers"
	// AnnotationFastPath is the host:port the node's fast path (package fastpath) listens
	// at, which the other speakers join; absent when it runs none.
	AnnotationFastPath = "herald.dev/fast-path"
	// AnnotationFastPathID names the speaker process that runs that fast path (random per
	// start), so the others can tell it from a restarted one.
	AnnotationFastPathID = "herald.dev/fast-path-id"
)

// maxReason bounds a reason in AnnotationAnnouncers, so a long error message cannot bloat
// every speaker's copy of every Lease.
const maxReason = 256

// leasePrefix starts every heartbeat Lease name.
const leasePrefix = "herald-speaker-"

// Heartbeat is one speaker's heartbeat.
type Heartbeat struct {
	NodeName string
	// Holder is the speaker's identity (its pod name); empty means NodeName.
	Holder        string
	RenewTime     time.Time
	LeaseDuration time.Duration
	Draining      bool
	Interfaces    []framework.Interface
	// Announcers are the node's announcer kinds and their health; nil reports nothing.
	Announcers map[framework.AnnouncerKind]framework.AnnouncerHealth
	// FastPath is the fast path's address (AnnotationFastPath), FastPathID its process
	// (AnnotationFastPathID); empty: none.
	FastPath, FastPathID string
}

// wireAnnouncer is one announcer kind as encoded in AnnotationAnnouncers.
type wireAnnouncer struct {
	State  framework.AnnouncerState `json:"state"`
	Reason string                   `json:"reason,omitempty"`
}

// wireInterface is an interface as encoded in AnnotationInterfaces.
type wireInterface struct {
	Name     string   `json:"name"`
	Up       bool     `json:"up"`
	MAC      string   `json:"mac,omitempty"`
	Prefixes []string `json:"prefixes,omitempty"`
}

// LeaseName is the name of the node's heartbeat Lease: leasePrefix + node, or, when that is
// longer than a Lease name may be, a shortened form made unique by a hash of the node name.
func LeaseName(node string) string {
	const maxLen = 253
	name := leasePrefix + node
	if len(name) <= maxLen {
		return name
	}
	h := fnv.New64a()
	h.Write([]byte(node))
	suffix := fmt.Sprintf("-%016x", h.Sum64())
	return strings.TrimRight(name[:maxLen-len(suffix)], ".-") + suffix
}

// Encode returns the heartbeat as a new Lease in the namespace.
func Encode(hb Heartbeat, namespace string) (*coordinationv1.Lease, error) {
	l := &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: LeaseName(hb.NodeName)}}
	if err := EncodeInto(l, hb); err != nil {
		return nil, err
	}
	return l, nil
}

// EncodeInto writes the heartbeat into an existing Lease (keeping its name and resource
// version, for an update) and leaves unrelated labels and annotations alone.
func EncodeInto(l *coordinationv1.Lease, hb Heartbeat) error {
	if hb.NodeName == "" {
		return errors.New("heartbeat: empty node name")
	}
	if hb.LeaseDuration < time.Second {
		return fmt.Errorf("heartbeat of node %q: lease duration %s is under one second", hb.NodeName, hb.LeaseDuration)
	}
	itfs, err := encodeInterfaces(hb.Interfaces)
	if err != nil {
		return fmt.Errorf("heartbeat of node %q: %w", hb.NodeName, err)
	}
	anns, err := encodeAnnouncers(hb.Announcers)
	if err != nil {
		return fmt.Errorf("heartbeat of node %q: %w", hb.NodeName, err)
	}
	if l.Labels == nil {
		l.Labels = map[string]string{}
	}
	l.Labels[LabelHeartbeat] = LabelValueSpeaker
	if l.Annotations == nil {
		l.Annotations = map[string]string{}
	}
	l.Annotations[AnnotationNode] = hb.NodeName
	l.Annotations[AnnotationInterfaces] = itfs
	if anns == "" {
		delete(l.Annotations, AnnotationAnnouncers)
	} else {
		l.Annotations[AnnotationAnnouncers] = anns
	}
	if hb.Draining {
		l.Annotations[AnnotationDraining] = "true"
	} else {
		delete(l.Annotations, AnnotationDraining)
	}
	setOrDelete(l.Annotations, AnnotationFastPath, hb.FastPath)
	setOrDelete(l.Annotations, AnnotationFastPathID, truncate(hb.FastPathID, maxReason))
	holder := hb.Holder
	if holder == "" {
		holder = hb.NodeName
	}
	l.Annotations[AnnotationLeaseDuration] = hb.LeaseDuration.String()
	secs := int32((hb.LeaseDuration + time.Second - 1) / time.Second)
	renew := metav1.NewMicroTime(hb.RenewTime)
	l.Spec.HolderIdentity = &holder
	l.Spec.LeaseDurationSeconds = &secs
	l.Spec.RenewTime = &renew
	return nil
}

func setOrDelete(m map[string]string, key, value string) {
	if value == "" {
		delete(m, key)
	} else {
		m[key] = value
	}
}

// encodeInterfaces renders the interfaces sorted by name, so an unchanged set gives an
// unchanged annotation and renewals do not look like changes.
func encodeInterfaces(itfs []framework.Interface) (string, error) {
	wire := make([]wireInterface, 0, len(itfs))
	for _, itf := range itfs {
		if itf.Name == "" {
			return "", errors.New("interface with an empty name")
		}
		w := wireInterface{Name: itf.Name, Up: itf.Up, MAC: itf.MAC}
		for _, p := range itf.Prefixes {
			w.Prefixes = append(w.Prefixes, p.String())
		}
		wire = append(wire, w)
	}
	slices.SortFunc(wire, func(a, b wireInterface) int { return strings.Compare(a.Name, b.Name) })
	b, err := json.Marshal(wire)
	return string(b), err
}

// encodeAnnouncers renders the announcer kinds ("" for none); encoding/json sorts the keys,
// so unchanged health gives an unchanged annotation.
func encodeAnnouncers(anns map[framework.AnnouncerKind]framework.AnnouncerHealth) (string, error) {
	if anns == nil {
		return "", nil
	}
	wire := make(map[framework.AnnouncerKind]wireAnnouncer, len(anns))
	for kind, h := range anns {
		if kind == "" {
			return "", errors.New("announcer health with an empty kind")
		}
		if !knownState(h.State) {
			return "", fmt.Errorf("announcer kind %q: unknown state %q", kind, h.State)
		}
		wire[kind] = wireAnnouncer{State: h.State, Reason: truncate(h.Reason, maxReason)}
	}
	b, err := json.Marshal(wire)
	return string(b), err
}

func knownState(s framework.AnnouncerState) bool {
	switch s {
	case framework.AnnouncerReady, framework.AnnouncerWarming, framework.AnnouncerUnavailable:
		return true
	}
	return false
}

// truncate shortens s to at most n bytes without splitting a UTF-8 sequence.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	s = s[:n]
	for len(s) > 0 && !utf8.ValidString(s) {
		s = s[:len(s)-1]
	}
	return s
}

// IsHeartbeat reports whether the Lease is a speaker heartbeat.
func IsHeartbeat(l *coordinationv1.Lease) bool {
	return l.Labels[LabelHeartbeat] == LabelValueSpeaker
}

// Decode reads a heartbeat Lease. A Lease that is not a heartbeat, or names no node, is an
// error. Malformed interfaces are an error too, but the rest of the heartbeat is still
// returned (alive, draining, with the interfaces that decoded), so one bad annotation only
// costs the node its interfaces, not its liveness. Errors name the Lease and the field.
func Decode(l *coordinationv1.Lease) (*Heartbeat, error) {
	where := fmt.Sprintf("lease %s/%s", l.Namespace, l.Name)
	meta := field.NewPath("metadata")
	if !IsHeartbeat(l) {
		return nil, fmt.Errorf("%s: %s: not %q", where, meta.Child("labels").Key(LabelHeartbeat), LabelValueSpeaker)
	}
	hb := &Heartbeat{NodeName: l.Annotations[AnnotationNode]}
	if hb.NodeName == "" {
		return nil, fmt.Errorf("%s: %s: missing", where, meta.Child("annotations").Key(AnnotationNode))
	}
	if l.Spec.HolderIdentity != nil {
		hb.Holder = *l.Spec.HolderIdentity
	}
	if l.Spec.RenewTime != nil {
		hb.RenewTime = l.Spec.RenewTime.Time
	}
	var errs []error
	if l.Spec.LeaseDurationSeconds != nil {
		hb.LeaseDuration = time.Duration(*l.Spec.LeaseDurationSeconds) * time.Second
	}
	if v, ok := l.Annotations[AnnotationLeaseDuration]; ok {
		// The exact duration may only shorten the whole seconds it was rounded up to: a
		// value that would keep a node alive longer than the Lease says is refused.
		d, err := time.ParseDuration(v)
		switch {
		case err != nil || d <= 0:
			errs = append(errs, fmt.Errorf("%s: %s: %q is not a positive duration", where, meta.Child("annotations").Key(AnnotationLeaseDuration), v))
		case l.Spec.LeaseDurationSeconds != nil && d > hb.LeaseDuration:
			errs = append(errs, fmt.Errorf("%s: %s: %s is longer than spec.leaseDurationSeconds (%s)", where, meta.Child("annotations").Key(AnnotationLeaseDuration), d, hb.LeaseDuration))
		default:
			hb.LeaseDuration = d
		}
	}
	switch v := l.Annotations[AnnotationDraining]; v {
	case "", "false":
	case "true":
		hb.Draining = true
	default:
		// A value we do not understand: draining is the safe reading, it only hands IPs over.
		hb.Draining = true
		errs = append(errs, fmt.Errorf("%s: %s: %q is not \"true\" or \"false\"", where, meta.Child("annotations").Key(AnnotationDraining), v))
	}
	if v, ok := l.Annotations[AnnotationFastPath]; ok {
		if _, err := netip.ParseAddrPort(v); err != nil {
			errs = append(errs, fmt.Errorf("%s: %s: %q is not an address:port", where, meta.Child("annotations").Key(AnnotationFastPath), v))
		} else {
			hb.FastPath = v
		}
	}
	hb.FastPathID = truncate(l.Annotations[AnnotationFastPathID], maxReason)
	var annErrs []error
	hb.Interfaces, annErrs = decodeInterfaces(l.Annotations[AnnotationInterfaces], meta.Child("annotations").Key(AnnotationInterfaces))
	errs = append(errs, annErrs...)
	if v, ok := l.Annotations[AnnotationAnnouncers]; ok {
		hb.Announcers, annErrs = decodeAnnouncers(v, meta.Child("annotations").Key(AnnotationAnnouncers))
		errs = append(errs, annErrs...)
	}
	// Every line names the Lease: errors.Join puts each on a line of its own.
	for i, err := range errs {
		if !strings.HasPrefix(err.Error(), where) {
			errs[i] = fmt.Errorf("%s: %w", where, err)
		}
	}
	return hb, errors.Join(errs...)
}

// decodeAnnouncers reads AnnotationAnnouncers. What cannot be read is taken as unavailable,
// the safe reading: a node whose health nobody can tell must not win IPs it may not answer.
func decodeAnnouncers(s string, path *field.Path) (map[framework.AnnouncerKind]framework.AnnouncerHealth, []error) {
	var wire map[framework.AnnouncerKind]wireAnnouncer
	if err := json.Unmarshal([]byte(s), &wire); err != nil || wire == nil {
		if err == nil {
			err = errors.New("not a JSON object")
		}
		out := map[framework.AnnouncerKind]framework.AnnouncerHealth{}
		for _, k := range framework.AnnouncerKinds {
			out[k] = framework.AnnouncerHealth{State: framework.AnnouncerUnavailable, Reason: "its heartbeat's announcer health is malformed"}
		}
		return out, []error{fmt.Errorf("%s: %w", path, err)}
	}
	var errs []error
	out := make(map[framework.AnnouncerKind]framework.AnnouncerHealth, len(wire))
	for _, kind := range slices.Sorted(maps.Keys(wire)) {
		w := wire[kind]
		if kind == "" {
			errs = append(errs, fmt.Errorf("%s: empty announcer kind", path.Key("")))
			continue
		}
		h := framework.AnnouncerHealth{State: w.State, Reason: truncate(w.Reason, maxReason)}
		if !knownState(w.State) {
			errs = append(errs, fmt.Errorf("%s: %q is not %q, %q or %q", path.Key(string(kind)).Child("state"), w.State,
				framework.AnnouncerReady, framework.AnnouncerWarming, framework.AnnouncerUnavailable))
			h = framework.AnnouncerHealth{State: framework.AnnouncerUnavailable, Reason: fmt.Sprintf("unknown announcer state %q", truncate(string(w.State), 32))}
		}
		out[kind] = h
	}
	return out, errs
}

func decodeInterfaces(s string, path *field.Path) ([]framework.Interface, []error) {
	if s == "" {
		return nil, nil
	}
	var wire []wireInterface
	if err := json.Unmarshal([]byte(s), &wire); err != nil {
		return nil, []error{fmt.Errorf("%s: %w", path, err)}
	}
	var errs []error
	out := make([]framework.Interface, 0, len(wire))
	for i, w := range wire {
		if w.Name == "" {
			errs = append(errs, fmt.Errorf("%s: name: empty", path.Index(i)))
			continue
		}
		itf := framework.Interface{Name: w.Name, Up: w.Up, MAC: w.MAC}
		for j, ps := range w.Prefixes {
			p, err := netip.ParsePrefix(ps)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", path.Index(i).Child("prefixes").Index(j), err))
				continue
			}
			itf.Prefixes = append(itf.Prefixes, p)
		}
		out = append(out, itf)
	}
	return out, errs
}

// SpeakerInfo converts the heartbeat into what the framework's NodeInfo carries.
func (hb *Heartbeat) SpeakerInfo() *framework.SpeakerInfo {
	return &framework.SpeakerInfo{
		RenewTime:     hb.RenewTime,
		LeaseDuration: hb.LeaseDuration,
		Draining:      hb.Draining,
		Interfaces:    hb.Interfaces,
		Announcers:    hb.Announcers,
		FastPath:      hb.FastPath,
		FastPathID:    hb.FastPathID,
	}
}
