package sfu

import (
	"errors"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
)

// Source is what a published track carries.
type Source string

// Sources a session may publish, one track each (VOICE-064).
const (
	SourceMicrophone  Source = "microphone"
	SourceCamera      Source = "camera"
	SourceScreen      Source = "screen"
	SourceScreenAudio Source = "screen_audio"
)

func (s Source) valid() bool {
	switch s {
	case SourceMicrophone, SourceCamera, SourceScreen, SourceScreenAudio:
		return true
	}
	return false
}

// Simulcast layers, lowest first. A track without simulcast has only
// layerLow.
const (
	layerLow = iota
	layerMedium
	layerHigh
	numLayers
	layerOff = -1
)

func layerOfRID(rid string) int {
	switch rid {
	case "h", "m", "mid", "medium":
		return layerMedium
	case "f", "full", "high":
		return layerHigh
	}
	return layerLow
}

// upTrack is one published track (all its simulcast layers) of one session.
type upTrack struct {
	owner  *Session
	id     string
	source Source
	kind   webrtc.RTPCodecType
	codec  webrtc.RTPCodecCapability
	serial uint64 // unique in the SFU; names the track to the cascade

	// keyframe, if set, asks a remote member's node for a key frame instead
	// of the owner's PeerConnection; demand, if set, hears the highest layer
	// the track's subscribers want (see RemoteTrackSpec.Demand) whenever it
	// changes, under the SFU lock. Both are set for tracks the cascade
	// feeds. lastDemand is the last value given (guarded by mu).
	keyframe   func()
	demand     func(int)
	lastDemand int
	remote     *RemoteTrack // the cascade's handle, for a remote member's track

	layers   [numLayers]atomic.Pointer[webrtc.TrackRemote]
	lastSeen [numLayers]atomic.Int64 // unix nanos of the last packet per layer
	bitrate  [numLayers]atomic.Int64 // bits/s per layer, updated once a second

	// subs is the copy-on-write list of subscribers; the read loops load it
	// once per packet without locking.
	subs atomic.Pointer[[]*downTrack]
	mu   sync.Mutex // serialises writers of subs

	speaking speakingDetector
	// ended is set when the track is unpublished; its read loops may still
	// deliver a few packets, which are dropped.
	ended atomic.Bool
}

func (u *upTrack) addSub(d *downTrack) {
	u.mu.Lock()
	defer u.mu.Unlock()
	old := u.loadSubs()
	next := make([]*downTrack, 0, len(old)+1)
	next = append(next, old...)
	next = append(next, d)
	u.subs.Store(&next)
	u.recomputeDemandLocked()
}

