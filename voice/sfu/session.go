package sfu

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/interceptor/pkg/cc"
	"github.com/pion/rtcp"
	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"
	"golang.org/x/time/rate"
)

// maxPublishedSections bounds the send m-lines a client may offer:
// microphone, camera, screen and screen audio (VOICE-064).
const maxPublishedSections = 4

// Session is one client's voice connection: one PeerConnection, reused
// across channel switches, and its publications and subscriptions. Create
// it with SFU.Join; it lives until Close, a moderator disconnect, an ICE
// failure or the end of the resume window.
type Session struct {
	sfu       *SFU
	userID    string
	sessionID string
	pc        *webrtc.PeerConnection
	bwe       cc.BandwidthEstimator // nil if the CC interceptor gave none
	ids       *streamIDs            // the simulcast layers' SSRCs, for a source that sends again

	// Guarded by sfu.mu.
	guildID, channelID string
	room               *room
	published          map[string]*upTrack // by mid
	down               map[*upTrack]*slot
	slots              []*slot
	watching           map[string]bool // user IDs whose screen we watch
	wanted             map[string]int  // "user/source" -> max layer
	sources            map[string]Source
	selfMute           bool

	// remote marks a member of another node that the cascade put in a room:
	// it has no PeerConnection (pc is nil) and no peer, publishes what the
	// cascade feeds and subscribes to nothing here. remoteVideo and
	// remoteStream are its camera and screen flags; guarded by sfu.mu.
	remote                    bool
	remoteVideo, remoteStream bool

	// needNeg is set when senders changed and the client must get a new
	// offer. Atomic because it is set under sfu.mu, which must not be held
	// while taking negMu.
	needNeg atomic.Bool

	serverMute atomic.Bool
	serverDeaf atomic.Bool
	selfDeaf   atomic.Bool

	negMu       sync.Mutex
	started     bool // first offer answered
	outstanding bool // a server offer awaits its answer
	// answering is set from a client offer's answer until the caller has
	// delivered it (AnswerSent): a server offer sent earlier could overtake
	// the answer, and a client with its own offer pending cannot take it.
	answering bool
	revision  int
	lastOffer *webrtc.SessionDescription

	peerMu      sync.Mutex
	peer        Peer
	resumeTimer *time.Timer

	limiter   *rate.Limiter
	iceTimer  *time.Timer
	closeOnce sync.Once
	closed    chan struct{}
	reason    error // why the session closed; written before closed is closed

	// goMu guards goClosed and every wg.Add, so that no goroutine is
	// added once Close has started waiting.
	goMu     sync.Mutex
	goClosed bool
	wg       sync.WaitGroup
}

// goFn runs f on a goroutine owned by the session, unless the session is
// closing.
func (s *Session) goFn(f func()) {
	if !s.track() {
		return
	}
	go func() {
		defer s.wg.Done()
		f()
	}()
}

// track counts the caller as a session goroutine; false means the session
// is closing and the caller must not run.
func (s *Session) track() bool {
	s.goMu.Lock()
	defer s.goMu.Unlock()
	if s.goClosed {
		return false
	}
	s.wg.Add(1)
	return true
}

// slot is one sending transceiver of the session. A slot is reused for
// another track when a subscription ends, so channel switches rarely need
// new m-lines.
type slot struct {
	sender *webrtc.RTPSender      // guarded by sfu.mu; replaced when a detached slot sends again
	tr     *webrtc.RTPTransceiver // the sender's transceiver, kept while detached
	kind   webrtc.RTPCodecType
	cur    atomic.Pointer[downTrack]
	last   *downTrack // guarded by sfu.mu; numbering continues from it
	// detached is set, under sfu.mu, once an idle slot's sender has been
	// taken off its transceiver, which then stops sending: the next offer
	// tells the client that the m-line's track ended (VOICE-076). A new
	// subscription may give the m-line a new sender, with a new SSRC
	// (VOICE-077), and renegotiates.
	detached bool
}

// UserID returns the session's user.
func (s *Session) UserID() string { return s.userID }

