package event

import (
	"errors"
	"fmt"
	"unicode/utf8"
)

// Kind names what an event does (spec/events.md §6).
type Kind string

// Class groups kinds by who may sign them and whether they are stored.
type Class uint8

const (
	// ClassState kinds change guild state; only the home node signs them [EVT-040].
	ClassState Class = iota + 1
	// ClassMessage kinds are messages, edits, deletes and reactions from any member's node.
	ClassMessage
	// ClassEphemeral kinds (presence, typing) are never stored [EVT-080].
	ClassEphemeral
)

// The kinds of spec/events.md §6.
const (
	KindGuildCreate      Kind = "guild.create"
	KindGuildUpdate      Kind = "guild.update"
	KindGuildDelete      Kind = "guild.delete"
	KindChannelCreate    Kind = "channel.create"
	KindChannelUpdate    Kind = "channel.update"
	KindChannelDelete    Kind = "channel.delete"
	KindRoleCreate       Kind = "role.create"
	KindRoleUpdate       Kind = "role.update"
	KindRoleDelete       Kind = "role.delete"
	KindChannelOverwrite Kind = "channel.overwrite"
	KindMemberJoin       Kind = "member.join"
	KindMemberLeave      Kind = "member.leave"
	KindMemberRoles      Kind = "member.roles"
	KindMemberProfile    Kind = "member.profile"
	KindBanAdd           Kind = "ban.add"
	KindBanRemove        Kind = "ban.remove"
	KindInviteCreate     Kind = "invite.create"
	KindInviteRevoke     Kind = "invite.revoke"

	KindMessageCreate  Kind = "message.create"
	KindMessageEdit    Kind = "message.edit"
	KindMessageDelete  Kind = "message.delete"
	KindReactionAdd    Kind = "reaction.add"
	KindReactionRemove Kind = "reaction.remove"
	KindMessagePin     Kind = "message.pin"
	KindMessageUnpin   Kind = "message.unpin"

	KindPresenceBatch Kind = "presence.batch"
	KindTypingBatch   Kind = "typing.batch"
)

// Class returns the kind's class, or 0 for an unknown kind.
func (k Kind) Class() Class { return kinds[k].class }

// Known reports whether k is defined by spec/events.md.
func (k Kind) Known() bool { _, ok := kinds[k]; return ok }

// NewBody returns a pointer to a zero body of kind k, or nil for an unknown kind.
func (k Kind) NewBody() any {
	s, ok := kinds[k]
	if !ok {
		return nil
	}
	return s.newBody()
}

type body interface{ check(env *Envelope) error }

type kindSpec struct {
	class   Class
	channel bool // the envelope carries a channel
	newBody func() body
}

var kinds = map[Kind]kindSpec{
	KindGuildCreate:      {ClassState, false, func() body { return new(GuildCreate) }},
	KindGuildUpdate:      {ClassState, false, func() body { return new(GuildUpdate) }},
	KindGuildDelete:      {ClassState, false, func() body { return new(Empty) }},
	KindChannelCreate:    {ClassState, false, func() body { return new(ChannelCreate) }},
	KindChannelUpdate:    {ClassState, true, func() body { return new(ChannelUpdate) }},
	KindChannelDelete:    {ClassState, true, func() body { return new(Empty) }},
	KindRoleCreate:       {ClassState, false, func() body { return new(RoleCreate) }},
	KindRoleUpdate:       {ClassState, false, func() body { return new(RoleUpdate) }},
	KindRoleDelete:       {ClassState, false, func() body { return new(RoleRef) }},
	KindChannelOverwrite: {ClassState, true, func() body { return new(ChannelOverwrite) }},
	KindMemberJoin:       {ClassState, false, func() body { return new(MemberJoin) }},
	KindMemberLeave:      {ClassState, false, func() body { return new(MemberRef) }},
	KindMemberRoles:      {ClassState, false, func() body { return new(MemberRoles) }},
	KindMemberProfile:    {ClassState, false, func() body { return new(MemberProfile) }},
	KindBanAdd:           {ClassState, false, func() body { return new(BanAdd) }},
	KindBanRemove:        {ClassState, false, func() body { return new(MemberRef) }},
	KindInviteCreate:     {ClassState, false, func() body { return new(InviteCreate) }},
	KindInviteRevoke:     {ClassState, false, func() body { return new(InviteRevoke) }},

	KindMessageCreate:  {ClassMessage, true, func() body { return new(MessageCreate) }},
	KindMessageEdit:    {ClassMessage, true, func() body { return new(MessageEdit) }},
	KindMessageDelete:  {ClassMessage, true, func() body { return new(Target) }},
	KindReactionAdd:    {ClassMessage, true, func() body { return new(Reaction) }},
	KindReactionRemove: {ClassMessage, true, func() body { return new(Reaction) }},
	KindMessagePin:     {ClassMessage, true, func() body { return new(Target) }},
	KindMessageUnpin:   {ClassMessage, true, func() body { return new(Target) }},

	KindPresenceBatch: {ClassEphemeral, false, func() body { return new(PresenceBatch) }},
	KindTypingBatch:   {ClassEphemeral, false, func() body { return new(TypingBatch) }},
}

