package chat

import (
	"net/http"
	"sort"
	"sync"

	"github.com/hearth-chat/hearth/node/model"
	"github.com/hearth-chat/hearth/node/perm"
)

// VoiceControl is what the domain needs from the node's SFU to carry out voice moderation.
// The domain calls it while it holds its state lock, so an implementation must return at
// once (the node queues the calls) and must not call back into the Service synchronously.
// A call for a user who is no longer in voice is a no-op.
type VoiceControl interface {
	SetServerMute(guildID, userID ID, mute bool)
	SetServerDeaf(guildID, userID ID, deaf bool)
	Move(guildID, userID, channelID ID)
	Disconnect(guildID, userID ID)
	// DisconnectChannel ends the voice session of everyone in a voice channel that was
	// deleted.
	DisconnectChannel(guildID, channelID ID)
}

// VoiceState is one member's voice state as the SFU reports it.
type VoiceState struct {
	GuildID ID
	// ChannelID is the voice channel; zero means the member left voice.
	ChannelID ID
	UserID    ID
	// SessionID is the gateway session that asked to join.
	SessionID  string
	SelfMute   bool
	SelfDeaf   bool
	Mute       bool // server mute
	Deaf       bool // server deafen
	SelfVideo  bool
	SelfStream bool
}

// VoiceStateOut is Discord's voice state object, sent in VOICE_STATE_UPDATE and (without
// guild_id and member) in GUILD_CREATE's voice_states.
type VoiceStateOut struct {
	GuildID                 *ID        `json:"guild_id,omitempty"`
	ChannelID               *ID        `json:"channel_id"`
	UserID                  ID         `json:"user_id"`
	Member                  *MemberOut `json:"member,omitempty"`
	SessionID               string     `json:"session_id"`
	Deaf                    bool       `json:"deaf"`
	Mute                    bool       `json:"mute"`
	SelfDeaf                bool       `json:"self_deaf"`
	SelfMute                bool       `json:"self_mute"`
	SelfStream              bool       `json:"self_stream"`
	SelfVideo               bool       `json:"self_video"`
	Suppress                bool       `json:"suppress"`
	RequestToSpeakTimestamp *Timestamp `json:"request_to_speak_timestamp"`
}

// ErrNotInVoice answers a move or disconnect of a member who is not in a voice channel.
var ErrNotInVoice = newErr(http.StatusBadRequest, 40032, "Target user is not connected to voice.")

// voiceRegistry holds the guilds' voice states. It has its own lock, taken after s.mu when
// both are needed, so that SFU events never wait for a write of guild state.
type voiceRegistry struct {
	mu     sync.Mutex
	ctl    VoiceControl
	states map[ID]map[ID]VoiceState // guild → user → state (in a channel)
}

// SetVoiceControl connects the domain to the node's SFU for moderation. Without it (nil),
// mute, deafen, move and disconnect change only the stored member.
func (s *Service) SetVoiceControl(v VoiceControl) {
	s.voice.mu.Lock()
	s.voice.ctl = v
	s.voice.mu.Unlock()
}

func (s *Service) voiceControl() VoiceControl {
	s.voice.mu.Lock()
	defer s.voice.mu.Unlock()
	return s.voice.ctl
}

// inVoice returns the member's voice state in the guild, if they are in a channel.
func (s *Service) inVoice(guildID, userID ID) (VoiceState, bool) {
	s.voice.mu.Lock()
	defer s.voice.mu.Unlock()
	st, ok := s.voice.states[guildID][userID]
	return st, ok
}

// AuthorizeVoice checks that the actor may join channelID of guildID: a member, the channel
// a voice channel of that guild they can see, with CONNECT there.
func (s *Service) AuthorizeVoice(actor, guildID, channelID ID) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	gs, m, err := s.guild(actor, guildID)
	if err != nil {
		return err
	}
	c := s.channels[channelID]
	if c == nil || c.GuildID != guildID {
		return ErrUnknownChannel
	}
	p := gs.channelPerms(m, c)
	if !p.Has(perm.ViewChannel) {
		return ErrUnknownChannel
	}
	if c.Type != model.ChannelVoice {
		return invalid("channel_id", "CHANNEL_TYPE_INVALID", "Not a voice channel.")
	}
	if !p.Has(perm.Connect) {
		return ErrMissingPerms
	}
	return nil
}