// SessionID returns the gateway session ID from the voice token.
func (s *Session) SessionID() string { return s.sessionID }

// Room returns the session's current guild and channel.
func (s *Session) Room() (guildID, channelID string) {
	s.sfu.mu.Lock()
	defer s.sfu.mu.Unlock()
	return s.guildID, s.channelID
}

// Done is closed when the session has ended.
func (s *Session) Done() <-chan struct{} { return s.closed }

func (s *Session) send(m Message) {
	s.peerMu.Lock()
	p := s.peer
	s.peerMu.Unlock()
	if p != nil {
		_ = p.Send(m)
	}
}

// Detach is called by the voice WebSocket when its connection drops. The
// session keeps its PeerConnection for the resume window (VOICE-040) and
// closes if nobody resumes it.
func (s *Session) Detach(p Peer) {
	s.peerMu.Lock()
	defer s.peerMu.Unlock()
	if s.peer != p {
		return
	}
	s.peer = nil
	s.resumeTimer = time.AfterFunc(s.sfu.cfg.ResumeWindow, func() { s.Close(ErrNoSession) })
}

// Attach re-attaches a resumed voice WebSocket and re-sends a pending
// server offer (VOICE-041). It fails if the session has ended.
func (s *Session) Attach(p Peer) error {
	select {
	case <-s.closed:
		return ErrNoSession
	default:
	}
	s.peerMu.Lock()
	if s.resumeTimer != nil {
		s.resumeTimer.Stop()
		s.resumeTimer = nil
	}
	old := s.peer
	s.peer = p
	s.peerMu.Unlock()
	if old != nil && old != p {
		old.Close(ErrDisconnected)
	}
	s.negMu.Lock()
	if s.outstanding && s.lastOffer != nil {
		p.Send(Offer{SDP: *s.lastOffer, Revision: s.revision})
	}
	s.negMu.Unlock()
	return nil
}

// SetSources records which source each of the client's send m-lines (by
// mid) carries, for the offer that HandleOffer applies next; names given
// earlier stay. Unnamed audio is the microphone, unnamed video the camera.
// An unknown source returns ErrBadSDP. HandleOffer checks that no two
// m-lines the offer sends on carry the same source (VOICE-064, VOICE-065).
func (s *Session) SetSources(src map[string]Source) error {
	for mid, so := range src {
		if !so.valid() {
			return fmt.Errorf("%w: unknown source %q for mid %q", ErrBadSDP, so, mid)
		}
	}
	s.sfu.mu.Lock()
	defer s.sfu.mu.Unlock()
	for mid, so := range src {
		s.sources[mid] = so
	}
	return nil
}

// sourceOfLocked is the source a client m-line carries: its name, or the
// default for its kind.
func (s *Session) sourceOfLocked(mid string, kind webrtc.RTPCodecType) Source {
	if so, ok := s.sources[mid]; ok {
		return so
	}
	if kind == webrtc.RTPCodecTypeVideo {
		return SourceCamera
	}
	return SourceMicrophone
}

// checkSourcesLocked refuses an offer that sends one source on two m-lines
// (VOICE-064, VOICE-065).
func (s *Session) checkSourcesLocked(sending map[string]webrtc.RTPCodecType) error {
	seen := make(map[Source]string, len(sending))
	for mid, kind := range sending {
		so := s.sourceOfLocked(mid, kind)
		if other, ok := seen[so]; ok {
			return fmt.Errorf("%w: %s sent on mids %q and %q", ErrTooManyTracks, so, other, mid)
		}
		seen[so] = mid
	}
	return nil
}

