package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/hearth-chat/hearth/federation/event"
	"github.com/hearth-chat/hearth/federation/fed"
	fhost "github.com/hearth-chat/hearth/federation/host"
	"github.com/hearth-chat/hearth/node/chat"
	"github.com/hearth-chat/hearth/node/config"
	"github.com/hearth-chat/hearth/node/media"
	"github.com/hearth-chat/hearth/node/model"
	"github.com/hearth-chat/hearth/node/perm"
	"github.com/hearth-chat/hearth/node/store"
)

// federation runs the node's libp2p side and adapts it to the domain's Federator.
type federation struct {
	svc    *fed.Service
	chat   *chat.Service
	media  *media.Store
	log    *slog.Logger
	events *eventQueue // remote events, applied in order by one worker
	dms    *dmPolicy
	stop   chan struct{}
	wg     sync.WaitGroup
}

// newFederation starts the libp2p host and the federation service when cfg.P2PListen is
// set; it returns nil when federation is off.
func newFederation(cfg config.Config, db *store.DB, svc *chat.Service, ms *media.Store, log *slog.Logger) (*federation, error) {
	if len(cfg.P2PListen) == 0 {
		return nil, nil
	}
	f := &federation{chat: svc, media: ms, log: log, events: newEventQueue(), stop: make(chan struct{}),
		dms: &dmPolicy{strangers: cfg.DMFromStrangers}}
	name := cfg.NodeName
	if name == "" {
		name = "hearth"
	}
	var err error
	f.svc, err = fed.New(fed.Config{
		DB:         db.Badger(),
		Sync:       db.Sync,
		Space:      db.Space,
		Host:       fhost.Config{DataDir: path.Join(cfg.DataDir, "federation"), ListenAddrs: cfg.P2PListen, AnnounceAddrs: cfg.P2PAnnounce},
		NodeName:   name,
		Bootstrap:  cfg.Peers,
		OnEvent:    f.onEvent,
		OnTyping:   f.onTyping,
		OnPresence: f.onPresence,
		OnDM:       f.onDM,
		Log:        log,
	})
	if err != nil {
		return nil, fmt.Errorf("server: federation: %w", err)
	}
	addrs := make([]string, 0, len(f.svc.Addrs()))
	for _, a := range f.svc.Addrs() {
		addrs = append(addrs, a.String())
	}
	log.Info("federation listening", "peer_id", f.svc.ID().String(), "node_name", name, "addrs", strings.Join(addrs, ","))
	svc.SetFederator(f)
	f.svc.ServeMedia(f)
	f.restoreOwn()
	f.wg.Add(2)
	go f.apply()
	go f.replay()
	return f, nil
}

// restoreWindow is how many of its latest events per guild a node looks through at start for
// messages of its own that its store lacks: those a crash caught between publishing and the
// node's own write, which concurrent requests may have left a few apart.
const restoreWindow = 512

// restoreStop ends the look back at that many messages in a row that the store holds: a
// crash catches only the messages then in flight, and a guild rarely has that many at once.
const restoreStop = 256

// restoreOwn gives the node's store the messages its users sent that federation holds and
// the store lacks. A message of a federated channel is published (durably) before the node
// writes its own copy, without an fsync of its own (chat CreateMessage), so a crash between
// the two would otherwise lose it here while other nodes show it. It runs at start, before
// the node serves, so no request is writing such a message meanwhile.
func (f *federation) restoreOwn() {
	self := f.svc.Node()
	for _, g := range f.svc.Guilds() {
		evs, err := f.svc.Latest(g, self, restoreWindow)
		if err != nil {
			f.log.Error("federation: reading the node's own latest events", "guild", g.String(), "err", err)
			continue
		}
		var lost []chat.RemoteMessage
		stored := 0 // messages in a row, newest first, that the store holds
		for i := len(evs) - 1; i >= 0 && stored < restoreStop; i-- {
			ev := evs[i]
			switch {
			case ev.Kind != event.KindMessageCreate:
			case f.chat.Applied(ev.ID.String()):
				stored++
			default:
				stored = 0
				lost = append(lost, f.remoteMessage(ev))
			}
		}
		slices.Reverse(lost) // oldest first, as they were sent
		if len(lost) == 0 {
			continue
		}
		if err := f.chat.ApplyRemoteMessages(lost); err != nil {
			f.log.Error("federation: restoring the node's own messages", "guild", g.String(), "count", len(lost), "err", err)
			continue
		}
		f.log.Warn("federation: restored messages of this node that its store lacked after a stop", "guild", g.String(), "count", len(lost))
	}
}

// errStopped ends a replay cut short by close.
var errStopped = errors.New("server: federation stopped")

