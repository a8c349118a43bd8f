package sfu

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/pion/webrtc/v4"
	"golang.org/x/time/rate"
)

// SFU forwards media between the voice sessions of one node. One room per
// voice channel; a user has at most one session (VOICE-005). Create it with
// New and stop it with Close.
type SFU struct {
	cfg     Config
	log     *slog.Logger
	api     *webrtc.API // audio-only sessions
	apiBWE  *webrtc.API // sessions that declared video
	closers []func() error
	batch   *batchConn // the shared UDP socket's batched sends; nil without one

	pcMu sync.Mutex // serialises NewPeerConnection to capture its estimator
	sink estimatorSink

	mu       sync.Mutex
	rooms    map[roomKey]*room
	sessions map[string]*Session // by user ID, local and remote
	closed   bool
	observer func(guildID string) // see SetObserver; guarded by mu
	taps     map[*Tap]struct{}    // video taps, whose layer the ticker adjusts; guarded by mu
	tracks   uint64               // the last upTrack serial; guarded by mu

	stop chan struct{}
	wg   sync.WaitGroup
}

type roomKey struct{ guild, channel string }

// room is one voice channel with at least one session in it.
type room struct {
	key     roomKey
	members map[*Session]struct{}
}

// JoinRequest is what the voice WebSocket learned from a verified token.
type JoinRequest struct {
	UserID, GuildID, ChannelID, SessionID string
	// Video is the Identify flag: the client may send or receive video.
	// Only such sessions get a downlink bandwidth estimate, which video
	// layer selection needs; without it layers follow Layer Requests only.
	Video bool
	// Peer receives the session's signaling; it must not be nil.
	Peer Peer
}

// New starts an SFU with cfg (see Config for defaults). It binds the
// configured UDP and TCP ports.
func New(cfg Config) (*SFU, error) {
	if cfg.UDPPort != 0 && (cfg.UDPPortMin != 0 || cfg.UDPPortMax != 0) {
		return nil, fmt.Errorf("sfu: config: UDPPort and a UDP port range are exclusive")
	}
	if cfg.UDPPortMin > cfg.UDPPortMax {
		return nil, fmt.Errorf("sfu: config: UDPPortMin %d above UDPPortMax %d", cfg.UDPPortMin, cfg.UDPPortMax)
	}
	cfg.setDefaults()
	s := &SFU{
		cfg: cfg, log: cfg.Logger,
		rooms: map[roomKey]*room{}, sessions: map[string]*Session{}, taps: map[*Tap]struct{}{},
		stop: make(chan struct{}),
	}
	api, apiBWE, batch, closers, err := newAPIs(&s.cfg, &s.sink)
	if err != nil {
		return nil, err
	}
	s.api, s.apiBWE, s.batch, s.closers = api, apiBWE, batch, closers
	s.wg.Add(1)
	go s.tick()
	return s, nil
}

// Close ends every session with ErrShutdown (close code 4015), stops the
// SFU's goroutines and releases its ports.
func (s *SFU) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	all := make([]*Session, 0, len(s.sessions))
	for _, se := range s.sessions {
		all = append(all, se)
	}
	s.mu.Unlock()
	var wg sync.WaitGroup
	for _, se := range all {
		wg.Add(1)
		go func() { defer wg.Done(); se.Close(ErrShutdown) }()
	}
	wg.Wait()
	close(s.stop)
	s.wg.Wait()
	var errs []error
	for _, c := range s.closers {
		errs = append(errs, c())
	}
	return errors.Join(errs...)
}