// HandleOffer applies a client offer (op 1 first, op 102 later) and returns
// the answer. The caller must deliver the answer to the client and then
// call AnswerSent: until then the session sends no server offer, which
// could reach the client before the answer and be refused there. It
// returns ErrGlare while a server offer is outstanding (VOICE-053),
// ErrRateLimited on a flood, and ErrBadSDP or
// ErrUnsupportedCodec for an offer it refuses; the caller closes the
// session on those last three.
func (s *Session) HandleOffer(ctx context.Context, offer webrtc.SessionDescription) (webrtc.SessionDescription, error) {
	if offer.Type != webrtc.SDPTypeOffer {
		return webrtc.SessionDescription{}, fmt.Errorf("%w: type %q is not offer", ErrBadSDP, offer.Type)
	}
	sending, err := validateOffer(offer.SDP)
	if err != nil {
		return webrtc.SessionDescription{}, err
	}
	s.negMu.Lock()
	defer s.negMu.Unlock()
	if s.started && !s.limiter.Allow() {
		return webrtc.SessionDescription{}, ErrRateLimited
	}
	if s.outstanding {
		return webrtc.SessionDescription{}, ErrGlare
	}
	s.sfu.mu.Lock()
	err = s.checkSourcesLocked(sending)
	s.sfu.mu.Unlock()
	if err != nil {
		return webrtc.SessionDescription{}, err
	}
	if err := s.pc.SetRemoteDescription(offer); err != nil {
		return webrtc.SessionDescription{}, s.closingOr(fmt.Errorf("%w: %v", ErrBadSDP, err))
	}
	// What the client stopped sending is unpublished before the answer
	// (VOICE-069): its subscribers renegotiate, its state is reported.
	s.sfu.mu.Lock()
	for mid := range s.published {
		if _, ok := sending[mid]; !ok && mid != "" {
			s.sfu.unpublishLocked(s, mid)
		}
	}
	s.sfu.mu.Unlock()
	first := !s.started
	if first {
		s.started = true
		s.sfu.mu.Lock()
		s.sfu.subscribeAllLocked(s)
		s.sfu.mu.Unlock()
	}
	answer, err := s.pc.CreateAnswer(nil)
	if err != nil {
		return webrtc.SessionDescription{}, fmt.Errorf("%w: answer: %v", ErrUnsupportedCodec, err)
	}
	if err := s.pc.SetLocalDescription(answer); err != nil {
		return webrtc.SessionDescription{}, s.closingOr(fmt.Errorf("%w: set answer: %v", ErrBadSDP, err))
	}
	s.ids.setSending(sending)
	if s.unnegotiatedLocked() {
		s.needNeg.Store(true)
	}
	s.answering = true // AnswerSent runs the pending work once the client has the answer
	// pion keeps its own answer (it refuses a local description edited after CreateAnswer);
	// the client gets the same answer with the SFU's Opus wishes added.
	ld := *s.pc.LocalDescription()
	ld.SDP = withOpusFmtp(ld.SDP)
	return ld, nil
}

// AnswerSent tells the session that the answer HandleOffer returned was
// handed to the client: the track map and any renegotiation that waited for
// it follow.
func (s *Session) AnswerSent() {
	s.negMu.Lock()
	was := s.answering
	s.answering = false
	s.negMu.Unlock()
	if was {
		s.goFn(s.afterNegotiation)
	}
}

// closingOr returns the session's close reason if it has closed (its PeerConnection then
// fails every call, which is no fault of the client's description), and err otherwise.
func (s *Session) closingOr(err error) error {
	select {
	case <-s.closed:
		if s.reason != nil {
			return s.reason
		}
		return ErrNoSession
	default:
		return err
	}
}

// unnegotiatedLocked reports whether a sender is not in the last
// description yet.
func (s *Session) unnegotiatedLocked() bool {
	for _, t := range s.pc.GetTransceivers() {
		if t.Mid() == "" && t.Sender() != nil {
			return true
		}
	}
	return false
}

// HandleAnswer applies the client's answer to server offer revision rev.
// A stale answer returns ErrStaleAnswer and changes nothing (VOICE-052).
func (s *Session) HandleAnswer(answer webrtc.SessionDescription, rev int) error {
	s.negMu.Lock()
	defer s.negMu.Unlock()
	if !s.outstanding || rev != s.revision {
		return ErrStaleAnswer
	}
	if answer.Type != webrtc.SDPTypeAnswer {
		return fmt.Errorf("%w: type %q is not answer", ErrBadSDP, answer.Type)
	}
	if err := s.pc.SetRemoteDescription(answer); err != nil {
		return s.closingOr(fmt.Errorf("%w: %v", ErrBadSDP, err))
	}
	s.outstanding = false
	s.goFn(s.afterNegotiation)
	return nil
}