// replay passes every stored event of every guild through the apply queue once at start,
// so that whatever OnEvent delivered but a crash (or a full queue) kept from the node's own
// store is applied now; what was applied is skipped without a write.
func (f *federation) replay() {
	defer f.wg.Done()
	for _, g := range f.svc.Guilds() {
		err := f.svc.Replay(g, func(ev *event.Event) error {
			if !f.wanted(ev) {
				return nil
			}
			return f.events.pushWait(ev, f.stop)
		})
		if errors.Is(err, errStopped) {
			return
		}
		if err != nil {
			f.log.Error("federation: replaying stored events", "guild", g.String(), "err", err)
		}
	}
}

// onEvent is called by federation on its commit path: it must not block, so it queues.
func (f *federation) onEvent(ev *event.Event) {
	if f.wanted(ev) {
		f.events.push(ev)
	}
}

// wanted reports whether an event changes what this node shows: events of other nodes that
// the node maps, and joins of remote users (which this node issues when it is the home node).
func (f *federation) wanted(ev *event.Event) bool {
	switch ev.Kind {
	case event.KindMessageCreate, event.KindMessageEdit, event.KindMessageDelete, event.KindReactionAdd, event.KindReactionRemove,
		event.KindMessagePin, event.KindMessageUnpin, event.KindGuildDelete:
		return ev.Origin != f.svc.Node()
	case event.KindChannelCreate, event.KindChannelUpdate, event.KindChannelDelete, event.KindGuildUpdate,
		event.KindRoleCreate, event.KindRoleUpdate, event.KindRoleDelete, event.KindMemberRoles, event.KindChannelOverwrite:
		// Also those this node issued as the home node for a member of another node [FED-080]
		// [FED-081].
		return ev.Origin != f.svc.Node() || ev.Author.Node != f.svc.Node()
	case event.KindMemberProfile:
		b, ok := ev.Body.(*event.MemberProfile)
		return ok && b.User.Node != f.svc.Node()
	case event.KindMemberJoin:
		b, ok := ev.Body.(*event.MemberJoin)
		return ok && b.User.Node != f.svc.Node()
	case event.KindBanAdd, event.KindBanRemove, event.KindMemberLeave:
		return true // applied idempotently: this node may have made the change itself
	}
	return false
}

// apply turns remote events into the node's state, one at a time, in order.
func (f *federation) apply() {
	defer f.wg.Done()
	for {
		select {
		case <-f.stop:
			return
		case <-f.events.ready:
		}
		for evs := f.events.take(256); len(evs) > 0; evs = f.events.take(256) {
			// Consecutive messages are stored in one write (ApplyRemoteMessages); anything
			// else waits for the messages before it.
			var run []chat.RemoteMessage
			flush := func() {
				if len(run) == 0 {
					return
				}
				if err := f.chat.ApplyRemoteMessages(run); err != nil {
					f.log.Error("federation: applying remote messages", "count", len(run), "first_event", run[0].EventID, "err", err)
				}
				run = run[:0]
			}
			for _, ev := range evs {
				select {
				case <-f.stop:
					return
				default:
				}
				if ev.Kind == event.KindMessageCreate {
					run = append(run, f.remoteMessage(ev))
					continue
				}
				flush()
				f.applyOne(ev)
			}
			flush()
		}
	}
}

// applyOne applies one remote event; failures are logged (the start-up replay offers the
// event again).
func (f *federation) applyOne(ev *event.Event) {
	if ev.Kind != event.KindChannelCreate && f.chat.Applied(ev.ID.String()) {
		return // a replay of what is applied already
	}
	var err error
	switch b := ev.Body.(type) {
	case *event.RoleCreate, *event.RoleUpdate, *event.RoleRef, *event.MemberRoles, *event.ChannelOverwrite:
		// The whole permission state, as it stands now: later events of the queue
		// find it applied already, which costs one comparison.
		if rp := f.perms(ev.Guild); rp != nil {
			err = f.chat.ApplyRemotePerms(ev.Guild.String(), rp)
		}
	case *event.MessageCreate:
		err = f.chat.ApplyRemoteMessage(f.remoteMessage(ev))
	case *event.MemberJoin:
		name := b.NodeName
		if name == "" {
			name = b.User.Node.String()
		}
		err = f.chat.ApplyRemoteMember(ev.Guild.String(), b.User.Name+"@"+name)
	case *event.BanAdd:
		err = f.chat.ApplyRemoteModeration(ev.Guild.String(), chat.ModBan, f.userName(ev.Guild, b.User), b.Reason)
	case *event.MemberRef:
		action := chat.ModUnban
		if ev.Kind == event.KindMemberLeave {
			action = chat.ModLeave
		}
		err = f.chat.ApplyRemoteModeration(ev.Guild.String(), action, f.userName(ev.Guild, b.User), "")
	case *event.MemberProfile:
		err = f.chat.ApplyRemoteProfile(ev.Guild.String(), f.display(ev.Guild, b.User), f.remoteProfile(b))
	case *event.GuildUpdate:
		err = f.chat.ApplyRemoteGuildName(ev.Guild.String(), b.Name)
	case *event.ChannelUpdate:
		err = f.chat.ApplyRemoteChannelChange(ev.Channel.String(), &chat.RemoteChannel{Name: b.Name, Topic: b.Topic, Position: int(b.Position),
			Parent: idString(b.Parent)})
	case *event.Empty:
		switch ev.Kind {
		case event.KindChannelDelete:
			err = f.chat.ApplyRemoteChannelChange(ev.Channel.String(), nil)
		case event.KindGuildDelete:
			err = f.chat.ApplyRemoteGuildDelete(ev.Guild.String())
		}
	case *event.ChannelCreate:
		err = f.chat.ApplyRemoteChannel(ev.Guild.String(), chat.RemoteChannel{FedID: ev.ID.String(), Name: b.Name, Topic: b.Topic,
			Type: int(b.Type), Position: int(b.Position), Parent: idString(b.Parent)})
	default:
		err = f.chat.ApplyRemoteChange(f.remoteChange(ev))
	}
	if err == nil && ev.Kind != event.KindMessageCreate && ev.Kind != event.KindChannelCreate {
		err = f.chat.MarkApplied(ev.ID.String())
	}
	if err != nil {
		f.log.Error("federation: applying a remote event", "kind", ev.Kind, "event", ev.ID.String(), "err", err)
	}
}

