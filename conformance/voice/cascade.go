package voice

import (
	"fmt"

	"github.com/hearth-chat/hearth/conformance/fed"
	"github.com/hearth-chat/hearth/conformance/harness"
)

// Voice cascade between nodes (spec/voice.md §5), seen from the clients of
// two federating nodes of the implementation: a guild hosted on the first,
// a member of the second, each in voice through their own node's SFU.

// fedVoice is one node's side of a federated guild in voice.
type fedVoice struct {
	*fed.Side
	S     *harness.Session
	Voice string // the guild's voice channel as this node numbers it
}

// federatedVoice hosts a guild on t.Nodes[0] and makes a member of
// t.Nodes[1] join it; it waits until the member node shows the guild's
// voice channel (VOICE-141) and returns both sides with gateway sessions.
func federatedVoice(t *T) (home, member *fedVoice) {
	h, code := fed.HostGuild(t, t.Nodes[0])
	m := fed.JoinFrom(t, t.Nodes[1], code)
	home, member = &fedVoice{Side: h}, &fedVoice{Side: m}
	name := ""
	var chans []Obj
	t.Must(h.User.Client, 200, "GET", "/guilds/"+h.Guild+"/channels", nil, &chans)
	for _, c := range chans {
		if harness.Num(c["type"]) == 2 {
			home.Voice, name = str(c["id"]), str(c["name"])
			break
		}
	}
	if home.Voice == "" {
		t.Fatalf("the new guild has no voice channel on its home node")
	}
	t.Eventually("VOICE-141: the member node shows the guild's voice channel as type 2 with its name", func() error {
		id, err := channelNamed(t, m, name)
		member.Voice = id
		return err
	})
	for _, side := range []*fedVoice{home, member} {
		side.S = t.Connect(side.User, harness.AllIntents)
		t.Expect(side.S.Gateway, "GUILD_CREATE", harness.Field("id", side.Guild))
	}
	return home, member
}

// channelNamed finds the voice channel (type 2) called name on side.
func channelNamed(t *T, side *fed.Side, name string) (string, error) {
	r, err := side.User.Do(t.Ctx, "GET", "/guilds/"+side.Guild+"/channels", nil)
	if err != nil {
		return "", err
	}
	var chans []Obj
	if err := r.JSON(&chans); err != nil {
		return "", err
	}
	for _, c := range chans {
		if str(c["name"]) == name {
			if harness.Num(c["type"]) != 2 {
				return "", harness.Permanent(fmt.Errorf("channel %q has type %v on the member node, expected 2", name, c["type"]))
			}
			return str(c["id"]), nil
		}
	}
	return "", fmt.Errorf("no channel %q among %d", name, len(chans))
}

// hasState waits until s has received a VOICE_STATE_UPDATE matching (at any
// point of the session: a join before another wait may have passed it).
func hasState(t *T, s *harness.Session, what string, match func(Obj) bool) {
	t.Eventually(what, func() error {
		if _, ok := s.Seen(func(f harness.Frame) bool { return f.T == "VOICE_STATE_UPDATE" && match(f.Obj()) }); ok {
			return nil
		}
		return fmt.Errorf("no such VOICE_STATE_UPDATE")
	})
}

// remoteID is the user ID on side's node of the user name of the other node.
func remoteID(t *T, side *fedVoice, name string) string {
	id := ""
	t.Eventually("the member "+name+" of the other node on "+side.Node.Name, func() error {
		m, err := side.RemoteMember(t, name)
		if err != nil {
			return err
		}
		id = str(harness.Get(m, "user.id"))
		return nil
	})
	return id
}

// inVoiceOnBoth puts a member of each node of a federated guild in its voice
// channel and waits until the home node shows the other node's member there;
// it returns the member node's member's user ID on the home node.
func inVoiceOnBoth(t *T) (home, member *fedVoice, a, b *mediaClient, bOnHome string) {
	home, member = federatedVoice(t)
	a = enterVoice(t, home.S, home.Guild, home.Voice, mediaOpts{})
	b = enterVoice(t, member.S, member.Guild, member.Voice, mediaOpts{})
	bOnHome = remoteID(t, home, member.User.Name)
	hasState(t, home.S, "VOICE-137/138: the home node shows the member node's member in voice", stateOf(bOnHome, home.Voice))
	return home, member, a, b, bOnHome
}

