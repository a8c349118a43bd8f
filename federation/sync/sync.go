// Package sync implements catch-up between nodes (spec/federation.md §4):
// version vector arithmetic, the /hearth/sync/1.0.0 server, client calls for
// heads, fetch and history, and a Syncer that exchanges heads on connect,
// periodically and on demand, fetching exactly the missing events.
package sync

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	gosync "sync"
	"time"

	"github.com/hearth-chat/hearth/federation/event"
	"github.com/hearth-chat/hearth/federation/proto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
)

// Limits of [FED-032] and [FED-033].
const (
	MaxFetch       = 1000
	MaxHistory     = 100
	maxResponseRaw = proto.MaxResponse - 512<<10 // leave room for framing
)

// Missing returns, for every origin where remote is ahead of local, the
// inclusive range of sequence numbers local lacks, home origin first and the
// rest in a stable order.
func Missing(local map[event.Node]uint64, remote []proto.Head, home event.Node) []proto.Range {
	var out []proto.Range
	for _, h := range remote {
		if have := local[h.Origin]; h.Seq > have {
			out = append(out, proto.Range{Origin: h.Origin, From: have + 1, To: h.Seq})
		}
	}
	slices.SortFunc(out, func(a, b proto.Range) int {
		if (a.Origin == home) != (b.Origin == home) {
			if a.Origin == home {
				return -1
			}
			return 1
		}
		return cmp.Compare(a.Origin, b.Origin)
	})
	return out
}

// Access is what a peer may sync of a guild [FED-034].
type Access int

const (
	// AccessNone: not a member node, or the guild is unknown.
	AccessNone Access = iota
	// AccessState: a former member node, which may fetch only the home
	// node's state events, to learn of its own removal.
	AccessState
	// AccessFull: the home node or a current member's node.
	AccessFull
)

// Source is what the server reads; the federation service implements it.
type Source interface {
	Access(guild event.ID, p peer.ID) Access
	// Home is the guild's home node.
	Home(guild event.ID) event.Node
	Vector(guild event.ID) (map[event.Node]uint64, error)
	StateHead(guild event.ID) uint64
	Range(guild event.ID, origin event.Node, from, to uint64, limit int) ([][]byte, bool, error)
	History(guild, channel event.ID, before event.HLC, limit int) ([][]byte, error)
}

// Serve registers the sync protocol handler on h until ctx ends; the caller
// removes it with h.RemoveStreamHandler(proto.Sync) on shutdown.
func Serve(ctx context.Context, h host.Host, src Source, log *slog.Logger) {
	fail := func(e *proto.Error) *proto.SyncResponse { return &proto.SyncResponse{Status: e.Status, Error: e.Msg} }
	proto.Handle(ctx, h, proto.Sync, log, func(ctx context.Context, from peer.ID, req *proto.SyncRequest) *proto.SyncResponse {
		access := src.Access(req.Guild, from)
		if access == AccessNone || access == AccessState && req.Op == proto.OpHistory {
			return fail(proto.Fail(proto.Forbidden, "not a member node of this guild"))
		}
		resp, err := serve(src, req, access)
		if err != nil {
			var pe *proto.Error
			if errors.As(err, &pe) {
				return fail(pe)
			}
			log.Warn("sync: serve", "op", req.Op, "err", err)
			return fail(proto.Fail(proto.Unavailable, "internal error"))
		}
		return resp
	}, fail)
}

