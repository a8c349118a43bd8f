package voice

import (
	"context"
	"encoding/binary"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/pion/rtp"

	"github.com/hearth-chat/hearth/conformance/fed"
	"github.com/hearth-chat/hearth/conformance/fedpeer"
	"github.com/hearth-chat/hearth/conformance/harness"
)

// The voice cascade seen from the other end of the links: a fake home node
// (fedpeer.Home) hosts a guild with a voice channel, users of the node under
// test join it, and the fake speaks the cascade protocol with the node.

// fakeVoice is a fake home with a voice channel and the node's view of it.
type fakeVoice struct {
	t       *T
	home    *fedpeer.Home
	cascade *fedpeer.Cascade
	guild   string // the guild's federation ID (text form)
	channel string // the voice channel's federation ID (text form)
	link    *fedpeer.CascadeLink

	mu    sync.Mutex
	state fedpeer.CascadeStateBody // what the fake says about its members, every 500 ms
	stop  chan struct{}
	wg    sync.WaitGroup
}

func newFakeVoice(t *T) *fakeVoice {
	ctx, cancel := context.WithTimeout(t.Ctx, t.Timeout())
	defer cancel()
	h, err := fedpeer.NewHome(ctx)
	if err != nil {
		t.Fatalf("%v", err)
	}
	t.Cleanup(func() { _ = h.Close() })
	f := &fakeVoice{t: t, home: h, cascade: h.ListenCascade(), guild: fedpeer.IDString(h.Guild), stop: make(chan struct{})}
	if _, err := h.Issue(ctx, "channel.create", nil, fedpeer.Body(0, "Voice", 1, 2, 2, "", 3, 1)); err != nil {
		t.Fatalf("%v", err)
	}
	f.channel = fedpeer.IDString(h.Channel("Voice"))
	// @everyone may view, send, connect and speak.
	const everyone = 1<<10 | 1<<11 | 1<<16 | 1<<20 | 1<<21
	if _, err := h.Issue(ctx, "role.update", nil, fedpeer.Body(0, h.Guild, 1, "@everyone", 2, everyone, 3, 0)); err != nil {
		t.Fatalf("%v", err)
	}
	f.state = fedpeer.CascadeStateBody{Guild: f.guild, Members: []fedpeer.CascadeMember{}}
	return f
}

// member makes a new user of the node join the fake's guild and connect; it
// returns the session and the voice channel's ID on the node.
func (f *fakeVoice) member() (*harness.Session, string, string) {
	t := f.t
	u, gid := fed.JoinHome(t, f.home)
	voice := ""
	t.Eventually("VOICE-141: the node shows the fake home's voice channel as type 2", func() error {
		id, err := channelNamed(t, &fed.Side{Node: t.Node, User: u, Guild: gid}, "Voice")
		voice = id
		return err
	})
	s := t.Connect(u, harness.AllIntents)
	t.Expect(s.Gateway, "GUILD_CREATE", harness.Field("id", gid))
	return s, gid, voice
}

// open opens the fake's link to the node and keeps saying its state on it
// every 500 ms (a link silent for 5 s would end the fake's members).
func (f *fakeVoice) open() {
	ctx, cancel := context.WithTimeout(f.t.Ctx, f.t.Timeout())
	defer cancel()
	l, err := f.home.OpenCascade(ctx, fed.NodeID(f.t))
	if err != nil {
		f.t.Fatalf("%v", err)
	}
	f.link = l
	f.wg.Add(1)
	go func() {
		defer f.wg.Done()
		tk := time.NewTicker(500 * time.Millisecond)
		defer tk.Stop()
		for {
			f.mu.Lock()
			st := f.state
			f.mu.Unlock()
			_ = l.Send(fedpeer.CascadeState, st)
			select {
			case <-f.stop:
				return
			case <-tk.C:
			}
		}
	}()
	f.t.Cleanup(f.close)
}

// quiet stops everything the fake sends, leaving its link open.
func (f *fakeVoice) quiet() {
	select {
	case <-f.stop:
	default:
		close(f.stop)
	}
	f.wg.Wait()
}

func (f *fakeVoice) close() {
	f.quiet()
	if f.link != nil {
		f.link.Close()
	}
}