// remoteMessage converts a message.create event, and tells the media store where the bytes
// of its attachments are (the event's origin), so that they are fetched on first use.
func (f *federation) remoteMessage(ev *event.Event) chat.RemoteMessage {
	body, _ := ev.Body.(*event.MessageCreate)
	rm := chat.RemoteMessage{EventID: ev.ID.String(), Channel: ev.Channel.String(), Author: f.userName(ev.Guild, ev.Author), TS: uint64(ev.TS)}
	if body == nil {
		return rm
	}
	rm.Content = body.Content
	if body.ReplyTo != "" {
		rm.ReplyTo = body.ReplyTo.String()
	}
	for _, a := range body.Attachments {
		h := media.Hash(a.Hash)
		if err := f.media.AddRemote(h, int64(a.Size), ev.Origin.String()); err != nil {
			f.log.Warn("federation: a remote attachment is refused", "event", rm.EventID, "hash", h.String(), "err", err)
			continue
		}
		rm.Attachments = append(rm.Attachments, chat.RemoteAttachment{Hash: h.String(), Size: int64(a.Size), Filename: media.SanitizeFilename(a.Filename),
			ContentType: a.ContentType, Width: int(a.Width), Height: int(a.Height)})
	}
	if rm.Content == "" && len(rm.Attachments) == 0 {
		rm.Content = "(attachments refused by this node)"
	}
	return rm
}

// MediaAllowed implements fed.MediaSource: node may fetch a blob used by a message of a
// federated guild it is a member node of [MEDIA-080].
func (f *federation) MediaAllowed(node event.Node, hash [32]byte) bool {
	for _, id := range f.chat.BlobGuilds(media.Hash(hash).String()) {
		if g, ok := f.svc.Guild(fedID(id)); ok && g.HasNode(node) {
			return true
		}
	}
	return false
}

// mediaHolders lists the member nodes, other than this one and origin, of the guilds whose
// messages use blob h: the nodes that may hold its bytes.
func (f *federation) mediaHolders(h media.Hash, origin string) []string {
	var out []string
	for _, id := range f.chat.BlobGuilds(h.String()) {
		g, ok := f.svc.Guild(fedID(id))
		if !ok {
			continue
		}
		for _, n := range g.Nodes() {
			if s := n.ID.String(); n.ID != f.svc.Node() && s != origin && !slices.Contains(out, s) {
				out = append(out, s)
			}
		}
	}
	return out
}

// OpenMedia implements fed.MediaSource.
func (f *federation) OpenMedia(ctx context.Context, hash [32]byte) (io.ReadCloser, error) {
	file, _, err := f.media.OpenBlob(ctx, media.Hash(hash))
	if err != nil {
		return nil, err
	}
	return file, nil
}

// onTyping relays a remote user's typing to local sessions (it must not block).
func (f *federation) onTyping(guild, channel event.ID, u event.User) {
	if u.Node == f.svc.Node() {
		return
	}
	f.chat.ApplyRemoteTyping(channel.String(), f.display(guild, u))
}

// Statuses between the client API's names and federation's codes.
var (
	statusCode = map[string]uint8{"online": event.StatusOnline, "idle": event.StatusIdle, "dnd": event.StatusDND}
	statusName = map[uint8]string{event.StatusOnline: "online", event.StatusIdle: "idle", event.StatusDND: "dnd"}
)

// onPresence shows a remote user's status change (it must not block).
func (f *federation) onPresence(guild event.ID, u event.User, status uint8) {
	if u.Node == f.svc.Node() {
		return
	}
	name, ok := statusName[status]
	if !ok {
		name = "offline"
	}
	f.chat.ApplyRemotePresence(f.display(guild, u), name)
}