func serve(src Source, req *proto.SyncRequest, access Access) (*proto.SyncResponse, error) {
	home := src.Home(req.Guild)
	switch req.Op {
	case proto.OpHeads:
		v, err := src.Vector(req.Guild)
		if err != nil {
			return nil, err
		}
		resp := &proto.SyncResponse{StateHead: src.StateHead(req.Guild)}
		for o, s := range v {
			if access == AccessState && o != home {
				continue
			}
			resp.Vector = append(resp.Vector, proto.Head{Origin: o, Seq: s})
		}
		slices.SortFunc(resp.Vector, func(a, b proto.Head) int { return cmp.Compare(a.Origin, b.Origin) })
		return resp, nil
	case proto.OpFetch:
		if len(req.Ranges) > 1024 {
			return nil, proto.Fail(proto.BadRequest, "too many ranges")
		}
		resp := &proto.SyncResponse{}
		size := 0
		for _, r := range req.Ranges {
			if r.From == 0 || r.To < r.From {
				return nil, proto.Fail(proto.BadRequest, "bad range")
			}
			if access == AccessState && r.Origin != home {
				continue
			}
			left := MaxFetch - len(resp.Events)
			evs, more, err := src.Range(req.Guild, r.Origin, r.From, r.To, left)
			if err != nil {
				return nil, err
			}
			for _, raw := range evs {
				if access == AccessState && !isState(raw) {
					continue
				}
				if size+len(raw) > maxResponseRaw {
					resp.More = true
					return resp, nil
				}
				size += len(raw)
				resp.Events = append(resp.Events, raw)
			}
			if more || len(resp.Events) >= MaxFetch {
				resp.More = true
				return resp, nil
			}
		}
		return resp, nil
	case proto.OpHistory:
		if req.Channel == "" {
			return nil, proto.Fail(proto.BadRequest, "history needs a channel")
		}
		limit := int(req.Limit)
		if limit <= 0 || limit > MaxHistory {
			limit = MaxHistory
		}
		evs, err := src.History(req.Guild, req.Channel, req.Before, limit)
		if err != nil {
			return nil, err
		}
		return &proto.SyncResponse{Events: evs}, nil
	}
	return nil, proto.Fail(proto.BadRequest, "unknown op %d", req.Op)
}

func isState(raw []byte) bool {
	ev, err := event.Decode(raw)
	return err == nil && ev.Kind.Class() == event.ClassState
}

// Heads asks p for its vector and state head of guild.
func Heads(ctx context.Context, h host.Host, p peer.ID, guild event.ID) ([]proto.Head, uint64, error) {
	var resp proto.SyncResponse
	if err := proto.Call(ctx, h, p, proto.Sync, &proto.SyncRequest{Op: proto.OpHeads, Guild: guild}, &resp); err != nil {
		return nil, 0, fmt.Errorf("sync: heads: %w", err)
	}
	return resp.Vector, resp.StateHead, nil
}

// Fetch asks p for the events in ranges; more reports a truncated answer.
func Fetch(ctx context.Context, h host.Host, p peer.ID, guild event.ID, ranges []proto.Range) ([][]byte, bool, error) {
	var resp proto.SyncResponse
	if err := proto.Call(ctx, h, p, proto.Sync, &proto.SyncRequest{Op: proto.OpFetch, Guild: guild, Ranges: ranges}, &resp); err != nil {
		return nil, false, fmt.Errorf("sync: fetch: %w", err)
	}
	return resp.Events, resp.More, nil
}

// History asks p for up to limit channel events older than before (0: newest).
func History(ctx context.Context, h host.Host, p peer.ID, guild, channel event.ID, before event.HLC, limit int) ([][]byte, error) {
	var resp proto.SyncResponse
	req := &proto.SyncRequest{Op: proto.OpHistory, Guild: guild, Channel: channel, Before: before, Limit: uint32(limit)}
	if err := proto.Call(ctx, h, p, proto.Sync, req, &resp); err != nil {
		return nil, fmt.Errorf("sync: history: %w", err)
	}
	return resp.Events, nil
}

// Applier is what the Syncer drives; the federation service implements it.
type Applier interface {
	// Guilds lists the guilds to keep in sync.
	Guilds() []event.ID
	// Peers lists the connected peers worth syncing guild with.
	Peers(guild event.ID) []peer.ID
	// Syncs reports whether p is worth syncing guild with: a node of its members.
	Syncs(guild event.ID, p peer.ID) bool
	// Home is the guild's home node.
	Home(guild event.ID) event.Node
	Vector(guild event.ID) (map[event.Node]uint64, error)
	// Apply validates and stores fetched events in order and returns how
	// many were new. Invalid events penalise from; undecidable ones are
	// skipped and fetched again later [FED-038].
	Apply(ctx context.Context, guild event.ID, from peer.ID, raws [][]byte) (int, error)
}

