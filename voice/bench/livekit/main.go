// Command lkbench runs the same audio room as voicebench against LiveKit,
// so that the two SFUs are measured side by side on one machine: N
// participants who each publish one Opus track and subscribe to everyone
// else's, counting forwarded packets, loss and the server process's CPU.
//
// It lives in its own module (voice/bench/livekit) so that Hearth's go.mod
// does not take LiveKit's dependencies. build-server.sh builds
// livekit-server from the Go module proxy; then:
//
//	go run . -server /path/to/livekit-server -n 50 -duration 15s
//
// The server runs in dev mode (no Redis) in a child process, on loopback,
// with one UDP port (as voicebench's -udp-port). As in voicebench, each
// publisher writes an 80-byte payload every 20 ms (or one every 400 ms,
// Opus DTX, for those beyond -talkers) that carries its send time, and a
// packet counts if it was sent in the measurement window.
package main

import (
	"bytes"
	"encoding/binary"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/go-logr/logr"
	protologger "github.com/livekit/protocol/logger"
	lksdk "github.com/livekit/server-sdk-go/v2"
	"github.com/pion/interceptor"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
)

const (
	apiKey, apiSecret = "devkey", "secret"
	udpPort           = 7882
)

// magic marks the start of the bench payload, so that the send time is
// found whatever the server wraps around the Opus frame (RED, for one).
var magic = []byte("HRTHBNCH")

func main() {
	server := flag.String("server", "", "livekit-server binary (build-server.sh builds one)")
	n := flag.Int("n", 50, "participants; each publishes one audio track and subscribes to all others")
	talkers := flag.Int("talkers", 0, "publishers that talk continuously; the others send DTX (a packet every 400 ms); 0: all talk")
	duration := flag.Duration("duration", 15*time.Second, "measurement window")
	lean := flag.Bool("lean", false, "clients without the SDK's default interceptors (cheaper load generator)")
	flag.Parse()
	if *server == "" {
		fmt.Fprintln(os.Stderr, "lkbench: -server is required")
		os.Exit(2)
	}
	if *talkers <= 0 || *talkers > *n {
		*talkers = *n
	}
	if err := run(*server, *n, *talkers, *duration, *lean); err != nil {
		fmt.Fprintln(os.Stderr, "lkbench:", err)
		os.Exit(1)
	}
}

// serverConfig is LiveKit's config for a loopback run: quiet logs, one
// UDP port, loopback candidates.
const serverConfig = `
logging:
  level: warn
rtc:
  udp_port: 7882
  tcp_port: 7881
  use_external_ip: false
  enable_loopback_candidate: true
  ips:
    includes: [127.0.0.1/32]
`

type bench struct {
	n       int
	base    time.Time
	measure atomic.Bool
	t0, t1  atomic.Int64
	sent    []atomic.Int64
	recv    [][]atomic.Int64 // packets sent in the window, by receiver and sender
	heard   [][]atomic.Bool  // any packet, by receiver and sender
	lat     histogram
}

func (b *bench) inWindow(t int64) bool {
	return b.measure.Load() && t >= b.t0.Load() && t < b.t1.Load()
}