// Limits of spec/events.md §6 (bytes of UTF-8).
const (
	MaxNameLen     = 100
	MaxTopicLen    = 1024
	MaxContentLen  = 4000
	MaxNonceLen    = 64
	MaxEmojiLen    = 64
	MaxReasonLen   = 512
	MaxNodeNameLen = 64
	MaxBatch       = 512
	MaxPresenceTTL = 60000 // ms [EVT-082]
	MaxAddrs       = 16
	MaxColor       = 0xffffff // an RGB colour
	MaxNickLen     = 128      // 32 characters of up to 4 bytes

	MaxAttachments    = 10
	MaxFilenameLen    = 200
	MaxContentTypeLen = 255
)

// Channel types (Discord values).
const (
	ChannelText     = 0
	ChannelVoice    = 2
	ChannelCategory = 4
)

// Presence statuses.
const (
	StatusOffline = 0
	StatusOnline  = 1
	StatusIdle    = 2
	StatusDND     = 3
)

// Overwrite target types.
const (
	OverwriteRole   = 0
	OverwriteMember = 1
)

func text(field, s string, min, max int) error {
	if len(s) < min || len(s) > max || !utf8.ValidString(s) {
		return fmt.Errorf("%s: length %d not in %d..%d", field, len(s), min, max)
	}
	return nil
}

func user(field string, u User) error {
	if u.Node == "" || !ValidName(u.Name) {
		return fmt.Errorf("%s: invalid user", field)
	}
	return nil
}

// Empty is the body of kinds that carry nothing beyond the envelope.
type Empty struct{}

func (*Empty) check(*Envelope) error { return nil }

// GuildCreate is the genesis body. Owner holds every permission.
type GuildCreate struct {
	Name     string `cbor:"0,keyasint"`
	Owner    User   `cbor:"1,keyasint"`
	NodeName string `cbor:"2,keyasint"`
	// DM marks a direct conversation: a guild of two members that nodes show
	// as a DM channel, not as a guild (spec/federation.md §6.1).
	DM bool `cbor:"3,keyasint,omitzero"`
}

func (b *GuildCreate) check(env *Envelope) error {
	if err := text("name", b.Name, 1, MaxNameLen); err != nil {
		return err
	}
	if b.Owner.Node != env.Origin {
		return errors.New("owner must live on the home node")
	}
	if err := user("owner", b.Owner); err != nil {
		return err
	}
	return text("node name", b.NodeName, 0, MaxNodeNameLen)
}

// GuildUpdate renames a guild.
type GuildUpdate struct {
	Name string `cbor:"0,keyasint"`
}

func (b *GuildUpdate) check(*Envelope) error { return text("name", b.Name, 1, MaxNameLen) }

// ChannelCreate creates a channel whose ID is the event's ID. Parent, when not
// zero, is the category the channel sits in [EVT-063].
type ChannelCreate struct {
	Name     string `cbor:"0,keyasint"`
	Type     uint8  `cbor:"1,keyasint"`
	Topic    string `cbor:"2,keyasint"`
	Position uint32 `cbor:"3,keyasint"`
	Parent   ID     `cbor:"4,keyasint,omitzero"`
}

