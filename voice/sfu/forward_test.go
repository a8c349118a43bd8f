package sfu

import (
	"net"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
)

func TestSpeakingDetector(t *testing.T) {
	const loud, quiet = 20, 127
	tests := []struct {
		name   string
		levels []uint8 // one packet each 20 ms
		want   []bool  // changes reported
	}{
		{"silence", []uint8{quiet, quiet, quiet}, nil},
		{"one loud packet is noise", []uint8{quiet, loud, quiet, quiet}, nil},
		{"two of three start", []uint8{loud, quiet, loud}, []bool{true}},
		{"two in a row start", []uint8{loud, loud}, []bool{true}},
		{"short gap does not flicker", []uint8{loud, loud, quiet, quiet, quiet, loud, loud}, []bool{true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []bool
			d := speakingDetector{onChange: func(on bool) { got = append(got, on) }}
			now := time.Unix(0, 0)
			for _, l := range tt.levels {
				d.observe(l, now)
				d.expire(now, 400*time.Millisecond)
				now = now.Add(20 * time.Millisecond)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("changes %v, want %v", got, tt.want)
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Fatalf("changes %v, want %v", got, tt.want)
				}
			}
		})
	}
}

func TestSpeakingStopsAfterHangover(t *testing.T) {
	var got []bool
	d := speakingDetector{onChange: func(on bool) { got = append(got, on) }}
	t0 := time.Unix(0, 0)
	d.observe(10, t0)
	d.observe(10, t0.Add(20*time.Millisecond))
	d.expire(t0.Add(300*time.Millisecond), 400*time.Millisecond)
	if len(got) != 1 {
		t.Fatalf("stopped before the hangover: %v", got)
	}
	// DTX: no packets at all, only the ticker.
	d.expire(t0.Add(420*time.Millisecond), 400*time.Millisecond)
	if len(got) != 2 || got[1] {
		t.Fatalf("changes %v, want [true false]", got)
	}
	if d.reset() {
		t.Fatal("reset reports speaking after stop")
	}
}

func TestKeyframes(t *testing.T) {
	tests := []struct {
		name string
		vp8  bool
		p    []byte
		want bool
	}{
		{"vp8 key, no ext", true, []byte{0x10, 0x00, 0x9d, 0x01, 0x2a}, true},
		{"vp8 delta", true, []byte{0x10, 0x01}, false},
		{"vp8 not start", true, []byte{0x00, 0x00}, false},
		{"vp8 key with 15-bit picture id", true, []byte{0x90, 0x80, 0x81, 0x23, 0x00}, true},
		{"vp8 key with pid, tl0, tid", true, []byte{0x90, 0xe0, 0x05, 0x01, 0x40, 0x00}, true},
		{"vp8 truncated", true, []byte{0x90, 0x80}, false},
		{"vp8 empty", true, nil, false},
		{"h264 idr", false, []byte{0x65, 0x88}, true},
		{"h264 sps", false, []byte{0x67, 0x42}, true},
		{"h264 non-idr", false, []byte{0x41, 0x9a}, false},
		{"h264 stap-a with sps", false, []byte{0x78, 0x00, 0x02, 0x67, 0x42, 0x00, 0x02, 0x68, 0xce}, true},
		{"h264 stap-a truncated", false, []byte{0x78, 0x00}, false},
		{"h264 fu-a idr start", false, []byte{0x7c, 0x85}, true},
		{"h264 fu-a idr middle", false, []byte{0x7c, 0x05}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := isH264Keyframe(tt.p)
			if tt.vp8 {
				got = isVP8Keyframe(tt.p)
			}
			if got != tt.want {
				t.Fatalf("keyframe = %v, want %v", got, tt.want)
			}
		})
	}
}

func FuzzKeyframe(f *testing.F) {
	f.Add([]byte{0x90, 0xe0, 0x05, 0x01, 0x40, 0x00})
	f.Add([]byte{0x78, 0x00, 0x02, 0x67, 0x42})
	f.Fuzz(func(t *testing.T, p []byte) {
		isVP8Keyframe(p)
		isH264Keyframe(p)
	})
}

// fakeWriter records what a down track writes.
type fakeWriter struct{ pkts []rtp.Header }

func (w *fakeWriter) WriteRTP(h *rtp.Header, _ []byte) (int, error) {
	w.pkts = append(w.pkts, *h)
	return 0, nil
}
func (w *fakeWriter) Write(b []byte) (int, error) { return len(b), nil }

