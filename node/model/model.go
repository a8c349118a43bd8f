// Package model defines the node's records: users, guilds, roles, channels, members,
// messages, invites and read states. They are stored as JSON in the store and most of them
// are also the Discord v10 wire shapes, so one type serves both; where the wire needs more
// (a message's author object, a member's user) the api package composes it.
package model

import (
	"time"

	"github.com/hearth-chat/hearth/node/perm"
	"github.com/hearth-chat/hearth/node/snowflake"
)

// ID is a local snowflake.
type ID = snowflake.ID

// Channel types (Discord values).
const (
	ChannelText     = 0
	ChannelDM       = 1
	ChannelVoice    = 2
	ChannelGroupDM  = 3
	ChannelCategory = 4
)

// Message types (Discord values).
const (
	MessageDefault = 0
	MessageReply   = 19
)

// User is an account on this node, or a remote user known through federation (Username then
// has the form name@node).
type User struct {
	ID            ID      `json:"id"`
	Username      string  `json:"username"`
	GlobalName    *string `json:"global_name"`
	Avatar        *string `json:"avatar"`
	Discriminator string  `json:"discriminator"`
	Bot           bool    `json:"bot"`
	System        bool    `json:"system"`
}

// Guild is a community. Its @everyone role has the guild's ID.
type Guild struct {
	ID              ID        `json:"id"`
	Name            string    `json:"name"`
	Icon            *string   `json:"icon"`
	Description     *string   `json:"description"`
	OwnerID         ID        `json:"owner_id"`
	SystemChannelID *ID       `json:"system_channel_id"`
	CreatedAt       time.Time `json:"created_at"`
	// FedID is the guild's federation ID (the hash of its genesis event); empty for a guild
	// that is not federated.
	FedID string `json:"fed_id,omitempty"`
}

// Role is a guild role.
type Role struct {
	ID          ID        `json:"id"`
	GuildID     ID        `json:"-"`
	Name        string    `json:"name"`
	Color       int       `json:"color"`
	Hoist       bool      `json:"hoist"`
	Position    int       `json:"position"`
	Permissions perm.Bits `json:"permissions,string"`
	Managed     bool      `json:"managed"`
	Mentionable bool      `json:"mentionable"`
	// FedID is the role's federation ID in a federated guild (the @everyone role has the
	// guild's); empty for a role that is not federated. It is kept under its own key
	// (store.PrefixRoleFed), not in the client API.
	FedID string `json:"-"`
}

// Overwrite is a channel permission overwrite on the wire.
type Overwrite struct {
	ID    ID        `json:"id"`
	Type  int       `json:"type"`
	Allow perm.Bits `json:"allow,string"`
	Deny  perm.Bits `json:"deny,string"`
}

// Channel is a guild channel, a category, a DM or a group DM. Recipients of private channels
// are stored as IDs; the wire form carries user objects (see api).
type Channel struct {
	ID                   ID          `json:"id"`
	Type                 int         `json:"type"`
	GuildID              ID          `json:"guild_id,omitempty"`
	Name                 string      `json:"name,omitempty"`
	Topic                *string     `json:"topic,omitempty"`
	Position             int         `json:"position"`
	ParentID             *ID         `json:"parent_id,omitempty"`
	PermissionOverwrites []Overwrite `json:"permission_overwrites,omitempty"`
	NSFW                 bool        `json:"nsfw"`
	LastMessageID        *ID         `json:"last_message_id"`
	RateLimitPerUser     int         `json:"rate_limit_per_user"`
	Bitrate              int         `json:"bitrate,omitempty"`
	UserLimit            int         `json:"user_limit,omitempty"`
	RecipientIDs         []ID        `json:"recipient_ids,omitempty"`
	OwnerID              ID          `json:"owner_id,omitempty"`
	// FedID is the channel's federation ID; empty for a channel that is not federated.
	FedID string `json:"fed_id,omitempty"`
	// FedGuild is, for a DM with a user of another node, the federation ID of the
	// conversation (a DM guild) that carries it.
	FedGuild string `json:"fed_guild,omitempty"`
}

// IsPrivate reports whether the channel is a DM or group DM.
func (c *Channel) IsPrivate() bool { return c.Type == ChannelDM || c.Type == ChannelGroupDM }

