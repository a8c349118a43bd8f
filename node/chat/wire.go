package chat

import (
	"strings"
	"time"

	"github.com/hearth-chat/hearth/node/model"
	"github.com/hearth-chat/hearth/node/perm"
)

// Timestamp is a time that marshals the way Discord writes timestamps.
type Timestamp time.Time

// MarshalText writes an ISO 8601 time with microseconds and a +00:00 offset (encoding/json
// quotes it; a text marshaler spares the re-scan that MarshalJSON's output gets).
func (t Timestamp) MarshalText() ([]byte, error) {
	return time.Time(t).UTC().AppendFormat(make([]byte, 0, 32), "2006-01-02T15:04:05.000000+00:00"), nil
}

func tsPtr(t *time.Time) *Timestamp {
	if t == nil {
		return nil
	}
	ts := Timestamp(*t)
	return &ts
}

// isRemoteName reports whether a username belongs to a remote user (name@node).
func isRemoteName(name string) bool { return strings.Contains(name, "@") }

// MemberOut is the wire form of a guild member.
type MemberOut struct {
	User     *model.User `json:"user,omitempty"`
	Nick     *string     `json:"nick"`
	Roles    []ID        `json:"roles"`
	JoinedAt Timestamp   `json:"joined_at"`
	Deaf     bool        `json:"deaf"`
	Mute     bool        `json:"mute"`
	GuildID  *ID         `json:"guild_id,omitempty"`
}

// ChannelOut is the wire form of a channel.
type ChannelOut struct {
	*model.Channel
	Recipients []model.User `json:"recipients,omitempty"`
	// RecipientIDs, FedID and FedGuild are storage details and not sent.
	RecipientIDs struct{} `json:"recipient_ids,omitzero"`
	FedID        struct{} `json:"fed_id,omitzero"`
	FedGuild     struct{} `json:"fed_guild,omitzero"`
}

// GuildOut is the wire form of a guild; the GUILD_CREATE form adds the fields below Roles.
type GuildOut struct {
	model.Guild
	CreatedAt                   struct{}      `json:"created_at,omitzero"`
	FedID                       struct{}      `json:"fed_id,omitzero"`
	Roles                       []*model.Role `json:"roles"`
	Emojis                      []struct{}    `json:"emojis"`
	Features                    []string      `json:"features"`
	VerificationLevel           int           `json:"verification_level"`
	DefaultMessageNotifications int           `json:"default_message_notifications"`
	ExplicitContentFilter       int           `json:"explicit_content_filter"`
	MFALevel                    int           `json:"mfa_level"`
	PreferredLocale             string        `json:"preferred_locale"`
	NSFWLevel                   int           `json:"nsfw_level"`
	PremiumTier                 int           `json:"premium_tier"`

	Channels    []ChannelOut    `json:"channels,omitempty"`
	Members     []MemberOut     `json:"members,omitempty"`
	MemberCount int             `json:"member_count,omitempty"`
	JoinedAt    *Timestamp      `json:"joined_at,omitempty"`
	Large       *bool           `json:"large,omitempty"`
	Unavailable *bool           `json:"unavailable,omitempty"`
	Presences   []PresenceOut   `json:"presences,omitempty"`
	VoiceStates []VoiceStateOut `json:"voice_states,omitempty"`
}

// PartialGuild is the element of GET /users/@me/guilds.
type PartialGuild struct {
	ID          ID        `json:"id"`
	Name        string    `json:"name"`
	Icon        *string   `json:"icon"`
	Owner       bool      `json:"owner"`
	Permissions perm.Bits `json:"permissions,string"`
	Features    []string  `json:"features"`
}

// ReactionOut is one reaction on the wire, seen by one user.
type ReactionOut struct {
	Count int      `json:"count"`
	Me    bool     `json:"me"`
	Emoji EmojiOut `json:"emoji"`
}

// EmojiOut is a Unicode emoji.
type EmojiOut struct {
	ID   *ID    `json:"id"`
	Name string `json:"name"`
}

// MessageOut is the wire form of a message.
type MessageOut struct {
	ID                ID                      `json:"id"`
	ChannelID         ID                      `json:"channel_id"`
	GuildID           *ID                     `json:"guild_id,omitempty"`
	Author            model.User              `json:"author"`
	Member            *MemberOut              `json:"member,omitempty"`
	Content           string                  `json:"content"`
	Timestamp         Timestamp               `json:"timestamp"`
	EditedTimestamp   *Timestamp              `json:"edited_timestamp"`
	TTS               bool                    `json:"tts"`
	MentionEveryone   bool                    `json:"mention_everyone"`
	Mentions          []model.User            `json:"mentions"`
	MentionRoles      []ID                    `json:"mention_roles"`
	Attachments       []any                   `json:"attachments"`
	Embeds            []struct{}              `json:"embeds"`
	Reactions         []ReactionOut           `json:"reactions,omitempty"`
	Nonce             any                     `json:"nonce,omitempty"`
	Pinned            bool                    `json:"pinned"`
	Type              int                     `json:"type"`
	MessageReference  *model.MessageReference `json:"message_reference,omitempty"`
	ReferencedMessage *MessageOut             `json:"referenced_message,omitempty"`
}