func run(server string, n, talkers int, duration time.Duration, lean bool) error {
	srv := exec.Command(server, "--dev", "--bind", "127.0.0.1", "--node-ip", "127.0.0.1", "--config-body", serverConfig)
	srv.Stdout, srv.Stderr = os.Stderr, os.Stderr
	if err := srv.Start(); err != nil {
		return fmt.Errorf("start server: %w", err)
	}
	defer func() {
		_ = srv.Process.Signal(syscall.SIGTERM)
		_ = srv.Wait()
	}()
	if err := waitHTTP("http://127.0.0.1:7880/", 15*time.Second); err != nil {
		return err
	}

	lksdk.SetLogger(protologger.LogRLogger(logr.Discard()))
	b := &bench{n: n, base: time.Now()}
	b.t1.Store(1 << 62)
	b.sent = make([]atomic.Int64, n)
	b.recv = make([][]atomic.Int64, n)
	b.heard = make([][]atomic.Bool, n)
	for i := range b.recv {
		b.recv[i] = make([]atomic.Int64, n)
		b.heard[i] = make([]atomic.Bool, n)
	}
	rooms := make([]*lksdk.Room, n)
	tracks := make([]*webrtc.TrackLocalStaticRTP, n)
	defer func() {
		for _, r := range rooms {
			if r != nil {
				r.Disconnect()
			}
		}
	}()
	var joins []time.Duration
	for i := range n {
		cb := lksdk.NewRoomCallback()
		cb.OnTrackSubscribed = func(t *webrtc.TrackRemote, _ *lksdk.RemoteTrackPublication, rp *lksdk.RemoteParticipant) {
			from, err := strconv.Atoi(rp.Identity())
			if err != nil || from < 0 || from >= n {
				return
			}
			go b.readTrack(i, from, t)
		}
		opts := []lksdk.ConnectOption{lksdk.WithAutoSubscribe(true)}
		if lean {
			// An empty, non-nil list replaces the SDK's interceptors.
			opts = append(opts, lksdk.WithInterceptors([]interceptor.Factory{}), lksdk.WithIncludeDefaultInterceptors(false))
		}
		start := time.Now()
		r, err := lksdk.ConnectToRoom("ws://127.0.0.1:7880", lksdk.ConnectInfo{
			APIKey: apiKey, APISecret: apiSecret, RoomName: "bench", ParticipantIdentity: strconv.Itoa(i),
		}, cb, opts...)
		if err != nil {
			return fmt.Errorf("participant %d: connect: %w", i, err)
		}
		rooms[i] = r
		tr, err := webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus,
			ClockRate: 48000, Channels: 2}, "mic", strconv.Itoa(i))
		if err != nil {
			return err
		}
		if _, err := r.LocalParticipant.PublishTrack(tr, &lksdk.TrackPublicationOptions{Name: "mic"}); err != nil {
			return fmt.Errorf("participant %d: publish: %w", i, err)
		}
		tracks[i] = tr
		joins = append(joins, time.Since(start))
	}

	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i, tr := range tracks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			b.publish(i, tr, i < talkers, stop)
		}()
	}
	defer func() { close(stop); wg.Wait() }()

	deadline := time.Now().Add(60 * time.Second)
	for !b.allHearing() {
		if time.Now().After(deadline) {
			return fmt.Errorf("not every participant hears every other after 60 s")
		}
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(time.Second)
	var ru0, ru1 syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru0)
	srv0, err := procCPU(srv.Process.Pid)
	if err != nil {
		return err
	}
	drops0 := udpDrops()
	b.t0.Store(int64(time.Since(b.base)))
	b.measure.Store(true)
	time.Sleep(duration)
	b.t1.Store(int64(time.Since(b.base)))
	window := time.Duration(b.t1.Load() - b.t0.Load())
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru1)
	srv1, err := procCPU(srv.Process.Pid)
	if err != nil {
		return err
	}
	time.Sleep(time.Second) // the window's packets arrive
	drops1 := udpDrops()

	var expected, got int64
	for i := range n {
		expected += b.sent[i].Load() * int64(n-1)
		for j := range n {
			got += b.recv[i][j].Load()
		}
	}
	var atServer, elsewhere int64
	for port, d := range drops1 {
		if port == udpPort {
			atServer += d - drops0[port]
		} else {
			elsewhere += d - drops0[port]
		}
	}
	slices.Sort(joins)
	clientCPU := time.Duration(ru1.Utime.Nano() + ru1.Stime.Nano() - ru0.Utime.Nano() - ru0.Stime.Nano())
	serverCores := (srv1 - srv0).Seconds() / window.Seconds()
	fmt.Printf("LiveKit: participants %d (%d talking, %d silent with DTX), forwarded audio tracks %d, window %v, lean clients %v\n",
		n, talkers, n-talkers, n*(n-1), window, lean)
	if la, err := os.ReadFile("/proc/loadavg"); err == nil {
		fmt.Printf("load average at the end: %s", la)
	}
	fmt.Printf("forwarded packets/s %.0f (expected %d, received %d, loss %.4f%%)\n",
		float64(got)/window.Seconds(), expected, got, 100*(1-float64(got)/float64(expected)))
	fmt.Printf("end-to-end latency (client write to client read): p50 %v p99 %v max %v\n",
		b.lat.pct(50), b.lat.pct(99), b.lat.pct(100))
	fmt.Printf("UDP receive drops in the window: server socket %d, other sockets on the machine %d\n", atServer, elsewhere)
	fmt.Printf("join (connect and publish): p50 %v max %v\n", joins[len(joins)/2], joins[len(joins)-1])
	fmt.Printf("CPU in window: server process %.2f cores, client process %.2f cores\n",
		serverCores, clientCPU.Seconds()/window.Seconds())
	if serverCores > 0 {
		fmt.Printf("forwarded packets/s per server core: %.0f\n", float64(got)/window.Seconds()/serverCores)
	}
	return nil
}

