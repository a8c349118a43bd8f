// Package fed is the federation service the node uses: one value that owns
// the libp2p host, gossip, sync, validation, guild state and presence, and
// exposes what the node needs (publish, moderate, invites, join, history,
// presence). See package federation for the integration contract.
package fed

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/hearth-chat/hearth/federation/event"
	"github.com/hearth-chat/hearth/federation/gossip"
	"github.com/hearth-chat/hearth/federation/guild"
	fhost "github.com/hearth-chat/hearth/federation/host"
	"github.com/hearth-chat/hearth/federation/proto"
	"github.com/hearth-chat/hearth/federation/store"
	fsync "github.com/hearth-chat/hearth/federation/sync"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/peerstore"
	"github.com/libp2p/go-libp2p/core/protocol"
	"github.com/libp2p/go-libp2p/p2p/net/swarm"
	ma "github.com/multiformats/go-multiaddr"
	"golang.org/x/time/rate"
)

// Clock limits of spec/events.md §4.
const (
	// MaxFutureSkew is how far ahead of our clock an event may be [EVT-031].
	MaxFutureSkew = 30 * time.Second
	// LiveWindow is how old an event may be on the gossip path [EVT-032].
	LiveWindow = 10 * time.Minute
)

// Config configures a Service. DB is required; everything else has a default.
type Config struct {
	// DB is the node's Badger database; federation keys live under "f/".
	// The node opens it and closes it after Close.
	DB *badger.DB
	// Sync, when DB is opened without SyncWrites, makes everything committed
	// before the call durable; federation calls it after each of its writes,
	// so that an event delivered to OnEvent or acknowledged to a peer
	// survives kill -9. Nil means DB syncs its own writes (SyncWrites).
	Sync func() error
	// Space, if set, is asked before each write to the store; its error refuses the
	// write (the node's free-space reserve): a gossiped event is then ignored, to be
	// fetched by catch-up once space is back.
	Space func() error
	// Host configures the libp2p host (data dir for the key, addresses).
	Host fhost.Config
	// NodeName is this node's display name, shown as name@NodeName.
	NodeName string
	// Bootstrap lists full multiaddrs (/…/p2p/<id>) to dial at start.
	Bootstrap []string

	// OnEvent receives every newly stored persistent event exactly once per
	// process, in commit order within a guild [FED-016], once it is
	// committed to DB: it survives a crash of the process, and it is durable
	// once Sync (which runs right after) returns. A power loss before that
	// loses it here and in the version vector alike, so catch-up fetches and
	// delivers it again. It runs on the guild's commit path: it must not block for
	// long, and must not call Publish, Moderate, CreateInvite or Join for
	// the same guild synchronously (they wait for that path and would
	// deadlock); hand work to a goroutine or channel instead. Nil discards.
	// Use Replay at start to recover anything missed by a crash.
	OnEvent func(ev *event.Event)
	// OnPresence receives presence changes of remote users, including
	// offline when an entry expires. Nil discards.
	OnPresence func(guild event.ID, user event.User, status uint8)
	// OnTyping receives typing notices of remote users; each lasts 10 s
	// from receipt [EVT-083] (relay it as TYPING_START, which clients
	// expire). Nil discards.
	OnTyping func(guild, channel event.ID, user event.User)
	// OnDM is asked to accept a direct conversation that user from of another
	// node opens with the local user to, reached with invite: it joins it
	// (Join) and shows it, or returns an error (ErrUnknownUser when to does
	// not exist). Nil refuses every request.
	OnDM func(ctx context.Context, from event.User, to, invite string) error

	// SyncInterval is the periodic heads exchange; 0 means 30 s [FED-035].
	SyncInterval time.Duration
	// BatchInterval is the shortest time between two presence (or typing)
	// batches of a guild; a change after a quiet interval goes out at once.
	// 0 means 500 ms [FED-060] [FED-067].
	BatchInterval time.Duration
	// AuthorRate and AuthorBurst limit live events per author; 0 means 10/s
	// with a burst of 50. Exceeding them is rejected as abuse.
	AuthorRate  float64
	AuthorBurst int
	// Now is the wall clock; nil means time.Now.
	Now func() time.Time
	// Log receives diagnostics; nil means slog.Default().
	Log *slog.Logger
}

