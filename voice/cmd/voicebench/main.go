// Command voicebench measures the SFU with real WebRTC clients on loopback:
// join time, forwarding latency and loss with N participants who all speak
// and all listen (N×(N-1) forwarded audio tracks), and speaking-detection
// latency. Clients and SFU share the process and the machine's cores, so
// the figures are upper bounds for the SFU alone.
//
//	go run ./voice/cmd/voicebench -n 50 -duration 10s
//
// With -talkers K only the first K publishers talk (a packet every 20 ms);
// the others are silent with Opus DTX, which sends one packet every 400 ms,
// as a real room of mostly listening members does. -lean gives the clients
// a pion API without interceptors (no NACK, reports or TWCC on the client
// side), so that more of the machine is left to the SFU.
//
// Each client has its own UDP socket with 4 MiB buffers (an ICE UDP mux),
// as a real client on its own machine has a socket and a core to itself;
// -udp-port gives the SFU one shared socket, also with 4 MiB buffers. The
// report counts UDP receive drops per side from /proc/net/udp, and the
// SFU's own forwarding latency: from reading a publisher's packet to
// handing it to each subscriber's socket (sfu.Config.OnForward), and, with
// -udp-port, the part before it: from the packet's arrival at the SFU's
// socket (the kernel's receive timestamp) to the read loop
// (sfu.Config.OnReceive), and the two together per copy, the SFU as a whole
// (sfu.Config.OnTransit).
//
// The clients and the SFU share the machine's cores; these options stand in
// for an SFU on cores of its own: -sfu-rt P runs the SFU process with
// SCHED_FIFO priority P (chrt -f: its threads preempt every normal thread
// the moment they are runnable), -sfu-cpus and -client-cpus pin the two
// processes to CPU lists (taskset), -sfu-procs sets the SFU's GOMAXPROCS,
// and -client-nice lowers the clients' priority. -sfu-trace writes a
// runtime/trace of the SFU over the window.
package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"runtime"
	"runtime/pprof"
	"runtime/trace"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hearth-chat/hearth/voice/sfu"
	"github.com/hearth-chat/hearth/voice/signal"
	"github.com/hearth-chat/hearth/voice/token"
	"github.com/hearth-chat/hearth/voice/voiceclient"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
)

var (
	profile    string
	talkers    int
	lean       bool
	clientNice int
	sfuRT      int
	sfuCPUs    string
	clientCPUs string
	sfuProcs   int
	sfuTrace   string
)

