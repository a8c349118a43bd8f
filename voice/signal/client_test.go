package signal

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/pion/interceptor"
	"github.com/pion/rtp"
	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"
)

// testClient is a Go WebRTC client that talks to the SFU only through the
// voice WebSocket, as a browser would.
type testClient struct {
	t      testing.TB
	userID string
	ws     *websocket.Conn
	wsMu   sync.Mutex
	pc     *webrtc.PeerConnection
	mic    *webrtc.TrackLocalStaticRTP
	micExt uint8 // negotiated audio-level extension ID

	mu         sync.Mutex
	answered   chan struct{}
	speaking   map[string][]bool // user -> speaking changes, in order
	trackMap   []map[string]any
	switched   []string
	closeCode  int
	closed     chan struct{}
	received   map[string]*atomic.Int64 // mid -> RTP packets received
	pcCreated  int
	readerDone sync.WaitGroup
}

func newClientAPI(t testing.TB) *webrtc.API {
	m := &webrtc.MediaEngine{}
	if err := m.RegisterCodec(webrtc.RTPCodecParameters{RTPCodecCapability: webrtc.RTPCodecCapability{
		MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2, SDPFmtpLine: "minptime=10;useinbandfec=1;usedtx=1",
	}, PayloadType: 111}, webrtc.RTPCodecTypeAudio); err != nil {
		t.Fatal(err)
	}
	if err := m.RegisterCodec(webrtc.RTPCodecParameters{RTPCodecCapability: webrtc.RTPCodecCapability{
		MimeType: webrtc.MimeTypeVP8, ClockRate: 90000,
		RTCPFeedback: []webrtc.RTCPFeedback{{Type: "nack"}, {Type: "nack", Parameter: "pli"}},
	}, PayloadType: 96}, webrtc.RTPCodecTypeVideo); err != nil {
		t.Fatal(err)
	}
	if err := m.RegisterHeaderExtension(webrtc.RTPHeaderExtensionCapability{URI: sdp.AudioLevelURI},
		webrtc.RTPCodecTypeAudio); err != nil {
		t.Fatal(err)
	}
	reg := &interceptor.Registry{}
	if err := webrtc.RegisterDefaultInterceptors(m, reg); err != nil {
		t.Fatal(err)
	}
	se := webrtc.SettingEngine{}
	se.SetIncludeLoopbackCandidate(true)
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	se.SetIPFilter(func(ip net.IP) bool { return ip.IsLoopback() })
	return webrtc.NewAPI(webrtc.WithMediaEngine(m), webrtc.WithInterceptorRegistry(reg), webrtc.WithSettingEngine(se))
}

func dialVoice(t testing.TB, srv *httptest.Server) *websocket.Conn {
	t.Helper()
	ws, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(srv.URL, "http")+"/voice", nil)
	if err != nil {
		t.Fatal(err)
	}
	return ws
}

// connect identifies with tok, publishes a microphone and completes the
// first offer/answer.
func connect(t testing.TB, srv *httptest.Server, api *webrtc.API, userID, guildID, tok string) *testClient {
	t.Helper()
	c := &testClient{t: t, userID: userID, ws: dialVoice(t, srv), answered: make(chan struct{}, 16),
		speaking: map[string][]bool{}, closed: make(chan struct{}), received: map[string]*atomic.Int64{}}
	if f := c.readFrame(); f.Op != OpHello {
		t.Fatalf("first frame op %d, want Hello", f.Op)
	}
	c.sendOp(OpIdentify, identify{ServerID: guildID, UserID: userID, SessionID: "gw-" + userID, Token: tok})
	if f := c.readFrame(); f.Op != OpReady {
		t.Fatalf("after Identify got op %d, want Ready", f.Op)
	}
	pc, err := api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	c.pc = pc
	c.mic, err = webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus,
		ClockRate: 48000, Channels: 2}, "mic", userID)
	if err != nil {
		t.Fatal(err)
	}
	sender, err := pc.AddTrack(c.mic)
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		buf := make([]byte, 1500)
		for {
			if _, _, err := sender.Read(buf); err != nil {
				return
			}
		}
	}()
	pc.OnTrack(func(tr *webrtc.TrackRemote, r *webrtc.RTPReceiver) {
		mid := ""
		for _, x := range pc.GetTransceivers() {
			if x.Receiver() == r {
				mid = x.Mid()
			}
		}
		c.mu.Lock()
		n := c.received[mid]
		if n == nil {
			n = &atomic.Int64{}
			c.received[mid] = n
		}
		c.mu.Unlock()
		buf := make([]byte, 1500)
		for {
			if _, _, err := tr.Read(buf); err != nil {
				return
			}
			n.Add(1)
		}
	})
	offer, err := pc.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	gathered := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(offer); err != nil {
		t.Fatal(err)
	}
	<-gathered
	c.sendOp(OpSelectProtocol, selectProtocol{Protocol: "webrtc",
		Data: sessionDesc{Type: "offer", SDP: pc.LocalDescription().SDP}})
	c.readerDone.Add(1)
	go c.readLoop()
	c.waitAnswer()
	for _, e := range sender.GetParameters().HeaderExtensions {
		if e.URI == sdp.AudioLevelURI {
			c.micExt = uint8(e.ID)
		}
	}
	return c
}

func (c *testClient) waitAnswer() {
	select {
	case <-c.answered:
	case <-time.After(10 * time.Second):
		c.t.Fatal("no session description")
	}
}

func (c *testClient) sendOp(op int, d any) {
	c.wsMu.Lock()
	defer c.wsMu.Unlock()
	_ = c.ws.WriteJSON(map[string]any{"op": op, "d": d})
}