// Service is a running federation node. Create with New, stop with Close.
// All methods are safe for concurrent use.
type Service struct {
	cfg    Config
	log    *slog.Logger
	h      host.Host
	signer *event.Signer
	self   event.Node
	store  *store.Store
	gossip *gossip.Gossip
	syncer *fsync.Syncer
	clock  event.Clock
	pres   *presence

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	// goMu guards closing, which Close sets before it waits for wg (go).
	goMu    sync.Mutex
	closing bool

	mu     sync.RWMutex
	guilds map[event.ID]*guildRT
}

// guildRT is the runtime of one guild this node takes part in.
type guildRT struct {
	id event.ID
	st *guild.Guild
	// mu serialises writes: validation decisions that depend on the store,
	// storing, state application, local seq assignment and OnEvent.
	mu       sync.Mutex
	localSeq uint64
	limiters map[event.User]*rate.Limiter
	// held are verified state events waiting for their predecessor, by sn.
	held map[uint64]*event.Event
	// gapWait holds, for each origin below whose events a gap is being given
	// GapGrace to close (checkGap), the highest seq seen above a gap.
	gapWait map[event.Node]uint64

	// Group commit (commit.go): queue and overlay are guarded by mu;
	// commitSem (capacity 1) is held by the one caller writing a batch,
	// until the batch is committed (not synced).
	queue      []*pending
	overlay    map[event.ID]*event.Event
	overlaySeq map[seqKey]event.ID
	commitSem  chan struct{}
}

// New starts the service: the host, gossip, stream handlers, sync and
// presence loops, and every guild found in the database.
func New(cfg Config) (*Service, error) {
	if cfg.DB == nil {
		return nil, errors.New("fed: Config.DB is required")
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if cfg.AuthorRate == 0 {
		cfg.AuthorRate, cfg.AuthorBurst = 10, 50
	}
	if cfg.BatchInterval == 0 {
		cfg.BatchInterval = 500 * time.Millisecond
	}
	h, key, err := fhost.New(cfg.Host)
	if err != nil {
		return nil, fmt.Errorf("fed: %w", err)
	}
	signer, err := event.NewSigner(key)
	if err != nil {
		h.Close()
		return nil, fmt.Errorf("fed: %w", err)
	}
	g, err := gossip.New(h, cfg.Log)
	if err != nil {
		h.Close()
		return nil, fmt.Errorf("fed: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Service{cfg: cfg, log: cfg.Log, h: h, signer: signer, self: signer.Origin(),
		gossip: g, ctx: ctx, cancel: cancel, guilds: map[event.ID]*guildRT{}}
	s.store = store.New(cfg.DB, cfg.Sync, s.refuse)
	s.clock.Now = cfg.Now
	s.pres = newPresence(s)
	if err := s.load(); err != nil {
		s.Close()
		return nil, err
	}
	s.syncer = fsync.NewSyncer(h, (*applier)(s), cfg.SyncInterval, cfg.Log)
	fsync.Serve(ctx, h, (*source)(s), cfg.Log)
	s.serveJoin()
	s.serveMod()
	s.serveDM()
	s.wg.Add(3)
	go func() { defer s.wg.Done(); s.syncer.Run(ctx) }()
	go func() { defer s.wg.Done(); s.pres.run(ctx) }()
	go func() { defer s.wg.Done(); s.maintain(ctx) }()
	return s, nil
}

func (s *Service) now() time.Time {
	if s.cfg.Now != nil {
		return s.cfg.Now()
	}
	return time.Now()
}

// load rebuilds every stored guild's state from its state chain, or from the
// snapshot it was joined from and the chain above it.
func (s *Service) load() error {
	ids, err := s.store.Guilds()
	if err != nil {
		return fmt.Errorf("fed: load: %w", err)
	}
	for _, id := range ids {
		st, err := s.loadState(id)
		if err != nil {
			return fmt.Errorf("fed: load %s: %w", id, err)
		}
		if err := s.addGuild(st); err != nil {
			return err
		}
	}
	return nil
}

// addGuild registers a guild runtime and joins its topics.
func (s *Service) addGuild(st *guild.Guild) error {
	id := st.Info().ID
	seq, err := s.store.MaxSeq(id, s.self)
	if err != nil {
		return fmt.Errorf("fed: %w", err)
	}
	rt := &guildRT{id: id, st: st, localSeq: seq, limiters: map[event.User]*rate.Limiter{}, commitSem: make(chan struct{}, 1)}
	s.mu.Lock()
	if _, ok := s.guilds[id]; ok {
		s.mu.Unlock()
		return nil
	}
	s.guilds[id] = rt
	s.mu.Unlock()
	if err := s.store.AddGuild(id); err != nil {
		return fmt.Errorf("fed: %w", err)
	}
	if err := s.gossip.Join(id, s.handleGossip); err != nil {
		return fmt.Errorf("fed: %w", err)
	}
	return nil
}

func (s *Service) guild(id event.ID) *guildRT {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.guilds[id]
}

// ErrUnknownGuild is returned for guilds this node does not take part in.
var ErrUnknownGuild = errors.New("fed: unknown guild")

// goOwned runs fn in a goroutine that Close waits for, unless Close has begun. fn must
// return once s.ctx is done.
func (s *Service) goOwned(fn func()) {
	s.goMu.Lock()
	defer s.goMu.Unlock()
	if s.closing {
		return
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		fn()
	}()
}

// Close stops every loop and the host. The database stays open.
func (s *Service) Close() error {
	s.goMu.Lock()
	s.closing = true
	s.goMu.Unlock()
	s.cancel()
	for _, p := range []protocol.ID{proto.Join, proto.Sync, proto.Mod} {
		s.h.RemoveStreamHandler(p)
	}
	s.wg.Wait()
	s.gossip.Close()
	if err := s.h.Close(); err != nil {
		return fmt.Errorf("fed: close host: %w", err)
	}
	return nil
}

// ID is this node's peer ID.
func (s *Service) ID() peer.ID { return s.h.ID() }

// Node is this node's ID as carried in events.
func (s *Service) Node() event.Node { return s.self }

// Host exposes the libp2p host (for metrics and tests); do not close it.
func (s *Service) Host() host.Host { return s.h }

// Addrs are this node's dialable addresses, each ending in /p2p/<id>.
func (s *Service) Addrs() []ma.Multiaddr {
	info := peer.AddrInfo{ID: s.h.ID(), Addrs: s.h.Addrs()}
	out, _ := peer.AddrInfoToP2pAddrs(&info)
	return out
}

// Guilds lists the guilds this node takes part in.
func (s *Service) Guilds() []event.ID {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]event.ID, 0, len(s.guilds))
	for id := range s.guilds {
		out = append(out, id)
	}
	return out
}