// CatchUp exchanges heads with p and fetches everything p holds above our
// vector [FED-035], home origin first [FED-037]. It returns the number of
// events stored.
//
// Fetching is pipelined: while one page is applied (verified and stored),
// the next is already requested, starting after what the previous pages
// covered. A last pass against the vector itself then fetches again
// whatever was not applied (events ignored for missing state [FED-038], or
// a page that covered less than assumed).
func CatchUp(ctx context.Context, h host.Host, p peer.ID, guild event.ID, a Applier) (int, error) {
	heads, _, err := Heads(ctx, h, p, guild)
	if err != nil {
		return 0, err
	}
	local, err := a.Vector(guild)
	if err != nil {
		return 0, err
	}
	total, err := pipelined(ctx, h, p, guild, a, heads, local)
	if err != nil {
		return total, err
	}
	for range 1000 { // bounded: each round either stores events or stops
		local, err := a.Vector(guild)
		if err != nil {
			return total, err
		}
		ranges := Missing(local, heads, a.Home(guild))
		if len(ranges) == 0 {
			return total, nil
		}
		raws, _, err := Fetch(ctx, h, p, guild, ranges)
		if err != nil {
			return total, err
		}
		n, err := a.Apply(ctx, guild, p, raws)
		total += n
		if err != nil {
			return total, err
		}
		if n == 0 {
			return total, nil // nothing applicable yet; a later round retries
		}
	}
	return total, nil
}

// page is one fetch answer.
type page struct {
	raws [][]byte
	err  error
}

// pipelined fetches the ranges above local that heads advertise, page by page, requesting
// each page while the previous one is applied. It takes a page of k events to cover the
// first k sequence numbers of the ranges it asked for (the responder holds every event up
// to its heads and answers in order [FED-032]); CatchUp's last pass repairs the rest.
func pipelined(ctx context.Context, h host.Host, p peer.ID, guild event.ID, a Applier, heads []proto.Head, local map[event.Node]uint64) (int, error) {
	home := a.Home(guild)
	asked := make(map[event.Node]uint64, len(local))
	for o, s := range local {
		asked[o] = s
	}
	ctx, cancel := context.WithCancel(ctx)
	next := make(chan page, 1)
	inflight := false
	// The fetch in flight is cancelled and drained on every return, so its goroutine ends
	// with this call.
	defer func() {
		cancel()
		if inflight {
			<-next
		}
	}()
	request := func(ranges []proto.Range) {
		inflight = true
		go func() {
			raws, _, err := Fetch(ctx, h, p, guild, ranges)
			next <- page{raws, err}
		}()
	}
	ranges := Missing(asked, heads, home)
	if len(ranges) == 0 {
		return 0, nil
	}
	request(ranges)
	total := 0
	for range 10000 { // bounded: every round applies a non-empty page or stops
		pg := <-next
		inflight = false
		if pg.err != nil {
			return total, pg.err
		}
		if len(pg.raws) == 0 {
			return total, nil
		}
		cover(asked, ranges, len(pg.raws))
		if ranges = Missing(asked, heads, home); len(ranges) > 0 {
			request(ranges)
		}
		n, err := a.Apply(ctx, guild, p, pg.raws)
		total += n
		if err != nil || len(ranges) == 0 || n == 0 {
			return total, err
		}
	}
	return total, nil
}

// cover advances asked over the first n sequence numbers of ranges, in order.
func cover(asked map[event.Node]uint64, ranges []proto.Range, n int) {
	for _, r := range ranges {
		if n <= 0 {
			return
		}
		k := min(uint64(n), r.To-r.From+1)
		asked[r.Origin] = r.From + k - 1
		n -= int(k)
	}
}

// Syncer keeps guilds in sync with peers: on every new connection, every
// Interval, and when Trigger is called (gap detected) [FED-035] [FED-036].
// Create with NewSyncer, then Run in a goroutine owned by the caller.
type Syncer struct {
	h        host.Host
	a        Applier
	interval time.Duration
	log      *slog.Logger

	mu      gosync.Mutex
	pending map[job]bool
	running map[job]bool // catch-ups under way, by guild and peer
	again   map[job]bool // jobs triggered while they ran
	fails   map[job]int  // failed catch-ups in a row, for the retry backoff
	wake    chan struct{}
}

type job struct {
	guild event.ID
	peer  peer.ID
}

// NewSyncer makes a Syncer. interval 0 means 30 s.
func NewSyncer(h host.Host, a Applier, interval time.Duration, log *slog.Logger) *Syncer {
	if interval == 0 {
		interval = 30 * time.Second
	}
	if log == nil {
		log = slog.Default()
	}
	return &Syncer{h: h, a: a, interval: interval, log: log, pending: map[job]bool{}, running: map[job]bool{}, again: map[job]bool{},
		fails: map[job]int{}, wake: make(chan struct{}, 1)}
}