func (c *testClient) readFrame() Frame {
	c.t.Helper()
	_ = c.ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, b, err := c.ws.ReadMessage()
	if err != nil {
		c.t.Fatalf("read: %v", err)
	}
	f, err := decodeFrame(b)
	if err != nil {
		c.t.Fatal(err)
	}
	return f
}

// readLoop handles server messages until the connection closes.
func (c *testClient) readLoop() {
	defer c.readerDone.Done()
	defer close(c.closed)
	for {
		_ = c.ws.SetReadDeadline(time.Time{})
		_, b, err := c.ws.ReadMessage()
		if err != nil {
			var ce *websocket.CloseError
			if errors.As(err, &ce) {
				c.mu.Lock()
				c.closeCode = ce.Code
				c.mu.Unlock()
			}
			return
		}
		f, err := decodeFrame(b)
		if err != nil {
			continue
		}
		switch f.Op {
		case OpSessionDesc:
			var sd sessionDesc
			_ = json.Unmarshal(f.D, &sd)
			if c.pc.SignalingState() != webrtc.SignalingStateHaveLocalOffer {
				continue // an answer to a test's raw offer
			}
			if err := c.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: sd.SDP}); err != nil {
				c.t.Errorf("%s: set answer: %v", c.userID, err)
			}
			c.answered <- struct{}{}
		case OpServerOffer:
			var sd sessionDesc
			_ = json.Unmarshal(f.D, &sd)
			if err := c.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: sd.SDP}); err != nil {
				c.t.Errorf("%s: set offer: %v", c.userID, err)
				continue
			}
			ans, err := c.pc.CreateAnswer(nil)
			if err == nil {
				err = c.pc.SetLocalDescription(ans)
			}
			if err != nil {
				c.t.Errorf("%s: answer: %v", c.userID, err)
				continue
			}
			c.sendOp(OpClientAnswer, sessionDesc{Type: "answer", SDP: ans.SDP, Revision: sd.Revision})
		case OpICECandidate:
			var ic iceCandidate
			_ = json.Unmarshal(f.D, &ic)
			if ic.Candidate != "" {
				_ = c.pc.AddICECandidate(webrtc.ICECandidateInit{Candidate: ic.Candidate, SDPMid: ic.SDPMid, SDPMLineIndex: ic.SDPMLineIndex})
			}
		case OpSpeaking:
			var sp struct {
				UserID   string `json:"user_id"`
				Speaking int    `json:"speaking"`
			}
			_ = json.Unmarshal(f.D, &sp)
			c.mu.Lock()
			c.speaking[sp.UserID] = append(c.speaking[sp.UserID], sp.Speaking == 1)
			c.mu.Unlock()
		case OpTrackMap:
			var tm struct {
				Tracks []map[string]any `json:"tracks"`
			}
			_ = json.Unmarshal(f.D, &tm)
			c.mu.Lock()
			c.trackMap = tm.Tracks
			c.mu.Unlock()
		case OpChannelSwitched:
			var cs struct {
				ChannelID string `json:"channel_id"`
			}
			_ = json.Unmarshal(f.D, &cs)
			c.mu.Lock()
			c.switched = append(c.switched, cs.ChannelID)
			c.mu.Unlock()
		}
	}
}

// receivedFrom returns how many packets arrived on the tracks that the
// track map says come from userID.
func (c *testClient) receivedFrom(userID string) int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	var n int64
	for _, tr := range c.trackMap {
		if tr["user_id"] == userID {
			if r := c.received[fmt.Sprint(tr["mid"])]; r != nil {
				n += r.Load()
			}
		}
	}
	return n
}

func (c *testClient) totalReceived() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	var n int64
	for _, r := range c.received {
		n += r.Load()
	}
	return n
}

func (c *testClient) speakingOf(userID string) []bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]bool(nil), c.speaking[userID]...)
}

func (c *testClient) close() {
	_ = c.pc.Close()
	_ = c.ws.Close()
	c.readerDone.Wait()
}

// opusPackets returns the Opus packets of an Ogg Opus file, without the
// two header packets (RFC 7845).
func opusPackets(t testing.TB, path string) [][]byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var pkts [][]byte
	var cur []byte
	for len(b) >= 27 {
		if string(b[:4]) != "OggS" {
			t.Fatal("bad ogg page")
		}
		nseg := int(b[26])
		table := b[27 : 27+nseg]
		data := b[27+nseg:]
		off := 0
		for _, l := range table {
			cur = append(cur, data[off:off+int(l)]...)
			off += int(l)
			if l < 255 {
				pkts = append(pkts, cur)
				cur = nil
			}
		}
		b = data[off:]
	}
	if len(pkts) < 3 {
		t.Fatal("no opus packets")
	}
	return pkts[2:]
}

// publish sends the packets as 20 ms RTP frames with an audio level taken
// from the frame size (Go has no Opus decoder: the tone's frames are large,
// the silence's under 50 bytes), until stop is closed. It loops over the file.
func (c *testClient) publish(pkts [][]byte, stop <-chan struct{}, loudOnly bool) {
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	var seq uint16
	var ts uint32
	for i := 0; ; i++ {
		select {
		case <-stop:
			return
		case <-tick.C:
		}
		p := pkts[i%len(pkts)]
		level := byte(127)
		if len(p) > 60 || loudOnly {
			level = 20
		}
		pkt := &rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 111, SequenceNumber: seq, Timestamp: ts, SSRC: 1}, Payload: p}
		if c.micExt != 0 {
			_ = pkt.Header.SetExtension(c.micExt, []byte{level})
		}
		seq++
		ts += 960
		_ = c.mic.WriteRTP(pkt)
	}
}