func main() {
	n := flag.Int("n", 50, "participants; each receives all publishers")
	pubs := flag.Int("publishers", 0, "how many of the participants publish (0: all)")
	duration := flag.Duration("duration", 10*time.Second, "measurement window")
	cpuProfile := flag.String("cpuprofile", "", "write CPU profiles: FILE for the clients' window, FILE.sfu for the SFU process")
	serve := flag.Bool("serve", false, "internal: run only the SFU and print its URL (the parent runs the clients)")
	udpPort := flag.Int("udp-port", 0, "single UDP port for the SFU (0: one port per session)")
	flag.IntVar(&talkers, "talkers", 0, "publishers that talk continuously; the others send DTX (a packet every 400 ms); 0: all talk")
	flag.BoolVar(&lean, "lean", false, "clients without interceptors (cheaper load generator)")
	flag.IntVar(&clientNice, "client-nice", 0, "nice value for the client process (the SFU keeps 0): gives the SFU the CPU first, as a server that does not share its machine with its clients would have it")
	flag.IntVar(&sfuRT, "sfu-rt", 0, "run the SFU process with real-time scheduling (SCHED_FIFO, chrt -f) at this priority (1-99; 0: normal): its threads run as soon as they are runnable, standing in for an SFU with cores of its own; needs root or CAP_SYS_NICE")
	flag.StringVar(&sfuCPUs, "sfu-cpus", "", "CPU list the SFU process runs on (taskset -c), e.g. 1; empty: any")
	flag.StringVar(&clientCPUs, "client-cpus", "", "CPU list the client process runs on (taskset -a -c), e.g. 0; empty: any")
	flag.StringVar(&sfuTrace, "sfu-trace", "", "write a runtime/trace of the SFU process over the window to this file (go tool trace -pprof=sched FILE: where its goroutines waited for a thread)")
	flag.IntVar(&sfuProcs, "sfu-procs", 0, "GOMAXPROCS of the SFU process (0: Go's default, one per CPU it may use)")
	flag.Parse()
	if sfuRT != 0 && sfuProcs > 0 && sfuCPUs != "" && sfuProcs > cpuCount(sfuCPUs) {
		// Real-time threads of one priority do not preempt each other, and the Go runtime's
		// spinning threads do not yield: more of them than CPUs starves the whole machine.
		fmt.Fprintf(os.Stderr, "voicebench: -sfu-rt with -sfu-procs %d above the %d CPUs of -sfu-cpus %q would starve the machine\n",
			sfuProcs, cpuCount(sfuCPUs), sfuCPUs)
		os.Exit(2)
	}
	if *pubs <= 0 || *pubs > *n {
		*pubs = *n
	}
	profile = *cpuProfile
	if *serve {
		if err := serveSFU(*udpPort); err != nil {
			fmt.Fprintln(os.Stderr, "voicebench:", err)
			os.Exit(1)
		}
		return
	}
	if err := run(*n, *pubs, *duration, *udpPort); err != nil {
		fmt.Fprintln(os.Stderr, "voicebench:", err)
		os.Exit(1)
	}
}

// bench holds the shared counters; indices are participant numbers.
type bench struct {
	n, pubs  int
	measure  atomic.Bool
	t0, t1   atomic.Int64 // nanos since base: the measurement window
	sent     []atomic.Int64
	recv     [][]atomic.Int64
	lat      histogram
	base     time.Time
	speakAt  atomic.Int64 // nanos since base of the first loud packet
	speakLat chan time.Duration
}

