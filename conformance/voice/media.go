package voice

import (
	"bytes"
	"cmp"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/interceptor"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/rtp/codecs"
	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"

	"github.com/hearth-chat/hearth/conformance/harness"
)

// The suite's own WebRTC voice client, written from spec/voice.md alone (it
// imports nothing of the reference implementation). It joins through gateway
// op 4 and the voice WebSocket, makes one PeerConnection (trickling its ICE
// candidates with op 103), answers Server Offers, publishes a microphone with
// the RFC 6464 audio level and, on demand, VP8 video, and records what it
// receives.
//
// Every packet a client sends carries, at the end of its payload, a trailer
// the receiving client reads back: "HC", the sender's tag, a phase byte (a
// test's stage, or the simulcast layer of video) and the sender's own packet
// counter. So a test knows whose packet arrived, from which stage, and
// whether the sender wrote it after some event, without trusting the SFU's
// Track Map or its rewritten sequence numbers.

// More voice opcodes (spec/voice.md §3.1).
const (
	opSpeaking       = 5
	opServerOffer    = 100
	opClientAnswer   = 101
	opClientOffer    = 102
	opICECandidate   = 103
	opLayerRequest   = 104
	opWatch          = 108
	opClientsConnect = 11
)

const trailerLen = 2 + 6 + 1 + 4

// rx is one received RTP packet.
type rx struct {
	Mid   string
	SSRC  uint32
	Seq   uint16
	TS    uint32
	From  string // sender's tag ("" when the payload has no trailer)
	Phase byte
	N     uint32 // sender's packet counter
	Key   bool   // a VP8 key frame
	At    time.Time
	// Video only: the marker bit; the VP8 payload after the payload
	// descriptor, its size and CRC-32; the dimensions a key frame's first
	// packet declares (else 0).
	Marker bool
	Size   int
	Sum    uint32
	W, H   int
}

// speakEvent is one Speaking (5) received.
type speakEvent struct {
	User string
	On   bool
	At   time.Time
}

// mediaOpts tune a mediaClient.
type mediaOpts struct {
	// Video sets "video": true in Identify.
	Video bool
	// ManualOffers leaves Server Offers (100) unanswered for the test to
	// answer with answerOffer.
	ManualOffers bool
	// NoHeartbeat sends no Heartbeat (3).
	NoHeartbeat bool
	// Silent publishes no audio until setLevel is called.
	Silent bool
}

// mediaClient is one member in voice with a connected PeerConnection.
type mediaClient struct {
	t    *T
	User *harness.User
	S    *harness.Session // the member's gateway session
	Srv  server           // the VOICE_SERVER_UPDATE it joined with
	Tag  string           // written into every payload it sends
	opts mediaOpts

	gwMu sync.Mutex
	vg   *harness.Gateway // replaced by reconnect
	hb   time.Duration

	api      *webrtc.API
	pc       *webrtc.PeerConnection
	mic      *webrtc.TrackLocalStaticRTP
	micSSRC  atomic.Uint32
	levelExt uint8
	sig      sync.Mutex // serialises offers and answers on pc

	// Publishing state: the audio levels written in turn (-1 sends nothing,
	// as DTX; else the RFC 6464 level).
	levels   atomic.Pointer[[]int32]
	phase    atomic.Uint32
	n        atomic.Uint32 // packets written
	lastLoud atomic.Int64  // unix nanos of the last loud packet written
	ts, tick uint32        // publish goroutine only
	writes   []int64       // unix nanos each packet was written, by counter - 1 (under mu)
	vwrites  []vwrite      // video packets written (under mu)

	mu          sync.Mutex
	rxs         []rx
	tracks      map[string]Obj // mid → Track Map entry
	trackMaps   int
	speaks      []speakEvent
	offers      []Obj // Server Offers (100) received
	answers     int   // Session Descriptions (4) received
	states      []webrtc.PeerConnectionState
	rrSeq       map[uint32]uint32      // SSRC → highest extended sequence number the SFU reported
	plis        map[uint32]int         // SSRC → PLI/FIR count
	pliAt       map[uint32][]time.Time // SSRC → when each PLI/FIR came
	keyWanted   map[uint32]bool        // SSRC → next packet is a key frame
	candidates  []string               // local candidates not yet sent
	offerSent   bool
	manual      atomic.Bool // Server Offers are left to the test
	answeredRev float64     // the revision of the last Server Offer answered (under sig)
	switched    []time.Time // when each Channel Switched (107) arrived
	nonce       atomic.Int64

	stop chan struct{}
	wg   sync.WaitGroup
}

// newAPI is the client's pion API: Opus with the audio-level extension, VP8
// with NACK and PLI, the simulcast and transport-wide-cc extensions, pion's
// default interceptors (NACK, RTCP reports, TWCC feedback), UDP host
// candidates including loopback.
func newAPI(t *T) *webrtc.API {
	m := &webrtc.MediaEngine{}
	must := func(err error) {
		if err != nil {
			t.Fatalf("pion: %v", err)
		}
	}
	must(m.RegisterCodec(webrtc.RTPCodecParameters{RTPCodecCapability: webrtc.RTPCodecCapability{
		MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2, SDPFmtpLine: "minptime=10;useinbandfec=1",
	}, PayloadType: 111}, webrtc.RTPCodecTypeAudio))
	must(m.RegisterCodec(webrtc.RTPCodecParameters{RTPCodecCapability: webrtc.RTPCodecCapability{
		MimeType: webrtc.MimeTypeVP8, ClockRate: 90000,
		RTCPFeedback: []webrtc.RTCPFeedback{{Type: "nack"}, {Type: "nack", Parameter: "pli"}, {Type: "transport-cc"}},
	}, PayloadType: 96}, webrtc.RTPCodecTypeVideo))
	must(m.RegisterHeaderExtension(webrtc.RTPHeaderExtensionCapability{URI: sdp.AudioLevelURI}, webrtc.RTPCodecTypeAudio))
	reg := &interceptor.Registry{}
	must(webrtc.RegisterDefaultInterceptors(m, reg))
	se := webrtc.SettingEngine{}
	se.SetIncludeLoopbackCandidate(true)
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	se.SetIPFilter(func(ip net.IP) bool { return ip.To4() != nil })
	return webrtc.NewAPI(webrtc.WithMediaEngine(m), webrtc.WithInterceptorRegistry(reg), webrtc.WithSettingEngine(se))
}

