// Package chat implements the node's domain: accounts, guilds, channels, roles, members,
// invites, messages, reactions, pins, read states and presence, with Discord's permission
// rules enforced on every operation and a dispatch published for every change.
//
// All guild state except messages is held in memory (loaded at start) and written through to
// the store in the same operation, so permission checks and fanout filters never touch disk.
// Messages live only in the store. A method returns after its write is durable; dispatches
// of one channel are published in the order of their message IDs (see orderer).
package chat

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hearth-chat/hearth/node/auth"
	"github.com/hearth-chat/hearth/node/fanout"
	"github.com/hearth-chat/hearth/node/model"
	"github.com/hearth-chat/hearth/node/perm"
	"github.com/hearth-chat/hearth/node/snowflake"
	"github.com/hearth-chat/hearth/node/store"
)

// ID is a local snowflake.
type ID = snowflake.ID

// Publisher delivers dispatch events; fanout.Hub implements it.
type Publisher interface {
	Publish(ev *fanout.Event)
	Join(guildID, userID uint64)
	Leave(guildID, userID uint64)
	DropGuild(guildID uint64)
	Online(userID uint64) bool
}

// Options configure New.
type Options struct {
	// Password is the argon2id cost; zero means auth.DefaultParams.
	Password auth.Params
	// Worker is the snowflake worker ID (low 10 bits).
	Worker uint16
	// Logger; nil means slog.Default().
	Logger *slog.Logger
	// Now is the clock; nil means time.Now. Tests set it.
	Now func() time.Time
	// RenderAttachment builds the wire object of a stored attachment (with signed URLs);
	// nil renders the stored fields without URLs.
	RenderAttachment func(a model.Attachment) any
}

// Service is the domain. It is safe for concurrent use.
type Service struct {
	db    *store.DB
	pub   Publisher
	ids   *snowflake.Generator
	log   *slog.Logger
	pw    auth.Params
	now   func() time.Time
	ord   orderer
	login *auth.Guard

	renderAttachment func(model.Attachment) any
	observer         MessageObserver
	fed              Federator // nil: federation off

	mu         sync.RWMutex
	users      map[ID]*model.User
	usernames  map[string]ID
	remotes    map[string]ID // remote users (name@node) known here, by display name
	tokens     map[[32]byte]ID
	guilds     map[ID]*guildState
	channels   map[ID]*model.Channel
	userGuilds map[ID]map[ID]struct{}
	private    map[ID]map[ID]struct{} // user → DM and group DM channels
	dms        map[[2]ID]ID           // sorted user pair → DM channel
	invites    map[string]*model.Invite
	reads      map[ID]map[ID]*model.ReadState // user → channel → read state
	presence   map[ID]Presence
	voice      voiceRegistry // voice states and the SFU's controls (voice.go)

	presenceBatch presenceBatcher
	remoteBatch   presenceBatcher // other nodes' users, flushed every RemoteFlushInterval
	bg            sync.WaitGroup  // background work (purges); Close waits
	permSync      sync.Mutex      // serialises publishing guilds' permissions to federation
	permDefer     permDeferrals   // federated permission states to apply when permSync is free
	fedChans      sync.Map        // federation channel ID → channel ID: channelByFedID's cache
	fedQueue      fedQueue        // publications to federation that must keep their order

	// gen counts write locks of mu: any change of guild state invalidates viewCache.
	gen       atomic.Uint64
	viewMu    sync.Mutex
	viewCache map[ID]viewEntry
}

// lock takes the state lock for writing and invalidates derived caches. Use it for any
// change that may change who sees a channel: members, roles, channels, overwrites.
func (s *Service) lock() {
	s.mu.Lock()
	s.gen.Add(1)
}

// lockKeepViews takes the state lock for writing a change that leaves every channel's
// audience as it is (a channel's last message, mention counts, read states, presences), so
// the viewers cache stays valid: with lock, every message would rebuild its channel's
// audience from the guild's member list. A caller that changes membership after all calls
// s.gen.Add(1) before it unlocks.
func (s *Service) lockKeepViews() {
	s.mu.Lock()
}

type guildState struct {
	g        model.Guild
	roles    map[ID]*model.Role
	channels map[ID]struct{}
	members  map[ID]*model.Member
	bans     map[ID]*model.Ban
}