func run(n, pubs int, duration time.Duration, udpPort int) error {
	// The SFU runs in a child process so that its CPU use is measured
	// apart from the clients'.
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return err
	}
	is, err := token.New(key, 0)
	if err != nil {
		return err
	}
	child := exec.Command(os.Args[0], "-serve", "-udp-port", strconv.Itoa(udpPort), "-cpuprofile", profile, "-sfu-trace", sfuTrace)
	// chrt and taskset exec the SFU in place: the child's PID stays the SFU's.
	if sfuRT != 0 {
		child.Args = append([]string{"chrt", "-f", strconv.Itoa(sfuRT)}, child.Args...)
	}
	if sfuCPUs != "" {
		child.Args = append([]string{"taskset", "-c", sfuCPUs}, child.Args...)
	}
	if child.Path, err = exec.LookPath(child.Args[0]); err != nil {
		return err
	}
	child.Env = append(os.Environ(), "VOICEBENCH_KEY="+hex.EncodeToString(key))
	if sfuProcs > 0 {
		child.Env = append(child.Env, "GOMAXPROCS="+strconv.Itoa(sfuProcs))
	}
	child.Stderr = os.Stderr
	stdin, err := child.StdinPipe()
	if err != nil {
		return err
	}
	stdout, err := child.StdoutPipe()
	if err != nil {
		return err
	}
	if err := child.Start(); err != nil {
		return err
	}
	defer func() {
		_ = stdin.Close() // the child exits when its stdin closes
		_ = child.Wait()
	}()
	var url string
	if _, err := fmt.Fscanln(stdout, &url); err != nil {
		return fmt.Errorf("read child url: %w", err)
	}
	if clientNice != 0 {
		if err := reniceSelf(clientNice); err != nil {
			return err
		}
	}
	if clientCPUs != "" {
		// -a: every thread; threads started later inherit the mask.
		if out, err := exec.Command("taskset", "-a", "-p", "-c", clientCPUs, strconv.Itoa(os.Getpid())).CombinedOutput(); err != nil {
			return fmt.Errorf("taskset the clients: %w: %s", err, out)
		}
	}
	var closers []io.Closer
	childOut := bufio.NewReader(stdout)
	// One socket per client, with big buffers: the clients share the
	// process and its cores, and a client waiting for the CPU must not lose
	// packets that a real client (alone on its machine) would read in time.
	clientPorts := map[int]bool{}
	newAPI := func() (*webrtc.API, error) {
		conn, err := net.ListenPacket("udp4", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		if uc, ok := conn.(*net.UDPConn); ok {
			_ = uc.SetReadBuffer(4 << 20)
			_ = uc.SetWriteBuffer(4 << 20)
		}
		clientPorts[conn.LocalAddr().(*net.UDPAddr).Port] = true
		mux := webrtc.NewICEUDPMux(nil, conn)
		closers = append(closers, mux)
		return voiceclient.NewAPIWith(voiceclient.APIOptions{Lean: lean, UDPMux: mux})
	}
	defer func() {
		for _, c := range closers {
			_ = c.Close()
		}
	}()
	if talkers <= 0 || talkers > pubs {
		talkers = pubs
	}

	b := &bench{n: n, pubs: pubs, base: time.Now(), speakLat: make(chan time.Duration, 16)}
	b.sent = make([]atomic.Int64, n)
	b.t1.Store(1 << 62)
	b.recv = make([][]atomic.Int64, n)
	for i := range b.recv {
		b.recv[i] = make([]atomic.Int64, n)
	}
	clients := make([]*voiceclient.Client, n)
	var joins []time.Duration
	for i := range n {
		user := strconv.Itoa(i)
		tok, err := is.Mint(token.Claims{UserID: user, GuildID: "g", ChannelID: "c", SessionID: "gw-" + user})
		if err != nil {
			return err
		}
		api, err := newAPI()
		if err != nil {
			return err
		}
		start := time.Now()
		c, err := voiceclient.Dial(context.Background(), url, api, user, "g", tok, voiceclient.Options{
			OnRTP:      func(from, _ string, p *rtp.Packet) { b.onRTP(i, from, p) },
			OnSpeaking: func(from string, on bool) { b.onSpeaking(i, from, on) },
		})
		if err != nil {
			return err
		}
		for c.PC().ICEConnectionState().String() != "connected" {
			if time.Since(start) > 10*time.Second {
				return fmt.Errorf("client %d: ICE not connected", i)
			}
			time.Sleep(time.Millisecond)
		}
		joins = append(joins, time.Since(start))
		clients[i] = c
		defer c.Close()
	}

	stop := make(chan struct{})
	quiet := make([]atomic.Bool, n)
	var wg sync.WaitGroup
	for i, c := range clients[:pubs] {
		wg.Add(1)
		go func() {
			defer wg.Done()
			payload := make([]byte, 80) // about a 32 kbit/s Opus frame
			// Spread the publishers' 20 ms frames evenly: real talkers start at
			// random moments, and tickers started together would send in bursts.
			time.Sleep(time.Duration(i) * 20 * time.Millisecond / time.Duration(pubs))
			t := time.NewTicker(20 * time.Millisecond)
			defer t.Stop()
			wasQuiet := false
			for tick := 0; ; tick++ {
				select {
				case <-stop:
					return
				case <-t.C:
				}
				if i >= talkers && tick%20 != 0 {
					continue // DTX: one packet every 400 ms
				}
				now := int64(time.Since(b.base))
				binary.BigEndian.PutUint64(payload, uint64(now))
				if b.inWindow(now) {
					b.sent[i].Add(1)
				}
				level := uint8(20)
				q := quiet[i].Load()
				if q || i >= talkers {
					level = 127 // silence; DTX packets carry a silent level too
				} else if wasQuiet && i == 0 {
					b.speakAt.CompareAndSwap(0, int64(time.Since(b.base)))
				}
				wasQuiet = q
				_ = c.WriteAudio(payload, level)
			}
		}()
	}
	// Wait until every client hears every other, then measure a window.
	deadline := time.Now().Add(30 * time.Second)
	for !b.allHearing(clients) {
		if time.Now().After(deadline) {
			return fmt.Errorf("not every client hears every other after 30 s")
		}
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(time.Second)
	var ru0 syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru0)
	sfu0, err := procCPU(child.Process.Pid)
	if err != nil {
		return err
	}
	drops0 := udpDrops()
	if _, err := fmt.Fprintln(stdin, "start"); err != nil {
		return err
	}
	b.t0.Store(int64(time.Since(b.base)))
	b.measure.Store(true)
	if profile != "" {
		f, err := os.Create(profile)
		if err != nil {
			return err
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		runtime.SetBlockProfileRate(10000)
		time.Sleep(duration)
		pprof.StopCPUProfile()
		_ = f.Close()
		if bf, err := os.Create(profile + ".block"); err == nil {
			_ = pprof.Lookup("block").WriteTo(bf, 0)
			_ = bf.Close()
		}
		runtime.SetBlockProfileRate(0)
	} else {
		time.Sleep(duration)
	}
	b.t1.Store(int64(time.Since(b.base)))
	window := time.Duration(b.t1.Load() - b.t0.Load())
	var ru1 syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru1)
	sfu1, err := procCPU(child.Process.Pid)
	if err != nil {
		return err
	}
	time.Sleep(time.Second) // let the window's packets arrive
	drops1 := udpDrops()
	if _, err := fmt.Fprintln(stdin, "stop"); err != nil {
		return err
	}
	sfuLat, err := childOut.ReadString('\n')
	if err != nil {
		return fmt.Errorf("read the SFU's latency: %w", err)
	}
	sfuTransit, err := childOut.ReadString('\n')
	if err != nil {
		return fmt.Errorf("read the SFU's latency: %w", err)
	}

	// Speaking detection: participant 0 goes quiet, then loud again.
	var speak []time.Duration
	for range 5 {
		quiet[0].Store(true)
		time.Sleep(800 * time.Millisecond)
		b.speakAt.Store(0)
		for len(b.speakLat) > 0 {
			<-b.speakLat
		}
		quiet[0].Store(false)
		select {
		case d := <-b.speakLat:
			speak = append(speak, d)
		case <-time.After(2 * time.Second):
		}
	}
	close(stop)
	wg.Wait()

	var expected int64
	for i := range n {
		expected += b.sent[i].Load() * int64(n-1)
	}
	var got int64
	for i := range n {
		for j := range n {
			got += b.recv[i][j].Load()
		}
	}
	slices.Sort(speak)
	cpu := time.Duration(ru1.Utime.Nano()+ru1.Stime.Nano()-ru0.Utime.Nano()-ru0.Stime.Nano()) * time.Nanosecond
	fmt.Printf("participants %d, publishers %d (%d talking, %d silent with DTX), forwarded audio tracks %d, window %v, lean clients %v\n",
		n, pubs, talkers, pubs-talkers, pubs*(n-1), window, lean)
	sched := "normal"
	if sfuRT != 0 {
		sched = fmt.Sprintf("SCHED_FIFO %d", sfuRT)
	}
	fmt.Printf("SFU process: %s scheduling, CPUs %q, GOMAXPROCS %d (0: default); client process: nice %d, CPUs %q\n",
		sched, sfuCPUs, sfuProcs, clientNice, clientCPUs)
	if la, err := os.ReadFile("/proc/loadavg"); err == nil {
		fmt.Printf("load average at the end: %s", la)
	}
	fmt.Printf("forwarded packets/s %.0f (expected %d, received %d, loss %.4f%%)\n",
		float64(got)/window.Seconds(), expected, got, 100*(1-float64(got)/float64(expected)))
	fmt.Printf("end-to-end latency (client write to client read, incl. both pion stacks): p50 %v p99 %v max %v\n",
		b.lat.pct(50), b.lat.pct(99), b.lat.pct(100))
	fmt.Printf("SFU forwarding latency (publisher packet read to subscriber socket write): %s", sfuLat)
	fmt.Print(sfuTransit)
	var atClients, atSFU, elsewhere int64
	for port, d := range drops1 {
		d -= drops0[port]
		switch {
		case clientPorts[port]:
			atClients += d
		case port == udpPort && udpPort != 0:
			atSFU += d
		default:
			elsewhere += d
		}
	}
	fmt.Printf("UDP receive drops in the window: client sockets %d, SFU socket %d, other sockets on the machine %d\n",
		atClients, atSFU, elsewhere)
	fmt.Printf("joins in order: %v\n", joins)
	slices.Sort(joins)
	fmt.Printf("join (dial to ICE connected): p50 %v p99 %v max %v\n", pct(joins, 50), pct(joins, 99), pct(joins, 100))
	fmt.Printf("speaking detection (first loud packet written to op 5 read): %v\n", speak)
	sfuCores := (sfu1 - sfu0).Seconds() / window.Seconds()
	fmt.Printf("CPU in window: SFU process %.2f cores, client process %.2f cores\n",
		sfuCores, cpu.Seconds()/window.Seconds())
	if sfuCores > 0 {
		fmt.Printf("forwarded packets/s per SFU core: %.0f\n", float64(got)/window.Seconds()/sfuCores)
	}
	return nil
}

