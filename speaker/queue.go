package speaker

import (
	"context"
	"net/netip"

	"k8s.io/klog/v2"

	"github.com/herald-lb/herald/snapshot"
)

// queueKey is what the speaker's work queue holds: every unit (all), or the units of one IP.
type queueKey struct {
	all bool
	ip  netip.Addr
}

// allKey in the queue means: re-run every unit.
var allKey = queueKey{all: true}

// ipKey queues the units of ip.
func ipKey(ip netip.Addr) queueKey { return queueKey{ip: ip} }

// String is the key as logs show it: "*" for every unit, else the IP.
func (k queueKey) String() string {
	if k.all {
		return "*"
	}
	return k.ip.String()
}

// onChange is the builder's notification: queue the units it affects. Before the informers
// synced nothing is queued: the first full pass, queued once they have, covers every unit,
// and queuing each Service's IP during the initial list would run every unit twice and
// leave the queue's sets sized for the whole cluster.
func (s *Speaker) onChange(c snapshot.Change) {
	select {
	case <-s.synced:
	default:
		return
	}
	if c.All {
		s.queue.Add(allKey)
		return
	}
	for _, ip := range c.IPs {
		s.queue.Add(ipKey(ip))
	}
}

func (s *Speaker) work(ctx context.Context) {
	for {
		key, quit := s.queue.Get()
		if quit {
			return
		}
		err := s.process(ctx, key)
		if err != nil {
			klog.FromContext(ctx).Error(err, "Cycle failed; keeping the last decision and retrying", "key", key.String())
			s.queue.AddRateLimited(key)
		} else {
			s.queue.Forget(key)
		}
		s.queue.Done(key)
	}
}
