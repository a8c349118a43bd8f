// Package voiceclient is a Go WebRTC voice client that speaks to a Hearth
// node only through the voice WebSocket, as a browser does. The voice
// tests and the voicebench command use it; it encodes the wire format on
// its own (from spec/voice.md), so a drift in the server shows up.
package voiceclient

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/rtp"
	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"
)

// Opcodes the client uses (spec/voice.md section 3.1).
const (
	OpIdentify        = 0
	OpSelectProtocol  = 1
	OpReady           = 2
	OpHeartbeat       = 3
	OpSessionDesc     = 4
	OpSpeaking        = 5
	OpHello           = 8
	OpServerOffer     = 100
	OpClientAnswer    = 101
	OpClientOffer     = 102
	OpICECandidate    = 103
	OpTrackMap        = 105
	OpChannelSwitch   = 106
	OpChannelSwitched = 107
)

// NewAPI returns a pion API for clients: Opus with the audio-level
// extension, VP8, default interceptors, loopback candidates only.
func NewAPI() (*webrtc.API, error) { return NewAPIWith(APIOptions{}) }

// NewLeanAPI is NewAPI without interceptors: no NACK, RTCP reports or
// transport-wide CC on the client side. Load generators use it to spend
// less of the machine on clients; a real client wants NewAPI.
func NewLeanAPI() (*webrtc.API, error) { return NewAPIWith(APIOptions{Lean: true}) }

// APIOptions tune NewAPIWith.
type APIOptions struct {
	// Lean leaves out the interceptors and VP8 (see NewLeanAPI).
	Lean bool
	// UDPMux, if set, carries the ICE traffic of every PeerConnection of
	// the API (webrtc.NewICEUDPMux on one socket); the caller closes it
	// after them. Nil means one ephemeral socket per PeerConnection.
	UDPMux ice.UDPMux
}

// NewAPIWith returns a client API as NewAPI or NewLeanAPI do, with o.
func NewAPIWith(o APIOptions) (*webrtc.API, error) {
	m := &webrtc.MediaEngine{}
	if err := m.RegisterCodec(webrtc.RTPCodecParameters{RTPCodecCapability: webrtc.RTPCodecCapability{
		MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2, SDPFmtpLine: "minptime=10;useinbandfec=1;usedtx=1",
	}, PayloadType: 111}, webrtc.RTPCodecTypeAudio); err != nil {
		return nil, err
	}
	if !o.Lean {
		if err := m.RegisterCodec(webrtc.RTPCodecParameters{RTPCodecCapability: webrtc.RTPCodecCapability{
			MimeType: webrtc.MimeTypeVP8, ClockRate: 90000,
			RTCPFeedback: []webrtc.RTCPFeedback{{Type: "nack"}, {Type: "nack", Parameter: "pli"}},
		}, PayloadType: 96}, webrtc.RTPCodecTypeVideo); err != nil {
			return nil, err
		}
	}
	if err := m.RegisterHeaderExtension(webrtc.RTPHeaderExtensionCapability{URI: sdp.AudioLevelURI},
		webrtc.RTPCodecTypeAudio); err != nil {
		return nil, err
	}
	reg := &interceptor.Registry{}
	if !o.Lean {
		if err := webrtc.RegisterDefaultInterceptors(m, reg); err != nil {
			return nil, err
		}
	}
	se := webrtc.SettingEngine{}
	se.SetIncludeLoopbackCandidate(true)
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	se.SetIPFilter(func(ip net.IP) bool { return ip.IsLoopback() })
	if o.UDPMux != nil {
		se.SetICEUDPMux(o.UDPMux)
	}
	return webrtc.NewAPI(webrtc.WithMediaEngine(m), webrtc.WithInterceptorRegistry(reg), webrtc.WithSettingEngine(se)), nil
}

// Options are optional hooks. Hooks run on client goroutines and must be
// quick.
type Options struct {
	// OnRTP sees every received RTP packet with the sender's user ID and
	// source (from the track map; empty if not yet known).
	OnRTP func(userID, source string, p *rtp.Packet)
	// OnSpeaking sees every Speaking (5) message.
	OnSpeaking func(userID string, on bool)
}

