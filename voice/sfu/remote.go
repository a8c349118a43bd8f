package sfu

import (
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
)

// This file is the SFU's side of the cascade between nodes (voice/cascade):
// members of other nodes sit in rooms as remote members, whose tracks the
// cascade feeds, and local tracks are tapped to be sent to other nodes.

// RemoteMember is a member of another node in a voice channel, as the
// cascade learned it from that node.
type RemoteMember struct {
	// State is the member's voice state; ChannelID must not be empty. Its
	// Remote flag is set by the SFU.
	State State
	// Speaking is the member's speaking state, detected by its own node.
	Speaking bool
	// Tracks are the member's published tracks.
	Tracks []RemoteTrackSpec
}

// RemoteTrackSpec describes one published track of a remote member.
type RemoteTrackSpec struct {
	// ID names the track among the member's tracks; it does not change
	// while the track lives.
	ID     uint64
	Source Source
	Codec  webrtc.RTPCodecCapability
	// Demand is called with the highest layer the track's local
	// subscribers want whenever it changes: 0 (low) to 2 (high) for video,
	// 0 for audio, -1 when no local subscriber wants the track (nobody in
	// the room, all deafened, nobody watching a screen). It is called under
	// the SFU's lock: it must return at once and must not call the SFU.
	Demand func(layer int)
	// Keyframe asks the member's node for a key frame (a local subscriber
	// sent PLI, or its layer changed). Same rules as Demand.
	Keyframe func()
}

// RemoteTrack is a remote member's track in this SFU. The cascade writes
// the packets it receives for it with WriteRTP.
type RemoteTrack struct {
	up *upTrack
	mu sync.Mutex
	f  *forwarder
}

// WriteRTP forwards one RTP packet of the track to every local subscriber.
// pkt is not retained. Calls must not overlap.
func (t *RemoteTrack) WriteRTP(pkt []byte) {
	t.mu.Lock()
	t.f.forward(pkt, time.Now())
	t.mu.Unlock()
}

// ErrLocalUser refuses to make a local member remote.
var ErrLocalUser = errors.New("sfu: user has a local voice session")

// SetRemote puts a remote member in a room, or updates it: a channel change
// moves it, flags and speaking are applied, tracks not listed any more are
// removed and new ones added. It returns the member's tracks by ID, for
// WriteRTP. Voice-state changes are reported through Events with Remote
// set. A user with a local session is refused with ErrLocalUser.
func (s *SFU) SetRemote(m RemoteMember) (map[uint64]*RemoteTrack, error) {
	st := m.State
	if st.GuildID == "" || st.ChannelID == "" || st.UserID == "" {
		return nil, fmt.Errorf("sfu: remote member: incomplete state")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, ErrShutdown
	}
	se := s.sessions[st.UserID]
	if se != nil && !se.remote {
		return nil, ErrLocalUser
	}
	changed := false
	if se == nil {
		se = &Session{sfu: s, userID: st.UserID, remote: true,
			published: map[string]*upTrack{}, down: map[*upTrack]*slot{},
			watching: map[string]bool{}, wanted: map[string]int{}, sources: map[string]Source{},
			closed: make(chan struct{})}
		s.sessions[st.UserID] = se
		changed = true
	}
	se.sessionID = st.SessionID
	if se.selfMute != st.SelfMute || se.selfDeaf.Load() != st.SelfDeaf || se.serverMute.Load() != st.Mute ||
		se.serverDeaf.Load() != st.Deaf || se.remoteVideo != st.SelfVideo || se.remoteStream != st.SelfStream {
		changed = true
	}
	se.selfMute = st.SelfMute
	se.selfDeaf.Store(st.SelfDeaf)
	se.serverMute.Store(st.Mute)
	se.serverDeaf.Store(st.Deaf)
	se.remoteVideo, se.remoteStream = st.SelfVideo, st.SelfStream

	// Tracks: drop those gone, add the new ones.
	want := map[string]RemoteTrackSpec{}
	for _, t := range m.Tracks {
		want[strconv.FormatUint(t.ID, 10)] = t
	}
	for key, up := range se.published {
		if _, ok := want[key]; ok {
			continue
		}
		delete(se.published, key)
		if se.room != nil {
			for other := range se.room.members {
				s.unsubscribeLocked(other, up)
				s.afterChangeLocked(other)
			}
		}
		if up.source == SourceMicrophone && up.speaking.reset() && se.room != nil {
			s.broadcastSpeakingLocked(se, se.room, false)
		}
	}
	var added []*upTrack
	for key, t := range want {
		if se.published[key] != nil {
			continue
		}
		kind := webrtc.RTPCodecTypeAudio
		if t.Source == SourceCamera || t.Source == SourceScreen {
			kind = webrtc.RTPCodecTypeVideo
		}
		s.tracks++
		up := &upTrack{owner: se, id: st.UserID + "-" + string(t.Source), source: t.Source, kind: kind,
			codec: t.Codec, serial: s.tracks, keyframe: t.Keyframe, demand: t.Demand, lastDemand: layerOff}
		up.remote = &RemoteTrack{up: up, f: up.newForwarder(layerLow, 0)}
		se.published[key] = up
		added = append(added, up)
	}

	// Room: enter, or move.
	k := roomKey{st.GuildID, st.ChannelID}
	if se.room == nil || se.room.key != k {
		if se.room != nil {
			s.leaveLocked(se)
		}
		s.enterLocked(se, k) // reports the state and subscribes the room to every track
		changed = false
	} else {
		for _, up := range added {
			for other := range se.room.members {
				if other != se {
					s.subscribeLocked(other, up)
					s.afterChangeLocked(other)
				}
			}
		}
	}
	if changed {
		s.reportLocked(s.stateLocked(se))
	}

	// Speaking, on the microphone track.
	for _, up := range se.published {
		if up.source != SourceMicrophone {
			continue
		}
		on := m.Speaking && !st.Mute
		if up.speaking.set(on) {
			s.broadcastSpeakingLocked(se, se.room, on)
		}
	}

	out := make(map[uint64]*RemoteTrack, len(se.published))
	for key, up := range se.published {
		id, _ := strconv.ParseUint(key, 10, 64)
		out[id] = up.remote
	}
	return out, nil
}

