package signal

import (
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/hearth-chat/hearth/voice/sfu"
)

func freePort(t *testing.T, network string) int {
	t.Helper()
	if network == "udp" {
		c, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		return c.LocalAddr().(*net.UDPAddr).Port
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// TestSingleUDPPort runs two clients through one shared UDP port (ICE UDP
// mux, VOICE-120) with ICE-TCP also enabled (VOICE-121).
func TestSingleUDPPort(t *testing.T) {
	udp, tcp := freePort(t, "udp"), freePort(t, "tcp")
	e := newEnv(t, sfu.Config{UDPPort: udp, TCPPort: tcp, ListenIP: "127.0.0.1"})
	pkts := opusPackets(t)
	a := e.join("1", "c1")
	b := e.join("2", "c1")
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() { defer close(done); a.Publish(pkts, stop, true) }()
	defer func() { close(stop); <-done }()
	waitFor(t, 10*time.Second, func() string {
		if b.ReceivedFrom("1") < 20 {
			return "B does not hear A through the shared port"
		}
		return ""
	})
	pair, err := b.PC().SCTP().Transport().ICETransport().GetSelectedCandidatePair()
	if err == nil && pair != nil && int(pair.Remote.Port) != udp {
		t.Fatalf("selected remote candidate %v, want port %d", pair.Remote, udp)
	}
}

// TestPublicIPAnnounced checks that a configured public IP replaces local
// addresses in the SFU's candidates (VOICE-122) and that ICE-TCP
// candidates are offered when a TCP port is set (VOICE-121).
func TestPublicIPAnnounced(t *testing.T) {
	tcp := freePort(t, "tcp")
	e := newEnv(t, sfu.Config{PublicIPs: []string{"203.0.113.7"}, TCPPort: tcp, ICEConnectTimeout: 2 * time.Second})
	ws := dialVoice(t, e.srv)
	defer ws.Close()
	_ = ws.WriteJSON(op(OpIdentify, identify{ServerID: "g1", UserID: "1", SessionID: "gw-1", Token: e.token("1", "g1", "c1")}))
	_ = ws.WriteJSON(op(OpSelectProtocol, selectProtocol{Protocol: "webrtc",
		Data: sessionDesc{Type: "offer", SDP: sdpWith(1, "opus/48000/2")}}))
	var cands []string
	_ = ws.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		_, m, err := ws.ReadMessage()
		if err != nil {
			break
		}
		f, _ := decodeFrame(m)
		if f.Op == OpICECandidate || f.Op == OpSessionDesc {
			cands = append(cands, string(f.D))
		}
		if f.Op == OpICECandidate && strings.Contains(string(f.D), `"candidate":""`) {
			break
		}
	}
	all := strings.Join(cands, "\n")
	if !strings.Contains(all, "203.0.113.7") {
		t.Fatalf("public IP not announced in:\n%s", all)
	}
	if !strings.Contains(all, fmt.Sprintf("tcp 1 203.0.113.7 %d", tcp)) && !strings.Contains(all, fmt.Sprintf("203.0.113.7 %d typ host tcptype passive", tcp)) {
		t.Fatalf("no ICE-TCP candidate on port %d in:\n%s", tcp, all)
	}
	if strings.Contains(all, "127.0.0.1") {
		t.Fatalf("local address announced despite the public IP:\n%s", all)
	}
}
