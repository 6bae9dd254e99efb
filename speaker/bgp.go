package speaker

import (
	"context"
	"errors"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/klog/v2"

	"github.com/herald-lb/herald/announcers"
	"github.com/herald-lb/herald/announcers/manager"
	metallbinformers "github.com/herald-lb/herald/config/metallb/client/informers/externalversions"
	metallbv1beta1 "github.com/herald-lb/herald/config/metallb/v1beta1"
)

// peerInputs reads the BGP peer inputs from the informers' caches: the speaker namespace's
// BGPPeers, BFDProfiles and Secrets, and this node's labels.
func (s *Speaker) peerInputs(ns metallbinformers.SharedInformerFactory, secrets informers.SharedInformerFactory) func() (peerInputs, error) {
	peerLister := ns.Metallb().V1beta2().BGPPeers().Lister()
	bfdLister := ns.Metallb().V1beta1().BFDProfiles().Lister()
	secretLister := secrets.Core().V1().Secrets().Lister()
	return func() (peerInputs, error) {
		in := peerInputs{Namespace: s.configNamespace(), BFD: map[string]*metallbv1beta1.BFDProfile{}}
		node, err := s.nodeLabels()
		if err != nil {
			return in, err
		}
		in.NodeLabels = node
		if in.Peers, err = peerLister.BGPPeers(in.Namespace).List(labels.Everything()); err != nil {
			return in, fmt.Errorf("listing bgppeers.metallb.io: %w", err)
		}
		profiles, err := bfdLister.BFDProfiles(in.Namespace).List(labels.Everything())
		if err != nil {
			return in, fmt.Errorf("listing bfdprofiles.metallb.io: %w", err)
		}
		for _, p := range profiles {
			in.BFD[p.Name] = p
		}
		in.Secret = func(name string) (*corev1.Secret, error) { return secretLister.Secrets(in.Namespace).Get(name) }
		return in, nil
	}
}

// nodeLabels returns this node's labels from the Node informer's cache.
func (s *Speaker) nodeLabels() (map[string]string, error) {
	if s.nodeLister == nil {
		return nil, errors.New("the Node informer is not running yet")
	}
	n, err := s.nodeLister.Get(s.o.NodeName)
	if err != nil {
		return nil, fmt.Errorf("node %q: %w", s.o.NodeName, err)
	}
	return n.Labels, nil
}

// pollAnnouncers refreshes, every interval, the metrics that come from the BGP announcer's
// status (session state) and reports peers it refused. Announcer restarts are the
// manager's own counter, herald_announcer_restarts_total.
func (s *Speaker) pollAnnouncers(ctx context.Context, interval time.Duration) {
	peersCtx := named(ctx, peersLogName)
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if name := s.bgpAnnouncer(); name != "" {
			cctx, cancel := context.WithTimeout(ctx, interval)
			st, err := s.mgr.Status(cctx, name)
			cancel()
			switch {
			case err == nil:
				setSessions(st.Peers)
				if s.peers != nil {
					s.peers.reportStatus(peersCtx, s.configNamespace(), st)
				}
			case !errors.Is(err, manager.ErrUnavailable) && ctx.Err() == nil:
				klog.FromContext(ctx).V(2).Info("BGP announcer status", "error", err.Error())
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// setSessions makes the session gauges list exactly the announcer's peers.
func setSessions(peers []announcers.PeerStatus) {
	bgpSessionUp.Reset()
	bgpBFDUp.Reset()
	for _, p := range peers {
		observeSession(p.Name, p.State)
		up := 0.0
		if p.BFDUp {
			up = 1
		}
		bgpBFDUp.WithLabelValues(p.Name).Set(up)
	}
}