func (b *ChannelCreate) check(*Envelope) error {
	if b.Type != ChannelText && b.Type != ChannelVoice && b.Type != ChannelCategory {
		return fmt.Errorf("channel type %d", b.Type)
	}
	if b.Type == ChannelCategory && b.Parent != "" {
		return errors.New("a category in a category")
	}
	if err := text("name", b.Name, 1, MaxNameLen); err != nil {
		return err
	}
	return text("topic", b.Topic, 0, MaxTopicLen)
}

// ChannelUpdate replaces a channel's name, topic, position and category (zero:
// none).
type ChannelUpdate struct {
	Name     string `cbor:"0,keyasint"`
	Topic    string `cbor:"1,keyasint"`
	Position uint32 `cbor:"2,keyasint"`
	Parent   ID     `cbor:"3,keyasint,omitzero"`
}

func (b *ChannelUpdate) check(*Envelope) error {
	if err := text("name", b.Name, 1, MaxNameLen); err != nil {
		return err
	}
	return text("topic", b.Topic, 0, MaxTopicLen)
}

// RoleCreate creates a role whose ID is the event's ID. Color, Hoist and
// Mentionable are how clients show the role; they grant nothing.
type RoleCreate struct {
	Name        string `cbor:"0,keyasint"`
	Permissions uint64 `cbor:"1,keyasint"`
	Position    uint32 `cbor:"2,keyasint"`
	Color       uint32 `cbor:"3,keyasint,omitzero"`
	Hoist       bool   `cbor:"4,keyasint,omitzero"`
	Mentionable bool   `cbor:"5,keyasint,omitzero"`
}

func (b *RoleCreate) check(*Envelope) error {
	if b.Color > MaxColor {
		return fmt.Errorf("color %#x", b.Color)
	}
	return text("name", b.Name, 1, MaxNameLen)
}

// RoleUpdate replaces a role; Role may be the guild ID (@everyone).
type RoleUpdate struct {
	Role        ID     `cbor:"0,keyasint"`
	Name        string `cbor:"1,keyasint"`
	Permissions uint64 `cbor:"2,keyasint"`
	Position    uint32 `cbor:"3,keyasint"`
	Color       uint32 `cbor:"4,keyasint,omitzero"`
	Hoist       bool   `cbor:"5,keyasint,omitzero"`
	Mentionable bool   `cbor:"6,keyasint,omitzero"`
}

func (b *RoleUpdate) check(*Envelope) error {
	if b.Role == "" {
		return errors.New("missing role")
	}
	if b.Color > MaxColor {
		return fmt.Errorf("color %#x", b.Color)
	}
	return text("name", b.Name, 1, MaxNameLen)
}

// RoleRef names a role.
type RoleRef struct {
	Role ID `cbor:"0,keyasint"`
}

func (b *RoleRef) check(*Envelope) error {
	if b.Role == "" {
		return errors.New("missing role")
	}
	return nil
}

// ChannelOverwrite sets a permission overwrite on the envelope's channel.
// Target is a role ID, or the CBOR encoding of a User for member overwrites.
type ChannelOverwrite struct {
	Target []byte `cbor:"0,keyasint"`
	Type   uint8  `cbor:"1,keyasint"`
	Allow  uint64 `cbor:"2,keyasint"`
	Deny   uint64 `cbor:"3,keyasint"`
}

func (b *ChannelOverwrite) check(*Envelope) error {
	switch b.Type {
	case OverwriteRole:
		_, err := idFromBytes(b.Target)
		return err
	case OverwriteMember:
		var u User
		if err := UnmarshalCanonical(b.Target, &u); err != nil {
			return fmt.Errorf("member target: %w", err)
		}
		return user("target", u)
	}
	return fmt.Errorf("overwrite type %d", b.Type)
}

// MemberJoin admits a user. Addrs are the member node's multiaddrs in binary
// form, so other members can reach it without the home node [FED-055].
type MemberJoin struct {
	User     User     `cbor:"0,keyasint"`
	NodeName string   `cbor:"1,keyasint"`
	Addrs    [][]byte `cbor:"2,keyasint"`
	Invite   string   `cbor:"3,keyasint"`
}