// Client is one connected voice client.
type Client struct {
	UserID string
	opts   Options
	api    *webrtc.API
	ws     *websocket.Conn
	wsMu   sync.Mutex
	pc     *webrtc.PeerConnection
	mic    *webrtc.TrackLocalStaticRTP
	micExt uint8
	seq    uint16
	ts     uint32

	sigMu     sync.Mutex // serialises changes of the signaling state (offers, rollbacks)
	mu        sync.Mutex
	pending   *webrtc.RTPSender // the sender of a client offer (op 102) awaiting its answer
	pendingSr string            // its source
	answered  chan error
	speaking  map[string][]bool
	midUser   atomic.Pointer[map[string]trackInfo] // replaced whole on each track map
	switched  []string
	closeCode int
	received  map[string]*atomic.Int64 // by mid
	// iceStarted is closed once ICE has left the new state: pion sets the
	// remote ICE credentials of the first answer on a queue, and a server
	// offer applied before that looks like an ICE restart to it.
	iceStarted chan struct{}
	closed     chan struct{}
	wg         sync.WaitGroup
}

type trackInfo struct {
	UserID string `json:"user_id"`
	Source string `json:"source"`
	Mid    string `json:"mid"`
}

type frame struct {
	Op int             `json:"op"`
	D  json.RawMessage `json:"d"`
}

// Dial opens the voice WebSocket at url, identifies with the token,
// publishes a microphone track and completes the first offer/answer.
func Dial(ctx context.Context, url string, api *webrtc.API, userID, guildID, tok string, opts Options) (*Client, error) {
	ws, _, err := websocket.DefaultDialer.DialContext(ctx, url, nil)
	if err != nil {
		return nil, fmt.Errorf("voiceclient: dial: %w", err)
	}
	c := &Client{UserID: userID, opts: opts, api: api, ws: ws, answered: make(chan error, 16), iceStarted: make(chan struct{}),
		speaking: map[string][]bool{}, received: map[string]*atomic.Int64{},
		closed: make(chan struct{})}
	fail := func(err error) (*Client, error) {
		_ = ws.Close()
		if c.pc != nil {
			_ = c.pc.Close()
		}
		return nil, fmt.Errorf("voiceclient: %s: %w", userID, err)
	}
	if f, err := c.read(); err != nil || f.Op != OpHello {
		return fail(fmt.Errorf("hello: op %d, %v", f.Op, err))
	}
	c.Send(OpIdentify, map[string]string{"server_id": guildID, "user_id": userID, "session_id": "gw-" + userID, "token": tok})
	if f, err := c.read(); err != nil || f.Op != OpReady {
		return fail(fmt.Errorf("ready: op %d, %v", f.Op, err))
	}
	if c.pc, err = api.NewPeerConnection(webrtc.Configuration{}); err != nil {
		return fail(err)
	}
	c.mic, err = webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus,
		ClockRate: 48000, Channels: 2}, "mic", userID)
	if err != nil {
		return fail(err)
	}
	sender, err := c.pc.AddTrack(c.mic)
	if err != nil {
		return fail(err)
	}
	drainRTCP(sender)
	c.pc.OnTrack(c.onTrack)
	var once sync.Once
	c.pc.OnICEConnectionStateChange(func(st webrtc.ICEConnectionState) {
		if st != webrtc.ICEConnectionStateNew {
			once.Do(func() { close(c.iceStarted) })
		}
	})
	offer, err := c.pc.CreateOffer(nil)
	if err != nil {
		return fail(err)
	}
	gathered := webrtc.GatheringCompletePromise(c.pc)
	if err := c.pc.SetLocalDescription(offer); err != nil {
		return fail(err)
	}
	<-gathered
	c.Send(OpSelectProtocol, map[string]any{"protocol": "webrtc",
		"data": map[string]string{"type": "offer", "sdp": c.pc.LocalDescription().SDP}})
	c.wg.Add(1)
	go c.readLoop()
	select {
	case err := <-c.answered:
		if err != nil {
			c.Close()
			return nil, err
		}
	case <-c.closed:
		c.Close()
		return nil, fmt.Errorf("voiceclient: %s: closed with %d before answer", userID, c.CloseCode())
	case <-time.After(10 * time.Second):
		c.Close()
		return nil, fmt.Errorf("voiceclient: %s: no session description", userID)
	}
	for _, e := range sender.GetParameters().HeaderExtensions {
		if e.URI == sdp.AudioLevelURI {
			c.micExt = uint8(e.ID)
		}
	}
	return c, nil
}