// VoiceMember is the domain's view of a user reported in voice: whether they are a member
// of the guild, and their stored server mute and deafen, which the SFU must match.
type VoiceMember struct {
	Member     bool
	Mute, Deaf bool
}

// SetVoiceState records a voice state reported by the SFU and dispatches VOICE_STATE_UPDATE
// to the guild (intent GUILD_VOICE_STATES). A state with a zero ChannelID is a leave. A
// state of a user who is not a member of the guild, or in a channel that is not a voice
// channel of the guild (one deleted while its token was on the way), is neither recorded nor
// dispatched (the caller disconnects them, seeing Member false); a leave always is.
func (s *Service) SetVoiceState(st VoiceState) VoiceMember {
	s.mu.RLock()
	defer s.mu.RUnlock()
	gs := s.guilds[st.GuildID]
	var m *model.Member
	if gs != nil {
		m = gs.members[st.UserID]
	}
	if c := s.channels[st.ChannelID]; st.ChannelID != 0 && (m == nil || c == nil || c.GuildID != st.GuildID || c.Type != model.ChannelVoice) {
		return VoiceMember{}
	}
	s.voice.mu.Lock()
	if st.ChannelID == 0 {
		delete(s.voice.states[st.GuildID], st.UserID)
		if len(s.voice.states[st.GuildID]) == 0 {
			delete(s.voice.states, st.GuildID)
		}
	} else {
		if s.voice.states == nil {
			s.voice.states = map[ID]map[ID]VoiceState{}
		}
		if s.voice.states[st.GuildID] == nil {
			s.voice.states[st.GuildID] = map[ID]VoiceState{}
		}
		s.voice.states[st.GuildID][st.UserID] = st
	}
	s.voice.mu.Unlock()
	if gs == nil {
		return VoiceMember{}
	}
	out := voiceStateOut(st)
	gid := st.GuildID
	out.GuildID = &gid
	var vm VoiceMember
	if m != nil {
		mo := s.memberOut(m, true)
		out.Member = &mo
		vm = VoiceMember{Member: true, Mute: m.Mute, Deaf: m.Deaf}
	}
	s.publishGuild(st.GuildID, "VOICE_STATE_UPDATE", IntentGuildVoiceStates, out)
	return vm
}

// voiceChannelDeleted disconnects everyone in a deleted voice channel (VOICE-088). Callers
// hold s.mu; the SFU does the work after the call returns.
func (s *Service) voiceChannelDeleted(c *model.Channel) {
	if c.Type != model.ChannelVoice {
		return
	}
	if ctl := s.voiceControl(); ctl != nil {
		ctl.DisconnectChannel(c.GuildID, c.ID)
	}
}

// VoiceStates returns the voice states of a guild's members, ordered by user ID.
func (s *Service) VoiceStates(guildID ID) []VoiceStateOut {
	s.voice.mu.Lock()
	defer s.voice.mu.Unlock()
	out := make([]VoiceStateOut, 0, len(s.voice.states[guildID]))
	for _, st := range s.voice.states[guildID] {
		out = append(out, voiceStateOut(st))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].UserID < out[j].UserID })
	return out
}

func voiceStateOut(st VoiceState) VoiceStateOut {
	out := VoiceStateOut{UserID: st.UserID, SessionID: st.SessionID, Deaf: st.Deaf, Mute: st.Mute,
		SelfDeaf: st.SelfDeaf, SelfMute: st.SelfMute, SelfStream: st.SelfStream, SelfVideo: st.SelfVideo}
	if st.ChannelID != 0 {
		c := st.ChannelID
		out.ChannelID = &c
	}
	return out
}