func newTestDown(kind webrtc.RTPCodecType, mime string, clock uint32) (*downTrack, *fakeWriter) {
	owner := &Session{userID: "1"}
	up := &upTrack{owner: owner, id: "1-x", kind: kind, codec: webrtc.RTPCodecCapability{MimeType: mime, ClockRate: clock}}
	d := newDownTrack(up, &Session{}, nil)
	w := &fakeWriter{}
	d.writer, d.ssrc, d.pt = w, 4242, 100
	d.enabled.Store(true)
	return d, w
}

func TestDownTrackLayerSwitchKeepsNumbering(t *testing.T) {
	d, w := newTestDown(webrtc.RTPCodecTypeVideo, webrtc.MimeTypeVP8, 90000)
	now := time.Unix(100, 0)
	send := func(layer int, seq uint16, ts uint32, key bool) {
		d.write(layer, &rtp.Header{SequenceNumber: seq, Timestamp: ts, SSRC: uint32(layer + 1)}, []byte{1}, key, now)
		now = now.Add(10 * time.Millisecond)
	}
	d.target.Store(layerLow)
	send(layerLow, 100, 1000, false) // no key frame yet: dropped
	send(layerLow, 101, 1900, true)
	send(layerLow, 102, 2800, false)
	d.target.Store(layerHigh)
	send(layerHigh, 5000, 77000, false) // high, not key: dropped
	send(layerLow, 103, 3700, false)    // low continues until the switch
	send(layerHigh, 5001, 77900, true)  // switch here
	send(layerLow, 104, 4600, false)    // old layer now dropped
	send(layerHigh, 5002, 78800, false)

	var seqs []uint16
	for _, h := range w.pkts {
		if h.SSRC != 4242 || h.PayloadType != 100 {
			t.Fatalf("packet not rewritten: %+v", h)
		}
		seqs = append(seqs, h.SequenceNumber)
	}
	want := []uint16{101, 102, 103, 104, 105}
	if len(seqs) != len(want) {
		t.Fatalf("forwarded seqs %v, want %v", seqs, want)
	}
	for i := range want {
		if seqs[i] != want[i] {
			t.Fatalf("forwarded seqs %v, want %v", seqs, want)
		}
	}
	for i := 1; i < len(w.pkts); i++ {
		if dt := w.pkts[i].Timestamp - w.pkts[i-1].Timestamp; dt == 0 || dt > 90000 {
			t.Fatalf("timestamp jump %d between packets %d and %d", dt, i-1, i)
		}
	}
}

func TestDownTrackDisabledAndUnbound(t *testing.T) {
	d, w := newTestDown(webrtc.RTPCodecTypeAudio, webrtc.MimeTypeOpus, 48000)
	now := time.Now()
	d.enabled.Store(false)
	d.write(layerLow, &rtp.Header{SequenceNumber: 1}, []byte{1}, true, now)
	d.enabled.Store(true)
	_ = d.Unbind(nil)
	d.write(layerLow, &rtp.Header{SequenceNumber: 2}, []byte{1}, true, now)
	if len(w.pkts) != 0 {
		t.Fatalf("wrote %d packets while disabled or unbound", len(w.pkts))
	}
}

func TestPickLayer(t *testing.T) {
	now := time.Unix(1000, 0)
	up := &upTrack{}
	live := func(l int, bps int64) {
		up.layers[l].Store(&webrtc.TrackRemote{})
		up.lastSeen[l].Store(now.UnixNano())
		up.bitrate[l].Store(bps)
	}
	live(layerLow, 150_000)
	live(layerMedium, 500_000)
	live(layerHigh, 2_500_000)
	tests := []struct {
		name  string
		max   int
		share int64
		want  int
	}{
		{"no limit, wants high", layerHigh, -1, layerHigh},
		{"wants medium", layerMedium, -1, layerMedium},
		{"bandwidth for medium", layerHigh, 1_000_000, layerMedium},
		{"too little for any", layerHigh, 10_000, layerLow},
		{"off", layerOff, -1, -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := pickLayer(up, tt.max, tt.share, now); got != tt.want {
				t.Fatalf("pickLayer = %d, want %d", got, tt.want)
			}
		})
	}
	if got := pickLayer(up, layerHigh, -1, now.Add(2*time.Second)); got != -1 {
		t.Fatalf("stale layers picked: %d", got)
	}
}