func (c *Client) onTrack(tr *webrtc.TrackRemote, r *webrtc.RTPReceiver) {
	mid := ""
	for _, x := range c.pc.GetTransceivers() {
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
	for {
		p, _, err := tr.ReadRTP()
		if err != nil {
			return
		}
		n.Add(1)
		if c.opts.OnRTP != nil {
			var ti trackInfo
			if m := c.midUser.Load(); m != nil {
				ti = (*m)[mid]
			}
			c.opts.OnRTP(ti.UserID, ti.Source, p)
		}
	}
}

// PC returns the client's PeerConnection.
func (c *Client) PC() *webrtc.PeerConnection { return c.pc }

// Send writes one frame.
func (c *Client) Send(op int, d any) {
	c.wsMu.Lock()
	defer c.wsMu.Unlock()
	_ = c.ws.WriteJSON(map[string]any{"op": op, "d": d})
}

func (c *Client) read() (frame, error) {
	_ = c.ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	var f frame
	_, b, err := c.ws.ReadMessage()
	if err != nil {
		return f, err
	}
	err = json.Unmarshal(b, &f)
	return f, err
}

func (c *Client) readLoop() {
	defer c.wg.Done()
	defer close(c.closed)
	hb := time.NewTicker(500 * time.Millisecond)
	defer hb.Stop()
	stopHB := make(chan struct{})
	defer close(stopHB)
	go func() {
		for {
			select {
			case <-stopHB:
				return
			case <-hb.C:
				c.Send(OpHeartbeat, map[string]int64{"t": time.Now().UnixMilli()})
			}
		}
	}()
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
		var f frame
		if json.Unmarshal(b, &f) != nil {
			continue
		}
		c.handle(f)
	}
}

type desc struct {
	Type     string `json:"type"`
	SDP      string `json:"sdp"`
	Revision int    `json:"revision"`
}

func (c *Client) handle(f frame) {
	switch f.Op {
	case OpSessionDesc:
		var sd desc
		_ = json.Unmarshal(f.D, &sd)
		if c.pc.SignalingState() != webrtc.SignalingStateHaveLocalOffer {
			return // an answer to a raw offer a test sent
		}
		c.answered <- c.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: sd.SDP})
	case OpServerOffer:
		var sd desc
		_ = json.Unmarshal(f.D, &sd)
		// Glare (VOICE-053): the server is impolite, so a pending client offer is rolled
		// back, the server's offer answered, and the client offer sent again.
		reoffer, ok := c.answerOffer(sd)
		if ok && reoffer {
			if err := c.sendOffer(); err != nil {
				c.answered <- err
			}
		}
	case OpICECandidate:
		var ic struct {
			Candidate     string  `json:"candidate"`
			SDPMid        *string `json:"sdp_mid"`
			SDPMLineIndex *uint16 `json:"sdp_mline_index"`
		}
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
		if c.opts.OnSpeaking != nil {
			c.opts.OnSpeaking(sp.UserID, sp.Speaking == 1)
		}
		c.mu.Lock()
		c.speaking[sp.UserID] = append(c.speaking[sp.UserID], sp.Speaking == 1)
		c.mu.Unlock()
	case OpTrackMap:
		var tm struct {
			Tracks []trackInfo `json:"tracks"`
		}
		_ = json.Unmarshal(f.D, &tm)
		m := map[string]trackInfo{}
		for _, t := range tm.Tracks {
			m[t.Mid] = t
		}
		c.midUser.Store(&m)
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

// ReceivedFrom counts packets received on the tracks the track map
// currently attributes to userID.
func (c *Client) ReceivedFrom(userID string) int64 { return c.ReceivedFromSource(userID, "") }

