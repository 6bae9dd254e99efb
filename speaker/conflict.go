package speaker

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/klog/v2"

	"github.com/herald-lb/herald/announcers/manager"
	"github.com/herald-lb/herald/framework"
	"github.com/herald-lb/herald/speaker/announce"
)

// watchAnnouncerEvents turns announcer conflicts into Events on the Services and a metric.
func (s *Speaker) watchAnnouncerEvents(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case ev, ok := <-s.mgr.Events():
			if !ok {
				return
			}
			s.handleAnnouncerEvent(ctx, ev)
		}
	}
}

func (s *Speaker) handleAnnouncerEvent(ctx context.Context, ev manager.Event) {
	logger := klog.FromContext(ctx)
	switch {
	case ev.Conflict != nil:
		c := ev.Conflict
		claimer := "MAC " + c.ForeignMAC
		snap := s.builder.Snapshot(time.Now())
		if peer := heraldPeerWithMAC(snap, s.o.NodeName, c.ForeignMAC); peer != nil {
			if peer.Speaker.AliveAt(snap.Time) {
				// A live Herald node taking the address over: this node withdraws as soon as
				// its own cycle sees the change, milliseconds later. Not a conflict.
				logger.V(1).Info("Another Herald node claims an address this node still announces (hand-over)", "ip", c.Address, "node", peer.Name)
				return
			}
			claimer = fmt.Sprintf("Herald node %s (MAC %s), whose heartbeat has expired: it may be cut off from the API server and still announcing", peer.Name, c.ForeignMAC)
		}
		conflictsTotal.WithLabelValues(ev.Announcer).Inc()
		msg := fmt.Sprintf("%s on node %s interface %s is also claimed by %s (%s); Herald keeps announcing and does not fight it",
			c.Address, s.o.NodeName, c.Interface, claimer, c.Detail)
		logger.Info("Address conflict", "ip", c.Address, "interface", c.Interface, "foreignMAC", c.ForeignMAC)
		if !s.recordConflict(c.Address.Unmap(), msg) {
			// The announcer probes the moment it is told to announce, so an answer can
			// arrive before Bind has recorded the unit: look again shortly.
			go func() {
				for i := 0; i < 20 && !s.recordConflict(c.Address.Unmap(), msg); i++ {
					time.Sleep(100 * time.Millisecond)
				}
			}()
		}
	case ev.Session != nil:
		observeSession(ev.Session.Peer, ev.Session.State)
		bgpSessionTransitions.WithLabelValues(ev.Session.Peer, ev.Session.State.String()).Inc()
		logger.Info("BGP session state", "peer", ev.Session.Peer, "address", ev.Session.Address, "state", ev.Session.State.String(), "reason", ev.Session.Reason)
	case ev.Error != nil:
		logger.Error(errors.New(ev.Error.Message), "Announcer error", "announcer", ev.Announcer)
	}
}

// recordConflict puts an AddressConflict Event on the Services this node announces ip for,
// and reports whether there were any.
func (s *Speaker) recordConflict(ip netip.Addr, msg string) bool {
	svcs := s.ledger.ServicesOf(ip)
	for _, svc := range svcs {
		s.recorder.Event(announce.ServiceRef(svc), corev1.EventTypeWarning, ReasonAddressConflict, msg)
	}
	return len(svcs) > 0
}

// heraldPeerWithMAC returns the node, other than self, whose speaker published an interface
// with the MAC in its heartbeat; nil when no Herald node has it.
func heraldPeerWithMAC(snap *framework.Snapshot, self, mac string) *framework.NodeInfo {
	for _, n := range snap.Nodes() {
		if n.Name == self || n.Speaker == nil {
			continue
		}
		for _, itf := range n.Speaker.Interfaces {
			if itf.MAC != "" && strings.EqualFold(itf.MAC, mac) {
				return n
			}
		}
	}
	return nil
}

// ReasonAddressConflict is the Event reason for a foreign claim on an announced IP.
const ReasonAddressConflict = "AddressConflict"