// SetPresence implements chat.Federator; anything but online, idle and dnd is offline.
func (f *federation) SetPresence(user, status string) {
	f.svc.SetPresence(user, statusCode[status])
}

// CreateChannel implements chat.Federator: a channel.create state event, issued here or
// requested from the home node (stateChange).
func (f *federation) CreateChannel(ctx context.Context, guild, actor string, c chat.RemoteChannel) (string, error) {
	t := uint8(event.ChannelText)
	switch c.Type {
	case model.ChannelVoice:
		t = event.ChannelVoice
	case model.ChannelCategory:
		t = event.ChannelCategory
	}
	id, err := f.stateChange(ctx, fedID(guild), actor, event.KindChannelCreate, "", &event.ChannelCreate{Name: c.Name, Type: t,
		Topic: c.Topic, Position: uint32(max(c.Position, 0)), Parent: fedID(c.Parent)})
	if err != nil {
		return "", err
	}
	return id.String(), nil
}

// DeleteGuild implements chat.Federator: a guild.delete state event, issued here (the home
// node, whose owner deleted the guild).
func (f *federation) DeleteGuild(ctx context.Context, guild, actor string) error {
	_, err := f.svc.Issue(ctx, fedID(guild), actor, event.KindGuildDelete, "", &event.Empty{})
	return err
}

// RenameGuild implements chat.Federator: a guild.update state event, issued here or
// requested from the home node (stateChange).
func (f *federation) RenameGuild(ctx context.Context, guild, actor, name string) error {
	_, err := f.stateChange(ctx, fedID(guild), actor, event.KindGuildUpdate, "", &event.GuildUpdate{Name: name})
	return err
}

// ChangeChannel implements chat.Federator: a channel.update or channel.delete state event,
// issued here or requested from the home node (stateChange).
func (f *federation) ChangeChannel(ctx context.Context, guild, actor, channel string, update *chat.RemoteChannel) error {
	var err error
	if update == nil {
		_, err = f.stateChange(ctx, fedID(guild), actor, event.KindChannelDelete, fedID(channel), &event.Empty{})
	} else {
		_, err = f.stateChange(ctx, fedID(guild), actor, event.KindChannelUpdate, fedID(channel),
			&event.ChannelUpdate{Name: update.Name, Topic: update.Topic, Position: uint32(max(update.Position, 0)), Parent: fedID(update.Parent)})
	}
	return err
}

// Typing implements chat.Federator.
func (f *federation) Typing(guild, channel, user string) {
	f.svc.Typing(fedID(guild), fedID(channel), user)
}

// remoteChange converts an edit, delete or reaction event.
func (f *federation) remoteChange(ev *event.Event) chat.RemoteChange {
	rc := chat.RemoteChange{Channel: ev.Channel.String(), Author: f.display(ev.Guild, ev.Author)}
	switch b := ev.Body.(type) {
	case *event.MessageEdit:
		rc.Kind, rc.Target, rc.Text = chat.ChangeEdit, b.Target.String(), b.Content
	case *event.Target:
		rc.Kind, rc.Target = chat.ChangeDelete, b.Target.String()
		switch ev.Kind {
		case event.KindMessagePin:
			rc.Kind = chat.ChangePin
		case event.KindMessageUnpin:
			rc.Kind = chat.ChangeUnpin
		}
	case *event.Reaction:
		rc.Kind, rc.Target, rc.Text = chat.ChangeReact, b.Target.String(), b.Emoji
		if ev.Kind == event.KindReactionRemove {
			rc.Kind = chat.ChangeUnreact
		}
	}
	return rc
}

// userName is how chat names a user: the username for users of this node, name@node-name
// for the others.
func (f *federation) userName(guildID event.ID, u event.User) string {
	if u.Node == f.svc.Node() {
		return u.Name
	}
	return f.display(guildID, u)
}

// fedUser is the inverse of userName: it finds a remote user among the guild's current and
// past members.
func (f *federation) fedUser(guildID event.ID, name string) (event.User, error) {
	at := strings.LastIndexByte(name, '@')
	if at < 0 {
		return event.User{Node: f.svc.Node(), Name: name}, nil
	}
	g, ok := f.svc.Guild(guildID)
	if !ok {
		return event.User{}, fed.ErrUnknownGuild
	}
	var found []event.User
	for _, m := range g.MembersNamed(name[:at]) {
		if f.display(guildID, m.User) == name {
			found = append(found, m.User)
		}
	}
	switch len(found) {
	case 0:
		return event.User{}, fmt.Errorf("server: %q has never been a member", name)
	case 1:
		return found[0], nil
	}
	return event.User{}, fmt.Errorf("server: %q names members of %d nodes", name, len(found))
}