// ReceivedFromSource is ReceivedFrom for one source ("microphone",
// "camera", "screen"); "" counts every source.
func (c *Client) ReceivedFromSource(userID, source string) int64 {
	m := c.midUser.Load()
	if m == nil {
		return 0
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	var n int64
	for mid, t := range *m {
		if r := c.received[mid]; t.UserID == userID && (source == "" || t.Source == source) && r != nil {
			n += r.Load()
		}
	}
	return n
}

// AddVideo publishes a VP8 track for source ("camera" or "screen") with a
// client offer (op 102) and waits for the answer.
func (c *Client) AddVideo(source string) (*VideoTrack, error) {
	trs, err := c.addVideo(source, "")
	if err != nil {
		return nil, err
	}
	return trs[0], nil
}

// AddSimulcastVideo publishes a VP8 track for source as three simulcast
// layers with RIDs q, h and f (low to high).
func (c *Client) AddSimulcastVideo(source string) ([]*VideoTrack, error) {
	return c.addVideo(source, "q", "h", "f")
}

func (c *Client) addVideo(source string, rids ...string) ([]*VideoTrack, error) {
	trs := make([]*VideoTrack, len(rids))
	for i, rid := range rids {
		trs[i] = &VideoTrack{id: source, streamID: c.UserID, rid: rid}
	}
	var sender *webrtc.RTPSender
	if len(trs) == 1 {
		s, err := c.pc.AddTrack(trs[0])
		if err != nil {
			return nil, err
		}
		sender = s
	} else {
		t, err := c.pc.AddTransceiverFromTrack(trs[0], webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly})
		if err != nil {
			return nil, err
		}
		sender = t.Sender()
		for _, tr := range trs[1:] {
			if err := sender.AddEncoding(tr); err != nil {
				return nil, err
			}
		}
	}
	drainRTCP(sender)
	if err := c.offerFor(sender, source); err != nil {
		return nil, err
	}
	pub := &publication{source: source, sender: sender, tracks: trs}
	mid := ""
	for _, t := range c.pc.GetTransceivers() {
		if t.Sender() == sender {
			mid, pub.xcv = t.Mid(), t
		}
	}
	var midID, ridID uint8
	for _, e := range sender.GetParameters().HeaderExtensions {
		switch e.URI {
		case sdp.SDESMidURI:
			midID = uint8(e.ID)
		case sdp.SDESRTPStreamIDURI:
			ridID = uint8(e.ID)
		}
	}
	for _, v := range trs {
		v.mid, v.midID, v.ridID, v.pub = mid, midID, ridID, pub
	}
	return trs, nil
}

// drainRTCP reads a sender's RTCP until the sender stops, as its
// interceptors (NACK, reports) need.
func drainRTCP(sender *webrtc.RTPSender) {
	go func() {
		buf := make([]byte, 1500)
		for {
			if _, _, err := sender.Read(buf); err != nil {
				return
			}
		}
	}()
}

// waitAnswer waits for the answer to a client offer (op 102).
func (c *Client) waitAnswer() error {
	select {
	case err := <-c.answered:
		return err
	case <-c.closed:
		return fmt.Errorf("voiceclient: closed with %d before answer", c.CloseCode())
	case <-time.After(10 * time.Second):
		return fmt.Errorf("voiceclient: no answer to client offer")
	}
}

// StopVideo stops publishing v's track (every layer of a simulcast
// track), as a browser does when the transceiver's direction is set to
// "inactive" (spec/voice.md, VOICE-068): the m-line stops sending and a
// client offer (op 102) says so. The m-line stays, for ResumeVideo.
func (c *Client) StopVideo(v *VideoTrack) error {
	if err := v.pub.xcv.SetSender(v.pub.sender, nil); err != nil {
		return fmt.Errorf("voiceclient: stop video: %w", err)
	}
	return c.offerFor(nil, "")
}

// ResumeVideo publishes a stopped track again on the same m-line
// (direction back to "sendonly"), with a client offer. A simulcast track
// comes back with all its layers on a new sender, since pion cannot put
// tracks back into a simulcast sender; its layers get new SSRCs, as a
// browser's do when a transceiver sends again.
func (c *Client) ResumeVideo(v *VideoTrack) error {
	p := v.pub
	if len(p.tracks) > 1 {
		snd, err := c.api.NewRTPSender(p.tracks[0], c.pc.SCTP().Transport())
		if err != nil {
			return fmt.Errorf("voiceclient: resume video: %w", err)
		}
		_ = p.sender.Stop()
		p.sender = snd
		drainRTCP(snd)
	}
	if err := p.xcv.SetSender(p.sender, p.tracks[0]); err != nil {
		return fmt.Errorf("voiceclient: resume video: %w", err)
	}
	for _, tr := range p.tracks[1:] {
		if err := p.sender.AddEncoding(tr); err != nil {
			return fmt.Errorf("voiceclient: resume video: %w", err)
		}
	}
	return c.offerFor(p.sender, p.source)
}

