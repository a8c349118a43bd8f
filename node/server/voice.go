package server

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"

	"github.com/pion/webrtc/v4"

	"github.com/hearth-chat/hearth/node/chat"
	"github.com/hearth-chat/hearth/node/config"
	"github.com/hearth-chat/hearth/node/fanout"
	"github.com/hearth-chat/hearth/node/gateway"
	"github.com/hearth-chat/hearth/node/snowflake"
	"github.com/hearth-chat/hearth/voice/cascade"
	"github.com/hearth-chat/hearth/voice/sfu"
	"github.com/hearth-chat/hearth/voice/signal"
	"github.com/hearth-chat/hearth/voice/token"
)

// voiceNode wires the voice library into the node (voice/doc.go is the contract): it
// answers gateway op 4 with a voice token, turns SFU voice-state events into
// VOICE_STATE_UPDATE through the chat domain, and carries out the domain's voice moderation
// on the SFU.
//
// SFU events arrive under the SFU's lock and the domain asks for moderation under its own,
// so neither may call the other directly: both only queue work, and one worker goroutine,
// owned by voiceNode and stopped by close, runs it in order. After an event the worker also
// brings the SFU in line with the domain: server mute and deafen follow the stored member
// (a member muted while out of voice is muted when they join), self mute and deafen follow
// the member's last op 4, and a user who is no longer a member is disconnected.
type voiceNode struct {
	sfu     *sfu.SFU
	tokens  *token.Issuer
	chat    *chat.Service
	handler *signal.Handler
	public  string // the node's public URL; empty derives the endpoint from the gateway's host
	log     *slog.Logger

	// cascade relays voice to and from other nodes; nil when federation is off.
	cascade *cascade.Cascade

	mu    sync.Mutex
	queue []func()
	self  map[string]selfFlags // user ID → self mute and deafen from their last op 4
	wake  chan struct{}
	stop  chan struct{}
	done  chan struct{}
}

type selfFlags struct{ mute, deaf bool }

// newVoice starts the SFU with the voice settings of cfg and the worker. The voice token
// key is random per start: tokens live at most a minute, so none needs to survive a restart.
func newVoice(cfg config.Config, c *chat.Service, log *slog.Logger) (*voiceNode, error) {
	lo, hi, err := cfg.VoicePortRange()
	if err != nil {
		return nil, err
	}
	key := make([]byte, token.MinKeySize)
	if _, err := rand.Read(key); err != nil {
		return nil, fmt.Errorf("server: voice token key: %w", err)
	}
	tokens, err := token.New(key, 0)
	if err != nil {
		return nil, fmt.Errorf("server: voice tokens: %w", err)
	}
	v := &voiceNode{
		tokens: tokens, chat: c, public: cfg.PublicURL, log: log,
		self: map[string]selfFlags{}, wake: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{}),
	}
	v.sfu, err = sfu.New(sfu.Config{
		UDPPort: cfg.VoiceUDPPort, UDPPortMin: lo, UDPPortMax: hi, TCPPort: cfg.VoiceTCPPort,
		PublicIPs: cfg.VoicePublicIPs(), Loopback: cfg.VoiceLoopback, Events: sfuEvents{v}, Logger: log,
	})
	if err != nil {
		return nil, fmt.Errorf("server: voice: %w", err)
	}
	var ice []webrtc.ICEServer
	if urls := cfg.VoiceTURN(); len(urls) > 0 {
		ice = []webrtc.ICEServer{{URLs: urls, Username: cfg.VoiceTURNUsername, Credential: cfg.VoiceTURNCredential}}
	}
	v.handler = &signal.Handler{SFU: v.sfu, Tokens: tokens, ICEServers: ice, Logger: log}
	c.SetVoiceControl(v)
	go v.run()
	return v, nil
}

// close ends every voice session (their WebSockets close with 4015), dispatches the
// resulting leaves, and stops the worker.
func (v *voiceNode) close() error {
	v.closeCascade()
	err := v.sfu.Close()
	close(v.stop)
	<-v.done
	return err
}

