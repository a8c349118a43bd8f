package cascade

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/hearth-chat/hearth/voice/sfu"
)

// fakeDir is a Directory with one federated guild "G" (local "1") with voice channel "C"
// (local "10"), in which the nodes in nodes take part; user name of node p is local user
// "p/name".
type fakeDir struct{ nodes []peer.ID }

func (fakeDir) FedGuild(g string) (string, bool)   { return "G", g == "1" }
func (fakeDir) FedChannel(c string) (string, bool) { return "C", c == "10" }
func (fakeDir) LocalGuild(g string) (string, bool) { return "1", g == "G" }
func (fakeDir) LocalChannel(g, c string) (string, bool) {
	return "10", g == "G" && c == "C"
}
func (fakeDir) UserName(string) (string, bool) { return "", false }
func (fakeDir) RemoteUser(_ string, p peer.ID, name string) (string, bool) {
	return p.String() + "/" + name, true
}
func (d fakeDir) Home(string) peer.ID                { return d.nodes[0] }
func (fakeDir) LocalUser(name string) (string, bool) { return "local/" + name, true }
func (d fakeDir) Nodes(g string) []peer.ID {
	if g != "G" {
		return nil
	}
	return d.nodes
}

// events records the SFU's voice states.
type events struct {
	mu     sync.Mutex
	states map[string]sfu.State // by user
}

func (e *events) VoiceState(st sfu.State) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if st.ChannelID == "" {
		delete(e.states, st.UserID)
	} else {
		e.states[st.UserID] = st
	}
}

func (*events) Speaking(_, _, _ string, _ bool) {}

func (e *events) in(user string) (sfu.State, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	st, ok := e.states[user]
	return st, ok
}

func newHost(t *testing.T) host.Host {
	t.Helper()
	h, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"), libp2p.DisableRelay())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = h.Close() })
	return h
}

func waitFor(t *testing.T, cond func() string) {
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
		time.Sleep(10 * time.Millisecond)
	}
}

// open opens a raw cascade link from h to the node under test, as another node would.
func open(t *testing.T, h host.Host, to host.Host) network.Stream {
	t.Helper()
	h.Peerstore().AddAddrs(to.ID(), to.Addrs(), time.Hour)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s, err := h.NewStream(ctx, to.ID(), Protocol)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func send(t *testing.T, s network.Stream, typ byte, body any) {
	t.Helper()
	b, err := appendControl(nil, typ, body)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Write(b); err != nil {
		t.Fatal(err)
	}
}

var aliceInC = &stateBody{Guild: "G", Members: []memberWire{{Name: "alice", Channel: "C", Flags: flagSelfMute,
	Tracks: []trackWire{{ID: 7, Source: "microphone", Mime: "audio/opus", Clock: 48000, Channels: 2}}}}}

// TestLinkLoss checks VOICE-137 to VOICE-139 and VOICE-130 against a node's cascade, with a
// raw link standing for another node: a state shows the other node's member, an empty state
// or a silent link or a bad frame takes it out of voice, and a node that is not in the guild
// is not listened to.
func TestLinkLoss(t *testing.T) {
	hb, ha, hc := newHost(t), newHost(t), newHost(t)
	ev := &events{states: map[string]sfu.State{}}
	s, err := sfu.New(sfu.Config{Events: ev})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	c, err := New(Config{Host: hb, SFU: s, Dir: fakeDir{nodes: []peer.ID{ha.ID()}}, Timeout: 500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	alice := ha.ID().String() + "/alice"
	present := func(want bool) func() string {
		return func() string {
			st, ok := ev.in(alice)
			switch {
			case ok != want:
				return fmt.Sprintf("alice in voice: %v, want %v", ok, want)
			case ok && (st.ChannelID != "10" || st.GuildID != "1" || !st.Remote || !st.SelfMute):
				return fmt.Sprintf("alice's state %+v", st)
			}
			return ""
		}
	}

	// A state shows the member; an empty state takes it out.
	la := open(t, ha, hb)
	send(t, la, typeState, aliceInC)
	waitFor(t, present(true))
	if st := c.Stats(); st.RemoteMembers != 1 || st.Upstream != 0 {
		t.Fatalf("stats %+v", st)
	}
	send(t, la, typeState, &stateBody{Guild: "G", Members: []memberWire{}})
	waitFor(t, present(false))

	// A link that goes silent (a node that vanished) takes its members out after the timeout.
	send(t, la, typeState, aliceInC)
	waitFor(t, present(true))
	waitFor(t, present(false)) // nothing more is written on la
	_ = la.Reset()

	// A frame over the size limit ends the link, and its members leave.
	lb := open(t, ha, hb)
	send(t, lb, typeState, aliceInC)
	waitFor(t, present(true))
	if _, err := lb.Write(binary.AppendUvarint(nil, maxFrame+1)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, present(false))
	_ = lb.Reset()

	// A node that does not take part in the guild is not listened to.
	lc := open(t, hc, hb)
	defer lc.Reset()
	send(t, lc, typeState, aliceInC)
	send(t, lc, typePing, nil)
	time.Sleep(100 * time.Millisecond) // give a wrong implementation time to show it
	if _, ok := ev.in(hc.ID().String() + "/alice"); ok {
		t.Fatal("a state from a node outside the guild was shown")
	}
}

// FuzzFrames feeds arbitrary bytes to a node's cascade as another node's link: nothing may
// panic, and whatever was shown is gone once the link ends.
func FuzzFrames(f *testing.F) {
	seed, _ := appendControl(nil, typeState, aliceInC)
	seed, _ = appendControl(seed, typeSubscribe, &trackBody{Guild: "G", Track: 7, Layer: 2})
	seed, _ = appendControl(seed, typeModerate, &moderateBody{Guild: "G", Name: "alice", Disconnect: true})
	rtpFrame := append(binary.AppendUvarint(nil, 14), typeRTP, 7, 0x80, 111, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1)
	f.Add(append(seed, rtpFrame...))
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Add(append(binary.AppendUvarint(nil, 3), typeState, 0xa1, 0x01))
	s, err := sfu.New(sfu.Config{})
	if err != nil {
		f.Fatal(err)
	}
	defer s.Close()
	other := peer.ID("other")
	c := &Cascade{cfg: Config{SFU: s, Dir: fakeDir{nodes: []peer.ID{other}}, MaxQueue: 1 << 16, Timeout: time.Second, Heartbeat: time.Second},
		log: slog.New(slog.NewTextHandler(io.Discard, nil)), wake: make(chan struct{}, 1),
		dirty: map[string]bool{}, active: map[string]bool{}, peers: map[peer.ID]*peerState{}, closed: true}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	defer c.cancel()
	f.Fuzz(func(t *testing.T, data []byte) {
		c.mu.Lock()
		ps := c.peerLocked(other)
		c.mu.Unlock()
		r := bufio.NewReader(bytes.NewReader(data))
		var buf []byte
		for {
			typ, body, b, err := readFrame(r, buf)
			buf = b
			if err != nil || c.handle(ps, typ, body) != nil {
				break
			}
		}
		c.dropPeer(ps)
		if n := len(s.Participants("1", "10")); n != 0 {
			t.Fatalf("%d members left in the room after the link ended", n)
		}
	})
}