// RemoveVideo stops publishing v's track with RemoveTrack, as a browser's
// removeTrack does: the m-line stops sending for good, and publishing the
// source again takes a new m-line (AddVideo).
func (c *Client) RemoveVideo(v *VideoTrack) error {
	if err := c.pc.RemoveTrack(v.pub.sender); err != nil {
		return fmt.Errorf("voiceclient: remove video: %w", err)
	}
	return c.offerFor(nil, "")
}

// offerFor sends a client offer that names sender's m-line as source (if
// sender is not nil) and waits for the answer.
func (c *Client) offerFor(sender *webrtc.RTPSender, source string) error {
	c.mu.Lock()
	c.pending, c.pendingSr = sender, source
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		c.pending = nil
		c.mu.Unlock()
	}()
	if err := c.sendOffer(); err != nil {
		return err
	}
	return c.waitAnswer()
}

// TrackMid returns the mid on which the current track map says this client
// receives userID's source, or "".
func (c *Client) TrackMid(userID, source string) string {
	if m := c.midUser.Load(); m != nil {
		for mid, t := range *m {
			if t.UserID == userID && t.Source == source {
				return mid
			}
		}
	}
	return ""
}

// ServerSends reports whether the server's current description sends on
// mid (sendrecv or sendonly from the server's side).
func (c *Client) ServerSends(mid string) bool {
	m := c.serverSection(mid)
	if m == nil || m.MediaName.Port.Value == 0 {
		return false
	}
	for _, dir := range []string{"recvonly", "inactive"} {
		if _, ok := m.Attribute(dir); ok {
			return false
		}
	}
	return true
}

// ServerSSRC returns the first SSRC the server's current description
// declares on mid, or 0.
func (c *Client) ServerSSRC(mid string) uint32 {
	m := c.serverSection(mid)
	if m == nil {
		return 0
	}
	v, _ := m.Attribute("ssrc")
	first, _, _ := strings.Cut(v, " ")
	n, _ := strconv.ParseUint(first, 10, 32)
	return uint32(n)
}

// serverSection returns the m-line mid of the server's current
// description, or nil.
func (c *Client) serverSection(mid string) *sdp.MediaDescription {
	c.sigMu.Lock()
	rd := c.pc.CurrentRemoteDescription()
	c.sigMu.Unlock()
	if rd == nil {
		return nil
	}
	var d sdp.SessionDescription
	if d.UnmarshalString(rd.SDP) != nil {
		return nil
	}
	for _, m := range d.MediaDescriptions {
		if v, ok := m.Attribute("mid"); ok && v == mid {
			return m
		}
	}
	return nil
}

// answerOffer answers a server offer, rolling back a pending client offer
// first; reoffer reports a rollback.
func (c *Client) answerOffer(sd desc) (reoffer, ok bool) {
	select {
	case <-c.iceStarted:
	case <-time.After(5 * time.Second):
	}
	c.sigMu.Lock()
	defer c.sigMu.Unlock()
	if c.pc.SignalingState() == webrtc.SignalingStateHaveLocalOffer {
		if err := c.pc.SetLocalDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeRollback}); err != nil {
			return false, false
		}
		reoffer = true
	}
	if err := c.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: sd.SDP}); err != nil {
		return false, false
	}
	ans, err := c.pc.CreateAnswer(nil)
	if err == nil {
		err = c.pc.SetLocalDescription(ans)
	}
	if err != nil {
		return false, false
	}
	c.Send(OpClientAnswer, desc{Type: "answer", SDP: ans.SDP, Revision: sd.Revision})
	return reoffer, true
}