// Trigger asks for a catch-up of guild with p soon; duplicate requests
// coalesce. p == "" means every peer of the guild.
func (s *Syncer) Trigger(guild event.ID, p peer.ID) {
	s.mu.Lock()
	s.pending[job{guild, p}] = true
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// notifiee triggers a catch-up with each newly connected peer of the guilds it is a member
// node of. Only those: a node that holds many guilds and meets many peers (fake ones of a
// test suite, nodes of DMs) would otherwise queue a heads exchange per guild and peer, and a
// catch-up a gap needs would wait behind them all.
type notifiee struct {
	network.NoopNotifiee
	s *Syncer
}

func (n *notifiee) Connected(_ network.Network, c network.Conn) {
	p := c.RemotePeer()
	for _, g := range n.s.a.Guilds() {
		if n.s.a.Syncs(g, p) {
			n.s.Trigger(g, p)
		}
	}
}

// Run works until ctx ends. It runs at most 4 catch-ups at a time.
func (s *Syncer) Run(ctx context.Context) {
	nf := &notifiee{s: s}
	s.h.Network().Notify(nf)
	defer s.h.Network().StopNotify(nf)
	tick := time.NewTicker(s.interval)
	defer tick.Stop()
	sem := make(chan struct{}, 4)
	var wg gosync.WaitGroup
	defer wg.Wait()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			for _, g := range s.a.Guilds() {
				s.Trigger(g, "")
			}
		case <-s.wake:
		}
		s.mu.Lock()
		jobs := s.pending
		s.pending = map[job]bool{}
		s.mu.Unlock()
		for j := range jobs {
			peers := []peer.ID{j.peer}
			if j.peer == "" {
				peers = s.a.Peers(j.guild)
			}
			for _, p := range peers {
				if p == s.h.ID() {
					continue
				}
				pj := job{j.guild, p}
				s.mu.Lock()
				busy := s.running[pj]
				if busy {
					// One catch-up per guild and peer at a time: a second one would fetch
					// and verify the same events again. It runs once this one is over.
					s.again[pj] = true
				} else {
					s.running[pj] = true
				}
				s.mu.Unlock()
				if busy {
					continue
				}
				select {
				case sem <- struct{}{}:
				case <-ctx.Done():
					return
				}
				wg.Add(1)
				go func() {
					defer wg.Done()
					defer func() { <-sem }()
					defer s.finished(pj)
					n, err := CatchUp(ctx, s.h, p, j.guild, s.a)
					if err != nil && ctx.Err() == nil {
						s.log.Debug("sync: catch-up", "guild", j.guild, "peer", p, "err", err)
						s.retry(ctx, job{j.guild, p})
						return
					}
					s.mu.Lock()
					delete(s.fails, job{j.guild, p})
					s.mu.Unlock()
					if n > 0 {
						s.log.Debug("sync: caught up", "guild", j.guild, "peer", p, "events", n)
					}
				}()
			}
		}
	}
}

// finished ends a catch-up of j, and triggers j again if that was asked meanwhile.
func (s *Syncer) finished(j job) {
	s.mu.Lock()
	delete(s.running, j)
	again := s.again[j]
	delete(s.again, j)
	s.mu.Unlock()
	if again {
		s.Trigger(j.guild, j.peer)
	}
}

// retry triggers a failed catch-up again after a backoff of 250 ms doubling with each
// failure in a row, up to the periodic interval, so that a gap noticed while a peer was
// briefly unreachable or busy is not left until the next periodic exchange. After
// maxRetries failures in a row the periodic exchange alone goes on.
func (s *Syncer) retry(ctx context.Context, j job) {
	const maxRetries = 8
	s.mu.Lock()
	n := s.fails[j]
	s.fails[j] = n + 1
	if n >= maxRetries {
		delete(s.fails, j)
	}
	s.mu.Unlock()
	if n >= maxRetries {
		return
	}
	delay := min(250*time.Millisecond<<n, s.interval)
	t := time.NewTimer(delay)
	go func() {
		defer t.Stop()
		select {
		case <-ctx.Done():
		case <-t.C:
			s.Trigger(j.guild, j.peer)
		}
	}()
}

// AddrBytes converts multiaddrs to their binary forms for the wire.
func AddrBytes(addrs []ma.Multiaddr) [][]byte {
	out := make([][]byte, 0, len(addrs))
	for _, a := range addrs {
		out = append(out, a.Bytes())
	}
	return out
}

// ParseAddrBytes converts wire addresses back, skipping malformed ones.
func ParseAddrBytes(bs [][]byte) []ma.Multiaddr {
	out := make([]ma.Multiaddr, 0, len(bs))
	for _, b := range bs {
		if a, err := ma.NewMultiaddrBytes(b); err == nil {
			out = append(out, a)
		}
	}
	return out
}
