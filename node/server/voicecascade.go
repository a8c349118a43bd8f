package server

import (
	"context"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/hearth-chat/hearth/federation/event"
	"github.com/hearth-chat/hearth/node/chat"
	"github.com/hearth-chat/hearth/voice/cascade"
)

// voiceChannelSync is how often voice channels of federated guilds are brought in line
// with the federated state (spec/voice.md section 5.3).
const voiceChannelSync = time.Second

// startCascade runs the voice cascade between this node's SFU and the other nodes' when
// federation is on (f not nil): remote members of a voice channel show here and are heard,
// and voice channels of federated guilds cross nodes. The cascade stops in close.
func (v *voiceNode) startCascade(f *federation, reg prometheus.Registerer) {
	if f == nil {
		return
	}
	dir := cascadeDir{f: f, chat: v.chat}
	c, err := cascade.New(cascade.Config{Host: f.svc.Host(), SFU: v.sfu, Dir: dir, Logger: v.log})
	if err != nil {
		v.log.Error("voice: cascade off", "err", err)
		return
	}
	v.cascade = c
	v.cascadeStop = make(chan struct{})
	v.cascadeDone = make(chan struct{})
	go v.syncVoiceChannels(f)
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

// closeCascade stops the cascade and the voice-channel sync; other nodes' members leave
// voice here.
func (v *voiceNode) closeCascade() {
	if v.cascade == nil {
		return
	}
	close(v.cascadeStop)
	<-v.cascadeDone
	_ = v.cascade.Close()
}

// syncVoiceChannels brings voice channels of federated guilds in line with federation,
// every voiceChannelSync until closeCascade: on the home node, voice channels are issued as
// channel.create state events of type voice; on the other nodes, the voice channels of the
// federated state are created (or deleted) locally. (The node's federation wiring carries
// text channels only.)
func (v *voiceNode) syncVoiceChannels(f *federation) {
	defer close(v.cascadeDone)
	t := time.NewTicker(voiceChannelSync)
	defer t.Stop()
	for {
		for _, gid := range f.svc.Guilds() {
			g, ok := f.svc.Guild(gid)
			if !ok {
				continue
			}
			if g.Info().Home == f.svc.Node() {
				for _, vc := range v.chat.UnfederatedVoiceChannels(gid.String()) {
					ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
					id, err := f.svc.Issue(ctx, gid, vc.Owner, event.KindChannelCreate, "",
						&event.ChannelCreate{Name: vc.Name, Type: event.ChannelVoice, Position: uint32(max(vc.Position, 0))})
					cancel()
					if err == nil {
						err = v.chat.SetVoiceChannelFedID(vc.ChannelID, id.String())
					}
					if err != nil {
						v.log.Warn("voice: federating a voice channel", "channel", vc.ChannelID, "err", err)
					}
				}
				continue
			}
			var chans []chat.RemoteChannel
			for _, c := range g.Channels() {
				if c.Type == event.ChannelVoice {
					chans = append(chans, chat.RemoteChannel{FedID: c.ID.String(), Name: c.Name, Position: int(c.Position)})
				}
			}
			if err := v.chat.ApplyRemoteVoiceChannels(gid.String(), chans); err != nil {
				v.log.Warn("voice: voice channels of a federated guild", "guild", gid.String(), "err", err)
			}
		}
		select {
		case <-v.cascadeStop:
			return
		case <-t.C:
		}
	}
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
