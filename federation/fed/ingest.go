package fed

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	gosync "sync"
	"time"

	"github.com/hearth-chat/hearth/federation/event"
	"github.com/hearth-chat/hearth/federation/gossip"
	"github.com/hearth-chat/hearth/federation/guild"
	fsync "github.com/hearth-chat/hearth/federation/sync"
	"github.com/libp2p/go-libp2p/core/peer"
	"golang.org/x/time/rate"
)

// Errors that classify why an event was not accepted. Ingest returns them
// wrapped; errReject-class errors penalise the delivering peer.
var (
	errReject = errors.New("fed: rejected")
	errIgnore = errors.New("fed: ignored")
)

func reject(format string, args ...any) error {
	return fmt.Errorf("%w: %s", errReject, fmt.Sprintf(format, args...))
}

func ignore(format string, args ...any) error {
	return fmt.Errorf("%w: %s", errIgnore, fmt.Sprintf(format, args...))
}

// space returns the node's free-space refusal (Config.Space), if any.
func (s *Service) space() error {
	if s.cfg.Space == nil {
		return nil
	}
	return s.cfg.Space()
}

// refuse is the store's free-space check. Its refusal is errIgnore as well, so that a
// gossiped event the store refuses (the disk filled between the checks) is ignored, not
// held against the peer that sent it.
func (s *Service) refuse() error {
	if err := s.space(); err != nil {
		return fmt.Errorf("%w: %w", errIgnore, err)
	}
	return nil
}

// handleGossip is the topic validator: it validates, stores and delivers
// persistent events, and validates and delivers ephemeral ones [FED-013].
func (s *Service) handleGossip(ctx context.Context, guildID event.ID, from peer.ID, raw []byte, ephemeral bool) gossip.Verdict {
	if from == s.h.ID() {
		// Our own publication: persistent events were stored before
		// publishing, ephemeral ones are never delivered to ourselves.
		return gossip.Accept
	}
	var err error
	if ephemeral {
		err = s.ingestEphemeral(guildID, raw)
	} else {
		_, err = s.ingest(guildID, from, raw, true)
	}
	switch {
	case err == nil:
		return gossip.Accept
	case errors.Is(err, errIgnore):
		s.log.Debug("fed: ignored gossip", "guild", guildID, "from", from, "err", err)
		return gossip.Ignore
	default:
		s.log.Debug("fed: rejected gossip", "guild", guildID, "from", from, "err", err)
		return gossip.Reject
	}
}

// ingest validates one persistent event for guildID delivered by from and,
// if valid and new, stores it and calls OnEvent. live selects the gossip
// path: the past clock window and per-author rate limits apply only there.
// It returns the event when it was newly stored.
func (s *Service) ingest(guildID event.ID, from peer.ID, raw []byte, live bool) (*event.Event, error) {
	if err := s.refuse(); err != nil {
		return nil, err // not the sender's fault: catch-up fetches it later
	}
	ev, rt, err := s.prepare(guildID, raw, live)
	if err != nil {
		return nil, err
	}
	rt.mu.Lock()
	p, err := s.validateLocked(rt, ev, from, live)
	rt.mu.Unlock()
	if err != nil {
		return nil, err
	}
	if err := s.await(rt, p); err != nil {
		return nil, err
	}
	s.checkGap(rt, ev, from)
	return ev, nil
}

// GapGrace is how long a gap below an accepted event is left to close before the node
// fetches it (it fetches after one to two GapGrace) [FED-036]: gossip does not keep order
// (validators run concurrently), so at a high rate gaps open all the time and close within
// milliseconds, and fetching each would verify its events twice and load both nodes.
const GapGrace = 500 * time.Millisecond