// run is the worker: it runs queued work in order until stop, then what is still queued.
func (v *voiceNode) run() {
	defer close(v.done)
	for {
		v.mu.Lock()
		q := v.queue
		v.queue = nil
		v.mu.Unlock()
		for _, f := range q {
			f()
		}
		if len(q) > 0 {
			continue
		}
		select {
		case <-v.wake:
		case <-v.stop:
			v.mu.Lock()
			q, v.queue = v.queue, nil
			v.mu.Unlock()
			for _, f := range q {
				f()
			}
			return
		}
	}
}

// enqueue adds work for the worker; it never blocks. The queue is unbounded, but its work
// comes from voice joins, leaves and moderation, which are few.
func (v *voiceNode) enqueue(f func()) {
	v.mu.Lock()
	v.queue = append(v.queue, f)
	v.mu.Unlock()
	select {
	case v.wake <- struct{}{}:
	default:
	}
}

// sfuEvents implements sfu.Events by queueing for the worker.
type sfuEvents struct{ v *voiceNode }

func (e sfuEvents) VoiceState(st sfu.State) { e.v.enqueue(func() { e.v.applyState(st) }) }

// Speaking is ignored: the voice WebSocket already tells the room.
func (sfuEvents) Speaking(_, _, _ string, _ bool) {}

// applyState records an SFU voice state in the domain (which dispatches it) and brings the
// SFU in line with the domain. It runs on the worker.
func (v *voiceNode) applyState(st sfu.State) {
	g, err1 := parseID(st.GuildID)
	u, err2 := parseID(st.UserID)
	var c snowflake.ID
	var err3 error
	if st.ChannelID != "" {
		c, err3 = parseID(st.ChannelID)
	}
	if err := errors.Join(err1, err2, err3); err != nil {
		v.log.Error("voice: state with a bad ID", "state", st, "err", err)
		return
	}
	vm := v.chat.SetVoiceState(chat.VoiceState{GuildID: g, ChannelID: c, UserID: u, SessionID: st.SessionID,
		SelfMute: st.SelfMute, SelfDeaf: st.SelfDeaf, Mute: st.Mute, Deaf: st.Deaf,
		SelfVideo: st.SelfVideo, SelfStream: st.SelfStream})
	if st.ChannelID == "" {
		return
	}
	if st.Remote {
		// A member of another node: that node enforces mute and deafen (VOICE-135).
		if !vm.Member {
			v.sfu.RemoveRemote(st.UserID)
		}
		return
	}
	if !vm.Member {
		v.ignoreGone(v.sfu.Disconnect(st.GuildID, st.UserID))
		return
	}
	if vm.Mute != st.Mute {
		v.ignoreGone(v.sfu.SetServerMute(st.GuildID, st.UserID, vm.Mute))
	}
	if vm.Deaf != st.Deaf {
		v.ignoreGone(v.sfu.SetServerDeaf(st.GuildID, st.UserID, vm.Deaf))
	}
	v.mu.Lock()
	f, ok := v.self[st.UserID]
	v.mu.Unlock()
	if ok && (f.mute != st.SelfMute || f.deaf != st.SelfDeaf) {
		v.ignoreGone(v.sfu.SetSelfState(st.GuildID, st.UserID, f.mute, f.deaf))
	}
}

// ignoreGone logs SFU errors other than "not in voice", which only means the user left
// before the work ran.
func (v *voiceNode) ignoreGone(err error) {
	if err != nil && !errors.Is(err, sfu.ErrNoSession) {
		v.log.Warn("voice: sfu", "err", err)
	}
}

// SetServerMute implements chat.VoiceControl.
func (v *voiceNode) SetServerMute(guildID, userID snowflake.ID, mute bool) {
	v.enqueue(func() {
		if !v.moderateRemote(guildID, userID, cascade.Moderation{Mute: &mute}) {
			v.ignoreGone(v.sfu.SetServerMute(formatID(guildID), formatID(userID), mute))
		}
	})
}

// SetServerDeaf implements chat.VoiceControl.
func (v *voiceNode) SetServerDeaf(guildID, userID snowflake.ID, deaf bool) {
	v.enqueue(func() {
		if !v.moderateRemote(guildID, userID, cascade.Moderation{Deaf: &deaf}) {
			v.ignoreGone(v.sfu.SetServerDeaf(formatID(guildID), formatID(userID), deaf))
		}
	})
}