// voiceURL is the endpoint of a VOICE_SERVER_UPDATE reached at node's own
// address (the suite talks to 127.0.0.1 whatever public URL a node has).
func voiceURL(node *harness.Node, endpoint string) string {
	u := endpoint
	if i := strings.Index(u, "://"); i >= 0 {
		rest := u[i+3:]
		path := ""
		if j := strings.IndexByte(rest, '/'); j >= 0 {
			path = rest[j:]
		}
		u = node.WSURL() + path
	}
	if !strings.Contains(u, "?") {
		u += "?v=1"
	}
	return u
}

// dialHello opens the voice WebSocket of s's node at endpoint and returns it
// with Hello's heartbeat interval.
func dialHello(t *T, s *harness.Session, endpoint string) (*harness.Gateway, time.Duration) {
	g := t.DialURL(voiceURL(s.User.Node, endpoint))
	f, err := g.Next(t.Timeout())
	if err != nil || f.Op != opHello {
		t.Fatalf("voice WebSocket: expected Hello (8) first, got %s (%v)", f, err)
	}
	return g, time.Duration(harness.Num(f.Obj()["heartbeat_interval"])) * time.Millisecond
}

// enterVoice makes s's user join channel of guild with op 4, identify on the
// voice WebSocket, negotiate and connect ICE. It returns once the
// PeerConnection is connected; the client is closed after the test.
func enterVoice(t *T, s *harness.Session, guild, channel string, o mediaOpts) *mediaClient {
	srv := join(t, s, guild, channel)
	var tag [3]byte
	_, _ = rand.Read(tag[:])
	c := &mediaClient{t: t, User: s.User, S: s, Srv: srv, Tag: hex.EncodeToString(tag[:]), opts: o,
		tracks: map[string]Obj{}, rrSeq: map[uint32]uint32{}, plis: map[uint32]int{}, pliAt: map[uint32][]time.Time{}, keyWanted: map[uint32]bool{},
		stop: make(chan struct{})}
	if o.Silent {
		c.setLevel(-1)
	} else {
		c.setLevel(127)
	}
	c.manual.Store(o.ManualOffers)
	t.Cleanup(c.close)
	vg, hb := dialHello(t, s, srv.Endpoint)
	c.vg, c.hb = vg, hb
	d := identify(s, srv, s.User.ID)
	if o.Video {
		d["video"] = true
	}
	send(t, vg, opIdentify, d)
	if f, err := vg.WaitOp(t.Timeout(), opReady); err != nil {
		t.Fatalf("voice Identify of %s: expected Ready (2), got %v (%s)", s.User.Name, err, f)
	}
	c.api = newAPI(t)
	pc, err := c.api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatalf("pion: %v", err)
	}
	c.pc = pc
	c.mic, err = webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2}, "mic", "cf-"+c.Tag)
	if err != nil {
		t.Fatalf("pion: %v", err)
	}
	sender, err := pc.AddTrack(c.mic)
	if err != nil {
		t.Fatalf("pion: %v", err)
	}
	c.readRTCP(sender, "")
	pc.OnTrack(c.onTrack)
	pc.OnConnectionStateChange(func(st webrtc.PeerConnectionState) {
		c.mu.Lock()
		c.states = append(c.states, st)
		c.mu.Unlock()
	})
	pc.OnICECandidate(c.onCandidate)
	c.sig.Lock()
	offer, err := pc.CreateOffer(nil)
	if err == nil {
		err = pc.SetLocalDescription(offer)
	}
	c.sig.Unlock()
	if err != nil {
		t.Fatalf("pion: %v", err)
	}
	mid := ""
	for _, tr := range pc.GetTransceivers() {
		if tr.Sender() == sender {
			mid = tr.Mid()
		}
	}
	// The offer goes without candidates; they follow on op 103.
	c.sendOp(opSelectProtocol, Obj{"protocol": "webrtc", "data": Obj{"sdp": offer.SDP, "type": "offer", "sources": Obj{mid: "microphone"}}})
	c.flushCandidates()
	c.wg.Add(1)
	go c.loop()
	c.waitConnected("the first negotiation of " + s.User.Name)
	for _, e := range sender.GetParameters().HeaderExtensions {
		if e.URI == sdp.AudioLevelURI {
			c.levelExt = uint8(e.ID)
		}
	}
	if ps := sender.GetParameters().Encodings; len(ps) > 0 {
		c.micSSRC.Store(uint32(ps[0].SSRC))
	}
	if c.levelExt == 0 {
		t.Errorf("VOICE-061: the answer did not negotiate the audio-level extension for %s's microphone", s.User.Name)
	}
	if !o.NoHeartbeat {
		c.wg.Add(1)
		go c.heartbeat()
	}
	c.wg.Add(1)
	go c.publish()
	return c
}

// waitConnected waits until the PeerConnection is connected.
func (c *mediaClient) waitConnected(what string) {
	c.t.Eventually(what+": the PeerConnection connects", func() error {
		if st := c.pc.ConnectionState(); st != webrtc.PeerConnectionStateConnected {
			if code, err := c.gw().WaitClose(0); err == nil {
				return harness.Permanent(fmt.Errorf("the voice WebSocket closed with %d", code))
			}
			return fmt.Errorf("state %s", st)
		}
		return nil
	})
}