// recomputeDemand tells demand, if set, the highest layer the enabled
// subscribers want (0 for audio; layerOff when nobody listens).
func (u *upTrack) recomputeDemand() {
	if u.demand == nil {
		return
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	u.recomputeDemandLocked()
}

func (u *upTrack) recomputeDemandLocked() {
	if u.demand == nil {
		return
	}
	want := layerOff
	for _, d := range u.loadSubs() {
		if !d.enabled.Load() {
			continue
		}
		l := layerLow
		if u.kind == webrtc.RTPCodecTypeVideo {
			l = int(d.maxLayer.Load())
		}
		want = max(want, l)
	}
	if want != u.lastDemand {
		u.lastDemand = want
		u.demand(want)
	}
}

func (u *upTrack) removeSub(d *downTrack) {
	u.mu.Lock()
	defer u.mu.Unlock()
	old := u.loadSubs()
	next := make([]*downTrack, 0, len(old))
	for _, x := range old {
		if x != d {
			next = append(next, x)
		}
	}
	u.subs.Store(&next)
	u.recomputeDemandLocked()
}

func (u *upTrack) loadSubs() []*downTrack {
	if p := u.subs.Load(); p != nil {
		return *p
	}
	return nil
}

// requestKeyframe asks the publisher for a key frame on one layer (PLI).
func (u *upTrack) requestKeyframe(layer int) {
	if layer < 0 || layer >= numLayers {
		return
	}
	if u.keyframe != nil {
		u.keyframe()
		return
	}
	t := u.layers[layer].Load()
	if t == nil {
		return
	}
	_ = u.owner.pc.WriteRTCP([]rtcp.Packet{&rtcp.PictureLossIndication{MediaSSRC: uint32(t.SSRC())}})
}

// readLoop forwards one layer of the track until the track ends. It is the
// hot path: no allocation per packet.
func (u *upTrack) readLoop(layer int, t *webrtc.TrackRemote, audioLevelID uint8) {
	buf := make([]byte, 1500)
	f := u.newForwarder(layer, audioLevelID)
	for {
		n, _, err := t.Read(buf)
		if err != nil {
			if !errors.Is(err, io.EOF) {
				u.owner.sfu.log.Debug("sfu: track read ended", "track", u.id, "err", err)
			}
			return
		}
		f.forward(buf[:n], time.Now())
	}
}

// forwarder is the per-layer state of one packet source of an upTrack: a
// read loop, or the cascade for a remote member's track. One goroutine
// uses it at a time.
type forwarder struct {
	u            *upTrack
	layer        int
	audioLevelID uint8
	isVideo      bool
	isH264       bool
	h            rtp.Header
	bytes        int64
	secondStart  time.Time
}

func (u *upTrack) newForwarder(layer int, audioLevelID uint8) *forwarder {
	return &forwarder{u: u, layer: layer, audioLevelID: audioLevelID,
		isVideo: u.kind == webrtc.RTPCodecTypeVideo, isH264: strings.EqualFold(u.codec.MimeType, webrtc.MimeTypeH264),
		secondStart: time.Now()}
}

// forward sends one RTP packet to every subscriber.
func (f *forwarder) forward(pkt []byte, now time.Time) {
	u, layer, n := f.u, f.layer, len(pkt)
	if u.ended.Load() {
		return
	}
	u.lastSeen[layer].Store(now.UnixNano())
	f.bytes += int64(n)
	if el := now.Sub(f.secondStart); el >= time.Second {
		u.bitrate[layer].Store(f.bytes * 8 * int64(time.Second) / int64(el))
		f.bytes, f.secondStart = 0, now
	}
	hl, err := f.h.Unmarshal(pkt)
	if err != nil {
		return
	}
	end := n
	if f.h.Padding {
		pad := int(pkt[n-1])
		if pad == 0 || hl+pad > n {
			return
		}
		end -= pad
	}
	recv := time.Duration(-1) // since the packet reached the socket, when timed
	if b := u.owner.sfu.batch; b != nil && b.arr != nil {
		if d, ok := b.arr.since(f.h.SSRC, f.h.SequenceNumber, now); ok {
			recv = d
			if on := u.owner.sfu.cfg.OnReceive; on != nil {
				on(d)
			}
		}
	}
	payload := pkt[hl:end]
	if len(payload) == 0 {
		return // padding-only probe
	}
	if u.owner.serverMute.Load() && !f.isVideo {
		return // VOICE-081, VOICE-074: drop at the SFU, never speaking
	}
	key := true
	if f.isVideo {
		if f.isH264 {
			key = isH264Keyframe(payload)
		} else {
			key = isVP8Keyframe(payload)
		}
	}
	f.fanOut(payload, key, now, recv)
	// Speaking detection once the copies are out: a change is sent to the
	// whole room under the SFU lock, which this packet must not wait for.
	if f.audioLevelID != 0 && u.source == SourceMicrophone {
		if ext := f.h.GetExtension(f.audioLevelID); len(ext) > 0 {
			u.speaking.observe(ext[0]&0x7f, now)
		}
	}
}

// fanOut writes the packet whose header is f.h to every subscriber. recv
// is the time from the packet's arrival at the socket to now, or negative
// when unknown (for Config.OnTransit).
func (f *forwarder) fanOut(payload []byte, key bool, now time.Time, recv time.Duration) {
	u, layer := f.u, f.layer
	subs := u.loadSubs()
	cfg, batch := &u.owner.sfu.cfg, u.owner.sfu.batch
	timed := cfg.OnForward != nil || (cfg.OnTransit != nil && recv >= 0)
	// sent reports n copies sent el after the read loop got the packet.
	sent := func(n int, el time.Duration) {
		for range n {
			if cfg.OnForward != nil {
				cfg.OnForward(el)
			}
			if cfg.OnTransit != nil && recv >= 0 {
				cfg.OnTransit(recv + el)
			}
		}
	}
	if batch == nil {
		for _, d := range subs {
			d.write(layer, &f.h, payload, key, now)
			if timed {
				sent(1, time.Since(now))
			}
		}
		return
	}
	batch.begin()
	if !timed {
		for _, d := range subs {
			d.write(layer, &f.h, payload, key, now)
		}
		batch.end() // the copies leave in sendmmsg calls of up to maxBatch
		return
	}
	// A copy counts as sent when a batch went out after it was queued (ours
	// at maxBatch or at the end, or another fan-out's).
	pending, sends := 0, batch.sends.Load()
	for _, d := range subs {
		d.write(layer, &f.h, payload, key, now)
		pending++
		if s := batch.sends.Load(); s != sends {
			sent(pending, time.Since(now))
			pending, sends = 0, s
		}
	}
	batch.end()
	sent(pending, time.Since(now))
}

// downTrack is one upTrack as one subscriber receives it. It implements
// webrtc.TrackLocal and rewrites SSRC, payload type, sequence numbers and
// timestamps so that layer switches stay invisible (VOICE-105).
type downTrack struct {
	up  *upTrack
	sub *Session

	// enabled is false while the subscriber is deaf (audio) or does not
	// watch (video).
	enabled atomic.Bool
	// bound is set once pion has bound the track, which it does when the
	// sender starts: before that the sender must keep a track (see
	// unsubscribeLocked).
	bound atomic.Bool
	// maxLayer is the highest layer the subscriber asked for; target is the
	// layer chosen from it and the bandwidth estimate.
	maxLayer atomic.Int32
	target   atomic.Int32
	// lastUpgrade is when the allocator last raised target; guarded by
	// sfu.mu.
	lastUpgrade time.Time

	mu       sync.Mutex // guards everything below; writers are per layer
	writer   webrtc.TrackLocalWriter
	ssrc     uint32
	pt       uint8
	current  int
	started  bool
	seqOff   uint16
	tsOff    uint32
	lastSeq  uint16
	lastTS   uint32
	lastTime time.Time
	exts     [2]rtp.Extension // room for the TWCC extension the send path adds

	outMu sync.Mutex // guards out; never held with mu
	out   rtp.Header
}

// newDownTrack makes a down track. prev, if not nil, is the track that the
// same sender carried before, so the new one continues its numbering.
func newDownTrack(up *upTrack, sub *Session, prev *downTrack) *downTrack {
	d := &downTrack{up: up, sub: sub, current: layerOff}
	if prev != nil {
		prev.mu.Lock()
		d.started, d.lastSeq, d.lastTS, d.lastTime = prev.started, prev.lastSeq, prev.lastTS, prev.lastTime
		prev.mu.Unlock()
	}
	d.maxLayer.Store(layerHigh)
	d.target.Store(layerLow)
	return d
}

// Bind implements webrtc.TrackLocal.
func (d *downTrack) Bind(ctx webrtc.TrackLocalContext) (webrtc.RTPCodecParameters, error) {
	for _, c := range ctx.CodecParameters() {
		if strings.EqualFold(c.MimeType, d.up.codec.MimeType) {
			d.mu.Lock()
			d.writer, d.ssrc, d.pt = ctx.WriteStream(), uint32(ctx.SSRC()), uint8(c.PayloadType)
			d.mu.Unlock()
			d.bound.Store(true)
			if d.up.kind == webrtc.RTPCodecTypeVideo {
				// A new sender binds once the subscriber's answer is in: the key
				// frames asked for when the track was published have gone by, and
				// a screen sends no other unless asked.
				d.up.requestKeyframe(int(d.target.Load()))
			}
			return c, nil
		}
	}
	return webrtc.RTPCodecParameters{}, webrtc.ErrUnsupportedCodec
}

// awaitsKeyframe reports whether the bound track waits for a key frame on
// its target layer before it can forward it.
func (d *downTrack) awaitsKeyframe() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.writer != nil && int32(d.current) != d.target.Load()
}