// Join creates the voice session for a verified token and puts it in the
// token's room. An older session of the same user is closed with
// ErrDisconnected. The session sends nothing until the client's first
// offer (Session.HandleOffer).
func (s *SFU) Join(ctx context.Context, req JoinRequest) (*Session, error) {
	if req.Peer == nil || req.UserID == "" || req.GuildID == "" || req.ChannelID == "" {
		return nil, fmt.Errorf("sfu: join: incomplete request")
	}
	s.pcMu.Lock()
	s.sink.last, s.sink.ids = nil, nil
	api := s.api
	if req.Video {
		api = s.apiBWE
	}
	pc, err := api.NewPeerConnection(webrtc.Configuration{})
	bwe, ids := s.sink.last, s.sink.ids
	s.pcMu.Unlock()
	if err != nil {
		return nil, fmt.Errorf("sfu: join: %w", err)
	}
	se := &Session{
		sfu: s, userID: req.UserID, sessionID: req.SessionID, pc: pc, bwe: bwe, ids: ids,
		published: map[string]*upTrack{}, down: map[*upTrack]*slot{},
		watching: map[string]bool{}, wanted: map[string]int{}, sources: map[string]Source{},
		peer: req.Peer, limiter: rate.NewLimiter(1, 10), closed: make(chan struct{}),
	}
	pc.OnICECandidate(func(c *webrtc.ICECandidate) {
		if c == nil {
			se.send(Candidate{})
			return
		}
		se.send(Candidate{c.ToJSON()})
	})
	pc.OnTrack(se.onTrack)
	pc.OnConnectionStateChange(func(st webrtc.PeerConnectionState) {
		switch st {
		case webrtc.PeerConnectionStateConnected:
			if se.iceTimer != nil {
				se.iceTimer.Stop()
			}
		case webrtc.PeerConnectionStateFailed:
			go se.Close(ErrICETimeout)
		}
	})

	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		_ = pc.Close()
		return nil, ErrShutdown
	}
	old := s.sessions[req.UserID]
	s.mu.Unlock()
	if old != nil && old.remote {
		_ = pc.Close()
		return nil, fmt.Errorf("sfu: join: user %s is a member of another node", req.UserID)
	}
	if old != nil {
		old.Close(ErrDisconnected)
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		_ = pc.Close()
		return nil, ErrShutdown
	}
	s.sessions[req.UserID] = se
	se.iceTimer = time.AfterFunc(s.cfg.ICEConnectTimeout, func() {
		if se.pc.ConnectionState() != webrtc.PeerConnectionStateConnected {
			se.Close(ErrICETimeout)
		}
	})
	s.enterLocked(se, roomKey{req.GuildID, req.ChannelID})
	s.mu.Unlock()
	return se, nil
}

// Session returns the live session of userID in guildID, for Resume.
func (s *SFU) Session(guildID, userID string) (*Session, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	se := s.sessions[userID]
	if se == nil || se.guildID != guildID || se.remote {
		return nil, ErrNoSession
	}
	return se, nil
}

// enterLocked puts se into a room, announces it and wires subscriptions.
func (s *SFU) enterLocked(se *Session, k roomKey) {
	r := s.rooms[k]
	if r == nil {
		r = &room{key: k, members: map[*Session]struct{}{}}
		s.rooms[k] = r
	}
	present := make([]string, 0, len(r.members))
	for m := range r.members {
		present = append(present, m.userID)
		m.send(ClientsConnect{UserIDs: []string{se.userID}})
	}
	r.members[se] = struct{}{}
	se.room, se.guildID, se.channelID = r, k.guild, k.channel
	if len(present) > 0 {
		se.send(ClientsConnect{UserIDs: present})
	}
	for m := range r.members {
		for _, up := range m.published {
			if m != se && up.source == SourceMicrophone && up.speaking.is() {
				se.send(Speaking{UserID: m.userID, SSRC: micSSRC(m), Speaking: true}) // VOICE-073
			}
		}
	}
	for m := range r.members {
		if m == se {
			continue
		}
		for _, up := range m.published {
			s.subscribeLocked(se, up)
		}
		for _, up := range se.published {
			s.subscribeLocked(m, up)
		}
		s.afterChangeLocked(m)
	}
	s.reportLocked(s.stateLocked(se))
}

// leaveLocked takes se out of its room and unwires its subscriptions.
func (s *SFU) leaveLocked(se *Session) {
	r := se.room
	if r == nil {
		return
	}
	delete(r.members, se)
	for up := range se.down {
		s.unsubscribeLocked(se, up)
	}
	for m := range r.members {
		for _, up := range se.published {
			s.unsubscribeLocked(m, up)
		}
		m.send(ClientDisconnect{UserID: se.userID})
		s.afterChangeLocked(m)
	}
	for _, up := range se.published {
		if up.speaking.reset() {
			s.broadcastSpeakingLocked(se, r, false)
		}
	}
	if len(r.members) == 0 {
		delete(s.rooms, r.key)
	}
	se.room = nil
}

// afterChangeLocked sends the track map or a renegotiation after a
// subscription change, outside the lock.
func (s *SFU) afterChangeLocked(se *Session) {
	if se.remote {
		return
	}
	se.goFn(func() {
		se.negMu.Lock()
		idle := se.started && !se.outstanding && !se.answering
		se.negMu.Unlock()
		if !idle {
			return // the pending negotiation will pick the change up
		}
		if !se.renegotiate() {
			se.sendTracks()
		}
	})
}

// subscribeAllLocked subscribes se to everything in its room; used once the
// first offer makes the PeerConnection usable.
func (s *SFU) subscribeAllLocked(se *Session) {
	if se.room == nil {
		return
	}
	for m := range se.room.members {
		if m == se {
			continue
		}
		for _, up := range m.published {
			s.subscribeLocked(se, up)
		}
	}
}

