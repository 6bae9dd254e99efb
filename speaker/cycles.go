package speaker

import (
	"context"
	"errors"
	"net/netip"
	"slices"
	"time"

	"k8s.io/klog/v2"

	"github.com/herald-lb/herald/framework"
	"github.com/herald-lb/herald/speaker/announce"
)

// buildFrameworks instantiates one framework per profile; every profile binds with Announce.
func (s *Speaker) buildFrameworks(ctx context.Context, reg framework.Registry) error {
	logger := klog.FromContext(ctx)
	specs, err := s.o.Config.ProfileSpecs(reg)
	if err != nil {
		return err
	}
	s.frameworks = map[string]*framework.Framework{}
	s.specs = map[string]framework.ProfileSpec{}
	for _, spec := range specs {
		if !slices.Contains(spec.Bind, announce.Name) {
			spec.Bind = append(spec.Bind, announce.Name)
		}
		fw, err := framework.NewFramework(reg, spec, framework.NewHandle(logger.WithName("plugins").WithValues("profile", spec.Name)))
		if err != nil {
			return err
		}
		s.frameworks[spec.Name] = fw
		s.specs[spec.Name] = spec
	}
	return nil
}

func (s *Speaker) frameworkFor(class string) (*framework.Framework, framework.ProfileSpec) {
	p, ok := s.o.Config.ProfileFor(class)
	if !ok {
		return nil, framework.ProfileSpec{}
	}
	return s.frameworks[p.Name], s.specs[p.Name]
}

func (s *Speaker) process(ctx context.Context, key queueKey) error {
	if key.all {
		return s.processAll(ctx)
	}
	if s.skipFrozen(ctx) {
		return nil
	}
	snap, quiet, _ := s.view(s.builder.Snapshot(time.Now()))
	return s.processIP(ctx, s.claimView(ctx, snap), quiet, nil, key.ip)
}

// processAll re-runs every unit, and withdraws units that no longer exist.
func (s *Speaker) processAll(ctx context.Context) error {
	if s.skipFrozen(ctx) {
		return nil
	}
	published := s.builder.Snapshot(time.Now())
	s.expiry.passed(published)
	snap, quiet, pre := s.view(published)
	snap = s.claimView(ctx, snap)
	failed := map[framework.AnnouncerKind]bool{}
	seen := map[netip.Addr]bool{}
	var errs []error
	for _, u := range s.builder.Units() {
		if seen[u.IP] {
			continue
		}
		seen[u.IP] = true
		if err := s.processIP(ctx, snap, quiet, failed, u.IP); err != nil {
			errs = append(errs, err)
			s.queue.AddRateLimited(ipKey(u.IP))
		}
	}
	for _, cur := range s.ledger.List() {
		if !seen[cur.IP] {
			if err := s.processIP(ctx, snap, quiet, failed, cur.IP); err != nil {
				errs = append(errs, err)
			}
		}
	}
	s.endWarming(ctx, published, pre, failed)
	perMode := map[framework.Mode]int{framework.ModeL2: 0, framework.ModeBGP: 0}
	for _, cur := range s.ledger.List() {
		perMode[cur.Mode]++
	}
	for mode, n := range perMode {
		announcedGauge.WithLabelValues(string(mode)).Set(float64(n))
	}
	// A full pass follows every heartbeat that lapsed (expiryWatch): the dead node's status
	// objects go then.
	s.stale.poke()
	if len(errs) > 0 {
		klog.FromContext(ctx).Error(errors.Join(errs...), "some units failed; retrying them")
	}
	return nil
}

// processIP runs the cycle for each unit of the IP and withdraws modes that have no unit.
// Units of the quiet kinds are announced without status objects (see view); the kinds of
// units that failed are added to failed, when given.
func (s *Speaker) processIP(ctx context.Context, snap *framework.Snapshot, quiet, failed map[framework.AnnouncerKind]bool, ip netip.Addr) error {
	units := s.builder.UnitsFor(ip)
	var errs []error
	has := map[framework.Mode]bool{}
	for _, u := range units {
		has[u.Mode] = true
		if err := s.runUnit(ctx, snap, quiet[u.AnnouncerKind()], u); err != nil {
			errs = append(errs, err)
			if failed != nil {
				failed[u.AnnouncerKind()] = true
			}
		}
	}
	for _, mode := range []framework.Mode{framework.ModeL2, framework.ModeBGP} {
		if has[mode] {
			continue
		}
		if err := s.ledger.Forget(ctx, (&framework.Unit{IP: ip, Mode: mode}).Key()); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (s *Speaker) runUnit(ctx context.Context, snap *framework.Snapshot, quiet bool, u *framework.Unit) error {
	fw, _ := s.frameworkFor(u.Class)
	if fw == nil {
		// Another implementation's class: never touch it, but drop what we may have had.
		return s.ledger.Forget(ctx, u.Key())
	}
	var opts []framework.CycleOption
	if quiet {
		opts = append(opts, announce.WithoutClaim)
	}
	res := fw.RunCycle(ctx, snap, u, opts...)
	defer res.Release()
	return res.Err
}