// Unbind implements webrtc.TrackLocal.
func (d *downTrack) Unbind(webrtc.TrackLocalContext) error {
	d.mu.Lock()
	d.writer = nil
	d.mu.Unlock()
	return nil
}

// ID implements webrtc.TrackLocal.
func (d *downTrack) ID() string { return d.up.id }

// RID implements webrtc.TrackLocal; downstream tracks are never simulcast.
func (d *downTrack) RID() string { return "" }

// StreamID implements webrtc.TrackLocal: the publisher's user ID.
func (d *downTrack) StreamID() string { return d.up.owner.userID }

// Kind implements webrtc.TrackLocal.
func (d *downTrack) Kind() webrtc.RTPCodecType { return d.up.kind }

// write forwards one packet of one layer. It switches layers only on a key
// frame of the target layer (VOICE-104).
func (d *downTrack) write(layer int, h *rtp.Header, payload []byte, key bool, now time.Time) {
	if !d.enabled.Load() {
		return
	}
	d.mu.Lock()
	if d.writer == nil {
		d.mu.Unlock()
		return
	}
	if layer != d.current {
		if int32(layer) != d.target.Load() || !key {
			d.mu.Unlock()
			return
		}
		if d.started {
			// Continue the output numbering where the old layer stopped.
			d.seqOff = h.SequenceNumber - d.lastSeq - 1
			elapsed := uint32(now.Sub(d.lastTime) * time.Duration(d.up.codec.ClockRate) / time.Second)
			if elapsed == 0 {
				elapsed = 1
			}
			d.tsOff = h.Timestamp - d.lastTS - elapsed
		} else {
			d.seqOff, d.tsOff = 0, 0
		}
		d.current, d.started = layer, true
	}
	seq, ts := h.SequenceNumber-d.seqOff, h.Timestamp-d.tsOff
	if seqNewer(seq, d.lastSeq) || d.lastTime.IsZero() {
		d.lastSeq, d.lastTS, d.lastTime = seq, ts, now
	}
	w, ssrc, pt := d.writer, d.ssrc, d.pt
	d.mu.Unlock()

	// The outgoing header lives in the down track so that handing its
	// address to the writer does not allocate; outMu keeps layers that
	// arrive on different goroutines from sharing it.
	d.outMu.Lock()
	d.out = *h
	d.out.SSRC, d.out.PayloadType = ssrc, pt
	d.out.SequenceNumber, d.out.Timestamp = seq, ts
	d.out.Padding, d.out.PaddingSize = false, 0
	d.out.Extension = false
	d.out.Extensions = d.exts[:0]
	_, _ = w.WriteRTP(&d.out, payload)
	d.outMu.Unlock()
}