// checkVoiceMove validates a moderator's move of target to channelID (nil: disconnect): the
// target is in voice in the guild, the actor has MOVE_MEMBERS (and, for a move, CONNECT in a
// voice channel of the guild). Callers hold s.mu.
func (s *Service) checkVoiceMove(gs *guildState, am *model.Member, target ID, channelID *ID) error {
	if _, ok := s.inVoice(gs.g.ID, target); !ok {
		return ErrNotInVoice
	}
	if channelID == nil {
		if !gs.basePerms(am).Has(perm.MoveMembers) {
			return ErrMissingPerms
		}
		return nil
	}
	c := s.channels[*channelID]
	if c == nil || c.GuildID != gs.g.ID {
		return ErrUnknownChannel
	}
	if c.Type != model.ChannelVoice {
		return invalid("channel_id", "CHANNEL_TYPE_INVALID", "Not a voice channel.")
	}
	if p := gs.channelPerms(am, c); !p.Has(perm.MoveMembers) || !p.Has(perm.Connect) {
		return ErrMissingPerms
	}
	return nil
}

// The methods below serve the voice cascade between nodes (node/server/voicecascade.go):
// the mapping between this node's IDs and federation IDs, and voice channels of federated
// guilds, which the text-channel path of federation does not carry.

// VoiceFedGuild returns the federation ID of a guild, "" if it is not federated.
func (s *Service) VoiceFedGuild(guildID ID) string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if gs := s.guilds[guildID]; gs != nil {
		return gs.g.FedID
	}
	return ""
}

// VoiceFedChannel returns the federation ID of a channel, "" if it has none.
func (s *Service) VoiceFedChannel(channelID ID) string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if c := s.channels[channelID]; c != nil {
		return c.FedID
	}
	return ""
}

// VoiceLocalGuild returns the local ID of a federated guild this node shows.
func (s *Service) VoiceLocalGuild(guildFedID string) (ID, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if gs := s.guildByFedID(guildFedID); gs != nil {
		return gs.g.ID, true
	}
	return 0, false
}

// VoiceLocalChannel returns the local ID of a voice channel of a federated guild.
func (s *Service) VoiceLocalChannel(guildID ID, channelFedID string) (ID, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	gs := s.guilds[guildID]
	if gs == nil {
		return 0, false
	}
	for cid := range gs.channels {
		if c := s.channels[cid]; c != nil && c.FedID == channelFedID && c.Type == model.ChannelVoice {
			return c.ID, true
		}
	}
	return 0, false
}

// VoiceUserName returns the username of a user of this node; false for remote users.
func (s *Service) VoiceUserName(userID ID) (string, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	u, ok := s.users[userID]
	if !ok || isRemoteName(u.Username) {
		return "", false
	}
	return u.Username, true
}

// VoiceRemoteMember returns the local ID of a remote user (display name name@node) who is a
// member of the guild.
func (s *Service) VoiceRemoteMember(guildID ID, display string) (ID, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	uid, ok := s.remotes[display]
	if !ok || s.guilds[guildID] == nil || s.guilds[guildID].members[uid] == nil {
		return 0, false
	}
	return uid, true
}

// VoiceLocalUser returns the ID of this node's user with the username name.
func (s *Service) VoiceLocalUser(name string) (ID, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	id, ok := s.usernames[name]
	return id, ok
}

// ApplyVoiceModeration stores a server mute or deafen (nil: unchanged) that the home node of
// a federated guild decided for a member of this node (GUILD_MEMBER_UPDATE), so that this
// node, which holds the member's voice connection, enforces it (VOICE-135). The caller
// applies it to the SFU.
func (s *Service) ApplyVoiceModeration(guildID, userID ID, mute, deaf *bool) error {
	if mute == nil && deaf == nil {
		return nil
	}
	s.lock()
	defer s.mu.Unlock()
	gs := s.guilds[guildID]
	if gs == nil || gs.members[userID] == nil {
		return ErrUnknownMember
	}
	m := *gs.members[userID]
	if mute != nil {
		m.Mute = *mute
	}
	if deaf != nil {
		m.Deaf = *deaf
	}
	_, err := s.saveMember(&m)
	return err
}