// IsTextual reports whether messages can be sent in the channel.
func (c *Channel) IsTextual() bool {
	return c.Type == ChannelText || c.Type == ChannelDM || c.Type == ChannelGroupDM
}

// PermOverwrites converts the overwrites for the perm package.
func (c *Channel) PermOverwrites() []perm.Overwrite {
	out := make([]perm.Overwrite, len(c.PermissionOverwrites))
	for i, o := range c.PermissionOverwrites {
		out[i] = perm.Overwrite{ID: uint64(o.ID), Type: o.Type, Allow: o.Allow, Deny: o.Deny}
	}
	return out
}

// Member is a user's membership in a guild.
type Member struct {
	GuildID  ID        `json:"guild_id"`
	UserID   ID        `json:"user_id"`
	Nick     *string   `json:"nick"`
	Roles    []ID      `json:"roles"`
	JoinedAt time.Time `json:"joined_at"`
	Deaf     bool      `json:"deaf"`
	Mute     bool      `json:"mute"`
}

// PermMember converts the member for the perm package.
func (m *Member) PermMember() perm.Member {
	roles := make([]uint64, len(m.Roles))
	for i, r := range m.Roles {
		roles[i] = uint64(r)
	}
	return perm.Member{UserID: uint64(m.UserID), Roles: roles}
}

// Ban records a banned user.
type Ban struct {
	GuildID ID      `json:"guild_id"`
	UserID  ID      `json:"user_id"`
	Reason  *string `json:"reason"`
}

// Invite is an invite code to a guild channel.
type Invite struct {
	Code      string     `json:"code"`
	GuildID   ID         `json:"guild_id"`
	ChannelID ID         `json:"channel_id"`
	InviterID ID         `json:"inviter_id"`
	Uses      int        `json:"uses"`
	MaxUses   int        `json:"max_uses"`
	MaxAge    int        `json:"max_age"`
	CreatedAt time.Time  `json:"created_at"`
	ExpiresAt *time.Time `json:"expires_at"`
}

// Usable reports whether the invite can still be used at now.
func (i *Invite) Usable(now time.Time) bool {
	if i.ExpiresAt != nil && !now.Before(*i.ExpiresAt) {
		return false
	}
	return i.MaxUses == 0 || i.Uses < i.MaxUses
}

// MessageReference points at the message a reply answers.
type MessageReference struct {
	MessageID ID  `json:"message_id"`
	ChannelID ID  `json:"channel_id"`
	GuildID   *ID `json:"guild_id,omitempty"`
}

// Reaction is one emoji on a message with the users who added it, in order.
type Reaction struct {
	Emoji string `json:"emoji"`
	Users []ID   `json:"users"`
}

// Message is a stored message. The wire form (api) adds the author and mention user objects.
type Message struct {
	ID               ID                `json:"id"`
	ChannelID        ID                `json:"channel_id"`
	GuildID          ID                `json:"guild_id,omitempty"`
	AuthorID         ID                `json:"author_id"`
	Content          string            `json:"content"`
	EditedTimestamp  *time.Time        `json:"edited_timestamp,omitempty"`
	TTS              bool              `json:"tts,omitempty"`
	MentionEveryone  bool              `json:"mention_everyone,omitempty"`
	Mentions         []ID              `json:"mentions,omitempty"`
	MentionRoles     []ID              `json:"mention_roles,omitempty"`
	Nonce            string            `json:"nonce,omitempty"`
	Pinned           bool              `json:"pinned,omitempty"`
	Type             int               `json:"type"`
	MessageReference *MessageReference `json:"message_reference,omitempty"`
	Reactions        []Reaction        `json:"reactions,omitempty"`
	Attachments      []Attachment      `json:"attachments,omitempty"`
}

// Attachment is a file on a message. Only the content hash and metadata are stored; URLs
// are signed afresh whenever the message is rendered, since they expire.
type Attachment struct {
	ID          ID     `json:"id"`
	Filename    string `json:"filename"`
	Hash        string `json:"hash"` // hex SHA-256 of the bytes
	Size        int64  `json:"size"`
	ContentType string `json:"content_type,omitempty"`
	Width       int    `json:"width,omitempty"`
	Height      int    `json:"height,omitempty"`
}

// ReadState is a user's position in a channel.
type ReadState struct {
	ChannelID     ID  `json:"id"`
	LastMessageID ID  `json:"last_message_id"`
	MentionCount  int `json:"mention_count"`
}
