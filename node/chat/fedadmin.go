package chat

import (
	"context"
	"strings"
	"unicode/utf8"

	"github.com/hearth-chat/hearth/node/model"
	"github.com/hearth-chat/hearth/node/perm"
)

// Only a federated guild's home node issues its state [FED-040]. When a local user of another
// node changes the guild's channels or name, this node first checks the change against its
// copy of the guild's permissions (a fast, clear 403), then sends it to the home node, which
// checks it again against the federated state and publishes it; only then does the change
// show here, exactly as it will on every node [FED-080]. The request answers 503 when the
// home node cannot be reached, and nothing changes anywhere.

// createChannelAtHome creates a channel or category of a guild homed on another node through
// that node and returns the local copy. forwarded is false when the channel is not for the
// home node to create (a guild homed here or not federated, a remote actor, or a request the
// local checks refuse, which CreateChannel then answers itself).
func (s *Service) createChannelAtHome(ctx context.Context, actor, guildID ID, spec ChannelSpec) (out ChannelOut, forwarded bool, err error) {
	s.mu.RLock()
	gs, m, gerr := s.guild(actor, guildID)
	if gerr != nil || s.fed == nil {
		s.mu.RUnlock()
		return ChannelOut{}, false, nil
	}
	fg, actorName := s.fedElsewhere(gs), s.user(actor).Username
	typ := model.ChannelText
	if spec.Type != nil {
		typ = *spec.Type
	}
	if fg == "" || isRemoteName(actorName) || (typ != model.ChannelText && typ != model.ChannelVoice && typ != model.ChannelCategory) ||
		spec.Name == nil || !gs.basePerms(m).Has(perm.ManageChannels) {
		s.mu.RUnlock()
		return ChannelOut{}, false, nil
	}
	probe := &model.Channel{Type: typ, GuildID: guildID, Position: s.nextPosition(gs, typ)}
	err = spec.apply(probe, gs, s)
	rc := RemoteChannel{Name: probe.Name, Type: typ, Position: probe.Position, Parent: s.parentFedID(probe)}
	if probe.Topic != nil {
		rc.Topic = *probe.Topic
	}
	s.mu.RUnlock()
	if err != nil {
		return ChannelOut{}, true, err
	}
	if rc.FedID, err = s.fed.CreateChannel(ctx, fg, actorName, rc); err != nil {
		return ChannelOut{}, true, err
	}
	// The channel.create event may have been applied already: ApplyRemoteChannel is idempotent.
	if err := s.ApplyRemoteChannel(fg, rc); err != nil {
		return ChannelOut{}, true, err
	}
	fc := rc.FedID
	s.mu.RLock()
	defer s.mu.RUnlock()
	c := s.channelByFedID(fc)
	if c == nil {
		return ChannelOut{}, true, ErrUnknownChannel // deleted meanwhile
	}
	return s.channelOut(c), true, nil
}

// changeChannelAtHome sends a change to a federated channel of a guild homed on another node
// (spec nil: its deletion) to that node, for the name, topic and position the federation
// carries. forwarded is false when the change is not the home node's to make (see
// createChannelAtHome); otherwise out is the channel as it was, and the caller applies the
// change to the local copy once this returns without error (the change's state event, when
// it arrives, then finds nothing left to do).
func (s *Service) changeChannelAtHome(ctx context.Context, actor, channelID ID, spec *ChannelSpec) (out ChannelOut, forwarded bool, err error) {
	s.mu.RLock()
	c, gs, p, aerr := s.channelAccess(actor, channelID)
	if aerr != nil || gs == nil || c.FedID == "" || s.fed == nil || !p.Has(perm.ManageChannels) ||
		(spec != nil && spec.PermissionOverwrites != nil && !p.Has(perm.ManageRoles)) {
		s.mu.RUnlock()
		return ChannelOut{}, false, nil
	}
	fg, actorName := s.fedElsewhere(gs), s.user(actor).Username
	if fg == "" || isRemoteName(actorName) {
		s.mu.RUnlock()
		return ChannelOut{}, false, nil
	}
	out = s.channelOut(c)
	var update *RemoteChannel
	if spec != nil {
		if spec.Name == nil && spec.Topic == nil && spec.Position == nil && !spec.ParentID.Set {
			s.mu.RUnlock()
			return ChannelOut{}, false, nil // nothing the federation carries
		}
		probe := *c
		noType := *spec
		noType.Type = nil
		err = noType.apply(&probe, gs, s)
		update = &RemoteChannel{FedID: c.FedID, Name: probe.Name, Type: probe.Type, Position: probe.Position, Parent: s.parentFedID(&probe)}
		if probe.Topic != nil {
			update.Topic = *probe.Topic
		}
	}
	fc := c.FedID
	s.mu.RUnlock()
	if err != nil {
		return ChannelOut{}, true, err
	}
	return out, true, s.fed.ChangeChannel(ctx, fg, actorName, fc, update)
}

// renameGuildAtHome sends a new name of a guild homed on another node to that node; the
// caller then renames the local copy. forwarded is false as for createChannelAtHome.
func (s *Service) renameGuildAtHome(ctx context.Context, actor, guildID ID, name string) (forwarded bool, err error) {
	s.mu.RLock()
	gs, m, gerr := s.guild(actor, guildID)
	if gerr != nil || s.fed == nil || !gs.basePerms(m).Has(perm.ManageGuild) {
		s.mu.RUnlock()
		return false, nil
	}
	fg, actorName := s.fedElsewhere(gs), s.user(actor).Username
	s.mu.RUnlock()
	name = strings.TrimSpace(name)
	if n := utf8.RuneCountInString(name); fg == "" || isRemoteName(actorName) || n < 2 || n > 100 {
		return false, nil // ModifyGuild answers a bad name itself
	}
	return true, s.fed.RenameGuild(ctx, fg, actorName, name)
}

// parentFedID is the federation ID of a channel's category, or "". Callers hold s.mu.
func (s *Service) parentFedID(c *model.Channel) string {
	if c.ParentID == nil {
		return ""
	}
	if p := s.channels[*c.ParentID]; p != nil {
		return p.FedID
	}
	return ""
}

// nextPosition is the position after the last channel of a type in a guild. Callers hold s.mu.
func (s *Service) nextPosition(gs *guildState, typ int) int {
	pos := 0
	for cid := range gs.channels {
		if o := s.channels[cid]; o.Type == typ && o.Position >= pos {
			pos = o.Position + 1
		}
	}
	return pos
}