func (c *mediaClient) gw() *harness.Gateway {
	c.gwMu.Lock()
	defer c.gwMu.Unlock()
	return c.vg
}

func (c *mediaClient) sendOp(op int, d any) { _ = c.gw().Send(op, d) }

func (c *mediaClient) onCandidate(cand *webrtc.ICECandidate) {
	s := "" // the end of gathering
	if cand != nil {
		s = cand.ToJSON().Candidate
	}
	c.mu.Lock()
	if !c.offerSent {
		c.candidates = append(c.candidates, s)
		c.mu.Unlock()
		return
	}
	c.mu.Unlock()
	c.sendCandidate(s)
}

func (c *mediaClient) sendCandidate(s string) {
	c.sendOp(opICECandidate, Obj{"candidate": s, "sdp_mid": "0", "sdp_mline_index": 0})
}

// flushCandidates sends the candidates gathered before the first offer went out.
func (c *mediaClient) flushCandidates() {
	c.mu.Lock()
	c.offerSent = true
	q := c.candidates
	c.candidates = nil
	c.mu.Unlock()
	for _, s := range q {
		c.sendCandidate(s)
	}
}

// loop handles the server's frames until the client closes; tests read
// the same frames with c.gw().Frames().
func (c *mediaClient) loop() {
	defer c.wg.Done()
	for {
		select {
		case <-c.stop:
			return
		default:
		}
		f, err := c.gw().Next(200 * time.Millisecond)
		if err != nil {
			if _, closed := c.gw().WaitClose(0); closed == nil {
				// Closed: wait for a reconnect or the end.
				select {
				case <-c.stop:
					return
				case <-time.After(50 * time.Millisecond):
				}
			}
			continue
		}
		c.handle(f)
	}
}

func (c *mediaClient) handle(f harness.Frame) {
	d := f.Obj()
	switch f.Op {
	case opSessionDesc:
		c.sig.Lock()
		if c.pc.SignalingState() == webrtc.SignalingStateHaveLocalOffer {
			if err := c.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: str(d["sdp"])}); err != nil && c.pc.SignalingState() != webrtc.SignalingStateClosed {
				c.t.Errorf("the Session Description (4) for %s does not apply: %v", c.User.Name, err)
			}
		}
		c.sig.Unlock()
		c.mu.Lock()
		c.answers++
		c.mu.Unlock()
	case opServerOffer:
		c.mu.Lock()
		c.offers = append(c.offers, d)
		c.mu.Unlock()
		if !c.manual.Load() {
			c.answerOffer(d)
		}
	case opICECandidate:
		if cand := str(d["candidate"]); cand != "" {
			init := webrtc.ICECandidateInit{Candidate: cand}
			if m, ok := d["sdp_mid"].(string); ok {
				init.SDPMid = &m
			}
			if i := harness.Num(d["sdp_mline_index"]); i >= 0 {
				x := uint16(i)
				init.SDPMLineIndex = &x
			}
			_ = c.pc.AddICECandidate(init)
		}
	case opTrackMap:
		m := map[string]Obj{}
		list, _ := d["tracks"].([]any)
		for _, e := range list {
			if o, ok := e.(Obj); ok {
				m[str(o["mid"])] = o
			}
		}
		c.mu.Lock()
		c.tracks = m
		c.trackMaps++
		c.mu.Unlock()
	case opChannelSwitchd:
		c.mu.Lock()
		c.switched = append(c.switched, time.Now())
		c.mu.Unlock()
	case opSpeaking:
		c.mu.Lock()
		c.speaks = append(c.speaks, speakEvent{User: str(d["user_id"]), On: harness.Num(d["speaking"]) > 0, At: time.Now()})
		c.mu.Unlock()
	}
}

// answerOffer answers a Server Offer (100) unless it answered it already.
func (c *mediaClient) answerOffer(d Obj) {
	c.sig.Lock()
	defer c.sig.Unlock()
	rev := harness.Num(d["revision"])
	if rev <= c.answeredRev {
		return // answered already
	}
	c.answeredRev = rev
	if c.pc.SignalingState() == webrtc.SignalingStateClosed {
		return // the session ended (pion closes the PeerConnection when the SFU ends DTLS)
	}
	if st := c.pc.SignalingState(); st != webrtc.SignalingStateStable {
		// pion cannot roll a local offer back, so the client never applies an
		// offer that may meet glare (see clientOffer).
		var ops []int
		for _, f := range c.gw().Frames() {
			ops = append(ops, f.Op)
		}
		c.t.Errorf("%s: a Server Offer (revision %v) while the signaling state is %s (frames %v)", c.User.Name, rev, st, ops)
		return
	}
	if err := c.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: str(d["sdp"])}); err != nil {
		if c.pc.SignalingState() != webrtc.SignalingStateClosed {
			c.t.Errorf("the Server Offer (100) to %s does not apply: %v", c.User.Name, err)
		}
		return
	}
	ans, err := c.pc.CreateAnswer(nil)
	if err == nil {
		err = c.pc.SetLocalDescription(ans)
	}
	if err != nil {
		if c.pc.SignalingState() != webrtc.SignalingStateClosed {
			c.t.Errorf("answering the Server Offer: %v", err)
		}
		return
	}
	c.sendOp(opClientAnswer, Obj{"type": "answer", "sdp": ans.SDP, "revision": d["revision"]})
}

// setManual leaves Server Offers to the test (true) or answers them (false),
// the last one received at once.
func (c *mediaClient) setManual(manual bool) {
	c.manual.Store(manual)
	if l := c.serverOffers(); !manual && len(l) > 0 {
		c.answerOffer(l[len(l)-1])
	}
}

