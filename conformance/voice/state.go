package voice

import (
	"fmt"

	"github.com/hearth-chat/hearth/conformance/harness"
)

// Voice state and moderation through the main gateway and REST (spec/voice.md
// §2 and §3.6): no media needed.

// stateOf matches a VOICE_STATE_UPDATE of user in channel (nil for none).
func stateOf(user string, channel any) func(Obj) bool {
	return func(d Obj) bool {
		if str(d["user_id"]) != user {
			return false
		}
		if channel == nil {
			return d["channel_id"] == nil
		}
		return str(d["channel_id"]) == channel
	}
}

// VOICE-006: "A payload that is not a JSON object with a non-zero guild_id MUST
// close the gateway connection with 4002."
func badVoiceState(t *T) {
	u := t.NewUser()
	for what, d := range map[string]any{
		"a string payload":  "not an object",
		"guild_id 0":        Obj{"guild_id": "0", "channel_id": nil, "self_mute": false, "self_deaf": false},
		"no guild_id":       Obj{"channel_id": nil, "self_mute": false, "self_deaf": false},
		"an array payload":  []any{1, 2},
		"a numeric payload": 7,
	} {
		s := t.Connect(u, harness.AllIntents)
		_ = s.Send(harness.OpVoiceState, d)
		if code, err := s.WaitClose(t.Timeout()); err != nil || code != 4002 {
			t.Errorf("op 4 with %s: expected close 4002, got %d (%v)", what, code, err)
		}
	}
}

// VOICE-007: op 4 with channel_id null ends the voice session: the voice
// WebSocket closes with 4014 and VOICE_STATE_UPDATE with channel_id null follows.
// VOICE-009: the voice state object's fields.
func leaveVoice(t *T) {
	o, g, s := setup(t)
	vg := connectVoice(t, s, join(t, s, g.ID, g.Voice))
	d := t.Expect(s.Gateway, "VOICE_STATE_UPDATE", stateOf(o.ID, g.Voice))
	checkState(t, d, s.SessionID(), g.ID, true)
	_ = s.Send(harness.OpVoiceState, Obj{"guild_id": g.ID, "channel_id": nil, "self_mute": false, "self_deaf": false})
	expectClose(t, vg, "the voice WebSocket after op 4 with channel_id null", 4014)
	d = t.Expect(s.Gateway, "VOICE_STATE_UPDATE", stateOf(o.ID, nil))
	checkState(t, d, s.SessionID(), g.ID, true)
}

// checkState checks a voice state object (VOICE-009); withGuild says whether
// guild_id and member belong in it.
func checkState(t *T, d Obj, session, guild string, withGuild bool) {
	for _, k := range []string{"deaf", "mute", "self_deaf", "self_mute", "self_stream", "self_video", "suppress"} {
		if _, ok := d[k].(bool); !ok {
			t.Errorf("VOICE-009: voice state field %q is not a boolean: %s", k, harness.JSON(d))
		}
	}
	if d["suppress"] != false {
		t.Errorf("VOICE-009: suppress is not false")
	}
	if v, ok := d["request_to_speak_timestamp"]; !ok || v != nil {
		t.Errorf("VOICE-009: request_to_speak_timestamp is not null: %s", harness.JSON(d))
	}
	if str(d["session_id"]) != session {
		t.Errorf("VOICE-009: session_id %q, expected the gateway session that sent op 4 (%q)", str(d["session_id"]), session)
	}
	if withGuild {
		if str(d["guild_id"]) != guild {
			t.Errorf("VOICE-009: guild_id %q", str(d["guild_id"]))
		}
		if str(harness.Get(d, "member.user.id")) != str(d["user_id"]) {
			t.Errorf("VOICE-009: member.user.id is not user_id: %s", harness.JSON(d))
		}
	}
}

// VOICE-008: "self_mute and self_deaf of the last op 4 MUST be applied to the
// user's voice session at once if it exists, or else as soon as the voice
// WebSocket joins, and MUST appear in the voice state."
func selfFlags(t *T) {
	o, g, s := setup(t)
	_ = s.Send(harness.OpVoiceState, Obj{"guild_id": g.ID, "channel_id": g.Voice, "self_mute": true, "self_deaf": false})
	d := t.Expect(s.Gateway, "VOICE_SERVER_UPDATE", harness.Field("guild_id", g.ID))
	connectVoice(t, s, server{Token: str(d["token"]), GuildID: g.ID, Endpoint: str(d["endpoint"])})
	t.Expect(s.Gateway, "VOICE_STATE_UPDATE", func(d Obj) bool {
		return stateOf(o.ID, g.Voice)(d) && d["self_mute"] == true
	})
	_ = s.Send(harness.OpVoiceState, Obj{"guild_id": g.ID, "channel_id": g.Voice, "self_mute": true, "self_deaf": true})
	t.Expect(s.Gateway, "VOICE_STATE_UPDATE", func(d Obj) bool {
		return stateOf(o.ID, g.Voice)(d) && d["self_mute"] == true && d["self_deaf"] == true
	})
}