// New loads the domain state from db.
func New(db *store.DB, pub Publisher, opts Options) (*Service, error) {
	s := &Service{
		db: db, pub: pub, ids: snowflake.New(opts.Worker), log: opts.Logger, pw: opts.Password, now: opts.Now,
		renderAttachment: opts.RenderAttachment,
		login:            auth.NewGuard(10, 15*time.Minute),
		users:            map[ID]*model.User{}, usernames: map[string]ID{}, remotes: map[string]ID{}, tokens: map[[32]byte]ID{},
		guilds: map[ID]*guildState{}, channels: map[ID]*model.Channel{}, userGuilds: map[ID]map[ID]struct{}{},
		private: map[ID]map[ID]struct{}{}, dms: map[[2]ID]ID{}, invites: map[string]*model.Invite{},
		reads: map[ID]map[ID]*model.ReadState{}, presence: map[ID]Presence{},
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	if s.pw == (auth.Params{}) {
		s.pw = auth.DefaultParams
	}
	if s.now == nil {
		s.now = time.Now
	}
	s.ord.pub = pub
	s.fedQueue.ctx, s.fedQueue.cancel = context.WithCancelCause(context.Background())
	if err := s.load(); err != nil {
		return nil, fmt.Errorf("chat: load: %w", err)
	}
	return s, nil
}

func (s *Service) load() error {
	var maxID ID
	see := func(id ID) {
		if id > maxID {
			maxID = id
		}
	}
	return s.db.View(func(tx *store.Tx) error {
		scan := func(prefix string, fn func(k, v []byte) error) error {
			return tx.Scan([]byte(prefix), nil, false, func(k, v []byte) (bool, error) {
				return true, fn(k, v)
			})
		}
		err := errors.Join(
			scan(store.PrefixUser, func(_, v []byte) error {
				var u model.User
				if err := json.Unmarshal(v, &u); err != nil {
					return err
				}
				s.users[u.ID] = &u
				if !isRemoteName(u.Username) {
					s.usernames[u.Username] = u.ID
				} else {
					s.remotes[u.Username] = u.ID
				}
				see(u.ID)
				return nil
			}),
			scan(store.PrefixToken, func(k, v []byte) error {
				var uid ID
				if err := json.Unmarshal(v, &uid); err != nil {
					return err
				}
				var h [32]byte
				copy(h[:], k[len(store.PrefixToken):])
				s.tokens[h] = uid
				return nil
			}),
			scan(store.PrefixGuild, func(_, v []byte) error {
				var g model.Guild
				if err := json.Unmarshal(v, &g); err != nil {
					return err
				}
				s.guilds[g.ID] = &guildState{g: g, roles: map[ID]*model.Role{}, channels: map[ID]struct{}{}, members: map[ID]*model.Member{}, bans: map[ID]*model.Ban{}}
				see(g.ID)
				return nil
			}),
		)
		if err != nil {
			return err
		}
		return errors.Join(
			scan(store.PrefixRole, func(k, v []byte) error {
				var r model.Role
				if err := json.Unmarshal(v, &r); err != nil {
					return err
				}
				r.GuildID = ID(store.IDAt(k, len(store.PrefixRole)))
				if gs := s.guilds[r.GuildID]; gs != nil {
					gs.roles[r.ID] = &r
				}
				see(r.ID)
				return nil
			}),
			scan(store.PrefixRoleFed, func(k, v []byte) error {
				gs := s.guilds[ID(store.IDAt(k, len(store.PrefixRoleFed)))]
				if gs == nil {
					return nil
				}
				if r := gs.roles[ID(store.IDAt(k, len(store.PrefixRoleFed)+8))]; r != nil {
					return json.Unmarshal(v, &r.FedID)
				}
				return nil
			}),
			scan(store.PrefixChannel, func(_, v []byte) error {
				var c model.Channel
				if err := json.Unmarshal(v, &c); err != nil {
					return err
				}
				s.channels[c.ID] = &c
				if gs := s.guilds[c.GuildID]; gs != nil {
					gs.channels[c.ID] = struct{}{}
				}
				if c.Type == model.ChannelDM && len(c.RecipientIDs) == 2 {
					s.dms[pair(c.RecipientIDs[0], c.RecipientIDs[1])] = c.ID
				}
				if c.IsPrivate() {
					for _, u := range c.RecipientIDs {
						addTo(s.private, u, c.ID)
					}
				}
				see(c.ID)
				if c.LastMessageID != nil {
					see(*c.LastMessageID)
				}
				return nil
			}),
			scan(store.PrefixMember, func(_, v []byte) error {
				var m model.Member
				if err := json.Unmarshal(v, &m); err != nil {
					return err
				}
				if gs := s.guilds[m.GuildID]; gs != nil {
					gs.members[m.UserID] = &m
					addTo(s.userGuilds, m.UserID, m.GuildID)
				}
				return nil
			}),
			scan(store.PrefixBan, func(_, v []byte) error {
				var b model.Ban
				if err := json.Unmarshal(v, &b); err != nil {
					return err
				}
				if gs := s.guilds[b.GuildID]; gs != nil {
					gs.bans[b.UserID] = &b
				}
				return nil
			}),
			scan(store.PrefixInvite, func(_, v []byte) error {
				var inv model.Invite
				if err := json.Unmarshal(v, &inv); err != nil {
					return err
				}
				s.invites[inv.Code] = &inv
				return nil
			}),
			scan(store.PrefixReadState, func(k, v []byte) error {
				var rs model.ReadState
				if err := json.Unmarshal(v, &rs); err != nil {
					return err
				}
				uid := ID(store.IDAt(k, len(store.PrefixReadState)))
				if s.reads[uid] == nil {
					s.reads[uid] = map[ID]*model.ReadState{}
				}
				s.reads[uid][rs.ChannelID] = &rs
				return nil
			}),
			s.loadLastMessages(tx, see),
			func() error { s.ids.Observe(maxID); return nil }(),
		)
	})
}

// loadLastMessages sets each text channel's last_message_id from the newest stored message.
func (s *Service) loadLastMessages(tx *store.Tx, see func(ID)) error {
	for _, c := range s.channels {
		if !c.IsTextual() {
			continue
		}
		prefix := store.Key(store.PrefixMessage, uint64(c.ID))
		err := tx.Scan(prefix, nil, true, func(k, _ []byte) (bool, error) {
			id := ID(store.IDAt(k, len(prefix)))
			c.LastMessageID = &id
			see(id)
			return false, nil
		})
		if err != nil {
			return err
		}
	}
	return nil
}

func addTo(m map[ID]map[ID]struct{}, k, v ID) {
	set := m[k]
	if set == nil {
		set = map[ID]struct{}{}
		m[k] = set
	}
	set[v] = struct{}{}
}

func pair(a, b ID) [2]ID {
	if a > b {
		a, b = b, a
	}
	return [2]ID{a, b}
}

// guild returns the guild state and the actor's member record, or the right error: unknown
// guild if it does not exist, missing access if the actor is not a member. Callers hold s.mu.
func (s *Service) guild(actor, guildID ID) (*guildState, *model.Member, error) {
	gs := s.guilds[guildID]
	if gs == nil {
		return nil, nil, ErrUnknownGuild
	}
	m := gs.members[actor]
	if m == nil {
		return nil, nil, ErrMissingAccess
	}
	return gs, m, nil
}

// basePerms is the member's guild-level permissions.
func (gs *guildState) basePerms(m *model.Member) perm.Bits {
	if m.UserID == gs.g.OwnerID {
		return perm.All
	}
	p := gs.roles[gs.g.ID].Permissions
	for _, id := range m.Roles {
		if r := gs.roles[id]; r != nil {
			p |= r.Permissions
		}
	}
	if p.Has(perm.Administrator) {
		return perm.All
	}
	return p
}

// channelPerms is the member's permissions in a channel of the guild.
func (gs *guildState) channelPerms(m *model.Member, c *model.Channel) perm.Bits {
	base := gs.basePerms(m)
	if base == perm.All {
		return perm.All
	}
	return perm.InChannel(base, uint64(gs.g.ID), m.PermMember(), c.PermOverwrites())
}

// highestRole is the position of the member's highest role (the owner is above everything).
func (gs *guildState) highestRole(m *model.Member) int {
	if m.UserID == gs.g.OwnerID {
		return 1 << 30
	}
	top := 0
	for _, id := range m.Roles {
		if r := gs.roles[id]; r != nil && r.Position > top {
			top = r.Position
		}
	}
	return top
}

// channelAccess resolves a channel the actor can view, returning the channel, its guild
// state (nil for private channels), the actor's permissions in it, and an error that does not
// reveal channels the actor cannot see. Callers hold s.mu.
func (s *Service) channelAccess(actor, channelID ID) (*model.Channel, *guildState, perm.Bits, error) {
	c := s.channels[channelID]
	if c == nil {
		return nil, nil, 0, ErrUnknownChannel
	}
	if c.IsPrivate() {
		if _, ok := s.private[actor][channelID]; !ok {
			return nil, nil, 0, ErrUnknownChannel
		}
		// In private channels everyone may do what a default member may, and no moderation
		// except by the group owner.
		p := perm.DefaultEveryone
		if c.OwnerID == actor {
			p |= perm.ManageChannels
		}
		return c, nil, p, nil
	}
	gs := s.guilds[c.GuildID]
	if gs == nil {
		return nil, nil, 0, ErrUnknownChannel
	}
	m := gs.members[actor]
	if m == nil {
		return nil, nil, 0, ErrUnknownChannel
	}
	p := gs.channelPerms(m, c)
	if !p.Has(perm.ViewChannel) {
		return nil, nil, 0, ErrUnknownChannel
	}
	return c, gs, p, nil
}

// encode marshals v for a dispatch; the types here always marshal.
func encode(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("chat: encode dispatch: %v", err))
	}
	return b
}

