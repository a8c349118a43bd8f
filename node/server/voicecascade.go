package server

import (
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/hearth-chat/hearth/federation/event"
	"github.com/hearth-chat/hearth/node/chat"
	"github.com/hearth-chat/hearth/node/snowflake"
	"github.com/hearth-chat/hearth/voice/cascade"
)

// startCascade runs the voice cascade between this node's SFU and the other nodes' when
// federation is on (f not nil): remote members of a voice channel show here and are heard.
// (Voice channels of federated guilds cross nodes with the other channels, federation.go.)
// The cascade stops in close.
func (v *voiceNode) startCascade(f *federation, reg prometheus.Registerer) {
	if f == nil {
		return
	}
	dir := cascadeDir{f: f, chat: v.chat}
	c, err := cascade.New(cascade.Config{Host: f.svc.Host(), SFU: v.sfu, Dir: dir, Logger: v.log, OnModerate: v.moderatedRemotely})
	if err != nil {
		v.log.Error("voice: cascade off", "err", err)
		return
	}
	v.cascade = c
	for _, m := range []struct {
		name, help string
		get        func(cascade.Stats) float64
	}{
		{"hearth_voice_cascade_upstream_tracks", "Tracks of other nodes' members this node receives over the cascade (one per track, however many listen here).",
			func(s cascade.Stats) float64 { return float64(s.Upstream) }},
		{"hearth_voice_cascade_downstream_tracks", "Tracks of this node's members forwarded to other nodes, once per node.",
			func(s cascade.Stats) float64 { return float64(s.Downstream) }},
		{"hearth_voice_cascade_remote_members", "Other nodes' members in voice channels shown on this node.",
			func(s cascade.Stats) float64 { return float64(s.RemoteMembers) }},
	} {
		reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: m.name, Help: m.help}, func() float64 { return m.get(c.Stats()) }))
	}
	reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "hearth_voice_cascade_dropped_packets_total",
		Help: "Cascade media packets dropped because a link to another node fell behind."}, func() float64 { return float64(c.Stats().Dropped) }))
}

// closeCascade stops the cascade; other nodes' members leave voice here.
func (v *voiceNode) closeCascade() {
	if v.cascade == nil {
		return
	}
	_ = v.cascade.Close()
}

// cascadeDir implements cascade.Directory with the chat domain and federation.
type cascadeDir struct {
	f    *federation
	chat *chat.Service
}

func (d cascadeDir) FedGuild(guildID string) (string, bool) {
	id, err := parseID(guildID)
	if err != nil {
		return "", false
	}
	fg := d.chat.VoiceFedGuild(id)
	return fg, fg != ""
}

func (d cascadeDir) FedChannel(channelID string) (string, bool) {
	id, err := parseID(channelID)
	if err != nil {
		return "", false
	}
	fc := d.chat.VoiceFedChannel(id)
	return fc, fc != ""
}

func (d cascadeDir) LocalGuild(fedGuild string) (string, bool) {
	id, ok := d.chat.VoiceLocalGuild(fedGuild)
	return formatID(id), ok
}

func (d cascadeDir) LocalChannel(fedGuild, fedChannel string) (string, bool) {
	g, ok := d.chat.VoiceLocalGuild(fedGuild)
	if !ok {
		return "", false
	}
	c, ok := d.chat.VoiceLocalChannel(g, fedChannel)
	return formatID(c), ok
}

func (d cascadeDir) UserName(userID string) (string, bool) {
	id, err := parseID(userID)
	if err != nil {
		return "", false
	}
	return d.chat.VoiceUserName(id)
}

func (d cascadeDir) RemoteUser(fedGuild string, p peer.ID, name string) (string, bool) {
	g, ok := d.chat.VoiceLocalGuild(fedGuild)
	if !ok {
		return "", false
	}
	u, ok := d.chat.VoiceRemoteMember(g, d.f.display(fedID(fedGuild), event.User{Node: event.Node(p), Name: name}))
	return formatID(u), ok
}

func (d cascadeDir) Nodes(fedGuild string) []peer.ID {
	g, ok := d.f.svc.Guild(fedID(fedGuild))
	if !ok {
		return nil
	}
	self := d.f.svc.Node()
	var out []peer.ID
	seen := map[event.Node]bool{self: true}
	for _, n := range g.Nodes() {
		if !seen[n.ID] {
			seen[n.ID] = true
			out = append(out, peer.ID(n.ID))
		}
	}
	if home := g.Info().Home; !seen[home] {
		out = append(out, peer.ID(home))
	}
	return out
}

func (d cascadeDir) Home(fedGuild string) peer.ID {
	g, ok := d.f.svc.Guild(fedID(fedGuild))
	if !ok {
		return ""
	}
	return peer.ID(g.Info().Home)
}

func (d cascadeDir) LocalUser(name string) (string, bool) {
	id, ok := d.chat.VoiceLocalUser(name)
	return formatID(id), ok
}

// moderateRemote sends a moderator's voice change for another node's member to that node
// (VOICE-135); false when the user is not another node's member in voice here.
func (v *voiceNode) moderateRemote(guildID, userID snowflake.ID, m cascade.Moderation) bool {
	return v.cascade != nil && v.cascade.Moderate(formatID(guildID), formatID(userID), m)
}

// moderatedRemotely is the cascade's OnModerate: the guild's home node moderated one of this
// node's members. Mute and deafen are stored on the member, as a local moderator's are.
func (v *voiceNode) moderatedRemotely(guildID, userID string, m cascade.Moderation) {
	v.enqueue(func() {
		g, err1 := parseID(guildID)
		u, err2 := parseID(userID)
		if err1 != nil || err2 != nil {
			return
		}
		if err := v.chat.ApplyVoiceModeration(g, u, m.Mute, m.Deaf); err != nil {
			v.log.Warn("voice: moderation from the home node", "guild", guildID, "user", userID, "err", err)
			return
		}
		if m.Mute != nil {
			v.ignoreGone(v.sfu.SetServerMute(guildID, userID, *m.Mute))
		}
		if m.Deaf != nil {
			v.ignoreGone(v.sfu.SetServerDeaf(guildID, userID, *m.Deaf))
		}
		switch {
		case m.Disconnect:
			v.ignoreGone(v.sfu.Disconnect(guildID, userID))
		case m.ChannelID != "":
			v.ignoreGone(v.sfu.Move(guildID, userID, m.ChannelID))
		}
	})
}