// checkGap asks from for the events below ev when we lack some, once they have been missing
// for GapGrace [FED-036]. One wait per guild and origin runs at a time: a gap seen during it
// (rt.gapWait holds the highest seq seen above one) is checked after a further GapGrace.
func (s *Service) checkGap(rt *guildRT, ev *event.Event, from peer.ID) {
	if have, err := s.store.VectorEntry(rt.id, ev.Origin); err != nil || have >= ev.Seq {
		return
	}
	rt.mu.Lock()
	top, waiting := rt.gapWait[ev.Origin]
	if rt.gapWait == nil {
		rt.gapWait = map[event.Node]uint64{}
	}
	rt.gapWait[ev.Origin] = max(top, ev.Seq)
	rt.mu.Unlock()
	if waiting {
		return
	}
	s.goOwned(func() {
		t := time.NewTimer(GapGrace)
		defer t.Stop()
		for target := ev.Seq; ; {
			select {
			case <-s.ctx.Done():
				return
			case <-t.C:
			}
			have, err := s.store.VectorEntry(rt.id, ev.Origin)
			rt.mu.Lock()
			top := rt.gapWait[ev.Origin]
			if err != nil || have < target || have >= top {
				delete(rt.gapWait, ev.Origin)
				rt.mu.Unlock()
				if err == nil && have < target {
					s.syncLater(rt.id, from)
				}
				return
			}
			rt.mu.Unlock()
			target = top
			t.Reset(GapGrace)
		}
	})
}

// prepare runs the checks that need no lock: decoding, guild, clock window
// and signature. It is the expensive part and runs in parallel.
func (s *Service) prepare(guildID event.ID, raw []byte, live bool) (*event.Event, *guildRT, error) {
	ev, err := event.Decode(raw)
	if err != nil {
		return nil, nil, reject("%v", err)
	}
	if ev.GuildID() != guildID {
		return nil, nil, reject("event of another guild")
	}
	if ev.Kind.Class() == event.ClassEphemeral {
		return nil, nil, reject("ephemeral event on the persistent path")
	}
	now := s.now()
	if ts := ev.TS.Time(); ts.After(now.Add(MaxFutureSkew)) {
		return nil, nil, reject("ts %v is in the future", ts) // [EVT-031]
	} else if live && ts.Before(now.Add(-LiveWindow)) {
		return nil, nil, ignore("ts %v is outside the live window", ts) // [EVT-032]
	}
	rt := s.guild(guildID)
	if rt == nil {
		return nil, nil, ignore("unknown guild")
	}
	if have, err := s.store.Has(ev.ID); err != nil {
		return nil, nil, err
	} else if have {
		return nil, nil, ignore("already stored") // replay or duplicate
	}
	if err := ev.Verify(); err != nil {
		return nil, nil, reject("%v", err)
	}
	return ev, rt, nil
}

// validateLocked runs the checks that depend on guild state and stored
// events, applies state events, and queues the event for commit. The caller
// holds rt.mu.
func (s *Service) validateLocked(rt *guildRT, ev *event.Event, from peer.ID, live bool) (*pending, error) {
	if have, err := s.has(rt, ev.ID); err != nil {
		return nil, err
	} else if have {
		return nil, ignore("already stored")
	}
	if other, err := s.bySeq(rt, ev.Origin, ev.Seq); err != nil {
		return nil, err
	} else if other != "" {
		return nil, reject("equivocation: origin reused seq %d", ev.Seq) // [EVT-014]
	}
	switch ev.Kind.Class() {
	case event.ClassState:
		if rt.st.Historical(ev) {
			break // stored so that the vector closes, not applied: the snapshot holds it [FED-104]
		}
		err := rt.st.Apply(ev)
		if errors.Is(err, guild.ErrNotYet) {
			// Gossip does not keep order: hold the event until its
			// predecessors arrive, and ask for them meanwhile.
			rt.hold(ev)
			s.syncLater(rt.id, from)
		}
		if err := classify(err); err != nil {
			return nil, err
		}
	case event.ClassMessage:
		if err := s.checkMessage(rt, ev); err != nil {
			if errors.Is(err, errIgnore) {
				s.syncLater(rt.id, from)
			}
			return nil, err
		}
		if live && !rt.allow(ev.Author, s.cfg.AuthorRate, s.cfg.AuthorBurst) {
			return nil, reject("author %s exceeds the rate limit", ev.Author)
		}
	}
	p := rt.enqueue(ev)
	if ev.Kind.Class() == event.ClassState {
		s.applyHeld(rt)
	}
	return p, nil
}

// maxHeld bounds the state events held for a missing predecessor.
const maxHeld = 256

// hold keeps a verified state event that arrived ahead of its predecessor.
// The caller holds rt.mu.
func (rt *guildRT) hold(ev *event.Event) {
	if rt.held == nil {
		rt.held = map[uint64]*event.Event{}
	}
	if len(rt.held) < maxHeld {
		rt.held[ev.SN] = ev
	}
}