func (b *MemberJoin) check(*Envelope) error {
	if err := user("user", b.User); err != nil {
		return err
	}
	if len(b.Addrs) > MaxAddrs {
		return errors.New("too many addrs")
	}
	if err := text("invite", b.Invite, 0, 32); err != nil {
		return err
	}
	return text("node name", b.NodeName, 0, MaxNodeNameLen)
}

// MemberRef names a member (leave, kick, unban).
type MemberRef struct {
	User User `cbor:"0,keyasint"`
}

func (b *MemberRef) check(*Envelope) error { return user("user", b.User) }

// MemberRoles replaces a member's roles.
type MemberRoles struct {
	User  User `cbor:"0,keyasint"`
	Roles []ID `cbor:"1,keyasint"`
}

func (b *MemberRoles) check(*Envelope) error {
	if len(b.Roles) > 250 {
		return errors.New("too many roles")
	}
	return user("user", b.User)
}

// MemberProfile replaces how a member is shown: the nickname in this guild,
// the user's display name, and their avatar, an image referenced by hash and
// size whose bytes the user's node serves (spec/media.md §6).
type MemberProfile struct {
	User       User      `cbor:"0,keyasint"`
	Nick       string    `cbor:"1,keyasint"`
	GlobalName string    `cbor:"2,keyasint"`
	Avatar     *ImageRef `cbor:"3,keyasint,omitempty"`
}

func (b *MemberProfile) check(*Envelope) error {
	if err := user("user", b.User); err != nil {
		return err
	}
	if err := text("nick", b.Nick, 0, MaxNickLen); err != nil {
		return err
	}
	if b.Avatar != nil && len(b.Avatar.Hash) != 32 {
		return fmt.Errorf("avatar hash of %d bytes", len(b.Avatar.Hash))
	}
	return text("global name", b.GlobalName, 0, MaxNickLen)
}

// ImageRef names an image blob by the SHA-256 of its bytes.
type ImageRef struct {
	Hash []byte `cbor:"0,keyasint"`
	Size uint64 `cbor:"1,keyasint"`
}

// BanAdd bans a user and ends their membership.
type BanAdd struct {
	User   User   `cbor:"0,keyasint"`
	Reason string `cbor:"1,keyasint"`
}

func (b *BanAdd) check(*Envelope) error {
	if err := user("user", b.User); err != nil {
		return err
	}
	return text("reason", b.Reason, 0, MaxReasonLen)
}

// InviteCreate registers an invite code. MaxUses 0 means unlimited and
// Expires 0 (unix ms) means never.
type InviteCreate struct {
	Code    string `cbor:"0,keyasint"`
	MaxUses uint32 `cbor:"1,keyasint"`
	Expires uint64 `cbor:"2,keyasint"`
}

func (b *InviteCreate) check(*Envelope) error { return checkCode(b.Code) }

// InviteRevoke withdraws an invite code.
type InviteRevoke struct {
	Code string `cbor:"0,keyasint"`
}

func (b *InviteRevoke) check(*Envelope) error { return checkCode(b.Code) }

func checkCode(c string) error {
	if len(c) < 6 || len(c) > 32 {
		return errors.New("invite code length")
	}
	for i := 0; i < len(c); i++ {
		ch := c[i]
		if !(ch >= 'a' && ch <= 'z' || ch >= 'A' && ch <= 'Z' || ch >= '0' && ch <= '9') {
			return errors.New("invite code alphabet")
		}
	}
	return nil
}

// MessageCreate posts a message in the envelope's channel. ReplyTo is zero
// when the message is not a reply. Attachments reference files by hash; their
// bytes travel on demand (spec/media.md §6). Content may be empty only when
// there are attachments.
type MessageCreate struct {
	Content     string          `cbor:"0,keyasint"`
	Nonce       string          `cbor:"1,keyasint"`
	ReplyTo     ID              `cbor:"2,keyasint,omitzero"`
	Attachments []AttachmentRef `cbor:"3,keyasint,omitempty"`
}