// afterNegotiation sends the track map and starts a pending renegotiation.
func (s *Session) afterNegotiation() {
	s.sendTracks()
	s.renegotiate()
}

// AddICECandidate adds a trickled client candidate (op 103).
func (s *Session) AddICECandidate(c webrtc.ICECandidateInit) error {
	if c.Candidate == "" {
		return nil
	}
	if err := s.pc.AddICECandidate(c); err != nil {
		return fmt.Errorf("sfu: candidate: %w", err)
	}
	return nil
}

// renegotiate sends a server offer if one is needed and none is
// outstanding (VOICE-051), and reports whether it sent one. An offer is
// needed for new or reattached senders, and for idle senders, which it
// detaches so that their m-lines stop sending (VOICE-076).
func (s *Session) renegotiate() bool {
	s.negMu.Lock()
	defer s.negMu.Unlock()
	if !s.started || s.outstanding || s.answering {
		return false
	}
	select {
	case <-s.closed:
		return false
	default:
	}
	s.sfu.mu.Lock()
	detached := s.detachIdleLocked()
	s.sfu.mu.Unlock()
	if !s.needNeg.Swap(false) && !detached {
		return false
	}
	offer, err := s.pc.CreateOffer(nil)
	if err == nil {
		err = s.pc.SetLocalDescription(offer)
	}
	if err != nil {
		lvl := slog.LevelWarn
		if errors.Is(err, webrtc.ErrConnectionClosed) || s.pc.ConnectionState() == webrtc.PeerConnectionStateClosed {
			lvl = slog.LevelDebug // the session is closing
		}
		s.sfu.log.Log(context.Background(), lvl, "sfu: renegotiate", "user", s.userID, "err", err)
		return false
	}
	s.outstanding = true
	s.revision++
	ld := *s.pc.LocalDescription()
	s.lastOffer = &ld
	s.send(Offer{SDP: ld, Revision: s.revision})
	return true
}

// detachIdleLocked takes the sender of every idle slot off its transceiver,
// so that the next offer marks the m-line as no longer sending, and reports
// whether it detached any. The caller holds sfu.mu and negMu with no offer
// outstanding, so every sender has been negotiated.
func (s *Session) detachIdleLocked() bool {
	select {
	case <-s.closed:
		return false // Close stops only the senders it saw detached
	default:
	}
	did := false
	for _, sl := range s.slots {
		if sl.detached || sl.tr == nil || sl.cur.Load() != nil || (sl.last != nil && !sl.last.bound.Load()) {
			continue
		}
		if err := sl.tr.SetSender(sl.sender, nil); err != nil {
			s.sfu.log.Debug("sfu: detach idle sender", "user", s.userID, "err", err)
			continue
		}
		sl.detached, did = true, true
	}
	return did
}

func (s *Session) sendTracks() {
	s.sfu.mu.Lock()
	var out []TrackInfo
	mids := map[*webrtc.RTPSender]string{}
	for _, t := range s.pc.GetTransceivers() {
		if t.Sender() != nil {
			mids[t.Sender()] = t.Mid()
		}
	}
	for _, sl := range s.slots {
		d := sl.cur.Load()
		if d == nil || mids[sl.sender] == "" {
			continue
		}
		out = append(out, TrackInfo{
			UserID: d.up.owner.userID, StreamID: d.StreamID(), TrackID: d.ID(),
			Kind: d.up.kind.String(), Source: d.up.source, Mid: mids[sl.sender],
		})
	}
	s.sfu.mu.Unlock()
	s.send(Tracks{Tracks: out})
}