// applyHeld applies held state events that have become next in line.
// The caller holds rt.mu.
func (s *Service) applyHeld(rt *guildRT) {
	for {
		info := rt.st.Info()
		for sn := range rt.held {
			if sn <= info.SN {
				delete(rt.held, sn)
			}
		}
		ev := rt.held[info.SN+1]
		if ev == nil {
			return
		}
		delete(rt.held, ev.SN)
		if other, err := s.bySeq(rt, ev.Origin, ev.Seq); err != nil || other != "" {
			continue
		}
		if err := rt.st.Apply(ev); err != nil {
			s.log.Debug("fed: held state event", "event", ev.ID, "err", err)
			continue
		}
		rt.enqueue(ev) // committed with the batch of the event that unblocked it
	}
}

// classify maps guild package errors to reject or ignore.
func classify(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, guild.ErrNotYet):
		return ignore("%v", err)
	case errors.Is(err, guild.ErrStale):
		return reject("conflicting state event: %v", err) // same sn, different ID
	default:
		return reject("%v", err)
	}
}

// checkMessage applies [EVT-070]..[EVT-073]. The caller holds rt.mu.
func (s *Service) checkMessage(rt *guildRT, ev *event.Event) error {
	if err := classify(rt.st.CheckMessage(ev)); err != nil {
		return err
	}
	var target event.ID
	switch b := ev.Body.(type) {
	case *event.MessageEdit:
		target = b.Target
	case *event.Target:
		target = b.Target
	case *event.Reaction:
		target = b.Target
	default:
		return nil
	}
	t, err := s.lookup(rt, target)
	if err != nil {
		return ignore("target %s not held yet", target) // [EVT-073]
	}
	if t.Kind != event.KindMessageCreate || t.Guild != ev.Guild || t.Channel != ev.Channel {
		return reject("target is not a message of this channel")
	}
	switch ev.Kind {
	case event.KindMessageEdit:
		if t.Author != ev.Author {
			return reject("edit of another author's message") // [EVT-072]
		}
	case event.KindMessageDelete:
		if t.Author != ev.Author && rt.st.Permissions(ev.Author, ev.Channel)&guild.PermManageMessages == 0 {
			return reject("delete without MANAGE_MESSAGES")
		}
	}
	return nil
}

func (rt *guildRT) allow(u event.User, r float64, burst int) bool {
	l := rt.limiters[u]
	if l == nil {
		if len(rt.limiters) > 100_000 {
			clear(rt.limiters) // bound memory; limits restart, which is harmless
		}
		l = rate.NewLimiter(rate.Limit(r), burst)
		rt.limiters[u] = l
	}
	return l.Allow()
}

// syncLater schedules a catch-up of guild with the peer that showed us it
// knows more than we do.
func (s *Service) syncLater(guildID event.ID, from peer.ID) {
	if s.syncer != nil && from != "" && from != s.h.ID() {
		s.syncer.Trigger(guildID, from)
	}
}

// ingestEphemeral validates a presence or typing batch and delivers it.
func (s *Service) ingestEphemeral(guildID event.ID, raw []byte) error {
	ev, err := event.Decode(raw)
	if err != nil {
		return reject("%v", err)
	}
	if ev.Kind.Class() != event.ClassEphemeral || ev.Guild != guildID {
		return reject("not an ephemeral event of this guild")
	}
	now := s.now()
	if ts := ev.TS.Time(); ts.After(now.Add(MaxFutureSkew)) {
		return reject("ts in the future")
	} else if ts.Before(now.Add(-time.Minute)) {
		return ignore("stale batch")
	}
	rt := s.guild(guildID)
	if rt == nil {
		return ignore("unknown guild")
	}
	if err := ev.Verify(); err != nil {
		return reject("%v", err)
	}
	if err := classify(rt.st.CheckEphemeral(ev)); err != nil {
		return err
	}
	s.pres.receive(guildID, ev)
	return nil
}

// applier adapts Service to sync.Applier.
type applier Service

func (a *applier) Guilds() []event.ID { return (*Service)(a).Guilds() }

func (a *applier) Peers(guildID event.ID) []peer.ID { return (*Service)(a).syncPeers(guildID) }

func (a *applier) Syncs(guildID event.ID, p peer.ID) bool {
	rt := (*Service)(a).guild(guildID)
	return rt != nil && rt.st.HasNode(event.Node(p))
}