// Moderate implements chat.Federator: the home node issues the change itself (the node
// has checked the actor's permissions); another node asks the home node, which checks them.
func (f *federation) Moderate(ctx context.Context, guild, actor string, action chat.ModAction, target, reason string) error {
	gid := fedID(guild)
	u, err := f.fedUser(gid, target)
	if err != nil {
		return err
	}
	var kind event.Kind
	var body any
	switch action {
	case chat.ModBan:
		kind, body = event.KindBanAdd, &event.BanAdd{User: u, Reason: reason}
	case chat.ModUnban:
		kind, body = event.KindBanRemove, &event.MemberRef{User: u}
	case chat.ModKick, chat.ModLeave:
		kind, body = event.KindMemberLeave, &event.MemberRef{User: u}
	default:
		return fmt.Errorf("server: unknown moderation %d", action)
	}
	_, err = f.stateChange(ctx, gid, actor, kind, "", body)
	return err
}

// stateChange makes a guild state change for the local user actor. The home node issues it
// at once (the node has authorised it against its own permission model); any other node
// sends it to the home node as a mod-request, which checks the actor's permissions in the
// federated state [FED-040]. A refusal is chat.ErrMissingPerms; an unreachable home node is
// chat.ErrHomeUnreachable.
func (f *federation) stateChange(ctx context.Context, gid event.ID, actor string, kind event.Kind, channel event.ID, body any) (event.ID, error) {
	g, ok := f.svc.Guild(gid)
	if !ok {
		return "", fed.ErrUnknownGuild
	}
	if g.Info().Home == f.svc.Node() {
		id, err := f.svc.Issue(ctx, gid, actor, kind, channel, body)
		if errors.Is(err, fed.ErrForbidden) {
			err = fmt.Errorf("%w: %v", chat.ErrMissingPerms, err)
		}
		return id, err
	}
	id, err := f.svc.Moderate(ctx, gid, actor, kind, channel, body)
	switch {
	case errors.Is(err, fed.ErrForbidden):
		return "", fmt.Errorf("%w: %v", chat.ErrMissingPerms, err)
	case err != nil:
		return "", fmt.Errorf("%w: %v", chat.ErrHomeUnreachable, err)
	}
	return id, nil
}

// display is how a remote user is shown: name@node-name.
func (f *federation) display(guildID event.ID, u event.User) string {
	nodeName := u.Node.String()
	if g, ok := f.svc.Guild(guildID); ok {
		if m, ok := g.Member(u); ok && m.NodeName != "" {
			nodeName = m.NodeName
		}
	}
	return u.Name + "@" + nodeName
}

func (f *federation) close() error {
	close(f.stop)
	f.wg.Wait()
	return f.svc.Close()
}

// CreateGuild implements chat.Federator.
func (f *federation) CreateGuild(ctx context.Context, owner, name string) (string, string, error) {
	gid, err := f.svc.CreateGuild(ctx, owner, name)
	if err != nil {
		return "", "", err
	}
	g, ok := f.svc.Guild(gid)
	if !ok {
		return "", "", fed.ErrUnknownGuild
	}
	for _, c := range g.Channels() {
		if c.Type == event.ChannelText {
			return gid.String(), c.ID.String(), nil
		}
	}
	return "", "", fmt.Errorf("server: federated guild has no text channel")
}

// CreateInvite implements chat.Federator.
func (f *federation) CreateInvite(ctx context.Context, guild, actor string, maxUses int, expires time.Time) (string, error) {
	var ms uint64
	if !expires.IsZero() {
		ms = uint64(expires.UnixMilli())
	}
	return f.svc.CreateInvite(ctx, fedID(guild), actor, uint32(max(maxUses, 0)), ms)
}

// IsInvite implements chat.Federator.
func (f *federation) IsInvite(code string) bool {
	_, err := fed.ParseInvite(code)
	return err == nil
}

// RevokeInvite implements chat.Federator.
func (f *federation) RevokeInvite(ctx context.Context, guild, actor, code string) error {
	inv, err := fed.ParseInvite(code)
	if err != nil {
		return fmt.Errorf("server: revoke invite: %w", err)
	}
	_, err = f.stateChange(ctx, fedID(guild), actor, event.KindInviteRevoke, "", &event.InviteRevoke{Code: inv.Code})
	return err
}

// Join implements chat.Federator.
func (f *federation) Join(ctx context.Context, code, user string) (*chat.RemoteGuild, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	snap, err := f.svc.Join(ctx, code, user)
	if err != nil {
		return nil, err
	}
	info := snap.Info
	rg := &chat.RemoteGuild{FedID: info.ID.String(), Name: info.Name, Owner: f.display(info.ID, info.Owner)}
	for _, c := range snap.Channels {
		rg.Channels = append(rg.Channels, chat.RemoteChannel{FedID: c.ID.String(), Name: c.Name, Topic: c.Topic, Type: int(c.Type),
			Position: int(c.Position), Parent: idString(c.Parent)})
	}
	self := f.svc.Node()
	for _, m := range snap.Members {
		if m.User.Node == self {
			continue
		}
		display := f.display(info.ID, m.User)
		if m.User != info.Owner {
			rg.Members = append(rg.Members, display)
		}
		if m.Profile != nil {
			if rg.Profiles == nil {
				rg.Profiles = map[string]chat.RemoteProfile{}
			}
			rg.Profiles[display] = f.remoteProfile(m.Profile)
		}
	}
	for _, ev := range snap.Recent {
		if ev.Kind == event.KindMessageCreate && ev.Origin != self {
			rg.Messages = append(rg.Messages, f.remoteMessage(ev))
		}
	}
	rg.Perms = f.perms(info.ID)
	return rg, nil
}