// Guild returns a guild's folded state for reading (channels, roles,
// members, permissions). Callers must not call Apply on it.
func (s *Service) Guild(id event.ID) (*guild.Guild, bool) {
	rt := s.guild(id)
	if rt == nil {
		return nil, false
	}
	return rt.st, true
}

// Event returns a stored event by ID (store.ErrNotFound if absent).
func (s *Service) Event(id event.ID) (*event.Event, error) { return s.store.Get(id) }

// Replay calls fn with every stored event of guild (per origin, in seq
// order). The node calls it at start to rebuild anything an OnEvent missed
// because of a crash; fn must be idempotent by event ID.
func (s *Service) Replay(guild event.ID, fn func(*event.Event) error) error {
	rt := s.guild(guild)
	return s.store.Each(guild, func(raw []byte) error {
		ev, err := event.Decode(raw)
		if err != nil {
			return err
		}
		if rt != nil && rt.st.Historical(ev) {
			return nil // never delivered: the snapshot holds its effect [FED-104]
		}
		return fn(ev)
	})
}

// Latest returns up to n of the stored events of origin in guild with the highest seqs,
// in seq order. The node reads its own latest events at start to restore messages it
// published but had not stored in its own copy when it stopped.
func (s *Service) Latest(guild event.ID, origin event.Node, n int) ([]*event.Event, error) {
	last, err := s.store.MaxSeq(guild, origin)
	if err != nil || last == 0 {
		return nil, err
	}
	from := uint64(1)
	if last > uint64(n) {
		from = last - uint64(n) + 1
	}
	raws, _, err := s.store.Range(guild, origin, from, last, n)
	if err != nil {
		return nil, err
	}
	return decodeAll(raws, "latest")
}

// decodeAll decodes stored events; what names the caller in the error.
func decodeAll(raws [][]byte, what string) ([]*event.Event, error) {
	out := make([]*event.Event, 0, len(raws))
	for _, raw := range raws {
		ev, err := event.Decode(raw)
		if err != nil {
			return nil, fmt.Errorf("fed: %s: %w", what, err)
		}
		out = append(out, ev)
	}
	return out, nil
}

