// Package perm holds Discord's permission bitfield and the computation of a member's
// permissions in a guild and in a channel, exactly as Discord documents it.
//
// The package is pure: callers pass the guild's roles and a channel's overwrites, so the same
// code serves REST checks, gateway fanout filters and federation validators.
package perm

// Bits is a permission bitfield. On the wire it is a decimal string.
type Bits uint64

// Permission bits that Hearth enforces (Discord's values).
const (
	CreateInstantInvite Bits = 1 << 0
	KickMembers         Bits = 1 << 1
	BanMembers          Bits = 1 << 2
	Administrator       Bits = 1 << 3
	ManageChannels      Bits = 1 << 4
	ManageGuild         Bits = 1 << 5
	AddReactions        Bits = 1 << 6
	ViewAuditLog        Bits = 1 << 7
	PrioritySpeaker     Bits = 1 << 8
	Stream              Bits = 1 << 9
	ViewChannel         Bits = 1 << 10
	SendMessages        Bits = 1 << 11
	SendTTSMessages     Bits = 1 << 12
	ManageMessages      Bits = 1 << 13
	EmbedLinks          Bits = 1 << 14
	AttachFiles         Bits = 1 << 15
	ReadMessageHistory  Bits = 1 << 16
	MentionEveryone     Bits = 1 << 17
	UseExternalEmojis   Bits = 1 << 18
	Connect             Bits = 1 << 20
	Speak               Bits = 1 << 21
	MuteMembers         Bits = 1 << 22
	DeafenMembers       Bits = 1 << 23
	MoveMembers         Bits = 1 << 24
	UseVAD              Bits = 1 << 25
	ChangeNickname      Bits = 1 << 26
	ManageNicknames     Bits = 1 << 27
	ManageRoles         Bits = 1 << 28

	// All is every bit, what owners and administrators have.
	All Bits = 1<<50 - 1

	// DefaultEveryone is the @everyone permission set of a new guild (Discord's default).
	DefaultEveryone = CreateInstantInvite | AddReactions | Stream | ViewChannel | SendMessages |
		SendTTSMessages | EmbedLinks | AttachFiles | ReadMessageHistory | MentionEveryone |
		UseExternalEmojis | Connect | Speak | UseVAD | ChangeNickname
)

// Has reports whether every bit of want is set in b.
func (b Bits) Has(want Bits) bool { return b&want == want }

// Overwrite types, as on the wire.
const (
	OverwriteRole   = 0
	OverwriteMember = 1
)

// Overwrite is a channel permission overwrite for a role or a member.
type Overwrite struct {
	ID    uint64
	Type  int
	Allow Bits
	Deny  Bits
}

// Role is the part of a role the computation needs.
type Role struct {
	ID          uint64
	Permissions Bits
}

// Member is the part of a member the computation needs: the user and their role IDs
// (without @everyone, whose ID is the guild ID).
type Member struct {
	UserID uint64
	Roles  []uint64
}

// Base computes a member's guild-level permissions. roles maps role ID to role and must hold
// the @everyone role under the guild ID.
func Base(guildID, ownerID uint64, roles map[uint64]Role, m Member) Bits {
	if m.UserID == ownerID {
		return All
	}
	p := roles[guildID].Permissions
	for _, id := range m.Roles {
		p |= roles[id].Permissions
	}
	if p.Has(Administrator) {
		return All
	}
	return p
}

// InChannel applies a channel's overwrites to base permissions, in Discord's order:
// @everyone overwrite, then the union of the member's role overwrites (deny then allow), then
// the member's own overwrite.
func InChannel(base Bits, guildID uint64, m Member, overwrites []Overwrite) Bits {
	if base.Has(Administrator) || base == All {
		return All
	}
	p := base
	var roleAllow, roleDeny Bits
	var member *Overwrite
	for i := range overwrites {
		ow := &overwrites[i]
		switch {
		case ow.Type == OverwriteRole && ow.ID == guildID:
			p &^= ow.Deny
			p |= ow.Allow
		case ow.Type == OverwriteRole && contains(m.Roles, ow.ID):
			roleDeny |= ow.Deny
			roleAllow |= ow.Allow
		case ow.Type == OverwriteMember && ow.ID == m.UserID:
			member = ow
		}
	}
	p &^= roleDeny
	p |= roleAllow
	if member != nil {
		p &^= member.Deny
		p |= member.Allow
	}
	// Without VIEW_CHANNEL nothing else in the channel is possible.
	if !p.Has(ViewChannel) {
		return 0
	}
	return p
}

func contains(ids []uint64, id uint64) bool {
	for _, v := range ids {
		if v == id {
			return true
		}
	}
	return false
}