// sendOffer sends a client offer (op 102) for the pending sender.
func (c *Client) sendOffer() error {
	c.sigMu.Lock()
	defer c.sigMu.Unlock()
	c.mu.Lock()
	sender, source := c.pending, c.pendingSr
	c.mu.Unlock()
	offer, err := c.pc.CreateOffer(nil)
	if err != nil {
		return err
	}
	if err := c.pc.SetLocalDescription(offer); err != nil {
		return err
	}
	sources := map[string]string{}
	for _, t := range c.pc.GetTransceivers() {
		if sender != nil && t.Sender() == sender {
			sources[t.Mid()] = source
		}
	}
	c.Send(OpClientOffer, map[string]any{"type": "offer", "sdp": offer.SDP, "sources": sources})
	return nil
}

// VideoTrack is one published video track or simulcast layer, sent as a
// browser sends it: on the SSRC of its first binding for good (a browser's
// transceiver keeps its SSRCs when it sends again after "inactive"), and a
// simulcast layer with the mid and RID header extensions during its first
// publication only (libwebrtc stops sending them once the receiver has
// acknowledged the SSRC, and does not start again when the layer resumes).
type VideoTrack struct {
	id, streamID, rid string
	// Set by addVideo before the track is handed out.
	mid          string
	midID, ridID uint8
	pub          *publication

	mu      sync.Mutex
	ssrc    uint32
	pt      uint8
	w       webrtc.TrackLocalWriter // nil while unbound
	unbound bool                    // it has been unbound once: no more mid and rid
}

// Bind implements webrtc.TrackLocal.
func (v *VideoTrack) Bind(ctx webrtc.TrackLocalContext) (webrtc.RTPCodecParameters, error) {
	for _, c := range ctx.CodecParameters() {
		if strings.EqualFold(c.MimeType, webrtc.MimeTypeVP8) {
			v.mu.Lock()
			defer v.mu.Unlock()
			if v.ssrc == 0 {
				v.ssrc = uint32(ctx.SSRC())
			}
			v.pt, v.w = uint8(c.PayloadType), ctx.WriteStream()
			return c, nil
		}
	}
	return webrtc.RTPCodecParameters{}, webrtc.ErrUnsupportedCodec
}

// Unbind implements webrtc.TrackLocal.
func (v *VideoTrack) Unbind(webrtc.TrackLocalContext) error {
	v.mu.Lock()
	v.w, v.unbound = nil, true
	v.mu.Unlock()
	return nil
}

// ID implements webrtc.TrackLocal.
func (v *VideoTrack) ID() string { return v.id }

// RID implements webrtc.TrackLocal.
func (v *VideoTrack) RID() string { return v.rid }

// StreamID implements webrtc.TrackLocal.
func (v *VideoTrack) StreamID() string { return v.streamID }

// Kind implements webrtc.TrackLocal.
func (v *VideoTrack) Kind() webrtc.RTPCodecType { return webrtc.RTPCodecTypeVideo }

// publication is one video m-line the client publishes on, shared by the
// VideoTracks of its layers. Only the test goroutine that publishes uses it.
type publication struct {
	source string
	xcv    *webrtc.RTPTransceiver
	sender *webrtc.RTPSender // replaced when a simulcast track resumes
	tracks []*VideoTrack
}

// Mid is the m-line that carries the track.
func (v *VideoTrack) Mid() string { return v.mid }

// VideoPump writes VP8 packets on a changing set of video tracks: one
// packet per track every 20 ms, a key frame every tenth, until Stop.
type VideoPump struct {
	mu     sync.Mutex
	tracks []*VideoTrack
	stop   chan struct{}
	done   chan struct{}
}

// PumpVP8 starts a VideoPump on tracks.
func PumpVP8(tracks ...*VideoTrack) *VideoPump {
	p := &VideoPump{tracks: tracks, stop: make(chan struct{}), done: make(chan struct{})}
	go p.run()
	return p
}

// Add makes the pump write on more tracks too.
func (p *VideoPump) Add(tracks ...*VideoTrack) {
	p.mu.Lock()
	p.tracks = append(p.tracks, tracks...)
	p.mu.Unlock()
}

// Stop ends the pump and waits for it.
func (p *VideoPump) Stop() {
	close(p.stop)
	<-p.done
}

func (p *VideoPump) run() {
	defer close(p.done)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for seq := uint16(0); ; seq++ {
		select {
		case <-p.stop:
			return
		case <-tick.C:
		}
		p.mu.Lock()
		for _, v := range p.tracks {
			_ = v.WriteVP8(seq, seq%10 == 0, 0)
		}
		p.mu.Unlock()
	}
}