// InviteOut is the wire form of an invite.
type InviteOut struct {
	Code      string         `json:"code"`
	Guild     *PartialGuild  `json:"guild,omitempty"`
	Channel   *InviteChannel `json:"channel"`
	Inviter   *model.User    `json:"inviter,omitempty"`
	Uses      int            `json:"uses"`
	MaxUses   int            `json:"max_uses"`
	MaxAge    int            `json:"max_age"`
	Temporary bool           `json:"temporary"`
	CreatedAt Timestamp      `json:"created_at"`
	ExpiresAt *Timestamp     `json:"expires_at"`
	NewMember bool           `json:"new_member,omitempty"`
	GuildID   ID             `json:"guild_id"`
}

// InviteChannel is the partial channel in an invite.
type InviteChannel struct {
	ID   ID     `json:"id"`
	Name string `json:"name"`
	Type int    `json:"type"`
}

// user returns a copy of a user for the wire; unknown IDs become a placeholder so a
// dangling reference never breaks a page of history. Callers hold s.mu.
func (s *Service) user(id ID) model.User {
	if u := s.users[id]; u != nil {
		return *u
	}
	return model.User{ID: id, Username: "deleted-user", Discriminator: "0"}
}

func (s *Service) memberOut(m *model.Member, withUser bool) MemberOut {
	out := MemberOut{Nick: m.Nick, Roles: m.Roles, JoinedAt: Timestamp(m.JoinedAt), Deaf: m.Deaf, Mute: m.Mute}
	if out.Roles == nil {
		out.Roles = []ID{}
	}
	if withUser {
		u := s.user(m.UserID)
		out.User = &u
	}
	return out
}

func (s *Service) channelOut(c *model.Channel) ChannelOut {
	cp := *c
	out := ChannelOut{Channel: &cp}
	if c.IsPrivate() {
		for _, id := range c.RecipientIDs {
			out.Recipients = append(out.Recipients, s.user(id))
		}
	}
	return out
}

func (gs *guildState) sortedRoles() []*model.Role {
	roles := make([]*model.Role, 0, len(gs.roles))
	for _, r := range gs.roles {
		roles = append(roles, r)
	}
	sortBy(roles, func(a, b *model.Role) bool {
		if a.Position != b.Position {
			return a.Position < b.Position
		}
		return a.ID < b.ID
	})
	return roles
}

func guildOut(gs *guildState) GuildOut {
	return GuildOut{Guild: gs.g, Roles: gs.sortedRoles(), Emojis: []struct{}{}, Features: []string{}, PreferredLocale: "en-US"}
}

// messageOut builds the wire form of m as seen by viewer (for reactions' "me"). Callers
// hold s.mu.
func (s *Service) messageOut(m *model.Message, viewer ID) MessageOut {
	out := MessageOut{
		ID: m.ID, ChannelID: m.ChannelID, Author: s.user(m.AuthorID), Content: m.Content,
		Timestamp: Timestamp(m.ID.Time()), EditedTimestamp: tsPtr(m.EditedTimestamp), TTS: m.TTS,
		MentionEveryone: m.MentionEveryone, Mentions: []model.User{}, MentionRoles: m.MentionRoles,
		Attachments: []any{}, Embeds: []struct{}{}, Pinned: m.Pinned, Type: m.Type,
		MessageReference: m.MessageReference,
	}
	if m.Nonce != "" {
		out.Nonce = m.Nonce
	}
	if m.GuildID != 0 {
		gid := m.GuildID
		out.GuildID = &gid
	}
	if out.MentionRoles == nil {
		out.MentionRoles = []ID{}
	}
	for _, id := range m.Mentions {
		out.Mentions = append(out.Mentions, s.user(id))
	}
	for _, a := range m.Attachments {
		if s.renderAttachment != nil {
			out.Attachments = append(out.Attachments, s.renderAttachment(a))
		} else {
			out.Attachments = append(out.Attachments, a)
		}
	}
	for _, r := range m.Reactions {
		ro := ReactionOut{Count: len(r.Users), Emoji: EmojiOut{Name: r.Emoji}}
		for _, u := range r.Users {
			if u == viewer {
				ro.Me = true
				break
			}
		}
		out.Reactions = append(out.Reactions, ro)
	}
	return out
}