// VOICE-014: "GUILD_CREATE MUST carry, in voice_states, the voice state of every
// member in a voice channel of the guild on this node, without guild_id and
// member."
func guildCreateStates(t *T) {
	o, g, s := setup(t)
	connectVoice(t, s, join(t, s, g.ID, g.Voice))
	t.Expect(s.Gateway, "VOICE_STATE_UPDATE", stateOf(o.ID, g.Voice))
	s2 := t.Connect(o, harness.AllIntents)
	gc := t.Expect(s2.Gateway, "GUILD_CREATE", harness.Field("id", g.ID))
	states, _ := gc["voice_states"].([]any)
	found := false
	for _, v := range states {
		st, _ := v.(Obj)
		if str(st["user_id"]) != o.ID {
			continue
		}
		found = true
		if str(st["channel_id"]) != g.Voice {
			t.Errorf("voice_states names channel %q, expected %s", str(st["channel_id"]), g.Voice)
		}
		if _, ok := st["guild_id"]; ok {
			t.Errorf("a voice state in GUILD_CREATE carries guild_id")
		}
		if _, ok := st["member"]; ok {
			t.Errorf("a voice state in GUILD_CREATE carries member")
		}
		checkState(t, st, s.SessionID(), g.ID, false)
	}
	if !found {
		t.Errorf("GUILD_CREATE voice_states lacks the owner in voice: %s", harness.JSON(gc["voice_states"]))
	}
}

// VOICE-085: a member muted and deafened by a moderator while out of voice MUST
// be server-muted and deafened when they next join. VOICE-086: a move or
// disconnect of a member not in voice fails with 400 code 40032; a move to an
// unknown channel with 404 code 10003.
func serverMuteStored(t *T) {
	o, g, so := setup(t)
	m := t.NewUser()
	t.Join(g, m)
	path := "/guilds/" + g.ID + "/members/" + m.ID
	t.ErrorBody(t.Call(o.Client, "PATCH", path, Obj{"channel_id": g.Voice}), 400, 40032)
	t.ErrorBody(t.Call(o.Client, "PATCH", path, Obj{"channel_id": nil}), 400, 40032)
	if r := t.Call(o.Client, "PATCH", path, Obj{"mute": true, "deaf": true}); r.Status/100 != 2 {
		t.Fatalf("server mute and deafen of a member out of voice: %s", r)
	}
	sm := t.Connect(m, harness.AllIntents)
	t.Expect(sm.Gateway, "GUILD_CREATE", harness.Field("id", g.ID))
	connectVoice(t, sm, join(t, sm, g.ID, g.Voice))
	t.Expect(so.Gateway, "VOICE_STATE_UPDATE", func(d Obj) bool {
		return stateOf(m.ID, g.Voice)(d) && d["mute"] == true && d["deaf"] == true
	})
	t.ErrorBody(t.Call(o.Client, "PATCH", path, Obj{"channel_id": "4242424242424242"}), 404, 10003)
}

// VOICE-087: "A member who leaves the guild (leave, kick or ban) MUST be
// disconnected from voice in it (4014)."
func leaveGuildDisconnects(t *T) {
	_, g, so := setup(t)
	for _, how := range []string{"leave", "kick", "ban"} {
		m := t.NewUser()
		t.Join(g, m)
		sm := t.Connect(m, harness.AllIntents)
		t.Expect(sm.Gateway, "GUILD_CREATE", harness.Field("id", g.ID))
		vg := connectVoice(t, sm, join(t, sm, g.ID, g.Voice))
		t.Expect(so.Gateway, "VOICE_STATE_UPDATE", stateOf(m.ID, g.Voice))
		var r *harness.Response
		switch how {
		case "leave":
			r = t.Call(m.Client, "DELETE", "/users/@me/guilds/"+g.ID, nil)
		case "kick":
			r = t.Call(g.Owner.Client, "DELETE", "/guilds/"+g.ID+"/members/"+m.ID, nil)
		case "ban":
			r = t.Call(g.Owner.Client, "PUT", "/guilds/"+g.ID+"/bans/"+m.ID, Obj{})
		}
		if r.Status/100 != 2 {
			t.Fatalf("%s: %s", how, r)
		}
		expectClose(t, vg, fmt.Sprintf("the voice WebSocket of a member after a %s", how), 4014)
	}
}

// VOICE-088: deleting a voice channel ends the voice session of everyone in it
// (4014, VOICE_STATE_UPDATE with channel_id null); a token issued for it before
// the deletion puts nobody in it.
func channelDeleted(t *T) {
	o, g, s := setup(t)
	var extra Obj
	t.OK(o.Client, "POST", "/guilds/"+g.ID+"/channels", Obj{"name": "Doomed", "type": 2}, &extra)
	ch := str(extra["id"])
	vg := connectVoice(t, s, join(t, s, g.ID, ch))
	t.Expect(s.Gateway, "VOICE_STATE_UPDATE", stateOf(o.ID, ch))
	m := t.NewUser()
	t.Join(g, m)
	sm := t.Connect(m, harness.AllIntents)
	t.Expect(sm.Gateway, "GUILD_CREATE", harness.Field("id", g.ID))
	late := join(t, sm, g.ID, ch) // a token issued before the deletion
	if r := t.Call(o.Client, "DELETE", "/channels/"+ch, nil); r.Status/100 != 2 {
		t.Fatalf("delete the voice channel: %s", r)
	}
	expectClose(t, vg, "the voice WebSocket of a member of a deleted channel", 4014)
	t.Expect(s.Gateway, "VOICE_STATE_UPDATE", stateOf(o.ID, nil))
	lg, _ := dialVoice(t, late.Endpoint)
	send(t, lg, opIdentify, identify(sm, late, m.ID))
	expectClose(t, lg, "a voice session with a token for the deleted channel", 4014)
	sentinel := t.Send(o, g.Text, "sentinel")
	t.Expect(s.Gateway, "MESSAGE_CREATE", harness.Field("id", str(sentinel["id"])))
	if f, ok := s.Seen(func(f harness.Frame) bool {
		return f.T == "VOICE_STATE_UPDATE" && stateOf(m.ID, ch)(f.Obj())
	}); ok {
		t.Errorf("a voice state shows a member in the deleted channel: %s", f)
	}
}