// setMembers changes what the fake's state frames say.
func (f *fakeVoice) setMembers(m ...fedpeer.CascadeMember) {
	f.mu.Lock()
	f.state.Members = m
	f.mu.Unlock()
}

// states returns the state frames the node sent, decoded.
func (f *fakeVoice) states() []fedpeer.CascadeStateBody {
	var out []fedpeer.CascadeStateBody
	for _, fr := range f.cascade.Frames(fedpeer.CascadeState) {
		var b fedpeer.CascadeStateBody
		if fedpeer.Unmarshal(fr.Body, &b) == nil {
			out = append(out, b)
		}
	}
	return out
}

// refs returns the subscribe (or unsubscribe) frames for track the node sent.
func (f *fakeVoice) refs(typ byte, track uint64) []fedpeer.CascadeTrackRef {
	var out []fedpeer.CascadeTrackRef
	for _, fr := range f.cascade.Frames(typ) {
		var b fedpeer.CascadeTrackRef
		if fedpeer.Unmarshal(fr.Body, &b) == nil && b.Track == track && b.Guild == f.guild {
			out = append(out, b)
		}
	}
	return out
}

// micOf waits for a state frame listing name in the voice channel with a
// microphone track and returns the track's ID.
func (f *fakeVoice) micOf(name string) uint64 {
	var id uint64
	f.t.Eventually("VOICE-137: a state frame from the node listing "+name+" with a microphone", func() error {
		for _, st := range f.states() {
			if st.Guild != f.guild {
				continue
			}
			for _, m := range st.Members {
				if m.Name != name || m.Channel != f.channel {
					continue
				}
				for _, tr := range m.Tracks {
					if tr.Source == "microphone" {
						id = tr.ID
						return nil
					}
				}
			}
		}
		return fmt.Errorf("%d state frames, none lists %s with a microphone in %s", len(f.states()), name, f.channel)
	})
	return id
}

// lastVoice waits up to bound until the last VOICE_STATE_UPDATE about user
// on s names channel ("" for none).
func lastVoice(t *T, s *harness.Session, user, channel string, bound time.Duration, what string) {
	err := harness.Eventually(t.Ctx, bound, func() error {
		last, seen := "", false
		for _, fr := range s.Frames() {
			if d := fr.Obj(); fr.T == "VOICE_STATE_UPDATE" && str(d["user_id"]) == user {
				last, seen = str(d["channel_id"]), true
			}
		}
		if !seen || last != channel {
			return fmt.Errorf("the last voice state of %s names channel %q (seen: %v), expected %q", user, last, seen, channel)
		}
		return nil
	})
	if err != nil {
		t.Errorf("%s: %v", what, err)
	}
}

// strangerSays makes a second fake node, outside the guild, open a link to
// the node and send a state frame for the guild, a subscribe to the
// member's microphone and a moderate deafening the member; it returns what
// the node says back to it.
func strangerSays(t *T, f *fakeVoice, mic uint64, name string) *fedpeer.Cascade {
	p, node := fed.Dial(t)
	heard := p.ListenCascade()
	ctx, cancel := context.WithTimeout(t.Ctx, t.Timeout())
	defer cancel()
	l, err := p.OpenCascade(ctx, node)
	if err != nil {
		t.Fatalf("%v", err)
	}
	t.Cleanup(l.Close)
	deaf := true
	for _, fr := range []struct {
		typ  byte
		body any
	}{
		{fedpeer.CascadeState, fedpeer.CascadeStateBody{Guild: f.guild, Members: []fedpeer.CascadeMember{{Name: "intruder", Channel: f.channel}}}},
		{fedpeer.CascadeSubscribe, fedpeer.CascadeTrackRef{Guild: f.guild, Track: mic}},
		{fedpeer.CascadeModerate, fedpeer.CascadeModerateBody{Guild: f.guild, Name: name, Deaf: &deaf}},
	} {
		if err := l.Send(fr.typ, fr.body); err != nil {
			t.Fatalf("%v", err)
		}
	}
	return heard
}

