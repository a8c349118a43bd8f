package server_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hearth-chat/hearth/node/config"
	"github.com/hearth-chat/hearth/node/testnode"
	"github.com/hearth-chat/hearth/voice/voiceclient"
)

// voiceState is the VOICE_STATE_UPDATE payload as a client reads it.
type voiceState struct {
	GuildID   string  `json:"guild_id"`
	ChannelID *string `json:"channel_id"`
	UserID    string  `json:"user_id"`
	SessionID string  `json:"session_id"`
	Member    *struct {
		User struct {
			ID string `json:"id"`
		} `json:"user"`
	} `json:"member"`
	Mute       bool `json:"mute"`
	Deaf       bool `json:"deaf"`
	SelfMute   bool `json:"self_mute"`
	SelfDeaf   bool `json:"self_deaf"`
	SelfVideo  bool `json:"self_video"`
	SelfStream bool `json:"self_stream"`
	Suppress   bool `json:"suppress"`
}

// waitVoiceState waits until g has received a VOICE_STATE_UPDATE for which ok is true.
func waitVoiceState(t *testing.T, g *testnode.Gateway, what string, ok func(voiceState) bool) voiceState {
	t.Helper()
	var found voiceState
	g.WaitFor(what, func(events []testnode.Dispatch, _ []map[string]any, _ error) bool {
		for _, e := range events {
			var vs voiceState
			if e.T == "VOICE_STATE_UPDATE" && json.Unmarshal(e.D, &vs) == nil && ok(vs) {
				found = vs
				return true
			}
		}
		return false
	})
	return found
}

func in(channel string) func(voiceState) bool {
	return func(vs voiceState) bool { return vs.ChannelID != nil && *vs.ChannelID == channel }
}

// joinVoice sends op 4 for the channel and returns the VOICE_SERVER_UPDATE token and
// endpoint.
func joinVoice(t testing.TB, g *testnode.Gateway, guildID, channelID string, selfMute bool) (tok, endpoint string) {
	t.Helper()
	g.Send(map[string]any{"op": 4, "d": map[string]any{"guild_id": guildID, "channel_id": channelID, "self_mute": selfMute, "self_deaf": false}})
	var su struct{ Token, GuildID, Endpoint string }
	d := g.Wait("VOICE_SERVER_UPDATE")
	d.Decode(t, &su)
	if err := json.Unmarshal(d.D, &struct {
		GuildID *string `json:"guild_id"`
	}{&su.GuildID}); err != nil || su.GuildID != guildID || su.Token == "" {
		t.Fatalf("VOICE_SERVER_UPDATE = %s", d.D)
	}
	return su.Token, su.Endpoint
}

