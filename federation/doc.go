// Package federation is Hearth's node-to-node layer: signed events, libp2p
// transport, gossip, validation, catch-up, presence and invites. The
// protocol is spec/events.md (EVT-nnn) and spec/federation.md (FED-nnn).
// This file is the integration contract for the node; the node imports only
// federation/fed and federation/event.
//
// # Packages
//
//	event    envelope, canonical CBOR, IDs, Ed25519ctx signatures, HLC, kinds and bodies
//	guild    folded guild state (channels, roles, overwrites, members, bans, invites), permissions
//	store    events, indexes and version vectors in the node's Badger DB under "f/"
//	host     libp2p host: identity key file, TCP+QUIC, Noise, yamux, conn and resource managers
//	gossip   gossipsub topics per guild, StrictNoSign, message ID = event ID, scoring
//	proto    stream protocol IDs, message shapes and framing (join, sync, mod)
//	sync     version vectors, heads/fetch/history server and client, the Syncer loop
//	fed      the Service the node uses; owns all of the above
//
// # Identity
//
// A node is its libp2p peer ID (Ed25519, key file "federation.key" in
// Config.Host.DataDir). A user is event.User{Node: home node, Name}; never
// send snowflakes across nodes. Guild, channel and role IDs are event IDs
// (event.ID, 34-byte sha2-256 multihash; String() gives "b…" base32). The
// @everyone role's ID is the guild ID. Map these to local snowflakes in the
// node and keep the mapping (keyed by event ID, so replays are idempotent).
//
// # Wiring
//
// Open Badger once and pass it in; federation keeps its keys under "f/" and
// never touches others. A DB opened without SyncWrites needs Sync (the
// node's group fsync), so that federation's writes are durable too:
//
//	svc, err := fed.New(fed.Config{
//		DB:        db,
//		Sync:      nodeDB.Sync,
//		Host:      host.Config{DataDir: dataDir, ListenAddrs: …, AnnounceAddrs: …},
//		NodeName:  cfg.NodeName,
//		Bootstrap: cfg.Bootstrap,
//		OnEvent:    func(ev *event.Event) { … },          // every new persistent event, once
//		OnPresence: func(g event.ID, u event.User, st uint8) { … },
//		OnTyping:   func(g, ch event.ID, u event.User) { … },
//		Log:       logger,
//	})
//	defer svc.Close()   // before db.Close()
//
// At start, call svc.Replay(guild, fn) for each svc.Guilds() to rebuild any
// mapping an OnEvent missed in a crash. OnEvent is called once the event is
// committed (it survives a crash of the process; the group fsync follows at
// once), in commit order per guild, on the guild's commit path: do not
// block in it, and never call Publish, Moderate, CreateInvite or Join from
// it synchronously (deadlock); hand off to a goroutine or channel.
//
// # What the node calls
//
//	svc.CreateGuild(ctx, owner, name) (guildID, error)            // home here; creates #general
//	svc.Guild(id) (*guild.Guild, bool)                             // read state: Info, Channels, Roles,
//	                                                               // Members, Member, Banned, Permissions
//	svc.Publish(ctx, guild, channel, author, kind, body) (*event.Event, error)
//	    // kinds: event.KindMessageCreate (*event.MessageCreate), KindMessageEdit
//	    // (*event.MessageEdit), KindMessageDelete (*event.Target), KindReactionAdd and
//	    // KindReactionRemove (*event.Reaction). ErrForbidden if receivers would reject it.
//	svc.Moderate(ctx, guild, actor, kind, channel, body) (eventID, error)
//	    // any state kind except guild.create and member.join; issues the state event
//	    // here if this is the home node, else sends a moderation request to it.
//	svc.CreateInvite(ctx, guild, actor, maxUses, expiresUnixMs) (code, error)
//	fed.ParseInvite(code) (fed.Invite, error)                      // guild, home peer, addrs
//	svc.Join(ctx, code, localUser) (*fed.Snapshot, error)          // guild, channels, roles,
//	                                                               // first 100 members, recent messages
//	svc.History(ctx, guild, channel, beforeTS, limit) ([]*event.Event, error)  // newest first,
//	                                                               // backfills from peers on demand
//	svc.SetPresence(localUser, status)                             // event.StatusOnline, …
//	svc.Typing(guild, channel, localUser)
//	svc.Presence(guild) map[event.User]uint8                        // remote users' statuses
//	svc.ID(), svc.Addrs(), svc.Node()                              // this node
//	svc.Event(id), svc.Vector(guild)                               // lookups
//
// Local users are passed by name; the node decides who is allowed to act as
// whom, and federation checks guild permissions exactly as every receiver
// will. Errors: fed.ErrForbidden (permission, ban, invite), fed.ErrUnknownGuild.
//
// # Mapping events to Discord shapes
//
// message.create → MESSAGE_CREATE (ID: allocate a snowflake from ev.TS
// time, remember ID ↔ ev.ID); message.edit → MESSAGE_UPDATE of the target;
// message.delete → MESSAGE_DELETE; reaction.* → MESSAGE_REACTION_ADD/REMOVE;
// state kinds → GUILD_*, CHANNEL_*, GUILD_ROLE_*, GUILD_MEMBER_*, GUILD_BAN_*;
// re-read the folded state from svc.Guild after a state event. Authors are
// event.User; show remote users as name@node-name (guild.Member.NodeName).
//
// # Not done yet (phase 1)
//
// Range reconciliation (the Negentropy-style safety net), signed state
// snapshots for very large guilds (joins carry the whole state chain),
// ML-DSA hybrid signatures (the algorithm name is reserved), and permission
// checks against historical rather than current state for late-arriving
// events.
package federation