// clientOffer sends a Client Offer (102) naming the sources of the given
// transceivers; the loop applies the answer (4). With glare false the offer
// is never applied locally: pion cannot roll back a local offer, so this is
// how the client "rolls back" an offer the server ignores (VOICE-053).
func (c *mediaClient) clientOffer(sources map[*webrtc.RTPTransceiver]string, glare bool) {
	c.sig.Lock()
	defer c.sig.Unlock()
	offer, err := c.pc.CreateOffer(nil)
	if err == nil && !glare {
		err = c.pc.SetLocalDescription(offer)
	}
	if err != nil {
		c.t.Fatalf("pion: client offer: %v", err)
	}
	named := Obj{}
	for tr, src := range sources {
		named[tr.Mid()] = src
	}
	c.sendOp(opClientOffer, Obj{"type": "offer", "sdp": offer.SDP, "sources": named})
}

// answerCount is how many Session Descriptions (4) c received.
func (c *mediaClient) answerCount() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.answers
}

func (c *mediaClient) heartbeat() {
	defer c.wg.Done()
	tk := time.NewTicker(max(c.hb/3, 100*time.Millisecond))
	defer tk.Stop()
	for {
		select {
		case <-c.stop:
			return
		case <-tk.C:
			c.sendOp(opHeartbeat, Obj{"t": time.Now().UnixMilli()})
		}
	}
}

// publish writes one 20 ms Opus frame per tick at the current level.
func (c *mediaClient) publish() {
	defer c.wg.Done()
	tk := time.NewTicker(20 * time.Millisecond)
	defer tk.Stop()
	for {
		select {
		case <-c.stop:
			return
		case <-tk.C:
		}
		levels := *c.levels.Load()
		lv := levels[int(c.tick)%len(levels)]
		c.tick++
		c.ts += 960
		if lv < 0 {
			continue // DTX: nothing to send
		}
		n := c.n.Add(1)
		payload := append([]byte{0xfc}, c.trailer(byte(c.phase.Load()), n)...)
		p := &rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 111, SequenceNumber: uint16(n), Timestamp: c.ts}, Payload: payload}
		if c.levelExt != 0 {
			ext, _ := rtp.AudioLevelExtension{Level: uint8(lv), Voice: lv < 127}.Marshal()
			_ = p.Header.SetExtension(c.levelExt, ext)
		}
		// Times are taken before the write, so that "written after t" is
		// never claimed for a packet that left earlier.
		now := time.Now().UnixNano()
		c.mu.Lock()
		c.writes = append(c.writes, now)
		c.mu.Unlock()
		if lv < 50 {
			c.lastLoud.Store(now)
		}
		_ = c.mic.WriteRTP(p)
	}
}

// trailer is what the client appends to every payload.
func (c *mediaClient) trailer(phase byte, n uint32) []byte { return trailer(c.Tag, phase, n) }

// trailer is the end of every payload a sender tagged tag writes.
func trailer(hexTag string, phase byte, n uint32) []byte {
	tag, _ := hex.DecodeString(hexTag)
	b := make([]byte, 0, trailerLen)
	b = append(b, 'H', 'C')
	b = append(b, tag...)
	b = append(b, 0, 0, 0) // tag is 3 bytes; pad to 6
	b = append(b, phase)
	return binary.BigEndian.AppendUint32(b, n)
}

func parseTrailer(p []byte) (from string, phase byte, n uint32, ok bool) {
	if len(p) < trailerLen {
		return "", 0, 0, false
	}
	tr := p[len(p)-trailerLen:]
	if tr[0] != 'H' || tr[1] != 'C' {
		return "", 0, 0, false
	}
	return hex.EncodeToString(tr[2:5]), tr[8], binary.BigEndian.Uint32(tr[9:]), true
}

// setLevel sets the audio level of the packets published from now on: 0 is
// loudest, 127 silence, -1 sends nothing (DTX).
func (c *mediaClient) setLevel(l int32) { c.setLevels(l) }

// setLevels makes the packets published from now on take levels in turn.
func (c *mediaClient) setLevels(l ...int32) { c.levels.Store(&l) }

// writtenAt is when c wrote its packet with counter n (zero if not yet).
func (c *mediaClient) writtenAt(n uint32) time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	if n == 0 || int(n) > len(c.writes) {
		return time.Time{}
	}
	return time.Unix(0, c.writes[n-1])
}

// waitWritten waits until c has written k more packets than now.
func (c *mediaClient) waitWritten(k uint32) {
	want := c.n.Load() + k
	c.t.Eventually(fmt.Sprintf("%s writes %d packets", c.User.Name, k), func() error {
		if n := c.n.Load(); n < want {
			return fmt.Errorf("%d of %d written", n, want)
		}
		return nil
	})
}

// setPhase sets the phase byte of the packets published from now on.
func (c *mediaClient) setPhase(p byte) { c.phase.Store(uint32(p)) }

func (c *mediaClient) onTrack(tr *webrtc.TrackRemote, r *webrtc.RTPReceiver) {
	mid := ""
	for _, x := range c.pc.GetTransceivers() {
		if x.Receiver() == r {
			mid = x.Mid()
		}
	}
	video := tr.Kind() == webrtc.RTPCodecTypeVideo
	for { // pion's goroutine: ends when the PeerConnection closes
		p, _, err := tr.ReadRTP()
		if err != nil {
			return
		}
		e := rx{Mid: mid, SSRC: p.SSRC, Seq: p.SequenceNumber, TS: p.Timestamp, At: time.Now()}
		e.From, e.Phase, e.N, _ = parseTrailer(p.Payload)
		if video && len(p.Payload) > 1 {
			e.Key = p.Payload[1]&1 == 0
			var vp codecs.VP8Packet
			if _, err := vp.Unmarshal(p.Payload); err == nil {
				e.Marker, e.Size, e.Sum = p.Marker, len(vp.Payload), crc32.ChecksumIEEE(vp.Payload)
				if vp.S == 1 && vp.PID == 0 {
					e.W, e.H = vp8Size(vp.Payload)
				}
			}
		}
		c.mu.Lock()
		if len(c.rxs) < 200000 {
			c.rxs = append(c.rxs, e)
		}
		c.mu.Unlock()
	}
}