// RequestLayer sets the highest layer wanted for one member's video source
// (op 104); layerName is "off", "low", "medium" or "high".
func (s *Session) RequestLayer(userID string, source Source, layerName string) error {
	if !s.limiter.Allow() {
		return ErrRateLimited
	}
	l, ok := map[string]int{"off": layerOff, "low": layerLow, "medium": layerMedium, "high": layerHigh}[layerName]
	if !ok || (source != SourceCamera && source != SourceScreen) {
		return fmt.Errorf("sfu: layer request: bad layer %q or source %q", layerName, source)
	}
	s.sfu.mu.Lock()
	defer s.sfu.mu.Unlock()
	s.wanted[userID+"/"+string(source)] = l
	for up, sl := range s.down {
		if up.owner.userID == userID && up.source == source {
			if d := sl.cur.Load(); d != nil {
				s.applyWantLocked(d)
			}
		}
	}
	s.sfu.allocateLocked(s, time.Now())
	return nil
}

// Watch opts in to (or out of) one member's screen share (op 108,
// VOICE-100).
func (s *Session) Watch(userID string, watch bool) error {
	if !s.limiter.Allow() {
		return ErrRateLimited
	}
	s.sfu.mu.Lock()
	defer s.sfu.mu.Unlock()
	s.watching[userID] = watch
	for up, sl := range s.down {
		if up.owner.userID == userID && up.source == SourceScreen {
			if d := sl.cur.Load(); d != nil {
				s.applyWantLocked(d)
			}
		}
	}
	s.sfu.allocateLocked(s, time.Now())
	return nil
}

// applyWantLocked sets a down track's enabled flag and layer ceiling from
// the session's deafness, watches and layer requests.
func (s *Session) applyWantLocked(d *downTrack) {
	up := d.up
	defer up.recomputeDemand() // a remote member's track follows what its subscribers want
	if up.kind == webrtc.RTPCodecTypeAudio {
		d.enabled.Store(!s.serverDeaf.Load() && !s.selfDeaf.Load())
		return
	}
	maxL := layerHigh
	if up.source == SourceCamera {
		maxL = layerLow // VOICE-101
	}
	if w, ok := s.wanted[up.owner.userID+"/"+string(up.source)]; ok {
		maxL = w
	}
	if up.source == SourceScreen && !s.watching[up.owner.userID] {
		maxL = layerOff
	}
	d.maxLayer.Store(int32(maxL))
	d.enabled.Store(maxL != layerOff)
}

// Close ends the session: the client is told why (reason's close code), the
// PeerConnection closes, every goroutine of the session ends, and the node
// hears that the member left.
func (s *Session) Close(reason error) {
	s.closeOnce.Do(func() {
		s.reason = reason
		close(s.closed)
		if s.iceTimer != nil {
			s.iceTimer.Stop()
		}
		s.sfu.removeSession(s)
		s.goMu.Lock()
		s.goClosed = true
		s.goMu.Unlock()
		if s.pc == nil {
			return // a remote member
		}
		// Detached senders belong to no transceiver, so closing the
		// PeerConnection would not stop them (nor their RTCP loops).
		s.sfu.mu.Lock()
		var loose []*webrtc.RTPSender
		for _, sl := range s.slots {
			if sl.detached {
				loose = append(loose, sl.sender)
			}
		}
		s.sfu.mu.Unlock()
		for _, snd := range loose {
			_ = snd.Stop()
		}
		if err := s.pc.Close(); err != nil {
			s.sfu.log.Debug("sfu: close peer connection", "user", s.userID, "err", err)
		}
		s.wg.Wait()
		s.peerMu.Lock()
		p := s.peer
		s.peer = nil
		if s.resumeTimer != nil {
			s.resumeTimer.Stop()
		}
		s.peerMu.Unlock()
		if p != nil {
			p.Close(reason)
		}
	})
}

