package server_test

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pion/rtp"

	"github.com/hearth-chat/hearth/node/config"
	"github.com/hearth-chat/hearth/node/testnode"
	"github.com/hearth-chat/hearth/voice/voiceclient"
)

// cascadeNode starts a node with federation and voice on loopback.
func cascadeNode(t testing.TB, name string) *testnode.Node {
	return testnode.Start(t, testnode.Options{Config: func(c *config.Config) {
		c.P2PListen = []string{"/ip4/127.0.0.1/tcp/0"}
		c.NodeName = name
		c.VoiceLoopback = true
	}})
}

// remoteVoiceState is a VOICE_STATE_UPDATE as a client reads it, with the member's name.
type remoteVoiceState struct {
	ChannelID *string `json:"channel_id"`
	UserID    string  `json:"user_id"`
	SelfMute  bool    `json:"self_mute"`
	Mute      bool    `json:"mute"`
	Member    *struct {
		User struct {
			Username string `json:"username"`
		} `json:"user"`
	} `json:"member"`
}

// waitRemoteVoice waits for a VOICE_STATE_UPDATE of the user named name for which ok holds,
// and returns the user's ID on the gateway's node.
func waitRemoteVoice(t testing.TB, g *testnode.Gateway, name string, ok func(remoteVoiceState) bool) string {
	t.Helper()
	var id string
	waitUntil(t, func() string {
		var seen []string
		g.WaitFor("a snapshot", func(events []testnode.Dispatch, _ []map[string]any, _ error) bool {
			for _, e := range events {
				var vs remoteVoiceState
				if e.T != "VOICE_STATE_UPDATE" || json.Unmarshal(e.D, &vs) != nil || vs.Member == nil {
					continue
				}
				seen = append(seen, string(e.D))
				if vs.Member.User.Username == name && ok(vs) {
					id = vs.UserID
				}
			}
			return true
		})
		if id == "" {
			return fmt.Sprintf("no matching voice state of %s among %d:\n%s", name, len(seen), strings.Join(seen, "\n"))
		}
		return ""
	})
	return id
}

// metric reads one unlabelled metric from a node's /metrics.
func metric(t testing.TB, n *testnode.Node, name string) float64 {
	t.Helper()
	resp, err := http.Get(n.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			return f
		}
	}
	t.Fatalf("metric %s not found", name)
	return 0
}

// federatedInvite returns a federation invite code of the guild, once it is federated.
func federatedInvite(t testing.TB, c *testnode.Client, channel string) string {
	t.Helper()
	var code string
	waitUntil(t, func() string {
		var inv struct{ Code string }
		c.Must("POST", "/channels/"+channel+"/invites", map[string]any{}, &inv)
		if strings.HasPrefix(inv.Code, "hearth:") {
			code = inv.Code
			return ""
		}
		return "invite " + inv.Code + " is not a federation invite yet"
	})
	return code
}

// voiceChannelOf waits until the guild has a voice channel on the client's node.
func voiceChannelOf(t testing.TB, c *testnode.Client, guildID string) string {
	return voiceChannelNamed(t, c, guildID, "")
}

// voiceChannelNamed waits until the guild has a voice channel called name ("": any) on the
// client's node.
func voiceChannelNamed(t testing.TB, c *testnode.Client, guildID, name string) string {
	t.Helper()
	var id string
	waitUntil(t, func() string {
		var chans []struct {
			ID   string `json:"id"`
			Type int    `json:"type"`
			Name string `json:"name"`
		}
		c.Must("GET", "/guilds/"+guildID+"/channels", nil, &chans)
		for _, ch := range chans {
			if ch.Type == 2 && (name == "" || ch.Name == name) {
				id = ch.ID
				return ""
			}
		}
		return fmt.Sprintf("no voice channel among %+v", chans)
	})
	return id
}

