package sfu

import (
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/interceptor/pkg/cc"
	"github.com/pion/interceptor/pkg/gcc"
	"github.com/pion/logging"
	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"
)

// Config configures an SFU. The zero value is usable for tests on one host:
// ephemeral UDP ports, no ICE-TCP, no public IP.
type Config struct {
	// UDPPort, if non-zero, makes every session share this one UDP port
	// (ICE UDP mux, VOICE-120). Zero means one ephemeral port per session,
	// limited to [UDPPortMin, UDPPortMax] when those are set.
	UDPPort int
	// UDPPortMin and UDPPortMax bound the ephemeral ports. Both zero means
	// any port the OS gives. Ignored when UDPPort is set.
	UDPPortMin, UDPPortMax uint16
	// TCPPort, if non-zero, listens for ICE-TCP on this port as a fallback
	// for networks that block UDP (VOICE-121). Zero disables ICE-TCP.
	TCPPort int
	// ListenIP is the address the UDP and TCP muxes bind. Empty means all
	// interfaces.
	ListenIP string
	// PublicIPs are announced as host candidates instead of local addresses
	// (--voice-public-ip, VOICE-122). Empty announces local addresses. Each
	// replaces the local addresses of its own family, and a family without
	// one is not announced at all (VOICE-124): with only an IPv4 address
	// configured, the SFU gathers no IPv6 candidates.
	PublicIPs []string
	// Loopback gathers loopback candidates; tests on 127.0.0.1 need it.
	Loopback bool
	// ICEConnectTimeout closes a session whose ICE has not connected this
	// long after its first answer (VOICE-056). Zero means 15 s.
	ICEConnectTimeout time.Duration
	// ResumeWindow is how long a session whose voice WebSocket dropped
	// waits for Resume before it closes (VOICE-040). Zero means 15 s.
	ResumeWindow time.Duration
	// SpeakingHangover is how long a member stays speaking after the last
	// loud packet (VOICE-071). Zero means 400 ms.
	SpeakingHangover time.Duration
	// Events receives voice-state changes for the node to dispatch. Nil
	// discards them.
	Events Events
	// OnForward, if set, is called after each packet written to a
	// subscriber with the time since the SFU read the packet from its
	// publisher (decrypted, before the fan-out): the forwarding latency the
	// SFU adds, fan-out order and SRTP included. It runs on the forwarding
	// path and must be quick. Benchmarks set it; nil costs nothing.
	OnForward func(time.Duration)
	// OnReceive, if set with UDPPort, is called once for each packet a
	// publisher's read loop gets, with the time since the packet reached the
	// shared UDP socket (the kernel's receive timestamp, on Linux): the wait
	// in the socket's buffer, pion's UDP mux, SRTP decryption and the
	// track's buffer, the part of the SFU's latency before what OnForward
	// times. It runs on the forwarding path. Benchmarks set it; nil costs
	// nothing.
	OnReceive func(time.Duration)
	// OnTransit, if set with UDPPort, is called after each packet written to
	// a subscriber with the time since the packet reached the shared UDP
	// socket: OnReceive's part and OnForward's together, per copy, the whole
	// latency the SFU adds. It runs on the forwarding path. Benchmarks set
	// it; nil costs nothing.
	OnTransit func(time.Duration)
	// Logger receives the SFU's logs. Nil means slog.Default().
	Logger *slog.Logger
}