// subscribeLocked forwards up to sub, reusing an idle sender if one exists.
// Remote members subscribe through the cascade, not here.
func (s *SFU) subscribeLocked(sub *Session, up *upTrack) {
	if up.owner == sub || sub.remote || sub.down[up] != nil {
		return
	}
	var sl *slot
	for _, x := range sub.slots {
		if x.kind == up.kind && x.cur.Load() == nil && !x.detached {
			sl = x
			break
		}
	}
	var d *downTrack
	if sl != nil {
		d = newDownTrack(up, sub, sl.last)
		if err := sl.sender.ReplaceTrack(d); err != nil {
			s.log.Warn("sfu: reuse sender", "user", sub.userID, "err", err)
			return
		}
	} else {
		// A new sender, on a new m-line or on one that stopped sending when
		// its last track ended (pion's AddTrack reuses such a transceiver
		// once that was negotiated). A stopped m-line must send again on a
		// new SSRC (VOICE-077): Chromium does not connect its track again to
		// a stream that comes back on the SSRC the m-line had, and the video
		// would decode without ever playing.
		d = newDownTrack(up, sub, nil)
		sender, err := sub.pc.AddTrack(d)
		if err != nil {
			s.log.Warn("sfu: add track", "user", sub.userID, "err", err)
			return
		}
		sub.needNeg.Store(true)
		var tr *webrtc.RTPTransceiver
		for _, t := range sub.pc.GetTransceivers() {
			if t.Sender() == sender {
				tr = t
			}
		}
		for _, x := range sub.slots {
			if x.detached && x.tr == tr {
				sl = x
			}
		}
		if sl != nil {
			if err := sl.sender.Stop(); err != nil {
				s.log.Debug("sfu: stop detached sender", "user", sub.userID, "err", err)
			}
			sl.sender, sl.detached = sender, false
		} else {
			sl = &slot{sender: sender, tr: tr, kind: up.kind}
			sub.slots = append(sub.slots, sl)
		}
		sub.goFn(func() { sl.rtcpLoop(sender) })
	}
	sl.cur.Store(d)
	sl.last = d
	sub.down[up] = sl
	sub.applyWantLocked(d)
	up.addSub(d)
	if up.kind == webrtc.RTPCodecTypeVideo {
		s.allocateLocked(sub, time.Now())
	}
}

// unsubscribeLocked stops forwarding up to sub; the sender becomes idle.
func (s *SFU) unsubscribeLocked(sub *Session, up *upTrack) {
	sl := sub.down[up]
	if sl == nil {
		return
	}
	delete(sub.down, up)
	d := sl.cur.Load()
	up.removeSub(d)
	d.enabled.Store(false)
	sl.cur.Store(nil)
	if !d.bound.Load() {
		// The sender has not started: its offer awaits the client's answer, and pion
		// would refuse that answer for a sender without a track. The disabled track
		// stays until the slot is reused; it sends nothing.
		return
	}
	if err := sl.sender.ReplaceTrack(nil); err != nil {
		s.log.Debug("sfu: idle sender", "user", sub.userID, "err", err)
	}
}

// publish registers a client track (by mid) or returns the existing one for
// another simulcast layer. It enforces one track per source (VOICE-064,
// VOICE-065).
func (s *SFU) publish(se *Session, mid string, t *webrtc.TrackRemote) (*upTrack, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if up := se.published[mid]; up != nil {
		return up, nil
	}
	src := se.sourceOfLocked(mid, t.Kind())
	for _, up := range se.published {
		if up.source == src {
			return nil, fmt.Errorf("%w: second %s track", ErrTooManyTracks, src)
		}
	}
	if len(se.published) >= maxPublishedSections {
		return nil, ErrTooManyTracks
	}
	s.tracks++
	up := &upTrack{owner: se, id: se.userID + "-" + string(src), source: src, kind: t.Kind(),
		codec: t.Codec().RTPCodecCapability, serial: s.tracks}
	up.speaking.onChange = func(on bool) { s.speakingChanged(se, on) }
	se.published[mid] = up
	if r := se.room; r != nil {
		for m := range r.members {
			if m != se {
				s.subscribeLocked(m, up)
				s.afterChangeLocked(m)
			}
		}
	}
	if src == SourceCamera || src == SourceScreen {
		s.reportLocked(s.stateLocked(se))
	} else {
		s.notifyLocked(se.guildID)
	}
	return up, nil
}