// TestVoiceCascade: Alice and Dave on node A and Bob and Carol on node B sit in the same
// voice channel of a guild homed on A. Each client speaks WebRTC to its own node only; the
// nodes' SFUs cascade, so everyone hears everyone, with one upstream per remote track per
// node (not per listener); remote members appear in VOICE_STATE_UPDATE and voice_states;
// a moderator's move shows on the other node, which drops media nobody there listens to;
// speaking and a camera cross too; and when a member leaves, and then node A goes away,
// node B shows them leaving.
func TestVoiceCascade(t *testing.T) {
	a, b := cascadeNode(t, "alpha"), cascadeNode(t, "beta")
	alice, dave := a.Register(t, "alice"), a.Register(t, "dave")
	bob, carol := b.Register(t, "bob"), b.Register(t, "carol")
	var g guild
	alice.Must("POST", "/guilds", map[string]string{"name": "Voice Across"}, &g)
	code := federatedInvite(t, alice, g.text(t))
	dave.Must("POST", "/invites/"+url.PathEscape(code), nil, nil)
	var joined struct {
		GuildID string `json:"guild_id"`
	}
	bob.Must("POST", "/invites/"+url.PathEscape(code), nil, &joined)
	carol.Must("POST", "/invites/"+url.PathEscape(code), nil, nil)
	chA := voiceChannelOf(t, alice, g.ID)
	chB := voiceChannelOf(t, bob, joined.GuildID) // the same channel, materialised on B
	var quiet struct{ ID string }
	alice.Must("POST", "/guilds/"+g.ID+"/channels", map[string]any{"name": "Quiet", "type": 2}, &quiet)
	quietB := voiceChannelNamed(t, bob, joined.GuildID, "Quiet")

	api, err := voiceclient.NewAPI()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	pkts, err := voiceclient.OpusPackets("../../voice/signal/testdata/speech.ogg")
	if err != nil {
		t.Fatal(err)
	}
	type member struct {
		name   string
		c      *testnode.Client
		gw     *testnode.Gateway
		guild  string
		ch     string
		client *voiceclient.Client
		stop   chan struct{} // ends the member's publishing
		done   chan struct{} // closed when it has ended
	}
	ms := []*member{{name: "alice", c: alice, guild: g.ID, ch: chA}, {name: "dave", c: dave, guild: g.ID, ch: chA},
		{name: "bob", c: bob, guild: joined.GuildID, ch: chB}, {name: "carol", c: carol, guild: joined.GuildID, ch: chB}}
	stop := make(chan struct{})
	var talkers sync.WaitGroup
	defer func() {
		close(stop)
		for _, m := range ms {
			if m.stop != nil {
				close(m.stop)
			}
		}
		talkers.Wait()
	}()
	for _, m := range ms {
		m.gw = m.c.Connect(-1)
	}
	for _, m := range ms {
		tok, endpoint := joinVoice(t, m.gw, m.guild, m.ch, m.name == "dave")
		m.client, err = voiceclient.Dial(ctx, endpoint, api, m.c.UserID, m.guild, tok, voiceclient.Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer m.client.Close()
		talkers.Add(1)
		m.stop, m.done = make(chan struct{}), make(chan struct{})
		go func() { defer talkers.Done(); defer close(m.done); m.client.Publish(pkts, m.stop, true) }()
	}

	// Remote members show on each node under their local IDs there, with their flags.
	ids := map[string]map[string]string{"a": {"alice": alice.UserID, "dave": dave.UserID}, "b": {"bob": bob.UserID, "carol": carol.UserID}}
	ids["b"]["alice"] = waitRemoteVoice(t, ms[2].gw, "alice@alpha", func(vs remoteVoiceState) bool { return vs.ChannelID != nil && *vs.ChannelID == chB })
	ids["b"]["dave"] = waitRemoteVoice(t, ms[2].gw, "dave@alpha", func(vs remoteVoiceState) bool {
		return vs.ChannelID != nil && *vs.ChannelID == chB && vs.SelfMute
	})
	ids["a"]["bob"] = waitRemoteVoice(t, ms[0].gw, "bob@beta", func(vs remoteVoiceState) bool { return vs.ChannelID != nil && *vs.ChannelID == chA })
	ids["a"]["carol"] = waitRemoteVoice(t, ms[0].gw, "carol@beta", func(vs remoteVoiceState) bool { return vs.ChannelID != nil && *vs.ChannelID == chA })

	// Everyone hears everyone, through their own node.
	waitUntil(t, func() string {
		var missing []string
		for _, m := range ms {
			node := "a"
			if m.guild != g.ID {
				node = "b"
			}
			for _, other := range ms {
				if other == m {
					continue
				}
				if n := m.client.ReceivedFrom(ids[node][other.name]); n < 10 {
					missing = append(missing, fmt.Sprintf("%s got %d packets from %s", m.name, n, other.name))
				}
			}
		}
		return strings.Join(missing, "; ")
	})

	// One upstream per remote track per node: two listeners on each node, two remote
	// microphones each, two upstream tracks each (not four).
	for _, n := range []*testnode.Node{a, b} {
		waitUntil(t, func() string {
			up, down := metric(t, n, "hearth_voice_cascade_upstream_tracks"), metric(t, n, "hearth_voice_cascade_downstream_tracks")
			remote := metric(t, n, "hearth_voice_cascade_remote_members")
			if up != 2 || down != 2 || remote != 2 {
				return fmt.Sprintf("node %s: %v upstream, %v downstream tracks, %v remote members; want 2, 2, 2", n.URL, up, down, remote)
			}
			return ""
		})
	}
	var gc struct {
		VoiceStates []remoteVoiceState `json:"voice_states"`
	}
	bob.Connect(-1).Wait("GUILD_CREATE").Decode(t, &gc)
	if len(gc.VoiceStates) != 4 {
		t.Fatalf("voice_states on node B: %+v", gc.VoiceStates)
	}

	// Everyone on node B deafens: B wants none of A's audio and drops both upstreams;
	// undeafened, it takes them again (VOICE-134).
	upstreamB := func(want float64) func() string {
		return func() string {
			if up := metric(t, b, "hearth_voice_cascade_upstream_tracks"); up != want {
				return fmt.Sprintf("node B has %v upstream tracks, want %v", up, want)
			}
			return ""
		}
	}
	for _, deaf := range []bool{true, false} {
		for _, m := range ms[2:] {
			m.gw.Send(map[string]any{"op": 4, "d": map[string]any{"guild_id": m.guild, "channel_id": m.ch, "self_deaf": deaf}})
		}
		if deaf {
			waitUntil(t, upstreamB(0))
		} else {
			waitUntil(t, upstreamB(2))
		}
	}

	// A moderator moves Dave to Quiet on node A: node B shows him there, and, with nobody
	// listening in Quiet on B, drops its upstream for his microphone (VOICE-134).
	alice.Must("PATCH", "/guilds/"+g.ID+"/members/"+dave.UserID, map[string]any{"channel_id": quiet.ID}, nil)
	waitRemoteVoice(t, ms[2].gw, "dave@alpha", func(vs remoteVoiceState) bool { return vs.ChannelID != nil && *vs.ChannelID == quietB })
	waitUntil(t, func() string {
		if up := metric(t, b, "hearth_voice_cascade_upstream_tracks"); up != 1 {
			return fmt.Sprintf("node B has %v upstream tracks after dave moved, want 1", up)
		}
		return ""
	})

	// Dave leaves voice: node B shows it.
	ms[1].gw.Send(map[string]any{"op": 4, "d": map[string]any{"guild_id": g.ID, "channel_id": nil}})
	waitRemoteVoice(t, ms[2].gw, "dave@alpha", func(vs remoteVoiceState) bool { return vs.ChannelID == nil })
	waitUntil(t, func() string {
		if up := metric(t, b, "hearth_voice_cascade_upstream_tracks"); up != 1 {
			return fmt.Sprintf("node B has %v upstream tracks after dave left, want 1", up)
		}
		return ""
	})

	// Speaking detected on node A reaches node B's clients (op 5): Alice stops talking, then
	// talks again.
	close(ms[0].stop)
	waitUntil(t, func() string {
		if sp := ms[2].client.Speaking(ids["b"]["alice"]); len(sp) == 0 || sp[len(sp)-1] {
			return fmt.Sprintf("bob's speaking events of alice after she went quiet: %v", sp)
		}
		return ""
	})
	<-ms[0].done // one writer at a time
	ms[0].stop = make(chan struct{})
	talkers.Add(1)
	go func() { defer talkers.Done(); ms[0].client.Publish(pkts, ms[0].stop, true) }()
	waitUntil(t, func() string {
		if sp := ms[2].client.Speaking(ids["b"]["alice"]); !sp[len(sp)-1] {
			return fmt.Sprintf("bob's speaking events of alice after she talked again: %v", sp)
		}
		return ""
	})

	// Alice's camera crosses too: Bob receives it through one more upstream track on B.
	camera, err := ms[0].client.AddVideo("camera")
	if err != nil {
		t.Fatal(err)
	}
	talkers.Add(1)
	go func() {
		defer talkers.Done()
		tick := time.NewTicker(33 * time.Millisecond)
		defer tick.Stop()
		for seq := uint16(0); ; seq++ {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			_ = camera.WriteVP8(seq, seq%15 == 0, 0)
		}
	}()
	waitUntil(t, func() string {
		n := ms[2].client.ReceivedFromSource(ids["b"]["alice"], "camera")
		if up := metric(t, b, "hearth_voice_cascade_upstream_tracks"); n < 10 || up != 2 {
			return fmt.Sprintf("bob got %d camera packets from alice; node B has %v upstream tracks, want 2", n, up)
		}
		return ""
	})

	// The home node's moderator mutes, moves and disconnects Bob, a member of node B: node B,
	// which holds Bob's PeerConnection, carries it out (VOICE-135).
	alice.Must("PATCH", "/guilds/"+g.ID+"/members/"+ids["a"]["bob"], map[string]any{"mute": true}, nil)
	mutedBob := func(vs remoteVoiceState) bool { return vs.Mute && vs.ChannelID != nil }
	waitRemoteVoice(t, ms[3].gw, "bob", mutedBob)
	waitRemoteVoice(t, ms[0].gw, "bob@beta", mutedBob)
	alice.Must("PATCH", "/guilds/"+g.ID+"/members/"+ids["a"]["bob"], map[string]any{"channel_id": quiet.ID}, nil)
	waitUntil(t, func() string {
		if sw := ms[2].client.Switched(); len(sw) != 1 || sw[0] != quietB {
			return fmt.Sprintf("bob's channel switches %v, want [%s]", sw, quietB)
		}
		return ""
	})
	alice.Must("PATCH", "/guilds/"+g.ID+"/members/"+ids["a"]["bob"], map[string]any{"channel_id": nil}, nil)
	select {
	case <-ms[2].client.Closed():
	case <-time.After(10 * time.Second):
		t.Fatal("bob's voice WebSocket still open after the home node disconnected him")
	}
	if code := ms[2].client.CloseCode(); code != 4014 {
		t.Fatalf("bob's close code %d, want 4014", code)
	}

	// Node A goes away: Alice leaves voice on node B within seconds.
	a.Stop(t)
	waitRemoteVoice(t, ms[2].gw, "alice@alpha", func(vs remoteVoiceState) bool { return vs.ChannelID == nil })
	waitUntil(t, func() string {
		if n := metric(t, b, "hearth_voice_cascade_remote_members"); n != 0 {
			return fmt.Sprintf("node B still shows %v remote members", n)
		}
		return ""
	})
}

// BenchmarkCascadeHop measures the latency that the node-to-node hop adds. Alice on node A
// publishes one audio packet every 20 ms, carrying its number; Dave on node A and Bob on
// node B receive it, each from his own node. For every packet both received, Bob's arrival
// minus Dave's is what the cascade added (A's link, the libp2p stream, B's SFU and B's
// downlink instead of A's). Clients and both nodes share the process and the machine.
//
//	go test -run XXX -bench CascadeHop -benchtime 1500x ./node/server/
func BenchmarkCascadeHop(b *testing.B) {
	a, bn := cascadeNode(b, "alpha"), cascadeNode(b, "beta")
	alice, dave, bob := a.Register(b, "alice"), a.Register(b, "dave"), bn.Register(b, "bob")
	var g guild
	alice.Must("POST", "/guilds", map[string]string{"name": "Hop"}, &g)
	var text string
	for _, c := range g.Channels {
		if c.Type == 0 {
			text = c.ID
		}
	}
	code := federatedInvite(b, alice, text)
	dave.Must("POST", "/invites/"+url.PathEscape(code), nil, nil)
	var joined struct {
		GuildID string `json:"guild_id"`
	}
	bob.Must("POST", "/invites/"+url.PathEscape(code), nil, &joined)
	chA, chB := voiceChannelOf(b, alice, g.ID), voiceChannelOf(b, bob, joined.GuildID)
	api, err := voiceclient.NewAPI()
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	const maxPackets = 1 << 20
	var mu sync.Mutex
	arrivals := map[string][]time.Time{"dave": make([]time.Time, 0), "bob": make([]time.Time, 0)}
	sentAt := make([]time.Time, 0, b.N)
	record := func(who string) func(string, string, *rtp.Packet) {
		return func(_, _ string, p *rtp.Packet) {
			if len(p.Payload) < 4 {
				return
			}
			n := int(binary.BigEndian.Uint32(p.Payload))
			now := time.Now()
			mu.Lock()
			defer mu.Unlock()
			if n >= maxPackets-1000 {
				if len(arrivals[who]) == 0 {
					arrivals[who] = append(arrivals[who], time.Time{}) // warm-up: reached
				}
				return
			}
			for len(arrivals[who]) <= n {
				arrivals[who] = append(arrivals[who], time.Time{})
			}
			arrivals[who][n] = now
		}
	}
	dial := func(c *testnode.Client, guildID, ch string, opts voiceclient.Options) *voiceclient.Client {
		tok, endpoint := joinVoice(b, c.Connect(-1), guildID, ch, false)
		vc, err := voiceclient.Dial(ctx, endpoint, api, c.UserID, guildID, tok, opts)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(vc.Close)
		return vc
	}
	ac := dial(alice, g.ID, chA, voiceclient.Options{})
	dial(dave, g.ID, chA, voiceclient.Options{OnRTP: record("dave")})
	dial(bob, joined.GuildID, chB, voiceclient.Options{OnRTP: record("bob")})
	// Warm up until both listeners receive Alice (warm-up packets carry numbers past the
	// measured ones).
	payload := make([]byte, 80)
	for w := 0; ; w++ {
		binary.BigEndian.PutUint32(payload, uint32(maxPackets-1-w))
		_ = ac.WriteAudio(payload, 20)
		time.Sleep(20 * time.Millisecond)
		mu.Lock()
		ready := len(arrivals["dave"]) > 0 && len(arrivals["bob"]) > 0
		mu.Unlock()
		if ready {
			break
		}
		if w > 500 {
			b.Fatal("the listeners never received alice")
		}
	}
	mu.Lock()
	arrivals["dave"], arrivals["bob"] = arrivals["dave"][:0], arrivals["bob"][:0]
	mu.Unlock()

	b.ResetTimer()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for i := 0; i < b.N && i < maxPackets; i++ {
		<-tick.C
		binary.BigEndian.PutUint32(payload, uint32(i))
		mu.Lock()
		sentAt = append(sentAt, time.Now())
		mu.Unlock()
		if err := ac.WriteAudio(payload, 20); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	last := len(sentAt) - 1
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) {
		mu.Lock()
		done := len(arrivals["dave"]) > last && len(arrivals["bob"]) > last && !arrivals["dave"][last].IsZero() && !arrivals["bob"][last].IsZero()
		mu.Unlock()
		if done {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	mu.Lock()
	defer mu.Unlock()
	var hop, local, remote []time.Duration
	lost := map[string]int{}
	for i, at := range sentAt {
		var d, r time.Time
		if i < len(arrivals["dave"]) {
			d = arrivals["dave"][i]
		}
		if i < len(arrivals["bob"]) {
			r = arrivals["bob"][i]
		}
		if d.IsZero() {
			lost["dave"]++
		}
		if r.IsZero() {
			lost["bob"]++
		}
		if d.IsZero() || r.IsZero() {
			continue
		}
		local, remote, hop = append(local, d.Sub(at)), append(remote, r.Sub(at)), append(hop, r.Sub(d))
	}
	if len(hop) == 0 {
		b.Fatal("no packet reached both listeners")
	}
	pct := func(ds []time.Duration, p float64) float64 {
		s := slices.Clone(ds)
		slices.Sort(s)
		return float64(s[min(len(s)-1, int(p*float64(len(s))))]) / float64(time.Millisecond)
	}
	b.ReportMetric(pct(hop, 0.5), "hop-p50-ms")
	b.ReportMetric(pct(hop, 0.99), "hop-p99-ms")
	b.ReportMetric(pct(local, 0.5), "local-p50-ms")
	b.ReportMetric(pct(local, 0.99), "local-p99-ms")
	b.ReportMetric(pct(remote, 0.5), "remote-p50-ms")
	b.ReportMetric(pct(remote, 0.99), "remote-p99-ms")
	b.ReportMetric(float64(lost["bob"])/float64(len(sentAt))*100, "remote-loss-%")
	b.ReportMetric(float64(lost["dave"])/float64(len(sentAt))*100, "local-loss-%")
}