func (b *MessageCreate) check(*Envelope) error {
	if len(b.Attachments) > MaxAttachments {
		return fmt.Errorf("%d attachments", len(b.Attachments))
	}
	for i := range b.Attachments {
		if err := b.Attachments[i].check(); err != nil {
			return fmt.Errorf("attachment %d: %w", i, err)
		}
	}
	min := 1
	if len(b.Attachments) > 0 {
		min = 0
	}
	if err := text("content", b.Content, min, MaxContentLen); err != nil {
		return err
	}
	return text("nonce", b.Nonce, 0, MaxNonceLen)
}

// AttachmentRef names a file of a message by the SHA-256 of its bytes.
// ContentType, Width and Height are advisory: a node that fetches the bytes
// determines them itself [MEDIA-070].
type AttachmentRef struct {
	Hash        []byte `cbor:"0,keyasint"`
	Size        uint64 `cbor:"1,keyasint"`
	Filename    string `cbor:"2,keyasint"`
	ContentType string `cbor:"3,keyasint"`
	Width       uint32 `cbor:"4,keyasint,omitzero"`
	Height      uint32 `cbor:"5,keyasint,omitzero"`
}

func (a *AttachmentRef) check() error {
	if len(a.Hash) != 32 {
		return fmt.Errorf("hash of %d bytes", len(a.Hash))
	}
	if err := text("filename", a.Filename, 1, MaxFilenameLen); err != nil {
		return err
	}
	return text("content type", a.ContentType, 0, MaxContentTypeLen)
}

// MessageEdit replaces the content of the author's own message.
type MessageEdit struct {
	Target  ID     `cbor:"0,keyasint"`
	Content string `cbor:"1,keyasint"`
}

func (b *MessageEdit) check(*Envelope) error {
	if b.Target == "" {
		return errors.New("missing target")
	}
	return text("content", b.Content, 1, MaxContentLen)
}

// Target names the message a delete acts on.
type Target struct {
	Target ID `cbor:"0,keyasint"`
}

func (b *Target) check(*Envelope) error {
	if b.Target == "" {
		return errors.New("missing target")
	}
	return nil
}

// Reaction adds or removes one emoji reaction of the author.
type Reaction struct {
	Target ID     `cbor:"0,keyasint"`
	Emoji  string `cbor:"1,keyasint"`
}

func (b *Reaction) check(*Envelope) error {
	if b.Target == "" {
		return errors.New("missing target")
	}
	return text("emoji", b.Emoji, 1, MaxEmojiLen)
}

// Presence is one user's status in a presence batch; the user lives on the
// batch's origin node.
type Presence struct {
	Name   string `cbor:"0,keyasint"`
	Status uint8  `cbor:"1,keyasint"`
}

// PresenceBatch carries the statuses of some of the origin's users; each entry
// is valid for TTL milliseconds after receipt [EVT-082].
type PresenceBatch struct {
	Entries []Presence `cbor:"0,keyasint"`
	TTL     uint32     `cbor:"1,keyasint"`
}

func (b *PresenceBatch) check(*Envelope) error {
	if len(b.Entries) > MaxBatch || b.TTL > MaxPresenceTTL {
		return errors.New("batch too large or ttl too long")
	}
	for _, e := range b.Entries {
		if !ValidName(e.Name) || e.Status > StatusDND {
			return fmt.Errorf("presence entry %q", e.Name)
		}
	}
	return nil
}

// Typing says a user of the origin node is typing in a channel.
type Typing struct {
	Name    string `cbor:"0,keyasint"`
	Channel ID     `cbor:"1,keyasint"`
}

// TypingBatch carries typing notices; each expires 10 s after receipt [EVT-083].
type TypingBatch struct {
	Entries []Typing `cbor:"0,keyasint"`
}

func (b *TypingBatch) check(*Envelope) error {
	if len(b.Entries) > MaxBatch {
		return errors.New("batch too large")
	}
	for _, e := range b.Entries {
		if !ValidName(e.Name) || e.Channel == "" {
			return fmt.Errorf("typing entry %q", e.Name)
		}
	}
	return nil
}