// publish sends a guild-wide dispatch.
func (s *Service) publishGuild(guildID ID, typ string, intent uint64, v any) {
	s.pub.Publish(&fanout.Event{Type: typ, Data: encode(v), Intent: intent, GuildID: uint64(guildID)})
}

// publishUsers sends a dispatch to some users.
func (s *Service) publishUsers(users []ID, typ string, intent uint64, v any) {
	ids := make([]uint64, len(users))
	for i, u := range users {
		ids[i] = uint64(u)
	}
	s.pub.Publish(&fanout.Event{Type: typ, Data: encode(v), Intent: intent, UserIDs: ids})
}

// Intents (Discord bit values) used to tag dispatches.
const (
	IntentGuilds                 = 1 << 0
	IntentGuildMembers           = 1 << 1
	IntentGuildModeration        = 1 << 2
	IntentGuildInvites           = 1 << 6
	IntentGuildVoiceStates       = 1 << 7
	IntentGuildPresences         = 1 << 8
	IntentGuildMessages          = 1 << 9
	IntentGuildMessageReactions  = 1 << 10
	IntentGuildMessageTyping     = 1 << 11
	IntentDirectMessages         = 1 << 12
	IntentDirectMessageReactions = 1 << 13
	IntentDirectMessageTyping    = 1 << 14
	IntentMessageContent         = 1 << 15
)