func (a *applier) Home(guildID event.ID) event.Node {
	if rt := (*Service)(a).guild(guildID); rt != nil {
		return rt.st.Info().Home
	}
	return ""
}

func (a *applier) Vector(guildID event.ID) (map[event.Node]uint64, error) {
	return (*Service)(a).store.Vector(guildID)
}

// Apply ingests fetched events; rejected ones penalise the peer that served
// them, since it must have validated them itself.
func (a *applier) Apply(ctx context.Context, guildID event.ID, from peer.ID, raws [][]byte) (int, error) {
	s := (*Service)(a)
	if err := s.space(); err != nil {
		return 0, err // the catch-up fails without blaming the peer, and is retried
	}
	// Decode and verify in parallel, then validate in order under one lock
	// and commit as one batch.
	type prepared struct {
		ev  *event.Event
		err error
		// stateless marks errors found without guild state (decoding,
		// signature, clock): only those penalise the serving peer, since
		// state-dependent checks of old events can differ between honest
		// nodes whose state moved on.
		stateless bool
	}
	out := make([]prepared, len(raws))
	var wg gosync.WaitGroup
	workers := min(runtime.GOMAXPROCS(0), len(raws))
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < len(raws); i += workers {
				ev, _, err := s.prepare(guildID, raws[i], false)
				out[i] = prepared{ev: ev, err: err, stateless: err != nil}
			}
		}()
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	rt := s.guild(guildID)
	if rt == nil {
		return 0, nil
	}
	var queued []*pending
	rejected := 0
	rt.mu.Lock()
	for i := range out {
		if out[i].err == nil {
			var p *pending
			p, out[i].err = s.validateLocked(rt, out[i].ev, from, false)
			if p != nil {
				queued = append(queued, p)
			}
		}
		switch err := out[i].err; {
		case err == nil, errors.Is(err, errIgnore):
		case errors.Is(err, errReject):
			if out[i].stateless {
				rejected++
			}
			s.log.Debug("fed: rejected fetched event", "guild", guildID, "from", from, "err", err)
		default:
			rt.mu.Unlock()
			return 0, err
		}
	}
	rt.mu.Unlock()
	if rejected > 0 {
		// The peer served events that no honest node would hold.
		s.gossip.Penalize(from, 100*float64(rejected))
	}
	n := 0
	for _, p := range queued {
		if err := s.await(rt, p); err == nil {
			n++
		} else if !errors.Is(err, errIgnore) {
			return n, err
		}
	}
	// Events ignored as held may still be in another caller's commit (the
	// gossip path or a concurrent catch-up): wait for it, so that the caller
	// finds every applied event in the store and the vector.
	s.flush(rt)
	if len(queued) > 0 {
		s.checkGap(rt, queued[len(queued)-1].ev, from)
	}
	return n, nil
}

// syncPeers lists connected peers that are member nodes of the guild.
func (s *Service) syncPeers(guildID event.ID) []peer.ID {
	rt := s.guild(guildID)
	if rt == nil {
		return nil
	}
	var out []peer.ID
	for _, p := range s.h.Network().Peers() {
		if rt.st.HasNode(event.Node(p)) {
			out = append(out, p)
		}
	}
	return out
}

// source adapts Service to sync.Source.
type source Service

func (src *source) Access(guildID event.ID, p peer.ID) fsync.Access {
	rt := (*Service)(src).guild(guildID)
	switch {
	case rt == nil:
		return fsync.AccessNone
	case rt.st.HasNode(event.Node(p)):
		return fsync.AccessFull
	case rt.st.FormerNode(event.Node(p)):
		return fsync.AccessState
	}
	return fsync.AccessNone
}

func (src *source) Home(guildID event.ID) event.Node { return (*applier)(src).Home(guildID) }

func (src *source) Vector(guildID event.ID) (map[event.Node]uint64, error) {
	return src.store.Vector(guildID)
}

func (src *source) StateHead(guildID event.ID) uint64 {
	if rt := (*Service)(src).guild(guildID); rt != nil {
		return rt.st.Info().SN
	}
	return 0
}

func (src *source) Range(guildID event.ID, origin event.Node, from, to uint64, limit int) ([][]byte, bool, error) {
	return src.store.Range(guildID, origin, from, to, limit)
}

func (src *source) History(guildID, channel event.ID, before event.HLC, limit int) ([][]byte, error) {
	return src.store.History(guildID, channel, before, limit)
}
