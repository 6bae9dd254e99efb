package manager

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/herald-lb/herald/announcers"
)

// The desired state of one announcer and its sender. Callers record a change under s.mu and
// wait, at most Options.AckTimeout, for the sender to have the running announcer acknowledge
// it; the sender alone talks to the process (and the replay after a start, under the same
// sendMu), so a slow or hung announcer holds up no caller beyond that bound, no other
// announcer, and no lock a caller needs. Changes made meanwhile are coalesced into one delta.

// configure records the configuration and waits for it to be acknowledged.
func (s *supervised) configure(ctx context.Context, cfg announcers.Config) (Result, error) {
	s.mu.Lock()
	s.config = &cfg
	s.configGen++
	gen := s.configGen
	s.touchLocked()
	s.mu.Unlock()
	s.poke()
	return s.await(ctx, func() bool { return s.configAcked >= gen }, nil)
}

// setDesired records a new full set; it is sent whole.
func (s *supervised) setDesired(ctx context.Context, set []announcers.Announcement) (Result, error) {
	keys := make([]string, len(set))
	s.mu.Lock()
	s.desired = make(map[string]announcers.Announcement, len(set))
	for i, a := range set {
		keys[i] = a.Key()
		s.desired[keys[i]] = a
	}
	s.generation++
	s.wantFull = true
	gen := s.generation
	s.touchLocked()
	s.mu.Unlock()
	s.poke()
	return s.await(ctx, func() bool { return s.acked >= gen }, keys)
}

// apply records a delta.
func (s *supervised) apply(ctx context.Context, upserts []announcers.Announcement, removes []string) (Result, error) {
	keys := make([]string, len(upserts))
	s.mu.Lock()
	for _, key := range removes {
		delete(s.desired, key)
		s.dirty[key] = struct{}{}
	}
	for i, a := range upserts {
		keys[i] = a.Key()
		s.desired[keys[i]] = a
		s.dirty[keys[i]] = struct{}{}
	}
	s.generation++
	gen := s.generation
	s.touchLocked()
	s.mu.Unlock()
	s.poke()
	return s.await(ctx, func() bool { return s.acked >= gen }, keys)
}

// touchLocked notes a change of the desired state: it wakes waiters and an idle supervisor,
// and restarts the idle clock.
func (s *supervised) touchLocked() {
	s.lastChange = time.Now()
	s.notifyLocked()
}

// notifyLocked wakes everyone waiting for a change of s.
func (s *supervised) notifyLocked() {
	close(s.changed)
	s.changed = make(chan struct{})
}