// readRTCP records what the SFU reports on one sender (one simulcast layer
// with rid): receiver reports and key-frame requests.
func (c *mediaClient) readRTCP(s *webrtc.RTPSender, rid string) {
	go func() { // ends when the PeerConnection closes
		for {
			read := s.ReadRTCP
			if rid != "" {
				read = func() ([]rtcp.Packet, interceptor.Attributes, error) { return s.ReadSimulcastRTCP(rid) }
			}
			pkts, _, err := read()
			if err != nil {
				return
			}
			c.mu.Lock()
			for _, p := range pkts {
				switch p := p.(type) {
				case *rtcp.ReceiverReport:
					for _, r := range p.Reports {
						c.rrSeq[r.SSRC] = max(c.rrSeq[r.SSRC], r.LastSequenceNumber)
					}
				case *rtcp.PictureLossIndication:
					c.keyRequested(p.MediaSSRC)
				case *rtcp.FullIntraRequest:
					for _, e := range p.FIR {
						c.keyRequested(e.SSRC)
					}
				}
			}
			c.mu.Unlock()
		}
	}()
}

// keyRequested records a PLI or FIR for ssrc (under mu).
func (c *mediaClient) keyRequested(ssrc uint32) {
	c.plis[ssrc]++
	c.pliAt[ssrc] = append(c.pliAt[ssrc], time.Now())
	c.keyWanted[ssrc] = true
}

// received returns the packets received so far that match.
func (c *mediaClient) received(match func(rx) bool) []rx {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []rx
	for _, e := range c.rxs {
		if match == nil || match(e) {
			out = append(out, e)
		}
	}
	return out
}

// from matches packets written by sender (in a phase, or any with phase < 0).
func from(sender *mediaClient, phase int) func(rx) bool {
	return func(e rx) bool { return e.From == sender.Tag && (phase < 0 || int(e.Phase) == phase) }
}

// waitReceive waits until c has received a packet matching.
func (c *mediaClient) waitReceive(what string, match func(rx) bool) rx {
	var got rx
	c.t.Eventually(what, func() error {
		if l := c.received(match); len(l) > 0 {
			got = l[0]
			return nil
		}
		return fmt.Errorf("not received (%d packets in all)", len(c.received(nil)))
	})
	return got
}

// betweenPhases is the phase of packets a test makes no claim about.
const betweenPhases = 255

// endPhase ends the current phase (later packets are betweenPhases) and
// waits until the SFU has read every packet of it: a packet of the phase
// that the publisher had built but not yet written is covered too.
func (c *mediaClient) endPhase(what string) {
	c.setPhase(betweenPhases)
	c.waitSFURead(what)
}

// waitSFURead waits until the SFU's receiver reports on c's microphone say
// it has read every packet c has written so far: the sentinel that lets a
// test say a packet was dropped rather than not yet forwarded.
func (c *mediaClient) waitSFURead(what string) {
	written := c.n.Load() // the sequence number of the last packet written
	c.t.Eventually(what+": the SFU's receiver reports cover the packets written", func() error {
		c.mu.Lock()
		got := c.rrSeq[c.micSSRC.Load()]
		c.mu.Unlock()
		if got >= written {
			return nil
		}
		return fmt.Errorf("highest sequence number reported %d, last written %d", got, written)
	})
}

// speaking returns the Speaking (5) events received about user.
func (c *mediaClient) speaking(user string) []speakEvent {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []speakEvent
	for _, e := range c.speaks {
		if e.User == user {
			out = append(out, e)
		}
	}
	return out
}

// waitSpeaking waits for a Speaking (5) about user with state on, after
// index skip of that user's events; it returns its index.
func (c *mediaClient) waitSpeaking(what, user string, on bool, skip int) int {
	idx := -1
	c.t.Eventually(what, func() error {
		l := c.speaking(user)
		for i := skip; i < len(l); i++ {
			if l[i].On == on {
				idx = i
				return nil
			}
		}
		return fmt.Errorf("speaking events about %s: %v", user, l)
	})
	return idx
}

// trackMap returns the current Track Map (mid → entry) and how many were received.
func (c *mediaClient) trackMap() (map[string]Obj, int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	m := make(map[string]Obj, len(c.tracks))
	for k, v := range c.tracks {
		m[k] = v
	}
	return m, c.trackMaps
}

// serverOffers returns the Server Offers (100) received.
func (c *mediaClient) serverOffers() []Obj {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]Obj(nil), c.offers...)
}

// connStates returns the PeerConnection's state changes so far.
func (c *mediaClient) connStates() []webrtc.PeerConnectionState {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]webrtc.PeerConnectionState(nil), c.states...)
}

// reconnect drops the voice WebSocket (as a network blip would) and
// resumes the session on a new one, keeping the PeerConnection.
func (c *mediaClient) reconnect() {
	old := c.gw()
	old.Close()
	g, _ := dialHello(c.t, c.S, c.Srv.Endpoint)
	send(c.t, g, opResume, Obj{"server_id": c.Srv.GuildID, "session_id": c.S.SessionID(), "token": c.Srv.Token})
	if f, err := g.WaitOp(c.t.Timeout(), opResumed); err != nil {
		c.t.Fatalf("Resume: expected Resumed (9), got %v (%s)", err, f)
	}
	c.gwMu.Lock()
	c.vg = g
	c.gwMu.Unlock()
}