func (b *bench) onRTP(to int, from string, p *rtp.Packet) {
	if len(p.Payload) < 16 {
		return
	}
	sentAt := int64(binary.BigEndian.Uint64(p.Payload))
	if !b.inWindow(sentAt) {
		return
	}
	f, err := strconv.Atoi(from)
	if err != nil || f < 0 || f >= b.n {
		return
	}
	b.recv[to][f].Add(1)
	d := time.Since(b.base) - time.Duration(sentAt)
	b.lat.add(d)
}

func (b *bench) inWindow(t int64) bool {
	return b.measure.Load() && t >= b.t0.Load() && t < b.t1.Load()
}

func (b *bench) onSpeaking(to int, from string, on bool) {
	if to != 1 || from != "0" || !on {
		return
	}
	if at := b.speakAt.Load(); at != 0 {
		select {
		case b.speakLat <- time.Since(b.base) - time.Duration(at):
		default:
		}
	}
}

func (b *bench) allHearing(cs []*voiceclient.Client) bool {
	for i, c := range cs {
		for j := range b.pubs {
			if i != j && c.ReceivedFrom(strconv.Itoa(j)) == 0 {
				return false
			}
		}
	}
	return true
}

func pct(d []time.Duration, p int) time.Duration {
	if len(d) == 0 {
		return 0
	}
	i := (len(d) - 1) * p / 100
	return d[i]
}