// RemoveRemote takes a remote member out of voice (its node left the
// channel, or vanished); the leave is reported through Events.
func (s *SFU) RemoveRemote(userID string) {
	s.mu.Lock()
	se := s.sessions[userID]
	s.mu.Unlock()
	if se == nil || !se.remote {
		return
	}
	se.Close(ErrDisconnected)
}

// LocalMember is a member of this node in voice, as the cascade announces
// it to other nodes.
type LocalMember struct {
	State    State
	Speaking bool
	Tracks   []LocalTrack
}

// LocalTrack is a published track of a local member.
type LocalTrack struct {
	// ID is unique in the SFU for as long as it runs.
	ID     uint64
	Source Source
	Codec  webrtc.RTPCodecCapability
}

// LocalMembers returns the local members in voice in a guild, with their
// tracks.
func (s *SFU) LocalMembers(guildID string) []LocalMember {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []LocalMember
	for _, se := range s.sessions {
		if se.remote || se.guildID != guildID || se.room == nil {
			continue
		}
		lm := LocalMember{State: s.stateLocked(se)}
		for _, up := range se.published {
			lm.Tracks = append(lm.Tracks, LocalTrack{ID: up.serial, Source: up.source, Codec: up.codec})
			if up.source == SourceMicrophone && up.speaking.is() {
				lm.Speaking = true
			}
		}
		out = append(out, lm)
	}
	return out
}

// Tap is a local track forwarded to the cascade. Close it when the other
// node unsubscribes.
type Tap struct {
	s   *SFU
	up  *upTrack
	d   *downTrack
	max int // the highest layer the other node asked for
}

// PacketWriter receives a tapped track's packets, with its own SSRC and
// continuous sequence numbers. WriteRTP is called on the publisher's read
// loop: it must not block (queue or drop).
type PacketWriter interface {
	WriteRTP(h *rtp.Header, payload []byte) (int, error)
}

// tapWriter adapts a PacketWriter to webrtc.TrackLocalWriter.
type tapWriter struct{ PacketWriter }

func (tapWriter) Write([]byte) (int, error) { return 0, errors.New("sfu: tap: raw writes unsupported") }

// ErrNoTrack answers a tap of a track that is not published (any more).
var ErrNoTrack = errors.New("sfu: no such local track")

// Tap forwards a local member's track, in guildID, to w until Close. For
// video it forwards the highest live layer up to maxLayer (0 low, 1
// medium, 2 high), chosen once. ssrc is the SSRC the packets carry.
func (s *SFU) Tap(guildID string, trackID uint64, maxLayer int, ssrc uint32, w PacketWriter) (*Tap, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var up *upTrack
	for _, se := range s.sessions {
		if se.remote || se.guildID != guildID {
			continue
		}
		for _, u := range se.published {
			if u.serial == trackID {
				up = u
			}
		}
	}
	if up == nil {
		return nil, fmt.Errorf("%w: %d in guild %s", ErrNoTrack, trackID, guildID)
	}
	d := newDownTrack(up, nil, nil)
	layer := layerLow
	if up.kind == webrtc.RTPCodecTypeVideo {
		if l := pickLayer(up, min(max(maxLayer, layerLow), layerHigh), -1, time.Now()); l >= 0 {
			layer = l
		}
	}
	d.writer, d.ssrc, d.pt = tapWriter{w}, ssrc, 0
	d.maxLayer.Store(int32(layer))
	d.target.Store(int32(layer))
	d.bound.Store(true)
	d.enabled.Store(true)
	up.addSub(d)
	t := &Tap{s: s, up: up, d: d, max: min(max(maxLayer, layerLow), layerHigh)}
	if up.kind == webrtc.RTPCodecTypeVideo {
		up.requestKeyframe(layer)
		s.taps[t] = struct{}{}
	}
	return t, nil
}

// allocateTapLocked moves a video tap to the highest live layer up to what
// the other node asked for, as layers come and go (the SFU's ticker calls
// it). Upgrades wait a second between them, as for local subscribers.
func (s *SFU) allocateTapLocked(t *Tap, now time.Time) {
	next := pickLayer(t.up, t.max, -1, now)
	cur := int(t.d.target.Load())
	if next < 0 || next == cur {
		return
	}
	if next > cur && now.Sub(t.d.lastUpgrade) < upgradeEvery {
		return
	}
	if next > cur {
		t.d.lastUpgrade = now
	}
	t.d.maxLayer.Store(int32(next))
	t.d.target.Store(int32(next))
	t.up.requestKeyframe(next)
}

// RequestKeyframe asks the publisher for a key frame on the tapped layer.
func (t *Tap) RequestKeyframe() {
	t.up.requestKeyframe(int(t.d.target.Load()))
}

// Close stops the tap.
func (t *Tap) Close() {
	t.s.mu.Lock()
	delete(t.s.taps, t)
	t.s.mu.Unlock()
	t.d.enabled.Store(false)
	t.up.removeSub(t.d)
}