// unpublishLocked ends a local member's published track because the
// client stopped sending it (VOICE-069): nothing of it is forwarded any
// more, every subscriber loses it (and renegotiates, so that the m-line
// stops sending), a speaking microphone stops speaking, and the member's
// voice state loses self_video or self_stream.
func (s *SFU) unpublishLocked(se *Session, mid string) {
	up := se.published[mid]
	if up == nil {
		return
	}
	delete(se.published, mid)
	up.ended.Store(true)
	if r := se.room; r != nil {
		for m := range r.members {
			if m != se {
				s.unsubscribeLocked(m, up)
				s.afterChangeLocked(m)
			}
		}
		if up.speaking.reset() {
			s.broadcastSpeakingLocked(se, r, false)
		}
	}
	if up.source == SourceCamera || up.source == SourceScreen {
		s.reportLocked(s.stateLocked(se))
	} else {
		s.notifyLocked(se.guildID)
	}
}

func (s *SFU) speakingChanged(se *Session, on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if se.room == nil {
		return
	}
	s.broadcastSpeakingLocked(se, se.room, on)
}

// micSSRC is the SSRC of a member's microphone as it publishes it (0 if none
// or remote).
func micSSRC(se *Session) uint32 {
	for _, up := range se.published {
		if up.source == SourceMicrophone {
			if t := up.layers[layerLow].Load(); t != nil {
				return uint32(t.SSRC())
			}
		}
	}
	return 0
}

func (s *SFU) broadcastSpeakingLocked(se *Session, r *room, on bool) {
	ssrc := micSSRC(se)
	for m := range r.members {
		if m != se {
			m.send(Speaking{UserID: se.userID, SSRC: ssrc, Speaking: on})
		}
	}
	s.cfg.Events.Speaking(r.key.guild, r.key.channel, se.userID, on)
	if !se.remote {
		s.notifyLocked(r.key.guild)
	}
}

// reportLocked tells the node about a voice-state change, and the observer
// about a change of a local member.
func (s *SFU) reportLocked(st State) {
	s.cfg.Events.VoiceState(st)
	if !st.Remote {
		s.notifyLocked(st.GuildID)
	}
}

func (s *SFU) notifyLocked(guildID string) {
	if s.observer != nil && guildID != "" {
		s.observer(guildID)
	}
}

// SetObserver registers f to be called whenever what LocalParticipants
// returns for a guild may have changed: a local member joined, left,
// switched, changed mute, deafen or speaking, or published a track. f is
// called under the SFU's lock: it must return at once and must not call
// the SFU. Nil removes the observer.
func (s *SFU) SetObserver(f func(guildID string)) {
	s.mu.Lock()
	s.observer = f
	s.mu.Unlock()
}

// removeSession is Session.Close's part under the SFU lock.
func (s *SFU) removeSession(se *Session) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.sessions[se.userID] == se {
		delete(s.sessions, se.userID)
	}
	g := se.guildID
	s.leaveLocked(se)
	st := s.stateLocked(se)
	st.GuildID, st.ChannelID = g, ""
	s.reportLocked(st)
}

func (s *SFU) stateLocked(se *Session) State {
	st := State{
		GuildID: se.guildID, ChannelID: se.channelID, UserID: se.userID, SessionID: se.sessionID,
		SelfMute: se.selfMute, SelfDeaf: se.selfDeaf.Load(),
		Mute: se.serverMute.Load(), Deaf: se.serverDeaf.Load(), Remote: se.remote,
	}
	if se.remote {
		st.SelfVideo, st.SelfStream = se.remoteVideo, se.remoteStream
		return st
	}
	for _, up := range se.published {
		st.SelfVideo = st.SelfVideo || up.source == SourceCamera
		st.SelfStream = st.SelfStream || up.source == SourceScreen
	}
	return st
}

// find returns the session of userID if it is in guildID.
func (s *SFU) findLocked(guildID, userID string) (*Session, error) {
	se := s.sessions[userID]
	if se == nil || se.guildID != guildID || se.remote {
		return nil, fmt.Errorf("%w: user %s in guild %s", ErrNoSession, userID, guildID)
	}
	return se, nil
}

// Switch moves a session to another channel, as a client asks with a
// fresh token (op 106, VOICE-091). Its PeerConnection is reused.
func (s *SFU) Switch(se *Session, guildID, channelID string) error {
	s.mu.Lock()
	if s.sessions[se.userID] != se {
		s.mu.Unlock()
		return ErrNoSession
	}
	if se.guildID != guildID || se.channelID != channelID {
		s.leaveLocked(se)
		s.enterLocked(se, roomKey{guildID, channelID})
		s.afterChangeLocked(se)
	}
	s.mu.Unlock()
	se.send(ChannelSwitched{GuildID: guildID, ChannelID: channelID})
	return nil
}