// poke wakes the sender; it never blocks.
func (s *supervised) poke() {
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// await waits until done holds (the announcer acknowledged), or returns a pending Result
// saying why not: no process runs, the one that runs does not answer, or AckTimeout passed.
func (s *supervised) await(ctx context.Context, done func() bool, keys []string) (Result, error) {
	timer := time.NewTimer(s.m.opts.AckTimeout)
	defer timer.Stop()
	for {
		s.mu.Lock()
		if done() {
			res := Result{ApplyResult: announcers.ApplyResult{Generation: s.acked, Rejected: s.rejectedLocked(keys)}}
			s.mu.Unlock()
			return res, nil
		}
		why, err := s.pendingLocked()
		ch := s.changed
		s.mu.Unlock()
		if why != "" {
			return Result{Pending: why}, err
		}
		select {
		case <-ch:
		case <-timer.C:
			return Result{Pending: fmt.Sprintf("not acknowledged within %s; kept and sent when the announcer answers", s.m.opts.AckTimeout)}, nil
		case <-ctx.Done():
			return Result{Pending: "the caller stopped waiting (" + ctx.Err().Error() + "); kept and sent when the announcer answers"}, nil
		}
	}
}

// pendingLocked says why a change cannot be acknowledged soon, "" when it may be.
func (s *supervised) pendingLocked() (string, error) {
	h := s.health
	switch {
	case s.inst == nil && h.State == StateRefused:
		return "refused: " + h.Message, fmt.Errorf("announcer %q: %w: %s", s.spec.Name, ErrRefused, h.Message)
	case s.inst == nil && h.State == StateIdle:
		return "idle: starting it; the change is sent once it runs", nil
	case s.inst == nil:
		msg := string(h.State)
		if h.Message != "" {
			msg += ": " + h.Message
		}
		return "not running (" + msg + "); kept and replayed when it is back", nil
	case s.suspect != "":
		return "being replaced (" + s.suspect + "); kept and replayed", nil
	case !s.sendingSince.IsZero() && time.Since(s.sendingSince) > s.m.opts.AckTimeout:
		return fmt.Sprintf("not answering for %s; kept and sent when it answers", time.Since(s.sendingSince).Round(time.Millisecond)), nil
	case s.sendingSince.IsZero() && s.sendErr != "":
		return "last send failed (" + s.sendErr + "); kept and retried", nil
	}
	return "", nil
}

func (s *supervised) rejectedLocked(keys []string) []announcers.Rejection {
	var out []announcers.Rejection
	for _, k := range keys {
		if reason, ok := s.rejected[k]; ok {
			out = append(out, announcers.Rejection{ID: k, Reason: reason})
		}
	}
	return out
}

// neededLocked reports whether the announcer has something to serve: an announcement, or a
// BGP peer to keep a session with.
func (s *supervised) neededLocked() bool {
	return len(s.desired) > 0 || (s.config != nil && s.config.BGP != nil && len(s.config.BGP.Peers) > 0)
}

// sendLoop sends every recorded change to the running announcer until ctx is done.
func (s *supervised) sendLoop(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.kick:
		}
		s.sendMu.Lock()
		for s.sendOne() {
		}
		s.sendMu.Unlock()
	}
}

// send is one call that brings the running announcer closer to the desired state.
type send struct {
	method string
	call   func(ctx context.Context, ann announcers.Announcer) (announcers.ApplyResult, error)
	// ack records success; s.mu is held.
	ack func(res announcers.ApplyResult)
}