// histogram is a lock-free latency histogram: 10 µs buckets below 10 ms,
// 1 ms buckets up to 30 s.
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

func (h *histogram) count() int64 {
	var total int64
	for i := range h.fine {
		total += h.fine[i].Load()
	}
	for i := range h.coarse {
		total += h.coarse[i].Load()
	}
	return total
}

// pct returns the upper edge of the bucket holding the p-th percentile.
func (h *histogram) pct(p int) time.Duration { return h.pctMille(p * 10) }

// pctMille is pct in thousandths: 999 is the 99.9th percentile.
func (h *histogram) pctMille(p int) time.Duration {
	total := h.count()
	want := (total*int64(p) + 999) / 1000
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

// serveSFU runs the SFU and the voice WebSocket on loopback, prints the
// voice URL and runs until stdin closes.
func serveSFU(udpPort int) error {
	slog.SetDefault(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
	key, err := hex.DecodeString(os.Getenv("VOICEBENCH_KEY"))
	if err != nil {
		return err
	}
	is, err := token.New(key, 0)
	if err != nil {
		return err
	}
	var lat, recv, transit histogram
	var measuring atomic.Bool
	s, err := sfu.New(sfu.Config{Loopback: true, UDPPort: udpPort, ListenIP: "127.0.0.1",
		OnForward: func(d time.Duration) {
			if measuring.Load() {
				lat.add(d)
			}
		},
		OnReceive: func(d time.Duration) {
			if measuring.Load() {
				recv.add(d)
			}
		},
		OnTransit: func(d time.Duration) {
			if measuring.Load() {
				transit.add(d)
			}
		}})
	if err != nil {
		return err
	}
	defer s.Close()
	mux := http.NewServeMux()
	mux.Handle("/voice", &signal.Handler{SFU: s, Tokens: is})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	if profile != "" {
		f, err := os.Create(profile + ".sfu")
		if err != nil {
			return err
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer func() { pprof.StopCPUProfile(); _ = f.Close() }()
	}
	var traceFile *os.File
	if sfuTrace != "" {
		if traceFile, err = os.Create(sfuTrace); err != nil {
			return err
		}
		defer traceFile.Close()
	}
	fmt.Println("ws" + strings.TrimPrefix(srv.URL, "http") + "/voice")
	// The parent says "start" and "stop" around its window; "stop" is
	// answered with the forwarding latency seen in between. EOF ends.
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		switch in.Text() {
		case "start":
			measuring.Store(true)
			if traceFile != nil {
				if err := trace.Start(traceFile); err != nil {
					return err
				}
			}
		case "stop":
			measuring.Store(false)
			if traceFile != nil {
				trace.Stop()
			}
			fmt.Printf("p50 %v p99 %v p99.9 %v max %v (%d packet writes); before it, arrival at the socket to read loop (-udp-port only): p50 %v p99 %v p99.9 %v max %v (%d packets)\n",
				lat.pct(50), lat.pct(99), lat.pctMille(999), lat.pct(100), lat.count(),
				recv.pct(50), recv.pct(99), recv.pctMille(999), recv.pct(100), recv.count())
			fmt.Printf("SFU as a whole (arrival at the SFU's socket, kernel timestamp, to the send of each copy; -udp-port only): p50 %v p99 %v p99.9 %v max %v (%d packet writes)\n",
				transit.pct(50), transit.pct(99), transit.pctMille(999), transit.pct(100), transit.count())
		}
	}
	return nil
}

// udpDrops returns the receive drops of every IPv4 UDP socket by local
// port, from /proc/net/udp (empty if unreadable).
func udpDrops() map[int]int64 {
	out := map[int]int64{}
	b, err := os.ReadFile("/proc/net/udp")
	if err != nil {
		return out
	}
	for _, line := range strings.Split(string(b), "\n")[1:] {
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

// reniceSelf sets the nice value of every thread of this process (Linux
// keeps it per thread; threads started later inherit it).
func reniceSelf(n int) error {
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		return err
	}
	for _, t := range tasks {
		tid, err := strconv.Atoi(t.Name())
		if err != nil {
			continue
		}
		if err := syscall.Setpriority(syscall.PRIO_PROCESS, tid, n); err != nil {
			return fmt.Errorf("renice thread %d: %w", tid, err)
		}
	}
	return nil
}

// procCPU returns the user+system CPU time of a process from /proc.
func procCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// Fields after the parenthesised command name; utime and stime are
	// fields 14 and 15 of the whole line, in clock ticks (100 Hz).
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	if len(f) < 13 {
		return 0, fmt.Errorf("short /proc stat")
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * 10 * time.Millisecond, nil
}

// cpuCount counts the CPUs of a taskset list such as "1", "0-3" or "0,2-3" (0 for a list it
// cannot read).
func cpuCount(list string) int {
	n := 0
	for _, part := range strings.Split(list, ",") {
		lo, hi, isRange := strings.Cut(strings.TrimSpace(part), "-")
		a, err := strconv.Atoi(lo)
		if err != nil {
			return 0
		}
		b := a
		if isRange {
			if b, err = strconv.Atoi(hi); err != nil || b < a {
				return 0
			}
		}
		n += b - a + 1
	}
	return n
}