// PublishMessage implements chat.Federator.
func (f *federation) PublishMessage(ctx context.Context, guild, channel, author string, m chat.FedMessage) (string, uint64, error) {
	body := &event.MessageCreate{Content: m.Content}
	if m.ReplyTo != "" {
		body.ReplyTo = fedID(m.ReplyTo)
	}
	for _, a := range m.Attachments {
		h, err := media.ParseHash(a.Hash)
		if err != nil {
			return "", 0, fmt.Errorf("server: attachment %q: %w", a.Filename, err)
		}
		body.Attachments = append(body.Attachments, event.AttachmentRef{Hash: h[:], Size: uint64(a.Size), Filename: a.Filename,
			ContentType: a.ContentType, Width: uint32(max(a.Width, 0)), Height: uint32(max(a.Height, 0))})
	}
	ev, err := f.svc.Publish(ctx, fedID(guild), fedID(channel), author, event.KindMessageCreate, body)
	if err != nil {
		return "", 0, err
	}
	return ev.ID.String(), uint64(ev.TS), nil
}

// PublishChange implements chat.Federator.
func (f *federation) PublishChange(ctx context.Context, guild, channel, author string, kind chat.ChangeKind, target, text string) error {
	var k event.Kind
	var body any
	switch kind {
	case chat.ChangeEdit:
		k, body = event.KindMessageEdit, &event.MessageEdit{Target: fedID(target), Content: text}
	case chat.ChangeDelete:
		k, body = event.KindMessageDelete, &event.Target{Target: fedID(target)}
	case chat.ChangeReact:
		k, body = event.KindReactionAdd, &event.Reaction{Target: fedID(target), Emoji: text}
	case chat.ChangePin:
		k, body = event.KindMessagePin, &event.Target{Target: fedID(target)}
	case chat.ChangeUnpin:
		k, body = event.KindMessageUnpin, &event.Target{Target: fedID(target)}
	case chat.ChangeUnreact:
		k, body = event.KindReactionRemove, &event.Reaction{Target: fedID(target), Emoji: text}
	default:
		return fmt.Errorf("server: unknown message change %d", kind)
	}
	_, err := f.svc.Publish(ctx, fedID(guild), fedID(channel), author, k, body)
	return err
}

// fedID parses the text form of a federation ID that chat holds; a malformed one (which only
// a corrupted store could produce) becomes an ID no guild or event has.
func fedID(s string) event.ID {
	id, err := event.ParseID(s)
	if err != nil {
		return ""
	}
	return id
}

// idString is fedID's inverse, with "" for the zero ID (no channel, no parent).
func idString(id event.ID) string {
	if id == "" {
		return ""
	}
	return id.String()
}

// perms is the permission state of a federated guild in chat's terms, or nil for a guild
// this node does not hold.
func (f *federation) perms(guildID event.ID) *chat.RemotePerms {
	g, ok := f.svc.Guild(guildID)
	if !ok {
		return nil
	}
	rp := &chat.RemotePerms{Members: map[string][]string{}, Overwrites: map[string][]chat.RemoteOverwrite{}}
	for _, r := range g.Roles() {
		if r.ID == guildID {
			rp.Everyone = perm.Bits(r.Permissions)
			continue
		}
		rp.Roles = append(rp.Roles, chat.RemoteRole{FedID: r.ID.String(), Name: r.Name, Permissions: perm.Bits(r.Permissions),
			Position: int(r.Position), Color: int(r.Color), Hoist: r.Hoist, Mentionable: r.Mentionable})
	}
	for after := (event.User{}); ; {
		page := g.Members(after, 1000)
		for _, m := range page {
			roles := make([]string, len(m.Roles))
			for i, r := range m.Roles {
				roles[i] = r.String()
			}
			rp.Members[f.userName(guildID, m.User)] = roles
		}
		if len(page) < 1000 {
			break
		}
		after = page[len(page)-1].User
	}
	for _, c := range g.Channels() {
		ows := make([]chat.RemoteOverwrite, 0, len(c.Overwrites))
		for _, o := range c.Overwrites {
			ro := chat.RemoteOverwrite{Type: int(o.Type), Allow: perm.Bits(o.Allow), Deny: perm.Bits(o.Deny)}
			if o.Type == event.OverwriteRole {
				ro.Target = event.ID(o.Target).String()
			} else {
				var u event.User
				if err := event.UnmarshalCanonical([]byte(o.Target), &u); err != nil {
					continue // validated when applied; cannot happen
				}
				ro.Target = f.userName(guildID, u)
			}
			ows = append(ows, ro)
		}
		rp.Overwrites[c.ID.String()] = ows
	}
	return rp
}