// Move implements chat.VoiceControl.
func (v *voiceNode) Move(guildID, userID, channelID snowflake.ID) {
	v.enqueue(func() {
		if !v.moderateRemote(guildID, userID, cascade.Moderation{ChannelID: formatID(channelID)}) {
			v.ignoreGone(v.sfu.Move(formatID(guildID), formatID(userID), formatID(channelID)))
		}
	})
}

// Disconnect implements chat.VoiceControl.
func (v *voiceNode) Disconnect(guildID, userID snowflake.ID) {
	v.enqueue(func() {
		if !v.moderateRemote(guildID, userID, cascade.Moderation{Disconnect: true}) {
			v.ignoreGone(v.sfu.Disconnect(formatID(guildID), formatID(userID)))
		}
	})
}

// DisconnectChannel implements chat.VoiceControl: the channel was deleted.
func (v *voiceNode) DisconnectChannel(guildID, channelID snowflake.ID) {
	v.enqueue(func() { v.sfu.CloseRoom(formatID(guildID), formatID(channelID)) })
}

// voiceStateUpdate is the payload of gateway op 4.
type voiceStateUpdate struct {
	GuildID   snowflake.ID  `json:"guild_id"`
	ChannelID *snowflake.ID `json:"channel_id"`
	SelfMute  bool          `json:"self_mute"`
	SelfDeaf  bool          `json:"self_deaf"`
}

// op4 is the gateway's VoiceHandler. With a channel it checks the user may connect, mints a
// voice token bound to the user, guild, channel and gateway session, and answers the calling
// session with VOICE_SERVER_UPDATE; the client then opens (or, switching channel, reuses)
// the voice WebSocket. Without one it disconnects the user from voice in the guild. Voice
// states themselves are dispatched from SFU events, not from here.
func (v *voiceNode) op4(_ context.Context, req gateway.VoiceRequest) ([]*fanout.Event, error) {
	var d voiceStateUpdate
	if err := json.Unmarshal(req.Data, &d); err != nil || d.GuildID == 0 {
		return nil, fmt.Errorf("voice: op 4: %w", gateway.ErrBadPayload)
	}
	g, u := formatID(d.GuildID), formatID(req.User)
	if d.ChannelID == nil || *d.ChannelID == 0 {
		v.mu.Lock()
		delete(v.self, u)
		v.mu.Unlock()
		if err := v.sfu.Disconnect(g, u); err != nil && !errors.Is(err, sfu.ErrNoSession) {
			return nil, fmt.Errorf("voice: op 4: %w", err)
		}
		return nil, nil
	}
	if err := v.chat.AuthorizeVoice(req.User, d.GuildID, *d.ChannelID); err != nil {
		return nil, fmt.Errorf("voice: op 4: %w", err)
	}
	tok, err := v.tokens.Mint(token.Claims{UserID: u, GuildID: g, ChannelID: formatID(*d.ChannelID), SessionID: req.SessionID})
	if err != nil {
		return nil, fmt.Errorf("voice: op 4: %w", err)
	}
	v.mu.Lock()
	v.self[u] = selfFlags{d.SelfMute, d.SelfDeaf}
	v.mu.Unlock()
	v.ignoreGone(v.sfu.SetSelfState(g, u, d.SelfMute, d.SelfDeaf))
	payload, err := json.Marshal(map[string]string{"token": tok, "guild_id": g, "endpoint": v.endpoint(req.Origin)})
	if err != nil {
		return nil, fmt.Errorf("voice: op 4: %w", err)
	}
	return []*fanout.Event{{Type: "VOICE_SERVER_UPDATE", Data: payload}}, nil
}

// endpoint is the voice WebSocket URL: under the public URL if configured, else on the host
// the client reached the gateway at.
func (v *voiceNode) endpoint(origin string) string {
	if v.public != "" {
		u := strings.Replace(strings.Replace(v.public, "https://", "wss://", 1), "http://", "ws://", 1)
		return strings.TrimSuffix(u, "/") + "/voice"
	}
	return origin + "/voice"
}

func formatID(id snowflake.ID) string { return strconv.FormatUint(uint64(id), 10) }

func parseID(s string) (snowflake.ID, error) {
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("voice: id %q: %w", s, err)
	}
	return snowflake.ID(n), nil
}