func TestValidateOffer(t *testing.T) {
	media := func(kind, dir, codec string) string {
		return "m=" + kind + " 9 UDP/TLS/RTP/SAVPF 96\r\nc=IN IP4 0.0.0.0\r\na=" + dir + "\r\na=rtpmap:96 " + codec + "\r\n"
	}
	head := "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"
	tests := []struct {
		name string
		sdp  string
		want error
	}{
		{"opus", head + media("audio", "sendrecv", "opus/48000/2"), nil},
		{"vp8 and h264", head + media("video", "sendonly", "VP8/90000") + media("video", "sendonly", "H264/90000"), nil},
		{"garbage", "hello", ErrBadSDP},
		{"only pcmu", head + media("audio", "sendrecv", "PCMU/8000"), ErrUnsupportedCodec},
		{"av1 only", head + media("video", "sendonly", "AV1/90000"), ErrUnsupportedCodec},
		{"five senders", head + strings.Repeat(media("audio", "sendonly", "opus/48000/2"), 5), ErrTooManyTracks},
		{"five receivers fine", head + strings.Repeat(media("audio", "recvonly", "opus/48000/2"), 5), nil},
		{"huge", head + strings.Repeat("a=x\r\n", 20000), ErrBadSDP},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := validateOffer(tt.sdp)
			if (tt.want == nil) != (err == nil) || (tt.want != nil && !errorsIs(err, tt.want)) {
				t.Fatalf("validateOffer = %v, want %v", err, tt.want)
			}
		})
	}
}

// recordWriter notes each packet written to one subscriber in a shared log.
type recordWriter struct {
	log *[]string
	to  string
}

func (w recordWriter) WriteRTP(*rtp.Header, []byte) (int, error) {
	*w.log = append(*w.log, "copy to "+w.to)
	return 0, nil
}
func (w recordWriter) Write(b []byte) (int, error) { return len(b), nil }

// TestSpeakingAfterCopies checks that the packet that starts speaking
// reaches every subscriber before the speaking change is sent to the room:
// that change goes to every member under the SFU lock, and the packet's
// copies must not wait for it.
func TestSpeakingAfterCopies(t *testing.T) {
	var log []string
	up, ds := newFanout(3)
	up.owner.sfu = &SFU{}
	up.source = SourceMicrophone
	up.speaking.onChange = func(on bool) { log = append(log, "speaking") }
	for i, d := range ds {
		d.writer = recordWriter{&log, strconv.Itoa(i)}
	}
	f := up.newForwarder(layerLow, 1)
	now := time.Now()
	for seq := range uint16(2) { // two loud packets start speaking
		p := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 111, SequenceNumber: seq, SSRC: 5},
			Payload: make([]byte, 80)}
		if err := p.Header.SetExtension(1, []byte{10}); err != nil {
			t.Fatal(err)
		}
		raw, err := p.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		f.forward(raw, now)
	}
	want := []string{"copy to 0", "copy to 1", "copy to 2", "copy to 0", "copy to 1", "copy to 2", "speaking"}
	if !slices.Equal(log, want) {
		t.Fatalf("order %q, want %q", log, want)
	}
}

// TestFanOutTiming checks the benchmark hooks of a fan-out: OnForward once per copy with the
// time since the read loop got the packet, and OnTransit once per copy with that time plus
// the packet's wait before the read loop, when that is known, and not at all otherwise.
func TestFanOutTiming(t *testing.T) {
	const subs = 49
	const recv = 2 * time.Millisecond
	tests := []struct {
		name        string
		batched     bool
		recv        time.Duration
		wantTransit int
	}{
		{"unbatched, arrival known", false, recv, subs},
		{"batched, arrival known", true, recv, subs},
		{"batched, arrival unknown", true, -1, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var forward, transit []time.Duration
			s := &SFU{cfg: Config{
				OnForward: func(d time.Duration) { forward = append(forward, d) },
				OnTransit: func(d time.Duration) { transit = append(transit, d) },
			}}
			if tt.batched {
				c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
				if err != nil {
					t.Fatal(err)
				}
				defer c.Close()
				s.batch = newBatchConn(c)
			}
			up, _ := newFanout(subs)
			up.owner.sfu = s
			f := up.newForwarder(layerLow, 0)
			f.h = rtp.Header{Version: 2, PayloadType: 111, SequenceNumber: 1, SSRC: 5}
			start := time.Now()
			f.fanOut(make([]byte, 80), true, start, tt.recv)
			took := time.Since(start)
			if len(forward) != subs {
				t.Fatalf("OnForward called %d times, want %d", len(forward), subs)
			}
			if len(transit) != tt.wantTransit {
				t.Fatalf("OnTransit called %d times, want %d", len(transit), tt.wantTransit)
			}
			for i, d := range forward {
				if d < 0 || d > took {
					t.Errorf("copy %d: OnForward %v, want within the fan-out's %v", i, d, took)
				}
			}
			for i, d := range transit {
				if d < tt.recv || d > tt.recv+took {
					t.Errorf("copy %d: OnTransit %v, want the %v before the read loop plus at most %v", i, d, tt.recv, took)
				}
			}
		})
	}
}