// sync sends a Heartbeat with a fresh nonce and waits for its ACK: every
// frame the server queued for c before it read the heartbeat has then
// arrived (one WebSocket is one ordered stream).
func (c *mediaClient) sync(what string) {
	nonce := 1_000_000 + c.nonce.Add(1)
	c.sendOp(opHeartbeat, Obj{"t": nonce})
	c.t.Eventually(what+": the ACK of a sentinel heartbeat", func() error {
		for _, f := range c.seen(opHeartbeatACK) {
			if int64(harness.Num(f.Obj()["t"])) == nonce {
				return nil
			}
		}
		if code, err := c.gw().WaitClose(0); err == nil {
			return harness.Permanent(fmt.Errorf("the voice WebSocket closed with %d", code))
		}
		return fmt.Errorf("no ACK for %d yet", nonce)
	})
}

// seen returns the frames received on the current voice WebSocket with op.
func (c *mediaClient) seen(op int) []harness.Frame {
	var out []harness.Frame
	for _, f := range c.gw().Frames() {
		if f.Op == op {
			out = append(out, f)
		}
	}
	return out
}

func (c *mediaClient) close() {
	select {
	case <-c.stop:
		return
	default:
	}
	close(c.stop)
	c.wg.Wait() // the client's goroutines first: none may touch pc after it closes
	if c.pc != nil {
		_ = c.pc.Close()
	}
	if g := c.gw(); g != nil {
		g.Close()
	}
}

// debug summarises what c received, for failure messages.
func (c *mediaClient) debug() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	byFrom := map[string]int{}
	for _, e := range c.rxs {
		byFrom[fmt.Sprintf("%s/%d", e.From, e.Phase)]++
	}
	b, _ := json.Marshal(c.tracks)
	var buf bytes.Buffer
	fmt.Fprintf(&buf, "%s received %v; track map %s", c.User.Name, byFrom, b)
	return buf.String()
}

// Layers of simulcast video: RIDs q, h, f (spec/voice.md VOICE-066).
var rids = []string{"q", "h", "f"}

// layerShape is what one video layer sends. The zero value is the suite's
// usual small stream: 15 frames a second, one packet a frame, key frames
// that declare 1920×1080.
type layerShape struct {
	// FPS is the frame rate; 0 is 15.
	FPS int
	// FrameBytes is the RTP payload of one frame in all, split into packets
	// of at most maxVideoPayload bytes, each with its VP8 payload descriptor
	// and the trailer; 0 sends one small packet a frame.
	FrameBytes int
	// W and H are the dimensions key frames declare; 0 is 1920×1080.
	W, H int
}

// maxVideoPayload bounds the RTP payload of a video packet, as encoders
// keep packets under the path MTU.
const maxVideoPayload = 1200

// packets is how many packets one frame of the layer takes.
func (s layerShape) packets() int {
	if s.FrameBytes == 0 {
		return 1
	}
	return (s.FrameBytes + maxVideoPayload - 1) / maxVideoPayload
}

// videoPub is one published video source: one VP8 stream per layer.
type videoPub struct {
	c      *mediaClient
	Source string
	Tr     *webrtc.RTPTransceiver
	// Base is added to the layer index in the phase byte of its packets, so
	// that a receiver tells sources apart.
	Base   byte
	layers []string // RIDs, by layer ("" without simulcast)
	shapes []layerShape
	tracks []*layerTrack
	sender *webrtc.RTPSender // the m-line's sender, kept while stopped
	ssrc   []uint32          // by layer
	mid    string
	midID  uint8
	ridID  uint8
	n      atomic.Uint32
	keyLag int // delta frames sent on a layer after a key-frame request before the key frame
}

// publishVideo adds a VP8 source (camera or screen) with the three simulcast
// layers, or one stream with simulcast false, through a Client Offer (102),
// and sends on each layer until the client closes, shaped by shapes (by
// layer; a missing one is the zero layerShape). A layer starts with a key
// frame and sends another keyLag frames after each PLI or FIR for it.
func (c *mediaClient) publishVideo(source string, base byte, simulcast bool, keyLag int, shapes ...layerShape) *videoPub {
	v := &videoPub{c: c, Source: source, Base: base, keyLag: keyLag, layers: []string{""}}
	if simulcast {
		v.layers = rids
	}
	for i, rid := range v.layers {
		v.tracks = append(v.tracks, &layerTrack{id: source, streamID: "cf-" + c.Tag, rid: rid})
		sh := layerShape{}
		if i < len(shapes) {
			sh = shapes[i]
		}
		v.shapes = append(v.shapes, sh)
	}
	x, err := c.pc.AddTransceiverFromTrack(v.tracks[0], webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly})
	if err != nil {
		c.t.Fatalf("pion: %v", err)
	}
	for _, tr := range v.tracks[1:] {
		if err := x.Sender().AddEncoding(tr); err != nil {
			c.t.Fatalf("pion: %v", err)
		}
	}
	v.Tr, v.sender = x, x.Sender()
	for _, rid := range v.layers {
		c.readRTCP(x.Sender(), rid)
	}
	c.offerAndWait(map[*webrtc.RTPTransceiver]string{x: source}, c.User.Name+"'s "+source+" offer")
	params := x.Sender().GetParameters()
	for _, e := range params.HeaderExtensions {
		switch e.URI {
		case sdp.SDESMidURI:
			v.midID = uint8(e.ID)
		case sdp.SDESRTPStreamIDURI:
			v.ridID = uint8(e.ID)
		}
	}
	v.mid = x.Mid()
	v.ssrc = make([]uint32, len(v.tracks))
	for i, enc := range params.Encodings {
		if i < len(v.ssrc) {
			v.ssrc[i] = uint32(enc.SSRC)
			c.mu.Lock()
			c.keyWanted[v.ssrc[i]] = true
			c.mu.Unlock()
		}
	}
	for i := range v.layers {
		c.wg.Add(1)
		go v.run(i)
	}
	return v
}