// WriteVP8 sends one VP8 packet: a key frame or a delta frame. The last
// payload byte is mark, so a receiver can tell simulcast layers apart. It
// sends nothing while the track is not bound (not negotiated yet, or
// stopped).
func (v *VideoTrack) WriteVP8(seq uint16, key bool, mark byte) error {
	payload := []byte{0x10, 0x01, 0, 0, 0, 0, 0, mark} // S=1, PID=0; P=1: delta
	if key {
		payload = []byte{0x10, 0x00, 0x9d, 0x01, 0x2a, 0, 0, mark} // P=0: key frame
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.w == nil {
		return nil
	}
	h := rtp.Header{Version: 2, PayloadType: v.pt, SequenceNumber: seq,
		Timestamp: uint32(seq) * 3000, Marker: true, SSRC: v.ssrc}
	if v.rid != "" && !v.unbound && v.midID != 0 && v.ridID != 0 {
		if err := h.SetExtension(v.midID, []byte(v.mid)); err != nil {
			return err
		}
		if err := h.SetExtension(v.ridID, []byte(v.rid)); err != nil {
			return err
		}
	}
	_, err := v.w.WriteRTP(&h, payload)
	return err
}

// Speaking returns the speaking changes reported for userID, in order.
func (c *Client) Speaking(userID string) []bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]bool(nil), c.speaking[userID]...)
}

// Switched returns the channel IDs of every Channel Switched received.
func (c *Client) Switched() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.switched...)
}

// CloseCode is the WebSocket close code received, 0 if none yet.
func (c *Client) CloseCode() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closeCode
}

// Closed is closed when the voice WebSocket has ended.
func (c *Client) Closed() <-chan struct{} { return c.closed }

// DropSocket closes the voice WebSocket but keeps the PeerConnection, as a
// network blip would.
func (c *Client) DropSocket() {
	_ = c.ws.Close()
	<-c.closed
}

// WriteAudio sends one 20 ms Opus frame with an RFC 6464 audio level
// (0 loudest, 127 silence). Not safe for concurrent use.
func (c *Client) WriteAudio(payload []byte, level uint8) error {
	pkt := &rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 111, SequenceNumber: c.seq,
		Timestamp: c.ts, SSRC: 1}, Payload: payload}
	if c.micExt != 0 {
		if err := pkt.Header.SetExtension(c.micExt, []byte{level}); err != nil {
			return err
		}
	}
	c.seq++
	c.ts += 960
	return c.mic.WriteRTP(pkt)
}

// Publish sends pkts as 20 ms frames in a loop until stop is closed. The
// audio level comes from the frame size (Go has no Opus decoder; in the
// test file tone frames are over 60 bytes, silence frames under 50), or is
// always loud with loudOnly.
func (c *Client) Publish(pkts [][]byte, stop <-chan struct{}, loudOnly bool) {
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for i := 0; ; i++ {
		select {
		case <-stop:
			return
		case <-tick.C:
		}
		p := pkts[i%len(pkts)]
		level := uint8(127)
		if len(p) > 60 || loudOnly {
			level = 20
		}
		_ = c.WriteAudio(p, level)
	}
}

// Close ends the client and waits for its goroutines.
func (c *Client) Close() {
	_ = c.pc.Close()
	_ = c.ws.Close()
	c.wg.Wait()
}

// OpusPackets returns the Opus packets of an Ogg Opus file, without the
// two header packets (RFC 7845).
func OpusPackets(path string) ([][]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var pkts [][]byte
	var cur []byte
	for len(b) >= 27 {
		if string(b[:4]) != "OggS" {
			return nil, errors.New("voiceclient: bad ogg page")
		}
		nseg := int(b[26])
		if len(b) < 27+nseg {
			return nil, errors.New("voiceclient: truncated ogg page")
		}
		table, data := b[27:27+nseg], b[27+nseg:]
		off := 0
		for _, l := range table {
			if off+int(l) > len(data) {
				return nil, errors.New("voiceclient: truncated ogg page")
			}
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
		return nil, errors.New("voiceclient: no opus packets")
	}
	return pkts[2:], nil
}
