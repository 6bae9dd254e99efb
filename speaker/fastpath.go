package speaker

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"net"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/klog/v2"

	"github.com/herald-lb/herald/fastpath"
	"github.com/herald-lb/herald/framework"
	"github.com/herald-lb/herald/liveness"
)

// fastPathJoinEvery is how often the speaker joins, on the fast path, the live speakers it
// does not reach: memberlist never looks again for a node it declared dead, so a speaker
// back from a partition or a restart would stay unreachable.
const fastPathJoinEvery = time.Second

// minSecret is the shortest fast-path secret accepted: 128 bits.
const minSecret = 16

// fastView is the speaker's fast path; d is nil when none runs.
type fastView struct {
	d *fastpath.Detector

	mu sync.Mutex
	// cut is why this node counts itself gone (see liveness.FastPath); "" when it does not.
	cut string
	// held are the nodes the last claim view held alive past their heartbeats.
	held map[string]bool
}

// startFastPath starts the fast path when the configuration asks for one; its address goes
// into the heartbeat. A fast path that cannot start is an error: the operator asked for
// sub-second failover and must not silently get the heartbeats' pace.
func (s *Speaker) startFastPath(ctx context.Context) error {
	c := s.o.Config.FastPath
	if !c.Enabled() {
		return nil
	}
	secret, err := readSecret(c.SecretKeyFile)
	if err != nil {
		return fmt.Errorf("fastPath.secretKeyFile: %w", err)
	}
	advertise, err := s.fastPathAdvertise(ctx, c.BindAddress)
	if err != nil {
		return fmt.Errorf("fastPath.bindAddress: %w", err)
	}
	key := sha256.Sum256(secret)
	id := rand.Text()[:16]
	d, err := fastpath.New(fastpath.Config{
		Name: s.o.NodeName, BindAddr: c.BindAddress, AdvertiseAddr: advertise, SecretKey: key[:], ID: id,
		ProbeInterval: c.ProbeInterval.Duration, Logger: klog.FromContext(ctx),
		OnChange: func() {
			select {
			case <-s.synced:
				s.queue.Add(allKey)
			default:
			}
		},
	})
	if err != nil {
		return err
	}
	s.fast.d = d
	s.hb.setFastPath(d.Address(), id)
	klog.FromContext(ctx).Info("Fast path listening", "address", d.Address(), "probeInterval", c.ProbeInterval.Duration)
	return nil
}

// readSecret reads the shared secret; surrounding white space (a trailing newline) is not part
// of it. Its content is never logged.
func readSecret(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	secret := []byte(strings.TrimSpace(string(b)))
	if len(secret) < minSecret {
		return nil, fmt.Errorf("%s: the secret is %d bytes, it must be at least %d", path, len(secret), minSecret)
	}
	return secret, nil
}

// fastPathAdvertise is the address the others reach this node's fast path at: the bind
// address when it names one, else the node's InternalIP with the bind port.
func (s *Speaker) fastPathAdvertise(ctx context.Context, bind string) (string, error) {
	host, port, err := net.SplitHostPort(bind)
	if err != nil {
		return "", err
	}
	if ip := net.ParseIP(host); ip != nil && !ip.IsUnspecified() {
		return bind, nil
	}
	node, err := s.client.CoreV1().Nodes().Get(ctx, s.o.NodeName, metav1.GetOptions{})
	if err != nil {
		return "", fmt.Errorf("no address given, and the node's InternalIP could not be read: %w", err)
	}
	for _, a := range node.Status.Addresses {
		if a.Type == corev1.NodeInternalIP {
			return net.JoinHostPort(a.Address, port), nil
		}
	}
	return "", fmt.Errorf("no address given, and node %s has no InternalIP", s.o.NodeName)
}

// joinFastPath joins, every fastPathJoinEvery until ctx is done, the fast paths of the nodes
// whose heartbeats are alive and which this node does not reach.
func (s *Speaker) joinFastPath(ctx context.Context) {
	logger := klog.FromContext(ctx)
	t := time.NewTicker(fastPathJoinEvery)
	defer t.Stop()
	var failing string
	for {
		snap := s.builder.Snapshot(time.Now())
		addrs := map[string]string{}
		for _, n := range snap.Nodes() {
			if n.Speaker.AliveAt(snap.Time) && n.Speaker.FastPath != "" {
				addrs[n.Name] = n.Speaker.FastPath
			}
		}
		// Logged when the failure changes only: a node that is down fails every second.
		if err := s.fast.d.Join(addrs); err != nil && err.Error() != failing {
			logger.V(2).Info("Joining fast paths failed", "err", err)
			failing = err.Error()
		} else if err == nil {
			failing = ""
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// fastClaimView applies the fast path's verdicts to view (see fastNodes) and logs when this
// node starts or stops counting itself cut off.
func (s *Speaker) fastClaimView(ctx context.Context, view *framework.Snapshot) *framework.Snapshot {
	out := s.fastNodes(view)
	if s.fast.d != nil {
		s.noteCut(ctx, out.Nodes(), out.Time)
	}
	return out
}

// fastNodes is view with the fast path's verdicts (see liveness.FastPath); view itself when no
// fast path runs or it has nothing to say.
func (s *Speaker) fastNodes(view *framework.Snapshot) *framework.Snapshot {
	if s.fast.d == nil {
		return view
	}
	nodes := liveness.FastPath(view.Nodes(), s.o.NodeName, s.fast.d.View(), view.Time)
	if slices.Equal(nodes, view.Nodes()) {
		return view
	}
	return framework.NewSnapshot(view.Time, nodes)
}

// noteCut logs when this node starts or stops counting itself gone by the fast path (it then
// withdraws everything) and when it starts or stops holding another alive: decisions an
// operator must be able to find.
func (s *Speaker) noteCut(ctx context.Context, nodes []*framework.NodeInfo, now time.Time) {
	var cut string
	var held map[string]bool // nil, as it nearly always is, allocates nothing per pass
	for _, n := range nodes {
		if n.Name == s.o.NodeName && n.Speaker != nil && !n.Speaker.Unreachable.IsZero() && !now.Before(n.Speaker.Unreachable) {
			cut = n.Speaker.UnreachableWhy
		}
		if n.Speaker != nil && n.Speaker.Held {
			if held == nil {
				held = map[string]bool{}
			}
			held[n.Name] = true
		}
	}
	s.fast.mu.Lock()
	prev, prevHeld := s.fast.cut, s.fast.held
	s.fast.cut, s.fast.held = cut, held
	s.fast.mu.Unlock()
	logger := klog.FromContext(ctx)
	for name := range held {
		if !prevHeld[name] {
			logger.Info("Holding a speaker whose heartbeat lapsed: the fast path still reaches it, so it keeps what it announces and takes nothing new", "peer", name)
		}
	}
	for name := range prevHeld {
		if !held[name] {
			logger.Info("No longer holding a speaker: its heartbeat is back, or the fast path lost it", "peer", name)
		}
	}
	switch {
	case cut != "" && prev == "":
		logger.Info("Cut off on the fast path: withdrawing every IP, which the others take over", "reason", cut)
	case cut == "" && prev != "":
		logger.Info("Back on the fast path: deciding as before")
	}
}

// leaveFastPath tells the others this node is gone, after it withdrew everything.
func (s *Speaker) leaveFastPath(ctx context.Context) {
	if s.fast.d == nil {
		return
	}
	if err := s.fast.d.Leave(time.Second); err != nil {
		klog.FromContext(ctx).Error(err, "Leaving the fast path; the others find this node gone by its probes")
	}
}