// sendOne sends what the running announcer lacks, one call, and reports whether to go on.
// sendMu is held.
func (s *supervised) sendOne() bool {
	s.mu.Lock()
	inst := s.inst
	if inst == nil || s.suspect != "" {
		s.mu.Unlock()
		return false
	}
	op, ok := s.nextSendLocked()
	if !ok {
		s.mu.Unlock()
		return false
	}
	s.sendingSince = time.Now()
	s.mu.Unlock()

	ctx, done := inst.call(context.Background(), s.m.opts.CallTimeout)
	start := time.Now()
	res, err := op.call(ctx, inst.ann)
	// The server may end the call at the deadline a moment before the client's own timer
	// fires: its DEADLINE_EXCEEDED counts as well.
	timedOut := errors.Is(ctx.Err(), context.DeadlineExceeded) || status.Code(err) == codes.DeadlineExceeded
	done()
	if op.method != "" {
		observeRPC(s.spec.Name, op.method, start, err)
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	s.sendingSince = time.Time{}
	defer s.notifyLocked()
	if s.inst != inst {
		return false // replaced meanwhile; the new one was replayed the full state
	}
	if err == nil {
		s.sendErr = ""
		op.ack(res)
		s.logRejected(res)
		return true
	}
	if op.method != "" {
		s.inSync = false // the next data call sends the full set
	}
	if errors.Is(err, announcers.ErrOutOfSync) {
		s.log.Info("Announcer out of sync, sending the full set", "error", err.Error())
		return true
	}
	s.sendErr = err.Error()
	if timedOut {
		s.suspect = fmt.Sprintf("%s timed out after %s", op.name(), s.m.opts.CallTimeout)
		select {
		case s.wake <- struct{}{}:
		default:
		}
	}
	s.log.Error(err, "Sending to the announcer failed; kept for the next attempt")
	return false
}

func (op send) name() string {
	if op.method == "" {
		return "Configure"
	}
	return op.method
}

// nextSendLocked picks the next call: the configuration, then the full set when the
// announcer is out of step, else a delta of the keys changed since the last send.
func (s *supervised) nextSendLocked() (send, bool) {
	switch {
	case s.config != nil && s.configAcked < s.configGen:
		cfg, gen := *s.config, s.configGen
		return send{
			call: func(ctx context.Context, ann announcers.Announcer) (announcers.ApplyResult, error) {
				return announcers.ApplyResult{}, ann.Configure(ctx, cfg)
			},
			ack: func(announcers.ApplyResult) { s.configAcked = gen },
		}, true
	case !s.inSync || s.wantFull:
		set := announcers.DesiredSet{Generation: s.generation, Announcements: s.listLocked()}
		s.dirty, s.wantFull = map[string]struct{}{}, false
		return send{
			method: methodSetDesired,
			call: func(ctx context.Context, ann announcers.Announcer) (announcers.ApplyResult, error) {
				return ann.SetDesired(ctx, set)
			},
			ack: func(res announcers.ApplyResult) { s.acknowledgedLocked(set.Generation, res, true, nil) },
		}, true
	case s.acked < s.generation:
		d := announcers.Delta{BaseGeneration: s.acked, Generation: s.generation}
		keys := make([]string, 0, len(s.dirty))
		for k := range s.dirty {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			if a, ok := s.desired[k]; ok {
				d.Upserts = append(d.Upserts, a)
			} else {
				d.Removes = append(d.Removes, k)
			}
		}
		s.dirty = map[string]struct{}{}
		return send{
			method: methodApply,
			call: func(ctx context.Context, ann announcers.Announcer) (announcers.ApplyResult, error) {
				return ann.Apply(ctx, d)
			},
			ack: func(res announcers.ApplyResult) { s.acknowledgedLocked(d.Generation, res, false, keys) },
		}, true
	}
	return send{}, false
}

// acknowledgedLocked records that the running announcer holds gen; full says the result
// covers the whole set, otherwise it covers keys.
func (s *supervised) acknowledgedLocked(gen uint64, res announcers.ApplyResult, full bool, keys []string) {
	s.acked, s.inSync = gen, true
	if full {
		s.rejected = map[string]string{}
	}
	for _, k := range keys {
		delete(s.rejected, k)
	}
	for _, r := range res.Rejected {
		s.rejected[r.ID] = r.Reason
	}
	s.health.Generation = res.Generation
}

// replay hands a new process the configuration and the full desired set, then makes it the
// current one; changes recorded meanwhile follow through the sender.
func (s *supervised) replay(inst *instance) error {
	s.sendMu.Lock()
	defer s.sendMu.Unlock()
	s.mu.Lock()
	var cfg *announcers.Config
	if s.config != nil {
		c := *s.config
		cfg = &c
	}
	cfgGen := s.configGen
	set := announcers.DesiredSet{Generation: s.generation, Announcements: s.listLocked()}
	s.dirty, s.wantFull = map[string]struct{}{}, false
	s.mu.Unlock()

	ctx, done := inst.call(context.Background(), s.m.opts.CallTimeout)
	defer done()
	if cfg != nil {
		if err := inst.ann.Configure(ctx, *cfg); err != nil {
			return fmt.Errorf("replay configure: %w", err)
		}
	}
	start := time.Now()
	res, err := inst.ann.SetDesired(ctx, set)
	observeRPC(s.spec.Name, methodSetDesired, start, err)
	if err != nil {
		return fmt.Errorf("replay desired set: %w", err)
	}
	s.logRejected(res)
	s.mu.Lock()
	s.inst = inst
	s.configAcked, s.sendErr, s.suspect = cfgGen, "", ""
	s.acknowledgedLocked(set.Generation, res, true, nil)
	s.health.PID = inst.pid
	s.notifyLocked()
	s.mu.Unlock()
	upGauge.WithLabelValues(s.spec.Name).Set(1)
	s.poke()
	return nil
}

func (s *supervised) logRejected(res announcers.ApplyResult) {
	for _, r := range res.Rejected {
		s.log.Info("Announcement rejected by the announcer", "id", r.ID, "reason", r.Reason)
	}
}

func (s *supervised) listLocked() []announcers.Announcement {
	keys := make([]string, 0, len(s.desired))
	for k := range s.desired {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make([]announcers.Announcement, len(keys))
	for i, k := range keys {
		out[i] = s.desired[k]
	}
	return out
}