// offerAndWait sends a Client Offer (102) naming sources and waits until
// its answer (4) is applied.
func (c *mediaClient) offerAndWait(sources map[*webrtc.RTPTransceiver]string, what string) {
	answers := c.answerCount()
	c.clientOffer(sources, false)
	c.t.Eventually("the answer to "+what, func() error {
		if c.answerCount() > answers && c.pc.SignalingState() == webrtc.SignalingStateStable {
			return nil
		}
		if code, err := c.gw().WaitClose(0); err == nil {
			return harness.Permanent(fmt.Errorf("the voice WebSocket closed with %d", code))
		}
		return fmt.Errorf("no Session Description (4) yet")
	})
}

// stop turns the source off as a browser does when the transceiver's
// direction becomes "inactive" (spec/voice.md 3.4.1, VOICE-068): the m-line
// stays but no longer sends, its layers are unbound, and a Client Offer
// (102) says so. It returns once the answer is applied.
func (v *videoPub) stop() {
	if err := v.Tr.SetSender(v.sender, nil); err != nil {
		v.c.t.Fatalf("pion: stop the %s: %v", v.Source, err)
	}
	v.c.offerAndWait(nil, v.c.User.Name+"'s offer stopping the "+v.Source)
}

// resume publishes the stopped source again on its m-line, as a browser does
// when the direction goes back to "sendonly", with a Client Offer naming the
// m-line's source, and returns once the answer is applied. A simulcast
// source comes back on a new sender (pion cannot put layers back into one),
// but its layers keep their earlier SSRCs and send without the mid and rid
// header extensions, as a browser's do (VOICE-078); the SDP declares the new
// sender's SSRCs, which carry nothing.
func (v *videoPub) resume() {
	c := v.c
	if len(v.tracks) > 1 {
		s, err := c.api.NewRTPSender(v.tracks[0], c.pc.SCTP().Transport())
		if err != nil {
			c.t.Fatalf("pion: resume the %s: %v", v.Source, err)
		}
		_ = v.sender.Stop()
		v.sender = s
	}
	if err := v.Tr.SetSender(v.sender, v.tracks[0]); err != nil {
		c.t.Fatalf("pion: resume the %s: %v", v.Source, err)
	}
	for _, tr := range v.tracks[1:] {
		if err := v.sender.AddEncoding(tr); err != nil {
			c.t.Fatalf("pion: resume the %s: %v", v.Source, err)
		}
	}
	if len(v.tracks) > 1 {
		for _, rid := range v.layers {
			c.readRTCP(v.sender, rid)
		}
	}
	c.mu.Lock()
	for _, s := range v.ssrc {
		c.keyWanted[s] = true
	}
	c.mu.Unlock()
	c.offerAndWait(map[*webrtc.RTPTransceiver]string{v.Tr: v.Source}, c.User.Name+"'s offer resuming the "+v.Source)
}

// run sends layer i's frames until the client closes.
func (v *videoPub) run(i int) {
	c := v.c
	defer c.wg.Done()
	sh, tr := v.shapes[i], v.tracks[i]
	fps := cmp.Or(sh.FPS, 15)
	tk := time.NewTicker(time.Second / time.Duration(fps))
	defer tk.Stop()
	lag := 0 // delta frames still to send before a requested key frame
	seq := uint16(0)
	for frame := uint32(1); ; frame++ {
		select {
		case <-c.stop:
			return
		case <-tk.C:
		}
		c.mu.Lock()
		if c.keyWanted[v.ssrc[i]] && lag == 0 {
			lag = v.keyLag + 1
		}
		key := false
		if lag > 0 {
			lag--
			if key = lag == 0; key {
				c.keyWanted[v.ssrc[i]] = false
			}
		}
		c.mu.Unlock()
		// The SFU's key-frame requests name the SSRC it sees, which a
		// resumed layer's new sender does not read: a key frame every second
		// instead.
		key = key || (tr.resumed() && frame%uint32(fps) == 0)
		payloads := framePayloads(sh, key, func() (uint32, []byte) {
			n := v.n.Add(1)
			return n, c.trailer(v.Base+byte(i), n)
		})
		for j, pl := range payloads {
			seq++
			p := &rtp.Packet{Header: rtp.Header{Version: 2, SequenceNumber: seq, Timestamp: frame * uint32(90000/fps), Marker: j == len(payloads)-1}, Payload: pl.b}
			c.mu.Lock()
			c.vwrites = append(c.vwrites, vwrite{src: v.Base, n: pl.n, at: time.Now(), size: len(pl.b) - 1, sum: crc32.ChecksumIEEE(pl.b[1:])})
			c.mu.Unlock()
			tr.write(p, v.mid, v.midID, v.ridID)
		}
	}
}

// payload is one packet's RTP payload and the counter in its trailer.
type payload struct {
	n uint32
	b []byte
}