// VOICE-137, VOICE-138: each node shows the other node's member in voice, in
// its own voice channel of that federation ID, and the leave. VOICE-140:
// audio crosses both ways. VOICE-135: a mute by a moderator on the home node
// is enforced by the member's own node (its audio stops reaching the home
// node's members). VOICE-141: deleting the voice channel on the home node
// deletes it on the member node and disconnects its members there.
func cascade(t *T) {
	home, member, a, b, bOnHome := inVoiceOnBoth(t)
	aOnMember := remoteID(t, member, home.User.Name)
	hasState(t, member.S, "VOICE-137/138: the member node shows the home node's member in voice", stateOf(aOnMember, member.Voice))
	b.waitReceive("VOICE-140: audio of the home node's member reaches the member node's", from(a, -1))
	a.waitReceive("VOICE-140: audio of the member node's member reaches the home node's", from(b, -1))

	path := "/guilds/" + home.Guild + "/members/" + bOnHome
	t.OK(home.User.Client, "PATCH", path, Obj{"mute": true}, nil)
	t.Expect(member.S.Gateway, "VOICE_STATE_UPDATE", func(d Obj) bool {
		return stateOf(b.User.ID, member.Voice)(d) && d["mute"] == true
	})
	b.setPhase(1)
	b.waitWritten(25)
	b.endPhase("the packets written while muted")
	t.OK(home.User.Client, "PATCH", path, Obj{"mute": false}, nil)
	t.Expect(member.S.Gateway, "VOICE_STATE_UPDATE", func(d Obj) bool {
		return stateOf(b.User.ID, member.Voice)(d) && d["mute"] == false
	})
	b.setPhase(2)
	// The link is one ordered stream: packets written before the unmute
	// would arrive before these.
	a.waitReceive("the member's audio after the unmute", from(b, 2))
	if n := len(a.received(from(b, 1))); n > 0 {
		t.Errorf("VOICE-135: %d packets of a member muted by the home node's moderator crossed to the home node", n)
	}

	_ = member.S.Send(harness.OpVoiceState, Obj{"guild_id": member.Guild, "channel_id": nil, "self_mute": false, "self_deaf": false})
	t.Expect(home.S.Gateway, "VOICE_STATE_UPDATE", stateOf(bOnHome, nil))
	b2 := enterVoice(t, member.S, member.Guild, member.Voice, mediaOpts{})
	t.Expect(home.S.Gateway, "VOICE_STATE_UPDATE", stateOf(bOnHome, home.Voice))
	t.OK(home.User.Client, "DELETE", "/channels/"+home.Voice, nil, nil)
	expectClose(t, b2.gw(), "VOICE-141: the member node's voice WebSocket when the home node deletes the channel", 4014)
	t.Eventually("VOICE-141: the member node deletes the voice channel", func() error {
		r, err := member.User.Do(t.Ctx, "GET", "/channels/"+member.Voice, nil)
		if err != nil {
			return err
		}
		if r.Status != 404 {
			return fmt.Errorf("GET the channel on the member node: %s", r)
		}
		return nil
	})
}

// VOICE-139: a link that ends is the other node leaving voice: its members
// leave (VOICE_STATE_UPDATE with channel_id null).
func cascadeLinkLost(t *T) {
	home, _, a, b, bOnHome := inVoiceOnBoth(t)
	a.waitReceive("the member node's audio reaches the home node", from(b, -1))
	for _, n := range t.Nodes {
		n.Proxy.Cut()
	}
	t.Expect(home.S.Gateway, "VOICE_STATE_UPDATE", stateOf(bOnHome, nil))
	for _, n := range t.Nodes {
		n.Proxy.Heal()
	}
}