// onTrack publishes a client track (or one simulcast layer of it).
func (s *Session) onTrack(t *webrtc.TrackRemote, r *webrtc.RTPReceiver) {
	mid := ""
	for _, tr := range s.pc.GetTransceivers() {
		if tr.Receiver() == r {
			mid = tr.Mid()
			break
		}
	}
	var audioLevelID uint8
	for _, e := range r.GetParameters().HeaderExtensions {
		if e.URI == sdp.AudioLevelURI {
			audioLevelID = uint8(e.ID)
		}
	}
	up, err := s.sfu.publish(s, mid, t)
	if err != nil {
		s.sfu.log.Info("sfu: refused track", "user", s.userID, "mid", mid, "err", err)
		go s.Close(err)
		return
	}
	layer := layerLow
	if t.RID() != "" {
		layer = layerOfRID(t.RID())
		s.ids.remember(uint32(t.SSRC()), mid, t.RID())
	}
	up.layers[layer].Store(t)
	if up.kind == webrtc.RTPCodecTypeVideo {
		up.requestKeyframe(layer)
	}
	// pion runs OnTrack on its own goroutine; the read loop lives on it
	// and ends when the PeerConnection closes. Count it so Close waits.
	if !s.track() {
		return
	}
	defer s.wg.Done()
	up.readLoop(layer, t, audioLevelID)
}

// rtcpLoop reads the subscriber's RTCP on one sender (which also feeds the
// NACK responder) and turns PLI/FIR into key-frame requests upstream.
func (sl *slot) rtcpLoop(sender *webrtc.RTPSender) {
	buf := make([]byte, 1500)
	for {
		n, _, err := sender.Read(buf)
		if err != nil {
			return
		}
		if sl.kind != webrtc.RTPCodecTypeVideo {
			continue
		}
		pkts, err := rtcp.Unmarshal(buf[:n])
		if err != nil {
			continue
		}
		for _, p := range pkts {
			switch p.(type) {
			case *rtcp.PictureLossIndication, *rtcp.FullIntraRequest:
				if d := sl.cur.Load(); d != nil {
					d.mu.Lock()
					cur := d.current
					d.mu.Unlock()
					d.up.requestKeyframe(cur)
				}
			}
		}
	}
}

// validateOffer refuses SDP the SFU cannot use before pion sees it
// (VOICE-063, VOICE-064, VOICE-067) and returns the kind of each m-line
// the client sends on, by mid: not recvonly, not inactive, not rejected
// (port 0). An m-line it does not send on stops what it published
// (VOICE-069).
func validateOffer(raw string) (map[string]webrtc.RTPCodecType, error) {
	if len(raw) > 64<<10 {
		return nil, fmt.Errorf("%w: %d bytes", ErrBadSDP, len(raw))
	}
	var d sdp.SessionDescription
	if err := d.UnmarshalString(raw); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadSDP, err)
	}
	sending := map[string]webrtc.RTPCodecType{}
	n := 0
	for _, m := range d.MediaDescriptions {
		kind := m.MediaName.Media
		if kind == "application" {
			continue
		}
		if kind != "audio" && kind != "video" {
			return nil, fmt.Errorf("%w: media %q", ErrUnsupportedCodec, kind)
		}
		if m.MediaName.Port.Value == 0 {
			continue // rejected or stopped section
		}
		if !hasSupportedCodec(m, kind) {
			return nil, fmt.Errorf("%w: no usable %s codec in %v", ErrUnsupportedCodec, kind, m.MediaName.Formats)
		}
		_, recvonly := m.Attribute("recvonly")
		_, inactive := m.Attribute("inactive")
		if recvonly || inactive {
			continue
		}
		n++
		if mid, ok := m.Attribute("mid"); ok {
			sending[mid] = webrtc.NewRTPCodecType(kind)
		}
	}
	if n > maxPublishedSections {
		return nil, fmt.Errorf("%w: %d send sections", ErrTooManyTracks, n)
	}
	return sending, nil
}

func hasSupportedCodec(m *sdp.MediaDescription, kind string) bool {
	for _, a := range m.Attributes {
		if a.Key != "rtpmap" {
			continue
		}
		_, enc, ok := strings.Cut(a.Value, " ")
		if !ok {
			continue
		}
		name, _, _ := strings.Cut(enc, "/")
		switch strings.ToLower(name) {
		case "opus":
			if kind == "audio" {
				return true
			}
		case "vp8", "h264":
			if kind == "video" {
				return true
			}
		}
	}
	return false
}