// Move is a moderator move of userID to channelID in the same guild
// (VOICE-083).
func (s *SFU) Move(guildID, userID, channelID string) error {
	s.mu.Lock()
	se, err := s.findLocked(guildID, userID)
	s.mu.Unlock()
	if err != nil {
		return fmt.Errorf("sfu: move: %w", err)
	}
	return s.Switch(se, guildID, channelID)
}

// Disconnect is a moderator disconnect: the voice WebSocket closes with
// 4014 (VOICE-084).
func (s *SFU) Disconnect(guildID, userID string) error {
	s.mu.Lock()
	se, err := s.findLocked(guildID, userID)
	s.mu.Unlock()
	if err != nil {
		return fmt.Errorf("sfu: disconnect: %w", err)
	}
	se.Close(ErrDisconnected)
	return nil
}

// CloseRoom ends the voice session of everyone in a channel, as when the
// channel is deleted: each voice WebSocket closes with 4014 and each member
// is reported leaving. It returns how many sessions it closed.
func (s *SFU) CloseRoom(guildID, channelID string) int {
	s.mu.Lock()
	r := s.rooms[roomKey{guildID, channelID}]
	var all []*Session
	if r != nil {
		for m := range r.members {
			all = append(all, m)
		}
	}
	s.mu.Unlock()
	for _, se := range all {
		se.Close(ErrDisconnected)
	}
	return len(all)
}

// SetServerMute sets a moderator mute: the member's audio is dropped at the
// SFU (VOICE-081) and it is never reported speaking.
func (s *SFU) SetServerMute(guildID, userID string, mute bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	se, err := s.findLocked(guildID, userID)
	if err != nil {
		return fmt.Errorf("sfu: server mute: %w", err)
	}
	if se.serverMute.Swap(mute) == mute {
		return nil
	}
	if mute {
		for _, up := range se.published {
			if up.speaking.reset() && se.room != nil {
				s.broadcastSpeakingLocked(se, se.room, false)
			}
		}
	}
	s.reportLocked(s.stateLocked(se))
	return nil
}

// SetServerDeaf sets a moderator deafen: no audio reaches the member
// (VOICE-080).
func (s *SFU) SetServerDeaf(guildID, userID string, deaf bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	se, err := s.findLocked(guildID, userID)
	if err != nil {
		return fmt.Errorf("sfu: server deaf: %w", err)
	}
	if se.serverDeaf.Swap(deaf) == deaf {
		return nil
	}
	s.reapplyLocked(se)
	s.reportLocked(s.stateLocked(se))
	return nil
}

// SetSelfState records the member's own mute and deafen from gateway op 4.
// Self deafen also stops forwarding audio to the member.
func (s *SFU) SetSelfState(guildID, userID string, selfMute, selfDeaf bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	se, err := s.findLocked(guildID, userID)
	if err != nil {
		return fmt.Errorf("sfu: self state: %w", err)
	}
	se.selfMute = selfMute
	se.selfDeaf.Store(selfDeaf)
	s.reapplyLocked(se)
	s.reportLocked(s.stateLocked(se))
	return nil
}

func (s *SFU) reapplyLocked(se *Session) {
	for _, sl := range se.down {
		if d := sl.cur.Load(); d != nil {
			se.applyWantLocked(d)
		}
	}
}

// Participants returns the voice states of everyone in a channel, in no
// particular order.
func (s *SFU) Participants(guildID, channelID string) []State {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.rooms[roomKey{guildID, channelID}]
	if r == nil {
		return nil
	}
	out := make([]State, 0, len(r.members))
	for m := range r.members {
		out = append(out, s.stateLocked(m))
	}
	return out
}

// tick runs speaking expiry every 50 ms and layer allocation every 500 ms.
func (s *SFU) tick() {
	defer s.wg.Done()
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	var n int
	var mics []*upTrack
	for {
		select {
		case <-s.stop:
			return
		case now := <-t.C:
			n++
			mics = mics[:0]
			s.mu.Lock()
			for _, se := range s.sessions {
				if se.remote {
					continue // speaking comes from the member's node
				}
				for _, up := range se.published {
					if up.source == SourceMicrophone {
						mics = append(mics, up)
					}
				}
				if n%10 == 0 {
					s.allocateLocked(se, now)
				}
			}
			if n%10 == 0 {
				for t := range s.taps {
					s.allocateTapLocked(t, now)
				}
			}
			s.mu.Unlock()
			for _, up := range mics {
				up.speaking.expire(now, s.cfg.SpeakingHangover)
			}
		}
	}
}