// publish writes one packet every 20 ms (talking) or 400 ms (DTX) until
// stop.
func (b *bench) publish(i int, tr *webrtc.TrackLocalStaticRTP, talking bool, stop <-chan struct{}) {
	payload := make([]byte, 80)
	copy(payload, magic)
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	var seq uint16
	var ts uint32
	for tick := 0; ; tick++ {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		ts += 960
		if !talking && tick%20 != 0 {
			continue
		}
		now := int64(time.Since(b.base))
		binary.BigEndian.PutUint64(payload[len(magic):], uint64(now))
		if b.inWindow(now) {
			b.sent[i].Add(1)
		}
		seq++
		_ = tr.WriteRTP(&rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 111, SequenceNumber: seq,
			Timestamp: ts, SSRC: uint32(i + 1)}, Payload: payload})
	}
}

// readTrack counts what participant to receives from participant from.
func (b *bench) readTrack(to, from int, t *webrtc.TrackRemote) {
	buf := make([]byte, 1500)
	var p rtp.Packet
	for {
		k, _, err := t.Read(buf)
		if err != nil {
			return
		}
		if p.Unmarshal(buf[:k]) != nil {
			continue
		}
		b.heard[to][from].Store(true)
		i := bytes.Index(p.Payload, magic)
		if i < 0 || len(p.Payload) < i+len(magic)+8 {
			continue
		}
		sentAt := int64(binary.BigEndian.Uint64(p.Payload[i+len(magic):]))
		if !b.inWindow(sentAt) {
			continue
		}
		b.recv[to][from].Add(1)
		b.lat.add(time.Since(b.base) - time.Duration(sentAt))
	}
}

// allHearing reports whether every participant has received a packet from
// every other.
func (b *bench) allHearing() bool {
	for i := range b.n {
		for j := range b.n {
			if i != j && !b.heard[i][j].Load() {
				return false
			}
		}
	}
	return true
}

func waitHTTP(url string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		resp, err := http.Get(url)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			_ = resp.Body.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("server not up at %s: %w", url, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// procCPU returns the user+system CPU time of a process from /proc.
func procCPU(pid int) (time.Duration, error) {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	s := string(raw)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	if len(f) < 13 {
		return 0, fmt.Errorf("short /proc stat")
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * 10 * time.Millisecond, nil
}

// udpDrops returns the receive drops of every IPv4 UDP socket by local
// port, from /proc/net/udp.
func udpDrops() map[int]int64 {
	out := map[int]int64{}
	raw, err := os.ReadFile("/proc/net/udp")
	if err != nil {
		return out
	}
	for _, line := range strings.Split(string(raw), "\n")[1:] {
		f := strings.Fields(line)
		if len(f) < 13 {
			continue
		}
		_, portHex, ok := strings.Cut(f[1], ":")
		if !ok {
			continue
		}
		port, err1 := strconv.ParseInt(portHex, 16, 32)
		drops, err2 := strconv.ParseInt(f[len(f)-1], 10, 64)
		if err1 == nil && err2 == nil {
			out[int(port)] += drops
		}
	}
	return out
}

// histogram: 10 µs buckets below 10 ms, 1 ms buckets up to 30 s.
type histogram struct {
	fine   [1000]atomic.Int64
	coarse [30000]atomic.Int64
}

func (h *histogram) add(d time.Duration) {
	switch us := d.Microseconds(); {
	case us < 0:
		h.fine[0].Add(1)
	case us < 10_000:
		h.fine[us/10].Add(1)
	default:
		h.coarse[min(us/1000, int64(len(h.coarse)-1))].Add(1)
	}
}

func (h *histogram) pct(p int) time.Duration {
	var total int64
	for i := range h.fine {
		total += h.fine[i].Load()
	}
	for i := range h.coarse {
		total += h.coarse[i].Load()
	}
	want := (total*int64(p) + 99) / 100
	var seen int64
	for i := range h.fine {
		if seen += h.fine[i].Load(); seen >= want && seen > 0 {
			return time.Duration(i+1) * 10 * time.Microsecond
		}
	}
	for i := range h.coarse {
		if seen += h.coarse[i].Load(); seen >= want && seen > 0 {
			return time.Duration(i+1) * time.Millisecond
		}
	}
	return 0
}