// orderer publishes each channel's dispatches in the order their operations reserved a slot,
// while the durable writes themselves run concurrently (Badger batches their fsyncs).
type orderer struct {
	pub  Publisher
	mu   sync.Mutex
	chns map[ID]*[]*slot
}

type slot struct {
	done   bool
	events []*fanout.Event
}

// reserve takes the next slot of the channel; fn runs inside the critical section so an ID
// assigned there is ordered like the slot.
func (o *orderer) reserve(ch ID, fn func()) *slot {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.chns == nil {
		o.chns = map[ID]*[]*slot{}
	}
	q := o.chns[ch]
	if q == nil {
		q = new([]*slot)
		o.chns[ch] = q
	}
	sl := &slot{}
	*q = append(*q, sl)
	if fn != nil {
		fn()
	}
	return sl
}

// complete marks the slot finished with its events (nil if the operation failed) and
// publishes every finished slot at the head of the channel's queue.
func (o *orderer) complete(ch ID, sl *slot, events ...*fanout.Event) {
	o.mu.Lock()
	defer o.mu.Unlock()
	sl.done, sl.events = true, events
	q := o.chns[ch]
	i := 0
	for ; i < len(*q) && (*q)[i].done; i++ {
		for _, ev := range (*q)[i].events {
			o.pub.Publish(ev)
		}
	}
	*q = (*q)[i:]
	if len(*q) == 0 {
		delete(o.chns, ch)
	}
}

// Close waits for background work (purges of deleted channels' messages, publications to
// federation) to finish. Publications still queued after shutdownGrace are given up, so that
// a node whose federation is unreachable stops in seconds, not 10 s per queued change.
func (s *Service) Close() {
	t := time.AfterFunc(shutdownGrace, func() { s.fedQueue.cancel(errShuttingDown) })
	defer t.Stop()
	s.bg.Wait()
	s.fedQueue.cancel(errShuttingDown)
}
