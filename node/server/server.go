// Package server assembles a node from its parts (store, chat domain, fanout hub, REST API,
// gateway, web client, metrics) and runs its HTTP server until the context ends, then shuts
// down in order: stop accepting, drain gateway sessions with Reconnect, finish in-flight
// requests, flush presence, close the database.
package server

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"path"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	clientweb "github.com/hearth-chat/hearth/client-web"
	"github.com/hearth-chat/hearth/node/api"
	"github.com/hearth-chat/hearth/node/chat"
	"github.com/hearth-chat/hearth/node/config"
	"github.com/hearth-chat/hearth/node/fanout"
	"github.com/hearth-chat/hearth/node/gateway"
	"github.com/hearth-chat/hearth/node/media"
	"github.com/hearth-chat/hearth/node/search"
	"github.com/hearth-chat/hearth/node/store"
)

// Node is a running node.
type Node struct {
	cfg   config.Config
	log   *slog.Logger
	db    *store.DB
	hub   *fanout.Hub
	chat  *chat.Service
	api   *api.API
	gw    *gateway.Gateway
	http  *http.Server
	ln    net.Listener
	reg   *prometheus.Registry
	media *media.Store
	fed   *federation // nil: federation off
	index *search.Index
	voice *voiceNode

	stop chan struct{}
	wg   sync.WaitGroup
}

// New opens the data directory and builds the node; Serve starts it.
func New(cfg config.Config, log *slog.Logger) (*Node, error) {
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("server: data dir: %w", err)
	}
	db, err := store.Open(path.Join(cfg.DataDir, "db"), store.Options{Logger: log, MinFree: uint64(cfg.MinFreeDisk)})
	if err != nil {
		return nil, err
	}
	n := &Node{cfg: cfg, log: log, db: db, hub: fanout.NewHub(), reg: prometheus.NewRegistry(), stop: make(chan struct{})}
	fetch := &mediaFetcher{}
	n.media, err = media.Open(path.Join(cfg.DataDir, "media"), media.Options{DB: db.Badger(), Space: db.Space, Logger: log, Fetcher: fetch,
		OwnerQuota: cfg.MediaQuota, GCGrace: cfg.MediaGCGrace, ThumbTimeout: cfg.MediaThumbTimeout})
	if err != nil {
		db.Close()
		return nil, err
	}
	n.chat, err = chat.New(db, n.hub, chat.Options{Logger: log, RenderAttachment: n.renderAttachment})
	if err != nil {
		n.media.Close()
		db.Close()
		return nil, err
	}
	n.index, err = search.Open(path.Join(cfg.DataDir, "search"), search.Options{Logger: log, Registerer: n.reg, Source: searchSource{n.chat},
		QueryTimeout: cfg.SearchTimeout})
	if err != nil {
		n.media.Close()
		db.Close()
		return nil, err
	}
	n.chat.SetObserver(indexer{ix: n.index, log: log})
	latency := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "hearth_http_request_duration_seconds", Help: "REST request latency by route and status class.",
		Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
	}, []string{"route", "code"})
	messages := prometheus.NewCounter(prometheus.CounterOpts{Name: "hearth_messages_created_total", Help: "Messages created through the REST API."})
	n.api = api.New(n.chat, api.Options{
		Logger: log, RateGlobal: cfg.RateGlobal, RateMessages: cfg.RateMessages,
		GatewayURL: n.gatewayURL, Uploads: uploads{n.media}, Images: uploads{n.media}, Search: n.index,
		Observe: func(route string, status int, d time.Duration) {
			latency.WithLabelValues(route, fmt.Sprintf("%dxx", status/100)).Observe(d.Seconds())
			if route == "POST /channels/{channel}/messages" && status == http.StatusOK {
				messages.Inc()
			}
		},
	})
	if n.voice, err = newVoice(cfg, n.chat, log); err != nil {
		n.api.Close()
		errs := errors.Join(n.index.Close(), n.media.Close(), db.Close())
		return nil, errors.Join(err, errs)
	}
	if n.fed, err = newFederation(cfg, db, n.chat, n.media, log); err != nil {
		n.api.Close()
		errs := errors.Join(n.voice.close(), n.index.Close(), n.media.Close(), db.Close())
		return nil, errors.Join(err, errs)
	}
	fetch.f = n.fed
	n.voice.startCascade(n.fed, n.reg) // voice across nodes, when federation is on
	n.gw = gateway.New(n.chat, n.hub, gateway.Options{HeartbeatInterval: cfg.HeartbeatInterval, MaxQueue: cfg.GatewayMaxQueue, Logger: log, Voice: n.voice.op4})
	n.registerMetrics(latency, messages)
	n.http = &http.Server{Handler: n.routes(), ReadHeaderTimeout: 10 * time.Second, ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
	return n, nil
}

func (n *Node) registerMetrics(cs ...prometheus.Collector) {
	n.reg.MustRegister(cs...)
	n.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	n.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "hearth_gateway_sessions", Help: "Identified gateway sessions (attached or resumable)."},
		func() float64 { s, _, _ := n.gw.Stats(); return float64(s) }))
	n.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "hearth_gateway_connections", Help: "Open gateway WebSocket connections."},
		func() float64 { _, c, _ := n.gw.Stats(); return float64(c) }))
	n.reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "hearth_gateway_slow_closed_total", Help: "Connections closed (4000) for falling behind."},
		func() float64 { _, _, s := n.gw.Stats(); return float64(s) }))
	n.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "hearth_fanout_queue_depth", Help: "Dispatches queued for attached sessions and not yet written."},
		func() float64 { return float64(n.gw.QueueDepth()) }))
	n.reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "hearth_fanout_published_total", Help: "Dispatch events published."},
		func() float64 { p, _ := n.hub.Stats(); return float64(p) }))
	n.reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "hearth_fanout_deliveries_total", Help: "Dispatch deliveries to sessions."},
		func() float64 { _, d := n.hub.Stats(); return float64(d) }))
}