// awaitEvents returns once the federation store holds every event in ids: a state change
// asked of the home node comes back by gossip, and the node's view of the guild should hold
// it before the client's request is answered. It gives up with ctx.
func (f *federation) awaitEvents(ctx context.Context, ids []event.ID) error {
	for _, id := range ids {
		for {
			if _, err := f.svc.Event(id); err == nil {
				break
			}
			select {
			case <-ctx.Done():
				return fmt.Errorf("%w: the state event %s did not arrive: %v", chat.ErrHomeUnreachable, id, ctx.Err())
			case <-time.After(5 * time.Millisecond):
			}
		}
	}
	return nil
}

// FederatedPerms returns the permission state federation holds for a guild, or nil.
func (f *federation) FederatedPerms(guild string) *chat.RemotePerms { return f.perms(fedID(guild)) }

// CreateRole implements chat.Federator: a role.create state event, issued here or requested
// from the home node (stateChange).
func (f *federation) CreateRole(ctx context.Context, guild, actor string, r chat.RemoteRole) (string, error) {
	id, err := f.stateChange(ctx, fedID(guild), actor, event.KindRoleCreate, "", &event.RoleCreate{Name: r.Name,
		Permissions: uint64(r.Permissions), Position: uint32(max(r.Position, 0)), Color: uint32(r.Color), Hoist: r.Hoist, Mentionable: r.Mentionable})
	if err == nil {
		err = f.awaitEvents(ctx, []event.ID{id})
	}
	if err != nil {
		return "", err
	}
	return id.String(), nil
}

