package sfu

import (
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"
)

// gatheredAddrs returns the addresses of the host candidates that an SFU
// built from cfg puts in a description, by network ("udp", "tcp").
func gatheredAddrs(t *testing.T, cfg Config) map[string][]string {
	t.Helper()
	cfg.setDefaults()
	api, _, _, closers, err := newAPIs(&cfg, &estimatorSink{})
	if err != nil {
		t.Fatal(err)
	}
	defer closeAll(closers)
	pc, err := api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	if _, err := pc.AddTransceiverFromKind(webrtc.RTPCodecTypeAudio,
		webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}); err != nil {
		t.Fatal(err)
	}
	offer, err := pc.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	gathered := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(offer); err != nil {
		t.Fatal(err)
	}
	select {
	case <-gathered:
	case <-time.After(10 * time.Second):
		t.Fatal("ICE gathering did not complete in 10 s")
	}
	out := map[string][]string{}
	for _, l := range strings.Split(pc.LocalDescription().SDP, "\n") {
		v, ok := strings.CutPrefix(strings.TrimSpace(l), "a=candidate:")
		if !ok {
			continue
		}
		f := strings.Fields(v) // foundation component network priority address port typ host
		if len(f) < 8 || f[6] != "typ" {
			t.Fatalf("candidate that does not parse: %q", v)
		}
		if f[7] != "host" {
			t.Errorf("a %s candidate from an SFU without STUN or TURN: %q", f[7], v)
		}
		if net := strings.ToLower(f[2]); !slices.Contains(out[net], f[4]) {
			out[net] = append(out[net], f[4])
		}
	}
	return out
}

// hostFamilies reports whether this host has IPv4 and IPv6 addresses
// (loopback included) on which the SFU can gather.
func hostFamilies(t *testing.T) (v4, v6 bool) {
	t.Helper()
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range addrs {
		if in, ok := a.(*net.IPNet); ok && !in.IP.IsLinkLocalUnicast() {
			v4 = v4 || in.IP.To4() != nil
			v6 = v6 || in.IP.To4() == nil
		}
	}
	return v4, v6
}

// TestPublicIPFamilies checks that with public IPs configured the SFU
// announces those and nothing else (VOICE-122, VOICE-124): a local address
// of a family without a public IP is not announced as it is, on the shared
// UDP port, on ephemeral ports and on ICE-TCP.
func TestPublicIPFamilies(t *testing.T) {
	hasV4, hasV6 := hostFamilies(t)
	const pub4, pub6 = "203.0.113.7", "2001:db8::7"
	tests := []struct {
		name   string
		public []string
	}{
		{"IPv4 only", []string{pub4}},
		{"IPv6 only", []string{pub6}},
		{"both", []string{pub4, pub6}},
	}
	ports := []struct {
		name   string
		shared bool
	}{{"shared UDP port", true}, {"ephemeral UDP ports", false}}
	for _, tt := range tests {
		for _, p := range ports {
			t.Run(tt.name+", "+p.name, func(t *testing.T) {
				udp, tcp := freePorts(t)
				cfg := Config{PublicIPs: tt.public, Loopback: true, TCPPort: tcp}
				if p.shared {
					cfg.UDPPort = udp
				}
				got := gatheredAddrs(t, cfg)
				for _, network := range []string{"udp", "tcp"} {
					var want []string
					for _, ip := range tt.public {
						if (ip == pub4 && hasV4) || (ip == pub6 && hasV6) {
							want = append(want, ip)
						}
					}
					slices.Sort(want)
					slices.Sort(got[network])
					if !slices.Equal(got[network], want) {
						t.Errorf("%s host candidates on %v, want exactly the public IPs %v (host has IPv4 %v, IPv6 %v)",
							network, got[network], want, hasV4, hasV6)
					}
				}
			})
		}
	}
}

// freePorts returns a UDP and a TCP port that were free a moment ago.
func freePorts(t *testing.T) (udp, tcp int) {
	t.Helper()
	c, err := net.ListenPacket("udp", ":0")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	l, err := net.Listen("tcp", ":0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return c.LocalAddr().(*net.UDPAddr).Port, l.Addr().(*net.TCPAddr).Port
}