// Vector returns the guild's version vector (origin → contiguous seq).
func (s *Service) Vector(guild event.ID) (map[event.Node]uint64, error) {
	return s.store.Vector(guild)
}

// maintain keeps the node connected to the member nodes of its guilds, so that gossip
// continues when the home node is unreachable [FED-055]: every sync interval, and, while
// some are unreachable, again after 250 ms doubling up to 500 ms for the first redialWindow
// after a member node's connection dropped, and then up to the interval. A healed
// partition is so noticed within half a second; the on-connect catch-up (sync) then
// fetches what was missed [FED-036].
func (s *Service) maintain(ctx context.Context) {
	s.connectBootstrap(ctx)
	interval := s.cfg.SyncInterval
	if interval == 0 {
		interval = 30 * time.Second
	}
	const (
		first        = 250 * time.Millisecond
		fastCap      = 500 * time.Millisecond
		redialWindow = 2 * time.Minute
	)
	lastDrop := time.Now()
	dropped := make(chan struct{}, 1)
	nf := &network.NotifyBundle{DisconnectedF: func(n network.Network, c network.Conn) {
		if n.Connectedness(c.RemotePeer()) != network.Connected {
			select {
			case dropped <- struct{}{}:
			default:
			}
		}
	}}
	s.h.Network().Notify(nf)
	defer s.h.Network().StopNotify(nf)
	delay := first
	for {
		next := interval
		if s.connectMembers(ctx) > 0 {
			limit := interval
			if time.Since(lastDrop) < redialWindow {
				limit = min(fastCap, interval)
			}
			next, delay = min(delay, limit), min(delay*2, limit)
		} else {
			delay = first
		}
		t := time.NewTimer(next)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-dropped:
			t.Stop()
			delay, lastDrop = first, time.Now()
		case <-t.C:
		}
	}
}

func (s *Service) connectBootstrap(ctx context.Context) {
	if len(s.cfg.Bootstrap) == 0 {
		return
	}
	infos, err := fhost.ParseAddrInfos(s.cfg.Bootstrap)
	if err != nil {
		s.log.Warn("fed: bootstrap", "err", err)
		return
	}
	cctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	if err := fhost.Connect(cctx, s.h, infos); err != nil {
		s.log.Info("fed: bootstrap", "err", err)
	}
}

// connectMembers dials the home and member nodes of every guild not connected yet [FED-055] [FED-057].
// connectMembers dials the member nodes (and home nodes) of the node's guilds that it is not
// connected to, and returns how many of them are still not connected.
func (s *Service) connectMembers(ctx context.Context) int {
	var infos []peer.AddrInfo
	for _, id := range s.Guilds() {
		rt := s.guild(id)
		// The home node, at the addresses of the invite it was joined with: the guild state
		// does not carry them, and the peerstore does not survive a restart.
		if home := peer.ID(rt.st.Info().Home); home != s.h.ID() && s.h.Network().Connectedness(home) != network.Connected {
			if addrs, err := s.store.HomeAddrs(id); err == nil && len(addrs) > 0 {
				s.h.Peerstore().AddAddrs(home, fsync.ParseAddrBytes(addrs), peerstore.PermanentAddrTTL)
				infos = append(infos, peer.AddrInfo{ID: home})
			}
		}
		for _, n := range rt.st.Nodes() {
			p := peer.ID(n.ID)
			if p == s.h.ID() || s.h.Network().Connectedness(p) == network.Connected {
				continue
			}
			addrs := fsync.ParseAddrBytes(n.Addrs)
			s.h.Peerstore().AddAddrs(p, addrs, peerstore.PermanentAddrTTL)
			infos = append(infos, peer.AddrInfo{ID: p})
		}
	}
	if len(infos) == 0 {
		return 0
	}
	// Past dial failures (a partition) must not hold back the redial once the link is back.
	// (The swarm's backoff is cleared rather than bypassed with a forced direct dial, which
	// also changes how the dial is made.)
	if sw, ok := s.h.Network().(*swarm.Swarm); ok {
		for _, in := range infos {
			sw.Backoff().Clear(in.ID)
		}
	}
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	_ = fhost.Connect(cctx, s.h, infos)
	missing := 0
	for _, in := range infos {
		if s.h.Network().Connectedness(in.ID) != network.Connected {
			missing++
		}
	}
	return missing
}