// framePayloads builds the RTP payloads of one VP8 frame of shape sh: a
// one-byte payload descriptor (S set on the first packet), the frame
// header (a key frame's with its dimensions), filler and, at the end of
// each, the trailer next returns with its counter.
func framePayloads(sh layerShape, key bool, next func() (uint32, []byte)) []payload {
	w, h := cmp.Or(sh.W, 1920), cmp.Or(sh.H, 1080)
	hdr := []byte{0x11, 0x00, 0x00} // frame tag: an inter frame, shown
	if key {
		hdr = []byte{0x10, 0x00, 0x00, 0x9d, 0x01, 0x2a, byte(w), byte(w >> 8), byte(h), byte(h >> 8)}
	}
	k := sh.packets()
	out := make([]payload, k)
	for j := range k {
		n, tr := next()
		size := 0 // FrameBytes 0: no filler
		if sh.FrameBytes > 0 {
			size = sh.FrameBytes / k
			if j < sh.FrameBytes%k {
				size++
			}
		}
		b := make([]byte, 0, max(size, 1+len(hdr)+len(tr)))
		if j == 0 {
			b = append(b, 0x10)
			b = append(b, hdr...)
		} else {
			b = append(b, 0x00)
		}
		for len(b) < size-len(tr) {
			b = append(b, byte(len(b)*7)+byte(n))
		}
		out[j] = payload{n, append(b, tr...)}
	}
	return out
}

// vp8Size returns the dimensions a VP8 key frame's header declares, or 0, 0
// if b (a frame's first bytes, after the payload descriptor) is no key frame.
func vp8Size(b []byte) (w, h int) {
	if len(b) < 10 || b[0]&1 != 0 || b[3] != 0x9d || b[4] != 0x01 || b[5] != 0x2a {
		return 0, 0
	}
	return int(binary.LittleEndian.Uint16(b[6:]) & 0x3fff), int(binary.LittleEndian.Uint16(b[8:]) & 0x3fff)
}

// layerTrack is one video stream (one simulcast layer) sent as a browser
// sends it: on the SSRC of its first binding for good (a transceiver keeps
// its SSRCs when it sends again after "inactive"), and a simulcast layer
// with the mid and rid header extensions during its first binding only
// (libwebrtc stops sending them once the receiver has acknowledged the
// SSRC, and does not start again when the layer resumes).
type layerTrack struct {
	id, streamID, rid string

	mu    sync.Mutex
	ssrc  uint32
	pt    uint8
	w     webrtc.TrackLocalWriter // nil while unbound
	binds int
}

// Bind implements webrtc.TrackLocal.
func (l *layerTrack) Bind(ctx webrtc.TrackLocalContext) (webrtc.RTPCodecParameters, error) {
	for _, p := range ctx.CodecParameters() {
		if strings.EqualFold(p.MimeType, webrtc.MimeTypeVP8) {
			l.mu.Lock()
			defer l.mu.Unlock()
			if l.ssrc == 0 {
				l.ssrc = uint32(ctx.SSRC())
			}
			l.pt, l.w = uint8(p.PayloadType), ctx.WriteStream()
			l.binds++
			return p, nil
		}
	}
	return webrtc.RTPCodecParameters{}, webrtc.ErrUnsupportedCodec
}

// Unbind implements webrtc.TrackLocal.
func (l *layerTrack) Unbind(webrtc.TrackLocalContext) error {
	l.mu.Lock()
	l.w = nil
	l.mu.Unlock()
	return nil
}

// ID implements webrtc.TrackLocal.
func (l *layerTrack) ID() string { return l.id }

// RID implements webrtc.TrackLocal.
func (l *layerTrack) RID() string { return l.rid }

// StreamID implements webrtc.TrackLocal.
func (l *layerTrack) StreamID() string { return l.streamID }

// Kind implements webrtc.TrackLocal.
func (l *layerTrack) Kind() webrtc.RTPCodecType { return webrtc.RTPCodecTypeVideo }

// resumed reports whether the layer was bound again after it stopped.
func (l *layerTrack) resumed() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.binds > 1
}

// write sends p on the layer's SSRC, a simulcast layer's first binding
// with the mid and rid extensions; nothing while the layer is unbound.
func (l *layerTrack) write(p *rtp.Packet, mid string, midID, ridID uint8) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.w == nil {
		return
	}
	p.SSRC, p.PayloadType = l.ssrc, l.pt
	if l.rid != "" && l.binds == 1 && midID != 0 && ridID != 0 {
		_ = p.Header.SetExtension(midID, []byte(mid))
		_ = p.Header.SetExtension(ridID, []byte(l.rid))
	}
	_, _ = l.w.WriteRTP(&p.Header, p.Payload)
}

// vwrite is one video packet written.
type vwrite struct {
	src  byte
	n    uint32
	at   time.Time
	size int    // VP8 payload bytes after the descriptor
	sum  uint32 // their CRC-32
}

// written returns v's packets written so far, by counter.
func (v *videoPub) written() map[uint32]vwrite {
	v.c.mu.Lock()
	defer v.c.mu.Unlock()
	out := map[uint32]vwrite{}
	for _, w := range v.c.vwrites {
		if w.src == v.Base {
			out[w.n] = w
		}
	}
	return out
}

// plisFor is how many key-frame requests the SFU sent for layer of v.
func (v *videoPub) plisFor(layer int) int {
	v.c.mu.Lock()
	defer v.c.mu.Unlock()
	return v.c.plis[v.ssrc[layer]]
}

// pliAfter is when the first key-frame request for layer of v after t0 came
// (zero if none).
func (v *videoPub) pliAfter(layer int, t0 time.Time) time.Time {
	v.c.mu.Lock()
	defer v.c.mu.Unlock()
	for _, at := range v.c.pliAt[v.ssrc[layer]] {
		if at.After(t0) {
			return at
		}
	}
	return time.Time{}
}

// videoWrittenAt is when v wrote its packet with counter n.
func (v *videoPub) writtenAt(n uint32) time.Time {
	v.c.mu.Lock()
	defer v.c.mu.Unlock()
	for _, w := range v.c.vwrites {
		if w.src == v.Base && w.n == n {
			return w.at
		}
	}
	return time.Time{}
}