// VOICE-136: the node says everything to the fake on one link it opened.
// VOICE-140: it serves the fake's subscription to its member's microphone
// with rtp frames. VOICE-130: it ignores a frame of an unknown type and ends
// a link that carries an oversize or undecodable frame. VOICE-131,
// VOICE-132: one upstream subscription per remote track for all its local
// subscribers, at the highest layer any of them wants. VOICE-134: it
// unsubscribes when its last local subscriber leaves. VOICE-135: it applies
// the home node's moderate and ignores another node's. VOICE-138, VOICE-140:
// it ignores the state of a node outside the guild and does not serve it.
// VOICE-139: a link silent for 5 s is the other node leaving voice.
func cascadeWithFake(t *T) {
	f := newFakeVoice(t)
	s1, gid, voice := f.member()
	a := enterVoice(t, s1, gid, voice, mediaOpts{Video: true})
	mic := f.micOf(s1.User.Name)

	f.open()
	if err := f.link.Send(99, []byte{0xde, 0xad}); err != nil {
		t.Fatalf("%v", err)
	}
	if err := f.link.Send(fedpeer.CascadeSubscribe, fedpeer.CascadeTrackRef{Guild: f.guild, Track: mic}); err != nil {
		t.Fatalf("%v", err)
	}
	t.Eventually("VOICE-140: rtp frames of the subscribed microphone after a frame of an unknown type (VOICE-130)", func() error {
		for _, fr := range f.cascade.Frames(fedpeer.CascadeRTP) {
			track, pkt, err := fr.RTP()
			var p rtp.Packet
			if err != nil || track != mic || p.Unmarshal(pkt) != nil {
				continue
			}
			if from, _, _, ok := parseTrailer(p.Payload); ok && from == a.Tag {
				return nil
			}
		}
		return fmt.Errorf("%d rtp frames, none carries the member's audio", len(f.cascade.Frames(fedpeer.CascadeRTP)))
	})

	// The fake's owner joins voice with a microphone and a camera.
	const ghostMic, ghostCam = 7, 8
	ghostMember := fedpeer.CascadeMember{Name: f.home.Owner, Channel: f.channel, Tracks: []fedpeer.CascadeTrack{
		{ID: ghostMic, Source: "microphone", Mime: "audio/opus", Clock: 48000, Channels: 2, Fmtp: "minptime=10;useinbandfec=1"},
		{ID: ghostCam, Source: "camera", Mime: "video/VP8", Clock: 90000},
	}}
	f.setMembers(ghostMember)
	var ghost string
	t.Eventually("VOICE-138: the node shows the fake's member in its voice channel", func() error {
		for _, fr := range s1.Frames() {
			d := fr.Obj()
			if fr.T == "VOICE_STATE_UPDATE" && str(d["channel_id"]) == voice && strings.HasPrefix(str(harness.Get(d, "member.user.username")), f.home.Owner+"@") {
				ghost = str(d["user_id"])
				return nil
			}
		}
		return fmt.Errorf("no VOICE_STATE_UPDATE for %s@… in the voice channel", f.home.Owner)
	})
	t.Eventually("the node subscribes to the fake member's microphone", func() error {
		if len(f.refs(fedpeer.CascadeSubscribe, ghostMic)) == 0 {
			return fmt.Errorf("no subscribe frame for track %d", ghostMic)
		}
		return nil
	})
	const ghostTag = "0a0b0c"
	f.wg.Add(1)
	go func() { // the fake member's audio
		defer f.wg.Done()
		tk := time.NewTicker(20 * time.Millisecond)
		defer tk.Stop()
		for n := uint32(1); ; n++ {
			select {
			case <-f.stop:
				return
			case <-tk.C:
			}
			p := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 111, SequenceNumber: uint16(n), Timestamp: n * 960, SSRC: 0x0a0b0c0d},
				Payload: append([]byte{0xfc}, trailer(ghostTag, 0, n)...)}
			raw, _ := p.Marshal()
			_ = f.link.SendRTP(ghostMic, raw)
		}
	}()
	a.waitReceive("the fake member's audio reaches a member of the node", func(e rx) bool { return e.From == ghostTag })
	s2, _, _ := f.member()
	b := enterVoice(t, s2, gid, voice, mediaOpts{Video: true})
	b.waitReceive("the fake member's audio reaches a second member of the node", func(e rx) bool { return e.From == ghostTag })
	if n := len(f.refs(fedpeer.CascadeSubscribe, ghostMic)); n != 1 {
		t.Errorf("VOICE-131: %d subscribe frames for one remote microphone with two local subscribers, expected 1", n)
	}
	stranger := strangerSays(t, f, mic, s1.User.Name)
	a.sendOp(opLayerRequest, Obj{"user_id": ghost, "source": "camera", "max_layer": "high"})
	t.Eventually("VOICE-132: the node subscribes to the fake's camera at the highest layer a local member wants (high)", func() error {
		l := f.refs(fedpeer.CascadeSubscribe, ghostCam)
		if len(l) == 0 || l[len(l)-1].Layer != 2 {
			return fmt.Errorf("subscribe frames for the camera: %+v", l)
		}
		return nil
	})

	mute := true
	if err := f.link.Send(fedpeer.CascadeModerate, fedpeer.CascadeModerateBody{Guild: f.guild, Name: s1.User.Name, Mute: &mute}); err != nil {
		t.Fatalf("%v", err)
	}
	t.Expect(s1.Gateway, "VOICE_STATE_UPDATE", func(d Obj) bool { return stateOf(s1.User.ID, voice)(d) && d["mute"] == true })

	// What a node outside the guild said has had seconds to act by now.
	for _, fr := range s1.Frames() {
		d := fr.Obj()
		if fr.T != "VOICE_STATE_UPDATE" {
			continue
		}
		if strings.HasPrefix(str(harness.Get(d, "member.user.username")), "intruder@") {
			t.Errorf("VOICE-138: a state frame from a node outside the guild put its member in voice: %s", fr)
		}
		if str(d["user_id"]) == s1.User.ID && d["deaf"] == true {
			t.Errorf("VOICE-135: a moderate from a node other than the home node deafened a member: %s", fr)
		}
	}
	if n := len(stranger.Frames(fedpeer.CascadeRTP)); n > 0 {
		t.Errorf("VOICE-140: %d rtp frames served to a node outside the guild", n)
	}
	for _, s := range []*harness.Session{s1, s2} {
		_ = s.Send(harness.OpVoiceState, Obj{"guild_id": gid, "channel_id": nil, "self_mute": false, "self_deaf": false})
	}
	t.Eventually("VOICE-134: the node unsubscribes from the fake's tracks when no local member is left", func() error {
		for _, id := range []uint64{ghostMic, ghostCam} {
			if len(f.refs(fedpeer.CascadeUnsubscribe, id)) == 0 {
				return fmt.Errorf("no unsubscribe for track %d", id)
			}
		}
		return nil
	})
	t.Eventually("VOICE-137: a state frame with an empty list once the node's last member left", func() error {
		st := f.states()
		if len(st) > 0 && st[len(st)-1].Guild == f.guild && len(st[len(st)-1].Members) == 0 {
			return nil
		}
		return fmt.Errorf("%d state frames, the last not empty", len(st))
	})
	if n := f.cascade.Links(); n != 1 {
		t.Errorf("VOICE-136: the node opened %d links to one node, expected 1", n)
	}

	// A member missing from the fake's next state has left voice; back in
	// the state, it is in voice again.
	f.setMembers()
	lastVoice(t, s1, ghost, "", t.Timeout(), "VOICE-138: a member missing from the next state frame leaves voice")
	f.setMembers(ghostMember)
	lastVoice(t, s1, ghost, voice, t.Timeout(), "the fake's member back in voice")
	// The fake falls silent (its link stays open): after 5 s its member
	// has left voice.
	f.quiet()
	lastVoice(t, s1, ghost, "", 30*time.Second, "VOICE-139: the member of a node whose link is silent for 5 s leaves voice")

	// A frame over 65,535 bytes, or an undecodable one, ends a link.
	for what, frame := range map[string][]byte{
		"an oversize frame":              append(binary.AppendUvarint(nil, fedpeer.MaxCascadeFrame+100), fedpeer.CascadePing),
		"an undecodable subscribe frame": {3, fedpeer.CascadeSubscribe, 0xff, 0x00},
	} {
		ctx, cancel := context.WithTimeout(t.Ctx, t.Timeout())
		l, err := f.home.OpenCascade(ctx, fed.NodeID(t))
		cancel()
		if err != nil {
			t.Fatalf("%v", err)
		}
		_ = l.SendRaw(frame)
		if err := l.WaitEnd(t.Timeout()); err != nil {
			t.Errorf("VOICE-130: a link after %s: %v", what, err)
		}
		l.Close()
	}
}
