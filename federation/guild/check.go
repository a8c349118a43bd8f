package guild

import (
	"fmt"

	"github.com/hearth-chat/hearth/federation/event"
)

// CheckMessage validates a message-class event (message.*, reaction.*)
// against the guild state [EVT-070] [EVT-071]. Checks that need the target
// message (edit and delete authorship) are left to the caller, who can use
// Permissions for MANAGE_MESSAGES.
//
// The event's sn is the state head its origin knew. When it is ahead of ours
// a failed check is ErrNotYet (we may be missing the join or channel); when it
// is not, the origin knew the state we hold, so a failed check is
// ErrForbidden and the event is provably bad.
func (g *Guild) CheckMessage(ev *event.Event) error {
	if ev.Kind.Class() != event.ClassMessage {
		return fmt.Errorf("%w: %s is not a message kind", ErrInvalid, ev.Kind)
	}
	g.mu.RLock()
	defer g.mu.RUnlock()
	fail := g.failer(ev)
	if ev.Guild != g.info.ID {
		return fmt.Errorf("%w: other guild", ErrInvalid)
	}
	if bannedAt, ok := g.bans[ev.Author]; ok && ev.TS >= bannedAt {
		return fail("author is banned")
	}
	if d := g.info.Deleted; d != 0 && ev.TS >= d {
		return fail("the guild is deleted") // [EVT-062]
	}
	m := g.members[ev.Author]
	switch {
	case m == nil:
		return fail("author is not a member")
	case ev.TS < m.Joined, m.Left != 0 && ev.TS >= m.Left:
		return fail("author was not a member at ts")
	}
	c := g.channels[ev.Channel]
	if c == nil {
		return fail("unknown channel")
	}
	if c.Type != event.ChannelText {
		return fmt.Errorf("%w: not a text channel", ErrForbidden)
	}
	need := PermViewChannel | PermSendMessages
	if ev.Kind == event.KindReactionAdd || ev.Kind == event.KindReactionRemove {
		need = PermViewChannel | PermAddReactions
	}
	if ev.Kind == event.KindMessageDelete {
		need = PermViewChannel
	}
	if ev.Kind == event.KindMessagePin || ev.Kind == event.KindMessageUnpin {
		need = PermViewChannel | PermManageMessages
	}
	if g.permissionsOf(m, ev.Channel)&need != need {
		return fail("missing channel permission")
	}
	return nil
}

// failer returns the error constructor for ev: ErrNotYet when ev's origin
// knew more state than we hold, ErrForbidden otherwise.
func (g *Guild) failer(ev *event.Event) func(string) error {
	behind := ev.SN > g.info.SN
	return func(why string) error {
		if behind {
			return fmt.Errorf("%w: %s (origin at sn %d, have %d)", ErrNotYet, why, ev.SN, g.info.SN)
		}
		return fmt.Errorf("%w: %s", ErrForbidden, why)
	}
}

// CheckEphemeral validates a presence or typing batch [EVT-081]: every entry
// names a current member living on the origin node, and typing entries name
// channels the user may send in.
func (g *Guild) CheckEphemeral(ev *event.Event) error {
	g.mu.RLock()
	defer g.mu.RUnlock()
	fail := g.failer(ev)
	if ev.Guild != g.info.ID {
		return fmt.Errorf("%w: other guild", ErrInvalid)
	}
	member := func(name string) *Member {
		m := g.members[event.User{Node: ev.Origin, Name: name}]
		if m == nil || m.Left != 0 {
			return nil
		}
		return m
	}
	switch b := ev.Body.(type) {
	case *event.PresenceBatch:
		for _, e := range b.Entries {
			if member(e.Name) == nil {
				return fail("presence for a non-member")
			}
		}
	case *event.TypingBatch:
		for _, e := range b.Entries {
			m := member(e.Name)
			if m == nil {
				return fail("typing by a non-member")
			}
			if g.channels[e.Channel] == nil {
				return fail("typing in an unknown channel")
			}
			if g.permissionsOf(m, e.Channel)&PermSendMessages == 0 {
				return fail("typing without SEND_MESSAGES")
			}
		}
	default:
		return fmt.Errorf("%w: %s is not ephemeral", ErrInvalid, ev.Kind)
	}
	return nil
}

// Authorize checks whether actor may cause a state event of kind with body
// (a pointer to the kind's body type) on channel [FED-042]. The home node
// calls it for moderation requests and for its own users.
func (g *Guild) Authorize(actor event.User, kind event.Kind, channel event.ID, body any) error {
	g.mu.RLock()
	defer g.mu.RUnlock()
	m := g.members[actor]
	if m == nil || m.Left != 0 {
		return fmt.Errorf("%w: %s is not a member", ErrForbidden, actor)
	}
	if g.info.Deleted != 0 {
		return fmt.Errorf("%w: the guild is deleted", ErrForbidden)
	}
	var need uint64
	switch kind {
	case event.KindGuildUpdate:
		need = PermManageGuild
	case event.KindInviteRevoke:
		r, ok := body.(*event.InviteRevoke)
		if !ok {
			return fmt.Errorf("%w: body", ErrInvalid)
		}
		if inv := g.invites[r.Code]; inv != nil && inv.Creator == actor {
			return nil // an inviter MAY always withdraw their own invite
		}
		need = PermManageChannels
	case event.KindChannelCreate, event.KindChannelUpdate, event.KindChannelDelete:
		need = PermManageChannels
	case event.KindRoleCreate, event.KindRoleUpdate, event.KindRoleDelete, event.KindMemberRoles, event.KindChannelOverwrite:
		need = PermManageRoles
	case event.KindInviteCreate:
		need = PermCreateInvite
	case event.KindBanAdd, event.KindBanRemove:
		need = PermBanMembers
		if r, ok := body.(*event.BanAdd); ok && r.User == g.info.Owner {
			return fmt.Errorf("%w: the owner cannot be banned", ErrForbidden)
		}
	case event.KindMemberProfile:
		r, ok := body.(*event.MemberProfile)
		if !ok {
			return fmt.Errorf("%w: body", ErrInvalid)
		}
		if r.User == actor {
			return nil // anyone shows themselves as they like
		}
		need = PermManageNicknames
	case event.KindMemberLeave:
		r, ok := body.(*event.MemberRef)
		if !ok {
			return fmt.Errorf("%w: body", ErrInvalid)
		}
		if r.User == g.info.Owner {
			return fmt.Errorf("%w: the owner cannot leave or be kicked", ErrForbidden)
		}
		if r.User == actor {
			return nil // a user MAY always leave
		}
		need = PermKickMembers
	default:
		return fmt.Errorf("%w: %s cannot be requested", ErrForbidden, kind)
	}
	if g.permissionsOf(m, channel)&need != need {
		return fmt.Errorf("%w: %s lacks permission for %s", ErrForbidden, actor, kind)
	}
	return nil
}