func (n *Node) gatewayURL(r *http.Request) string {
	if n.cfg.PublicURL != "" {
		u := strings.Replace(strings.Replace(n.cfg.PublicURL, "https://", "wss://", 1), "http://", "ws://", 1)
		return strings.TrimSuffix(u, "/") + "/gateway"
	}
	scheme := "ws"
	if r.TLS != nil {
		scheme = "wss"
	}
	return scheme + "://" + r.Host + "/gateway"
}

func (n *Node) routes() http.Handler {
	mux := http.NewServeMux()
	for _, v := range []string{"/api/v10", "/api/v9", "/api"} {
		mux.Handle(v+"/gateway/poll", n.gw.PollHandler(v+"/gateway/poll"))
		mux.Handle(v+"/gateway/poll/", n.gw.PollHandler(v+"/gateway/poll"))
	}
	mux.Handle("/api/", n.api)
	mux.Handle("/gateway", n.gw)
	mux.Handle("/voice", n.voice.handler)
	mediaHandler := n.media.Handler()
	mux.Handle("GET /attachments/", mediaHandler)
	mux.Handle("GET /thumbnails/", mediaHandler)
	mux.HandleFunc("GET /avatars/{id}/{file}", n.serveImage(n.chat.AvatarOf))
	mux.HandleFunc("GET /icons/{id}/{file}", n.serveImage(n.chat.IconOf))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("ok"))
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(n.reg, promhttp.HandlerOpts{}))
	if n.cfg.Pprof {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	}
	web := spa(clientweb.FS())
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		// Discord libraries connect to the URL from /gateway with ?v=10 appended, and some
		// to the bare host: serve the gateway wherever a WebSocket upgrade arrives.
		if strings.EqualFold(r.Header.Get("Upgrade"), "websocket") {
			n.gw.ServeHTTP(w, r)
			return
		}
		web.ServeHTTP(w, r)
	})
	return mux
}

// spa serves the embedded client: files as they are (hashed assets cached forever), and
// index.html for every other GET so client-side routes load the app.
func spa(files fs.FS) http.Handler {
	fileServer := http.FileServerFS(files)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		p := strings.TrimPrefix(path.Clean(r.URL.Path), "/")
		if p != "" && p != "index.html" {
			if st, err := fs.Stat(files, p); err == nil && !st.IsDir() {
				if strings.HasPrefix(p, "assets/") {
					w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
				}
				w.Header().Set("X-Content-Type-Options", "nosniff")
				fileServer.ServeHTTP(w, r)
				return
			}
		}
		w.Header().Set("Cache-Control", "no-cache")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		http.ServeFileFS(w, r, files, "index.html")
	})
}

// Listen binds the HTTP address. It is separate from Serve so callers (tests) can learn the
// port of ":0" before serving.
func (n *Node) Listen() error {
	ln, err := net.Listen("tcp", n.cfg.Listen)
	if err != nil {
		return fmt.Errorf("server: listen %s: %w", n.cfg.Listen, err)
	}
	n.ln = ln
	return nil
}

// Addr is the bound HTTP address (after Listen).
func (n *Node) Addr() string { return n.ln.Addr().String() }

// Serve runs the node until ctx is done, then shuts it down gracefully.
func (n *Node) Serve(ctx context.Context) error {
	if n.ln == nil {
		if err := n.Listen(); err != nil {
			return err
		}
	}
	n.wg.Add(3)
	go func() { defer n.wg.Done(); n.chat.RunPresence(n.stop, time.Second) }()
	go func() { defer n.wg.Done(); n.collectMedia(n.stop, n.cfg.MediaGCInterval) }()
	go func() {
		defer n.wg.Done()
		t := time.NewTicker(10 * time.Minute)
		defer t.Stop()
		for {
			select {
			case <-n.stop:
				return
			case <-t.C:
				n.db.RunGC()
			}
		}
	}()
	n.log.Info("hearth node serving", "addr", "http://"+n.Addr(), "data_dir", n.cfg.DataDir)
	errc := make(chan error, 1)
	go func() { errc <- n.http.Serve(n.ln) }()
	var serveErr error
	select {
	case <-ctx.Done():
	case serveErr = <-errc:
	}
	return errors.Join(serveErr, n.shutdown())
}

func (n *Node) shutdown() error {
	n.log.Info("shutting down")
	ctx, cancel := context.WithTimeout(context.Background(), n.cfg.ShutdownTimeout)
	defer cancel()
	var errs []error
	// Stop accepting and finish in-flight requests (their writes are durable when they
	// answer); meanwhile tell gateway clients to reconnect elsewhere or later.
	// Voice WebSockets are hijacked, so the HTTP server does not wait for them: end the
	// voice sessions first (close code 4015) so their leaves are dispatched while the
	// gateway still delivers.
	errs = append(errs, n.voice.close())
	var wg sync.WaitGroup
	var gwErr error
	wg.Add(1)
	go func() { defer wg.Done(); gwErr = n.gw.Shutdown(ctx) }()
	if err := n.http.Shutdown(ctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		errs = append(errs, fmt.Errorf("server: http shutdown: %w", err))
	}
	wg.Wait()
	errs = append(errs, gwErr)
	if n.fed != nil {
		errs = append(errs, n.fed.close())
	}
	close(n.stop)
	n.wg.Wait()
	n.api.Close()
	n.chat.Close()
	errs = append(errs, n.index.Close(), n.media.Close(), n.db.Close())
	n.log.Info("stopped")
	return errors.Join(errs...)
}