// waitUntil polls cond (which says why it is not yet true) for up to 10 s.
func waitUntil(t testing.TB, cond func() string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		why := cond()
		if why == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal(why)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestVoice drives voice through a real node: gateway op 4, VOICE_SERVER_UPDATE, the voice
// WebSocket with pion clients, audio between members, VOICE_STATE_UPDATE to a third
// session and in GUILD_CREATE, REST moderation (server mute, move, disconnect), the CONNECT
// check, and the channel binding of voice tokens.
func TestVoice(t *testing.T) {
	before := runtime.NumGoroutine()
	n := testnode.Start(t, testnode.Options{Config: func(c *config.Config) { c.VoiceLoopback = true }})
	alice, bob, carol := n.Register(t, "alice"), n.Register(t, "bob"), n.Register(t, "carol")
	var g guild
	alice.Must("POST", "/guilds", map[string]string{"name": "Voice Club"}, &g)
	chA := ""
	for _, c := range g.Channels {
		if c.Type == 2 {
			chA = c.ID
		}
	}
	var chB struct{ ID string }
	alice.Must("POST", "/guilds/"+g.ID+"/channels", map[string]any{"name": "Quiet", "type": 2}, &chB)
	if chA == "" || chB.ID == "" {
		t.Fatalf("voice channels %q %q", chA, chB.ID)
	}
	var inv struct{ Code string }
	alice.Must("POST", "/channels/"+g.text(t)+"/invites", map[string]any{}, &inv)
	bob.Must("POST", "/invites/"+inv.Code, nil, nil)
	carol.Must("POST", "/invites/"+inv.Code, nil, nil)
	// Carol may not connect to A.
	alice.Must("PUT", "/channels/"+chA+"/permissions/"+carol.UserID, map[string]any{"type": 1, "deny": "1048576"}, nil)
	ag, bg, cg := alice.Connect(-1), bob.Connect(-1), carol.Connect(-1)

	pkts, err := voiceclient.OpusPackets("../../voice/signal/testdata/speech.ogg")
	if err != nil {
		t.Fatal(err)
	}
	api, err := voiceclient.NewAPI()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()

	// Alice and Bob join A through op 4 and the voice WebSocket, and both talk.
	tok, endpoint := joinVoice(t, ag, g.ID, chA, true)
	if want := strings.Replace(n.URL, "http://", "ws://", 1) + "/voice"; endpoint != want {
		t.Fatalf("endpoint %q, want %q", endpoint, want)
	}
	ac, err := voiceclient.Dial(ctx, endpoint, api, alice.UserID, g.ID, tok, voiceclient.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer ac.Close()
	tok, endpoint = joinVoice(t, bg, g.ID, chA, false)
	bc, err := voiceclient.Dial(ctx, endpoint, api, bob.UserID, g.ID, tok, voiceclient.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer bc.Close()
	stop := make(chan struct{})
	var talkers sync.WaitGroup
	for _, c := range []*voiceclient.Client{ac, bc} {
		talkers.Add(1)
		go func() { defer talkers.Done(); c.Publish(pkts, stop, true) }()
	}
	defer func() { close(stop); talkers.Wait() }()
	waitUntil(t, func() string {
		if a, b := bc.ReceivedFrom(alice.UserID), ac.ReceivedFrom(bob.UserID); a < 10 || b < 10 {
			return fmt.Sprintf("bob got %d packets from alice, alice %d from bob", a, b)
		}
		return ""
	})

	// Carol, in the guild but not in voice, sees both join, with op 4's self mute.
	vs := waitVoiceState(t, cg, "alice in A", func(vs voiceState) bool { return vs.UserID == alice.UserID && in(chA)(vs) && vs.SelfMute })
	if vs.GuildID != g.ID || vs.Member == nil || vs.Member.User.ID != alice.UserID || vs.SessionID != ag.SessionID {
		t.Fatalf("voice state %+v", vs)
	}
	waitVoiceState(t, cg, "bob in A", func(vs voiceState) bool { return vs.UserID == bob.UserID && in(chA)(vs) })
	// A new session gets the voice states in GUILD_CREATE.
	cg2 := carol.Connect(-1)
	var gc struct {
		ID          string       `json:"id"`
		VoiceStates []voiceState `json:"voice_states"`
	}
	cg2.Wait("GUILD_CREATE").Decode(t, &gc)
	if len(gc.VoiceStates) != 2 || !in(chA)(gc.VoiceStates[0]) || !in(chA)(gc.VoiceStates[1]) {
		t.Fatalf("GUILD_CREATE voice_states = %+v", gc.VoiceStates)
	}

	// Server mute through REST: Bob's audio stops reaching Alice; Alice's still reaches Bob.
	alice.Must("PATCH", "/guilds/"+g.ID+"/members/"+bob.UserID, map[string]any{"mute": true}, nil)
	waitVoiceState(t, cg, "bob server-muted", func(vs voiceState) bool { return vs.UserID == bob.UserID && vs.Mute })
	time.Sleep(100 * time.Millisecond) // packets already in flight
	fromBob, fromAlice := ac.ReceivedFrom(bob.UserID), bc.ReceivedFrom(alice.UserID)
	time.Sleep(400 * time.Millisecond)
	if got := ac.ReceivedFrom(bob.UserID); got != fromBob {
		t.Errorf("alice got %d packets from server-muted bob", got-fromBob)
	}
	if got := bc.ReceivedFrom(alice.UserID); got < fromAlice+10 {
		t.Errorf("bob got only %d packets from alice while muted", got-fromAlice)
	}

	// Carol without CONNECT on A gets no VOICE_SERVER_UPDATE for it; with CONNECT on B she
	// does, and that token puts her in B only.
	cg.Send(map[string]any{"op": 4, "d": map[string]any{"guild_id": g.ID, "channel_id": chA}})
	tokB, endpoint := joinVoice(t, cg, g.ID, chB.ID, false)
	if cg.Has("VOICE_SERVER_UPDATE") {
		t.Fatal("VOICE_SERVER_UPDATE for a channel without CONNECT")
	}
	// The token is bound to B: rewriting its channel breaks the signature (4004).
	parts := strings.Split(tokB, ".")
	body, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil || !strings.Contains(string(body), chB.ID) {
		t.Fatalf("token body %q: %v", body, err)
	}
	forged := parts[0] + "." + base64.RawURLEncoding.EncodeToString([]byte(strings.Replace(string(body), chB.ID, chA, 1))) + "." + parts[2]
	if fc, err := voiceclient.Dial(ctx, endpoint, api, carol.UserID, g.ID, forged, voiceclient.Options{}); err == nil {
		fc.Close()
		t.Fatal("forged token for channel A accepted")
	}
	cc, err := voiceclient.Dial(ctx, endpoint, api, carol.UserID, g.ID, tokB, voiceclient.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	waitVoiceState(t, ag, "carol in B", func(vs voiceState) bool { return vs.UserID == carol.UserID && in(chB.ID)(vs) })

	// Moderation: a member not in voice cannot be moved; Bob is moved to B on the same
	// PeerConnection, then disconnected (4014).
	var errBody struct{ Code int }
	if st := alice.Do("PATCH", "/guilds/"+g.ID+"/members/"+alice.UserID+"x", map[string]any{"channel_id": chB.ID}, &errBody); st/100 == 2 {
		t.Fatalf("move of an unknown member: %d", st)
	}
	dave := n.Register(t, "dave")
	dave.Must("POST", "/invites/"+inv.Code, nil, nil)
	if st := alice.Do("PATCH", "/guilds/"+g.ID+"/members/"+dave.UserID, map[string]any{"channel_id": chB.ID}, &errBody); st != 400 || errBody.Code != 40032 {
		t.Fatalf("move of a member not in voice: %d %+v", st, errBody)
	}
	if st := bob.Do("PATCH", "/guilds/"+g.ID+"/members/"+alice.UserID, map[string]any{"channel_id": chB.ID}, nil); st != 403 {
		t.Fatalf("move without MOVE_MEMBERS: %d", st)
	}
	alice.Must("PATCH", "/guilds/"+g.ID+"/members/"+bob.UserID, map[string]any{"channel_id": chB.ID}, nil)
	waitVoiceState(t, cg, "bob moved to B", func(vs voiceState) bool { return vs.UserID == bob.UserID && in(chB.ID)(vs) && vs.Mute })
	waitUntil(t, func() string {
		if sw := bc.Switched(); len(sw) != 1 || sw[0] != chB.ID {
			return fmt.Sprintf("bob's channel switches: %v", sw)
		}
		return ""
	})
	alice.Must("PATCH", "/guilds/"+g.ID+"/members/"+bob.UserID, map[string]any{"channel_id": nil}, nil)
	waitVoiceState(t, cg, "bob left", func(vs voiceState) bool { return vs.UserID == bob.UserID && vs.ChannelID == nil })
	select {
	case <-bc.Closed():
	case <-time.After(5 * time.Second):
		t.Fatal("bob's voice WebSocket still open after disconnect")
	}
	if code := bc.CloseCode(); code != 4014 {
		t.Fatalf("bob's close code %d, want 4014", code)
	}

	// Bob rejoins and is still server-muted (the member's stored mute); op 4 with a null
	// channel takes Alice out of voice.
	tok, endpoint = joinVoice(t, bg, g.ID, chA, false)
	bc2, err := voiceclient.Dial(ctx, endpoint, api, bob.UserID, g.ID, tok, voiceclient.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer bc2.Close()
	waitUntil(t, func() string {
		for _, p := range gcVoiceStates(t, carol) {
			if p.UserID == bob.UserID && in(chA)(p) && p.Mute {
				return ""
			}
		}
		return "bob not back in A with his server mute"
	})
	ag.Send(map[string]any{"op": 4, "d": map[string]any{"guild_id": g.ID, "channel_id": nil}})
	waitVoiceState(t, cg, "alice left", func(vs voiceState) bool { return vs.UserID == alice.UserID && vs.ChannelID == nil })

	// A member kicked from the guild leaves voice (4014).
	alice.Must("DELETE", "/guilds/"+g.ID+"/members/"+carol.UserID, nil, nil)
	waitVoiceState(t, ag, "carol left", func(vs voiceState) bool { return vs.UserID == carol.UserID && vs.ChannelID == nil })
	select {
	case <-cc.Closed():
	case <-time.After(5 * time.Second):
		t.Fatal("kicked carol's voice WebSocket still open")
	}
	if code := cc.CloseCode(); code != 4014 {
		t.Fatalf("kicked carol's close code %d, want 4014", code)
	}
	// An undecodable op 4 closes the gateway connection with 4002.
	dg := dave.Connect(-1)
	dg.Send(map[string]any{"op": 4, "d": map[string]any{"guild_id": "not a snowflake", "channel_id": chA}})
	if code := dg.CloseCode(); code != 4002 {
		t.Fatalf("bad op 4: close code %d, want 4002", code)
	}

	// Stopping the node ends every voice session (4015) and leaves no goroutine behind.
	if code := bc2.CloseCode(); code != 0 {
		t.Fatalf("voice WebSocket closed with %d before shutdown", code)
	}
	n.Stop(t)
	select {
	case <-bc2.Closed():
	case <-time.After(5 * time.Second):
		t.Fatal("voice WebSocket still open after shutdown")
	}
	if code := bc2.CloseCode(); code != 4015 {
		t.Errorf("close code at shutdown %d, want 4015", code)
	}
	close(stop)
	talkers.Wait()
	stop = make(chan struct{})
	for _, c := range []*voiceclient.Client{ac, bc, cc, bc2} {
		c.Close()
	}
	for _, gw := range []*testnode.Gateway{ag, bg, cg, cg2, dg} {
		gw.WS.Close()
	}
	waitUntil(t, func() string {
		if n := runtime.NumGoroutine(); n > before+2 {
			buf := make([]byte, 1<<16)
			return fmt.Sprintf("%d goroutines, %d before the test\n%s", n, before, buf[:runtime.Stack(buf, true)])
		}
		return ""
	})
}

// gcVoiceStates returns the voice_states of the first guild in a fresh session's
// GUILD_CREATE.
func gcVoiceStates(t *testing.T, c *testnode.Client) []voiceState {
	t.Helper()
	g := c.Connect(-1)
	defer g.WS.Close()
	var gc struct {
		VoiceStates []voiceState `json:"voice_states"`
	}
	g.Wait("GUILD_CREATE").Decode(t, &gc)
	return gc.VoiceStates
}

// TestVoiceChannelDelete checks VOICE-088: deleting a voice channel disconnects everyone in
// it (VOICE_STATE_UPDATE with a null channel to the guild, voice WebSocket closed with
// 4014), and a token issued for the channel before the deletion no longer puts anyone in it.
func TestVoiceChannelDelete(t *testing.T) {
	n := testnode.Start(t, testnode.Options{Config: func(c *config.Config) { c.VoiceLoopback = true }})
	alice, bob, carol, dave := n.Register(t, "alice"), n.Register(t, "bob"), n.Register(t, "carol"), n.Register(t, "dave")
	var g guild
	alice.Must("POST", "/guilds", map[string]string{"name": "Doomed"}, &g)
	var ch struct{ ID string }
	alice.Must("POST", "/guilds/"+g.ID+"/channels", map[string]any{"name": "Soon gone", "type": 2}, &ch)
	var inv struct{ Code string }
	alice.Must("POST", "/channels/"+g.text(t)+"/invites", map[string]any{}, &inv)
	for _, c := range []*testnode.Client{bob, carol, dave} {
		c.Must("POST", "/invites/"+inv.Code, nil, nil)
	}
	ag, bg, cg, dg := alice.Connect(-1), bob.Connect(-1), carol.Connect(-1), dave.Connect(-1)
	api, err := voiceclient.NewAPI()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	var clients []*voiceclient.Client
	for _, m := range []struct {
		name string
		c    *testnode.Client
		gw   *testnode.Gateway
	}{{"alice", alice, ag}, {"bob", bob, bg}} {
		tok, endpoint := joinVoice(t, m.gw, g.ID, ch.ID, false)
		vc, err := voiceclient.Dial(ctx, endpoint, api, m.c.UserID, g.ID, tok, voiceclient.Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer vc.Close()
		clients = append(clients, vc)
		waitVoiceState(t, cg, m.name+" in the channel", func(vs voiceState) bool { return vs.UserID == m.c.UserID && in(ch.ID)(vs) })
	}
	// Dave has a token for the channel but opens the voice WebSocket only after the deletion.
	lateTok, lateEndpoint := joinVoice(t, dg, g.ID, ch.ID, false)

	alice.Must("DELETE", "/channels/"+ch.ID, nil, nil)
	for _, u := range []*testnode.Client{alice, bob} {
		waitVoiceState(t, cg, "a leave", func(vs voiceState) bool { return vs.UserID == u.UserID && vs.ChannelID == nil })
	}
	for i, vc := range clients {
		select {
		case <-vc.Closed():
		case <-time.After(5 * time.Second):
			t.Fatalf("voice WebSocket %d still open after the channel's deletion", i)
		}
		if code := vc.CloseCode(); code != 4014 {
			t.Fatalf("voice WebSocket %d closed with %d, want 4014", i, code)
		}
	}

	if late, err := voiceclient.Dial(ctx, lateEndpoint, api, dave.UserID, g.ID, lateTok, voiceclient.Options{}); err == nil {
		defer late.Close()
		select {
		case <-late.Closed():
		case <-time.After(5 * time.Second):
			t.Fatal("a voice session in a deleted channel stays open")
		}
		if code := late.CloseCode(); code != 4014 {
			t.Fatalf("voice session in a deleted channel closed with %d, want 4014", code)
		}
	}
	if vs := gcVoiceStates(t, carol); len(vs) != 0 {
		t.Fatalf("voice_states after the deletion: %+v", vs)
	}
	cg.WaitFor("every dispatch so far", func(events []testnode.Dispatch, _ []map[string]any, _ error) bool {
		for _, e := range events {
			var vs voiceState
			if e.T == "VOICE_STATE_UPDATE" && json.Unmarshal(e.D, &vs) == nil && vs.UserID == dave.UserID && vs.ChannelID != nil {
				t.Errorf("dave shown in the deleted channel: %s", e.D)
			}
		}
		return true
	})
}