func seqNewer(a, b uint16) bool { return a != b && a-b < 0x8000 }

// isVP8Keyframe reports whether an RTP payload starts a VP8 key frame
// (RFC 7741 section 4).
func isVP8Keyframe(p []byte) bool {
	if len(p) < 1 {
		return false
	}
	x, s, pid := p[0]&0x80 != 0, p[0]&0x10 != 0, p[0]&0x07
	if !s || pid != 0 {
		return false
	}
	i := 1
	if x {
		if len(p) < 2 {
			return false
		}
		ext := p[1]
		i = 2
		if ext&0x80 != 0 { // I: picture ID
			if len(p) <= i {
				return false
			}
			if p[i]&0x80 != 0 {
				i += 2
			} else {
				i++
			}
		}
		if ext&0x40 != 0 { // L: TL0PICIDX
			i++
		}
		if ext&0x30 != 0 { // T or K: TID/KEYIDX byte
			i++
		}
	}
	if len(p) <= i {
		return false
	}
	return p[i]&0x01 == 0
}

// isH264Keyframe reports whether an RTP payload carries an IDR slice or an
// SPS (RFC 6184), in a single NAL, STAP-A or the first FU-A fragment.
func isH264Keyframe(p []byte) bool {
	if len(p) < 1 {
		return false
	}
	switch nal := p[0] & 0x1f; {
	case nal == 5 || nal == 7:
		return true
	case nal == 24: // STAP-A
		for i := 1; i+2 < len(p); {
			size := int(p[i])<<8 | int(p[i+1])
			if i+2 >= len(p) {
				break
			}
			if t := p[i+2] & 0x1f; t == 5 || t == 7 {
				return true
			}
			i += 2 + size
		}
	case nal == 28: // FU-A
		return len(p) > 1 && p[1]&0x80 != 0 && (p[1]&0x1f == 5 || p[1]&0x1f == 7)
	}
	return false
}