func (c *Config) setDefaults() {
	if c.ICEConnectTimeout == 0 {
		c.ICEConnectTimeout = 15 * time.Second
	}
	if c.ResumeWindow == 0 {
		c.ResumeWindow = 15 * time.Second
	}
	if c.SpeakingHangover == 0 {
		c.SpeakingHangover = 400 * time.Millisecond
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Events == nil {
		c.Events = nopEvents{}
	}
}

// udpBuffer is the socket buffer asked for the shared UDP port.
const udpBuffer = 4 << 20

// Opus parameters put in every description (VOICE-060).
const opusFmtp = "minptime=10;useinbandfec=1;usedtx=1"

var videoFeedback = []webrtc.RTCPFeedback{
	{Type: webrtc.TypeRTCPFBGoogREMB}, {Type: webrtc.TypeRTCPFBCCM, Parameter: "fir"},
	{Type: webrtc.TypeRTCPFBNACK}, {Type: webrtc.TypeRTCPFBNACK, Parameter: "pli"},
	{Type: webrtc.TypeRTCPFBTransportCC},
}

// codecs are the only codecs the SFU negotiates (VOICE-060, VOICE-063).
var codecs = []struct {
	params webrtc.RTPCodecParameters
	kind   webrtc.RTPCodecType
}{
	{webrtc.RTPCodecParameters{RTPCodecCapability: webrtc.RTPCodecCapability{
		MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2, SDPFmtpLine: opusFmtp,
		RTCPFeedback: []webrtc.RTCPFeedback{{Type: webrtc.TypeRTCPFBTransportCC}},
	}, PayloadType: 111}, webrtc.RTPCodecTypeAudio},
	{webrtc.RTPCodecParameters{RTPCodecCapability: webrtc.RTPCodecCapability{
		MimeType: webrtc.MimeTypeVP8, ClockRate: 90000, RTCPFeedback: videoFeedback,
	}, PayloadType: 96}, webrtc.RTPCodecTypeVideo},
	{webrtc.RTPCodecParameters{RTPCodecCapability: webrtc.RTPCodecCapability{
		MimeType: webrtc.MimeTypeRTX, ClockRate: 90000, SDPFmtpLine: "apt=96",
	}, PayloadType: 97}, webrtc.RTPCodecTypeVideo},
	{webrtc.RTPCodecParameters{RTPCodecCapability: webrtc.RTPCodecCapability{
		MimeType: webrtc.MimeTypeH264, ClockRate: 90000, RTCPFeedback: videoFeedback,
		SDPFmtpLine: "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f",
	}, PayloadType: 102}, webrtc.RTPCodecTypeVideo},
	{webrtc.RTPCodecParameters{RTPCodecCapability: webrtc.RTPCodecCapability{
		MimeType: webrtc.MimeTypeRTX, ClockRate: 90000, SDPFmtpLine: "apt=102",
	}, PayloadType: 103}, webrtc.RTPCodecTypeVideo},
}

// estimatorSink receives the bandwidth estimator that the CC interceptor
// creates inside NewPeerConnection, which calls back synchronously, and the
// PeerConnection's streamIDs.
type estimatorSink struct {
	last cc.BandwidthEstimator
	ids  *streamIDs
}

// newMediaAPI builds a pion API: codecs, header extensions (VOICE-061),
// NACK/PLI/reports/TWCC interceptors (VOICE-062) and, with bwe, a send-side
// bandwidth estimator per PeerConnection for video layer selection. The
// estimator (GCC) costs a lock on every forwarded packet and three
// goroutines per PeerConnection, so audio-only sessions go without.
func newMediaAPI(se webrtc.SettingEngine, bwe bool, sink *estimatorSink) (*webrtc.API, error) {
	m := &webrtc.MediaEngine{}
	for _, c := range codecs {
		if err := m.RegisterCodec(c.params, c.kind); err != nil {
			return nil, fmt.Errorf("sfu: register codec %s: %w", c.params.MimeType, err)
		}
	}
	exts := []struct {
		uri   string
		kinds []webrtc.RTPCodecType
	}{
		{sdp.AudioLevelURI, []webrtc.RTPCodecType{webrtc.RTPCodecTypeAudio}},
		{sdp.TransportCCURI, []webrtc.RTPCodecType{webrtc.RTPCodecTypeAudio, webrtc.RTPCodecTypeVideo}},
	}
	for _, e := range exts {
		for _, k := range e.kinds {
			if err := m.RegisterHeaderExtension(webrtc.RTPHeaderExtensionCapability{URI: e.uri}, k); err != nil {
				return nil, fmt.Errorf("sfu: register extension %s: %w", e.uri, err)
			}
		}
	}
	reg := &interceptor.Registry{}
	reg.Add(streamIDFactory{sink})
	if err := webrtc.ConfigureNack(m, reg); err != nil {
		return nil, fmt.Errorf("sfu: nack: %w", err)
	}
	if err := webrtc.ConfigureRTCPReports(reg); err != nil {
		return nil, fmt.Errorf("sfu: reports: %w", err)
	}
	if err := webrtc.ConfigureSimulcastExtensionHeaders(m); err != nil {
		return nil, fmt.Errorf("sfu: simulcast extensions: %w", err)
	}
	// Receive side: send TWCC feedback to publishers.
	if err := webrtc.ConfigureTWCCSender(m, reg); err != nil {
		return nil, fmt.Errorf("sfu: twcc: %w", err)
	}
	if bwe {
		// Send side: estimate the subscriber's downlink from its TWCC
		// feedback (VOICE-103). No pacer: forwarding must not queue.
		ccf, err := cc.NewInterceptor(func() (cc.BandwidthEstimator, error) {
			return gcc.NewSendSideBWE(gcc.SendSideBWEPacer(gcc.NewNoOpPacer()),
				gcc.SendSideBWEInitialBitrate(1_000_000), gcc.SendSideBWEMaxBitrate(8_000_000))
		})
		if err != nil {
			return nil, fmt.Errorf("sfu: congestion control: %w", err)
		}
		ccf.OnNewPeerConnection(func(_ string, e cc.BandwidthEstimator) { sink.last = e })
		reg.Add(ccf)
		if err := webrtc.ConfigureTWCCHeaderExtensionSender(m, reg); err != nil {
			return nil, fmt.Errorf("sfu: twcc header: %w", err)
		}
	}
	return webrtc.NewAPI(webrtc.WithMediaEngine(m), webrtc.WithInterceptorRegistry(reg),
		webrtc.WithSettingEngine(se)), nil
}

// newAPIs builds the network settings and two APIs on them: one for
// audio-only sessions and one with bandwidth estimation for sessions that
// declared video. The returned closers release the muxes.
func newAPIs(cfg *Config, sink *estimatorSink) (audio, video *webrtc.API, batch *batchConn, closers []func() error, err error) {
	se := webrtc.SettingEngine{}
	se.SetIncludeLoopbackCandidate(cfg.Loopback)
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	logf := logging.NewDefaultLoggerFactory()
	if cfg.UDPPort != 0 {
		conn, err := net.ListenPacket("udp", net.JoinHostPort(cfg.ListenIP, strconv.Itoa(cfg.UDPPort)))
		if err != nil {
			return nil, nil, nil, nil, fmt.Errorf("sfu: listen udp: %w", err)
		}
		// One socket carries every session: a burst that outruns the read loop for a
		// moment must not overflow the kernel's default buffer (about 200 KiB). The kernel
		// caps the size at net.core.rmem_max / wmem_max.
		var pc net.PacketConn = conn
		if uc, ok := conn.(*net.UDPConn); ok {
			_ = uc.SetReadBuffer(udpBuffer)
			_ = uc.SetWriteBuffer(udpBuffer)
			batch = newBatchConn(uc)
			if cfg.OnReceive != nil || cfg.OnTransit != nil {
				batch.arr = newArrivals()
				if err := enableTimestamps(uc); err != nil {
					// Arrivals are then stamped when the socket is read.
					cfg.Logger.Warn("sfu: no kernel receive timestamps for OnReceive and OnTransit", "err", err)
				}
			}
			pc = batch
		}
		mux := webrtc.NewICEUDPMux(logf.NewLogger("udpmux"), pc)
		se.SetICEUDPMux(familyMux{mux, announce(cfg)})
		closers = append(closers, mux.Close)
	} else if cfg.UDPPortMin != 0 || cfg.UDPPortMax != 0 {
		if err := se.SetEphemeralUDPPortRange(cfg.UDPPortMin, cfg.UDPPortMax); err != nil {
			return nil, nil, nil, nil, fmt.Errorf("sfu: udp port range: %w", err)
		}
	}
	networks := []webrtc.NetworkType{webrtc.NetworkTypeUDP4, webrtc.NetworkTypeUDP6}
	if cfg.TCPPort != 0 {
		ln, err := net.Listen("tcp", net.JoinHostPort(cfg.ListenIP, strconv.Itoa(cfg.TCPPort)))
		if err != nil {
			closeAll(closers)
			return nil, nil, nil, nil, fmt.Errorf("sfu: listen tcp: %w", err)
		}
		mux := webrtc.NewICETCPMux(logf.NewLogger("tcpmux"), ln, 64)
		se.SetICETCPMux(mux)
		closers = append(closers, mux.Close)
		networks = append(networks, webrtc.NetworkTypeTCP4, webrtc.NetworkTypeTCP6)
	}
	se.SetNetworkTypes(networks)
	if len(cfg.PublicIPs) > 0 {
		// pion rewrites only the local addresses of a configured family and
		// would announce the others as they are (VOICE-124).
		se.SetIPFilter(announce(cfg))
		if err := se.SetICEAddressRewriteRules(webrtc.ICEAddressRewriteRule{
			External: cfg.PublicIPs, AsCandidateType: webrtc.ICECandidateTypeHost,
			Mode: webrtc.ICEAddressRewriteReplace,
		}); err != nil {
			closeAll(closers)
			return nil, nil, nil, nil, fmt.Errorf("sfu: public ip: %w", err)
		}
	}
	if audio, err = newMediaAPI(se, false, sink); err == nil {
		video, err = newMediaAPI(se, true, sink)
	}
	if err != nil {
		closeAll(closers)
		return nil, nil, nil, nil, err
	}
	return audio, video, batch, closers, nil
}

// announce returns which local addresses the SFU gathers candidates on:
// loopback only with cfg.Loopback, and with public IPs configured only
// addresses of a family that has one, which the rewrite replaces (VOICE-122,
// VOICE-124).
func announce(cfg *Config) func(net.IP) bool {
	var v4, v6 bool
	for _, s := range cfg.PublicIPs {
		if ip := net.ParseIP(s); ip != nil {
			v4 = v4 || ip.To4() != nil
			v6 = v6 || ip.To4() == nil
		}
	}
	all := len(cfg.PublicIPs) == 0
	return func(ip net.IP) bool {
		if ip.IsLoopback() && !cfg.Loopback {
			return false
		}
		if ip.To4() != nil {
			return all || v4
		}
		return all || v6
	}
}

// familyMux is the shared UDP port's mux with its listen addresses (on
// which pion gathers host candidates, ignoring SetIPFilter and the network
// types) filtered by keep. It drops loopback addresses itself, which pion
// does only for an unwrapped ice.UDPMuxDefault.
type familyMux struct {
	ice.UDPMux
	keep func(net.IP) bool
}

// GetListenAddresses implements ice.UDPMux.
func (m familyMux) GetListenAddresses() []net.Addr {
	var out []net.Addr
	for _, a := range m.UDPMux.GetListenAddresses() {
		if ua, ok := a.(*net.UDPAddr); !ok || m.keep(ua.IP) {
			out = append(out, a)
		}
	}
	return out
}

func closeAll(cs []func() error) {
	for _, c := range cs {
		_ = c()
	}
}