// SyncPermissions implements chat.Federator: it issues (or requests from the home node, see
// stateChange) the role.update, role.delete, member.roles and channel.overwrite events that
// make the federated state of a guild equal to want.
func (f *federation) SyncPermissions(ctx context.Context, guild, actor string, want *chat.RemotePerms) (err error) {
	gid := fedID(guild)
	have := f.perms(gid)
	if have == nil {
		return fed.ErrUnknownGuild
	}
	var issued []event.ID
	defer func() {
		if err == nil {
			err = f.awaitEvents(ctx, issued)
		}
	}()
	issue := func(kind event.Kind, channel event.ID, body any) error {
		id, err := f.stateChange(ctx, gid, actor, kind, channel, body)
		issued = append(issued, id)
		return err
	}
	if have.Everyone != want.Everyone {
		if err := issue(event.KindRoleUpdate, "", &event.RoleUpdate{Role: gid, Name: "@everyone", Permissions: uint64(want.Everyone)}); err != nil {
			return err
		}
	}
	wanted := map[string]bool{}
	for _, r := range want.Roles {
		wanted[r.FedID] = true
		r.Local = 0
		if i := slices.IndexFunc(have.Roles, func(h chat.RemoteRole) bool { return h.FedID == r.FedID }); i >= 0 && have.Roles[i] == r {
			continue
		}
		if err := issue(event.KindRoleUpdate, "", &event.RoleUpdate{Role: fedID(r.FedID), Name: r.Name, Permissions: uint64(r.Permissions),
			Position: uint32(max(r.Position, 0)), Color: uint32(r.Color), Hoist: r.Hoist, Mentionable: r.Mentionable}); err != nil {
			return err
		}
	}
	for _, r := range have.Roles {
		if !wanted[r.FedID] {
			if err := issue(event.KindRoleDelete, "", &event.RoleRef{Role: fedID(r.FedID)}); err != nil {
				return err
			}
		}
	}
	for name, roles := range want.Members {
		cur, ok := have.Members[name]
		if !ok || sameSet(cur, roles) {
			continue // not a federated member, or unchanged
		}
		u, err := f.fedUser(gid, name)
		if err != nil {
			return err
		}
		ids := make([]event.ID, len(roles))
		for i, r := range roles {
			ids[i] = fedID(r)
		}
		if err := issue(event.KindMemberRoles, "", &event.MemberRoles{User: u, Roles: ids}); err != nil {
			return err
		}
	}
	for channel, ows := range want.Overwrites {
		cur, ok := have.Overwrites[channel]
		if !ok {
			continue // not federated
		}
		set := func(o chat.RemoteOverwrite) error {
			target := []byte(fedID(o.Target))
			if o.Type == event.OverwriteMember {
				u, err := f.fedUser(gid, o.Target)
				if err != nil {
					return err
				}
				if target, err = event.Marshal(u); err != nil {
					return err
				}
			}
			return issue(event.KindChannelOverwrite, fedID(channel), &event.ChannelOverwrite{Target: target, Type: uint8(o.Type), Allow: uint64(o.Allow), Deny: uint64(o.Deny)})
		}
		for _, o := range ows {
			if !slices.Contains(cur, o) {
				if err := set(o); err != nil {
					return err
				}
			}
		}
		for _, o := range cur {
			gone := !slices.ContainsFunc(ows, func(w chat.RemoteOverwrite) bool { return w.Target == o.Target && w.Type == o.Type })
			if o.Type == event.OverwriteRole && o.Target != guild && !wanted[o.Target] {
				continue // its role is deleted, and the overwrite with it
			}
			if gone && (o.Allow != 0 || o.Deny != 0) {
				o.Allow, o.Deny = 0, 0
				if err := set(o); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// sameSet reports whether a and b hold the same strings, in any order.
func sameSet(a, b []string) bool {
	return slices.Equal(slices.Sorted(slices.Values(a)), slices.Sorted(slices.Values(b)))
}

// OpenDM implements chat.Federator: it finds the remote user (dmRecipient) and opens the
// conversation on this node, which the user's node joins, unless the two have one already.
func (f *federation) OpenDM(ctx context.Context, from, to string) (string, string, string, error) {
	u, err := f.dmRecipient(to)
	if err != nil {
		return "", "", "", err
	}
	gid, ok := f.existingDM(from, u)
	if !ok {
		ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		if gid, err = f.svc.CreateDM(ctx, from, u); err != nil {
			return "", "", "", dmError(err)
		}
	}
	ch, err := f.dmChannel(gid)
	return gid.String(), ch, f.display(gid, u), err
}

// onDM accepts a direct conversation opened on another node with a local user (admitDM): it
// joins it for them and shows it as a DM channel.
func (f *federation) onDM(ctx context.Context, from event.User, to, invite string) error {
	if err := f.admitDM(from, to); err != nil {
		return err
	}
	snap, err := f.svc.Join(ctx, invite, to)
	if err != nil {
		return err
	}
	if !snap.Info.DM || snap.Info.Owner != from {
		return fmt.Errorf("server: the invite of %s is not their direct conversation", from)
	}
	ch, err := f.dmChannel(snap.Info.ID)
	if err != nil {
		return err
	}
	return f.chat.ApplyRemoteDM(snap.Info.ID.String(), ch, to, f.display(snap.Info.ID, from))
}

// dmChannel returns the federation ID of a conversation's text channel.
func (f *federation) dmChannel(gid event.ID) (string, error) {
	g, ok := f.svc.Guild(gid)
	if !ok {
		return "", fed.ErrUnknownGuild
	}
	for _, c := range g.Channels() {
		if c.Type == event.ChannelText {
			return c.ID.String(), nil
		}
	}
	return "", fmt.Errorf("server: conversation %s has no channel", gid)
}

// remoteProfile converts a member.profile body, and tells the media store where the avatar's
// bytes are (the user's node).
func (f *federation) remoteProfile(b *event.MemberProfile) chat.RemoteProfile {
	p := chat.RemoteProfile{Nick: b.Nick, GlobalName: b.GlobalName}
	if b.Avatar != nil {
		h := media.Hash(b.Avatar.Hash)
		if err := f.media.AddRemote(h, int64(b.Avatar.Size), b.User.Node.String()); err != nil {
			f.log.Warn("federation: a remote avatar is refused", "user", b.User.Name, "hash", h.String(), "err", err)
		} else {
			p.Avatar = h.String()
		}
	}
	return p
}

// PublishProfile implements chat.Federator: the home node issues member.profile itself;
// another node asks the home node, which checks that actor is target or may manage nicknames.
func (f *federation) PublishProfile(ctx context.Context, guild, actor, target string, p chat.RemoteProfile) error {
	gid := fedID(guild)
	g, ok := f.svc.Guild(gid)
	if !ok {
		return fed.ErrUnknownGuild
	}
	body := &event.MemberProfile{User: event.User{Node: f.svc.Node(), Name: target}, Nick: p.Nick, GlobalName: p.GlobalName}
	if p.Avatar != "" {
		h, err := media.ParseHash(p.Avatar)
		if err != nil {
			return fmt.Errorf("server: avatar %q: %w", p.Avatar, err)
		}
		b, err := f.media.Stat(h)
		if err != nil {
			return fmt.Errorf("server: avatar: %w", err)
		}
		body.Avatar = &event.ImageRef{Hash: h[:], Size: uint64(b.Size)}
	}
	var err error
	if g.Info().Home == f.svc.Node() {
		_, err = f.svc.Issue(ctx, gid, actor, event.KindMemberProfile, "", body)
	} else {
		_, err = f.svc.Moderate(ctx, gid, actor, event.KindMemberProfile, "", body)
	}
	if errors.Is(err, fed.ErrForbidden) {
		return fmt.Errorf("%w: %v", chat.ErrMissingPerms, err)
	}
	return err
}
