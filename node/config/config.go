// Package config loads the node's settings from, in increasing order of precedence,
// built-in defaults, an optional TOML file, HEARTH_* environment variables, and flags.
// Unknown keys in the TOML file are an error, so a typo is never a silent default.
package config

import (
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
)

// Config is the node's configuration. Each field's flag is its toml key with '_' as '-',
// and its environment variable is HEARTH_ and the key in upper case.
type Config struct {
	// DataDir holds the database and media. Created if missing.
	DataDir string `toml:"data_dir"`
	// Listen is the HTTP address for the API, gateway, web client, /healthz and /metrics.
	Listen string `toml:"listen"`
	// LogLevel is debug, info, warn or error.
	LogLevel string `toml:"log_level"`
	// LogFormat is text or json.
	LogFormat string `toml:"log_format"`
	// PublicURL is how clients reach this node (e.g. https://chat.example.org); empty means
	// "derive from each request".
	PublicURL string `toml:"public_url"`
	// RateGlobal is REST requests per second per token.
	RateGlobal float64 `toml:"rate_global"`
	// RateMessages is messages per 2 seconds per user and channel.
	RateMessages int `toml:"rate_messages"`
	// HeartbeatInterval is the gateway heartbeat interval.
	HeartbeatInterval time.Duration `toml:"heartbeat_interval"`
	// ShutdownTimeout bounds graceful shutdown.
	ShutdownTimeout time.Duration `toml:"shutdown_timeout"`
	// GatewayMaxQueue is how many dispatches a gateway connection may fall behind before it
	// is closed with 4000 (resumable).
	GatewayMaxQueue int `toml:"gateway_max_queue"`
	// P2PListen are the libp2p multiaddrs federation listens on; empty turns federation off.
	P2PListen []string `toml:"p2p_listen"`
	// P2PAnnounce replace the addresses advertised to other nodes (NAT, proxies).
	P2PAnnounce []string `toml:"p2p_announce"`
	// Peers are multiaddrs (with /p2p/ID) of nodes to connect to at start.
	Peers []string `toml:"peers"`
	// NodeName is how this node's users appear elsewhere (name@node-name).
	NodeName string `toml:"node_name"`
	// DMFromStrangers accepts direct conversations that users of other nodes open with a
	// local user they share no guild with (at most 10, then one per 6 minutes, per node);
	// false refuses them (spec/federation.md §6.1).
	DMFromStrangers bool `toml:"dm_from_strangers"`
	// MediaQuota is how many bytes of distinct files one user may have uploaded (a file is
	// charged once however often it is uploaded again); negative means unlimited.
	MediaQuota int64 `toml:"media_quota"`
	// MinFreeDisk is the free space, in bytes, the data directory's file system must keep:
	// below it the node refuses writes (507) and goes on serving reads, where a full disk
	// would kill it (the database writes through memory maps). 0 turns the check off.
	MinFreeDisk int64 `toml:"min_free_disk"`
	// MediaGCInterval is how often the media garbage collector runs.
	MediaGCInterval time.Duration `toml:"media_gc_interval"`
	// MediaGCGrace is how long an unreferenced file is kept after its last upload or
	// announcement, so that a message being composed does not lose its files.
	MediaGCGrace time.Duration `toml:"media_gc_grace"`
	// MediaThumbTimeout bounds the rendering of one thumbnail; an image that takes longer
	// gets none.
	MediaThumbTimeout time.Duration `toml:"media_thumb_timeout"`
	// SearchTimeout bounds one search; a search that reaches it answers with the results
	// found so far and "partial": true.
	SearchTimeout time.Duration `toml:"search_timeout"`
	// GCPercent is the garbage collector's target, Go's GOGC: the heap may grow by this
	// percentage of the live heap before a collection. 0 means GOGC from the environment if
	// it is set, and DefaultGCPercent otherwise.
	GCPercent int `toml:"gc_percent"`
	// Pprof serves net/http/pprof under /debug/pprof/ on the listen address. Off by default:
	// profiles reveal internals, so enable it only on a trusted address.
	Pprof bool `toml:"pprof"`

	// VoiceUDPPort, if non-zero, makes all voice media share this one UDP port (open it in the
	// firewall). Zero means one ephemeral port per voice session, within VoiceUDPRange if set.
	VoiceUDPPort int `toml:"voice_udp_port"`
	// VoiceUDPRange bounds the ephemeral voice ports as "MIN-MAX" (e.g. "50000-50100").
	// Empty means any port. Exclusive with VoiceUDPPort.
	VoiceUDPRange string `toml:"voice_udp_range"`
	// VoiceTCPPort, if non-zero, accepts ICE-TCP on this port for clients whose networks block
	// UDP. Zero disables ICE-TCP.
	VoiceTCPPort int `toml:"voice_tcp_port"`
	// VoicePublicIP is a comma-separated list of addresses announced to voice clients instead
	// of the host's own (a node behind 1:1 NAT). Empty announces local addresses.
	VoicePublicIP string `toml:"voice_public_ip"`
	// VoiceLoopback also offers loopback addresses to voice clients; for tests and
	// single-host setups.
	VoiceLoopback bool `toml:"voice_loopback"`
	// VoiceTURNURLs is a comma-separated list of STUN/TURN URLs sent to voice clients
	// (e.g. "turn:turn.example.org:3478?transport=udp"). Empty sends none.
	VoiceTURNURLs string `toml:"voice_turn_urls"`
	// VoiceTURNUsername and VoiceTURNCredential are the TURN servers' static credentials.
	VoiceTURNUsername   string `toml:"voice_turn_username"`
	VoiceTURNCredential string `toml:"voice_turn_credential"`
}

// VoicePortRange parses VoiceUDPRange; both zero when it is empty.
func (c Config) VoicePortRange() (lo, hi uint16, err error) {
	if c.VoiceUDPRange == "" {
		return 0, 0, nil
	}
	a, b, ok := strings.Cut(c.VoiceUDPRange, "-")
	l, err1 := strconv.ParseUint(strings.TrimSpace(a), 10, 16)
	h, err2 := strconv.ParseUint(strings.TrimSpace(b), 10, 16)
	if !ok || err1 != nil || err2 != nil || l == 0 || l > h {
		return 0, 0, fmt.Errorf("config: voice_udp_range %q is not MIN-MAX with 0 < MIN <= MAX <= 65535", c.VoiceUDPRange)
	}
	return uint16(l), uint16(h), nil
}

// VoicePublicIPs splits VoicePublicIP; nil when it is empty.
func (c Config) VoicePublicIPs() []string { return splitList(c.VoicePublicIP) }

// VoiceTURN splits VoiceTURNURLs; nil when it is empty.
func (c Config) VoiceTURN() []string { return splitList(c.VoiceTURNURLs) }

// splitList splits a comma-separated flag or variable, dropping empty items.
func splitList(v string) []string {
	var out []string
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// DefaultGCPercent is the node's garbage collector target when neither GCPercent nor GOGC
// says otherwise. Go's own default is 100. At 200 a collection runs half as often: search
// indexing beside a node serving 1,000 messages a second took about a fifth less CPU per
// message, and an idle gateway session about 45% more memory (11.8 against 7.3-8.2 KiB),
// which is cheaper on the small machines nodes run on (docs/benchmarks.md, session 7).
const DefaultGCPercent = 200

// DefaultMinFreeDisk is the free space the node keeps by default: room for the database to
// finish what it has started (its memtable's log, 64 MiB, a flush, a compaction) and for
// the search index's merges.
const DefaultMinFreeDisk = 256 << 20

// Default returns the built-in defaults.
func Default() Config {
	return Config{
		DataDir: "./hearth-data", Listen: "127.0.0.1:8080", LogLevel: "info", LogFormat: "text",
		RateGlobal: 50, RateMessages: 10, HeartbeatInterval: 41250 * time.Millisecond, ShutdownTimeout: 10 * time.Second,
		GatewayMaxQueue: 500, MediaQuota: 1 << 30, MinFreeDisk: DefaultMinFreeDisk, MediaGCInterval: time.Hour, MediaGCGrace: time.Hour,
		MediaThumbTimeout: 10 * time.Second, SearchTimeout: 2 * time.Second, DMFromStrangers: true,
	}
}

// Load parses args (without the program and subcommand name) with env as the environment
// (os.Environ form). A -config flag or HEARTH_CONFIG names the TOML file.
func Load(args []string, env []string) (Config, error) {
	cfg := Default()
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	configPath := fs.String("config", lookup(env, "HEARTH_CONFIG"), "TOML config file (env HEARTH_CONFIG)")
	type binding struct {
		key  string
		set  func(string) error
		help string
	}
	var bindings []binding
	str := func(p *string, key, help string) {
		bindings = append(bindings, binding{key, func(v string) error { *p = v; return nil }, help})
	}
	num := func(key, help string, parse func(string) error) {
		bindings = append(bindings, binding{key, parse, help})
	}
	str(&cfg.DataDir, "data_dir", "directory for the database and media")
	str(&cfg.Listen, "listen", "HTTP listen address")
	str(&cfg.LogLevel, "log_level", "debug, info, warn or error")
	str(&cfg.LogFormat, "log_format", "text or json")
	str(&cfg.PublicURL, "public_url", "URL clients use to reach this node (default: from each request)")
	num("rate_global", "REST requests per second per token", func(v string) error {
		f, err := strconv.ParseFloat(v, 64)
		cfg.RateGlobal = f
		return err
	})
	num("rate_messages", "messages per 2 seconds per user and channel", func(v string) error {
		n, err := strconv.Atoi(v)
		cfg.RateMessages = n
		return err
	})
	duration := func(p *time.Duration, key, help string) {
		num(key, help, func(v string) error {
			d, err := time.ParseDuration(v)
			*p = d
			return err
		})
	}
	duration(&cfg.HeartbeatInterval, "heartbeat_interval", "gateway heartbeat interval (e.g. 41.25s)")
	duration(&cfg.ShutdownTimeout, "shutdown_timeout", "graceful shutdown limit")
	num("gateway_max_queue", "dispatches a gateway connection may fall behind before close 4000", func(v string) error {
		n, err := strconv.Atoi(v)
		cfg.GatewayMaxQueue = n
		return err
	})
	num("media_quota", "bytes of distinct files one user may upload (negative: unlimited)", func(v string) error {
		n, err := strconv.ParseInt(v, 10, 64)
		cfg.MediaQuota = n
		return err
	})
	num("min_free_disk", "bytes the data directory's disk must keep free; below, writes are refused (0: no check)", func(v string) error {
		n, err := strconv.ParseInt(v, 10, 64)
		cfg.MinFreeDisk = n
		return err
	})
	duration(&cfg.MediaGCInterval, "media_gc_interval", "how often unreferenced media files are collected")
	duration(&cfg.MediaGCGrace, "media_gc_grace", "how long an unreferenced media file is kept after its upload")
	duration(&cfg.MediaThumbTimeout, "media_thumb_timeout", "bound of one thumbnail rendering (no thumbnail past it)")
	duration(&cfg.SearchTimeout, "search_timeout", "bound of one search (partial results past it)")
	list := func(p *[]string, key, help string) {
		bindings = append(bindings, binding{key, func(v string) error { *p = splitList(v); return nil }, help})
	}
	list(&cfg.P2PListen, "p2p_listen", "comma-separated libp2p listen multiaddrs; empty: federation off")
	list(&cfg.P2PAnnounce, "p2p_announce", "comma-separated multiaddrs announced to other nodes")
	list(&cfg.Peers, "peers", "comma-separated multiaddrs of nodes to connect to at start")
	str(&cfg.NodeName, "node_name", "how this node's users appear on other nodes (name@node-name)")
	boolean := func(p *bool, key, help string) {
		num(key, help+" (true or false)", func(v string) error {
			b, err := strconv.ParseBool(v)
			*p = b
			return err
		})
	}
	boolean(&cfg.DMFromStrangers, "dm_from_strangers", "accept direct messages from users of other nodes who share no guild with the recipient")
	num("gc_percent", "garbage collector target, as Go's GOGC (0: GOGC if set, else 200)", func(v string) error {
		n, err := strconv.Atoi(v)
		cfg.GCPercent = n
		return err
	})
	boolean(&cfg.Pprof, "pprof", "serve /debug/pprof/")
	port := func(p *int, key, help string) {
		num(key, help, func(v string) error {
			n, err := strconv.Atoi(v)
			*p = n
			return err
		})
	}
	port(&cfg.VoiceUDPPort, "voice_udp_port", "one UDP port for all voice media (0: an ephemeral port per session)")
	str(&cfg.VoiceUDPRange, "voice_udp_range", "range of ephemeral voice UDP ports, MIN-MAX (default: any)")
	port(&cfg.VoiceTCPPort, "voice_tcp_port", "ICE-TCP port for voice clients without UDP (0: off)")
	str(&cfg.VoicePublicIP, "voice_public_ip", "comma-separated addresses announced to voice clients (default: local addresses)")
	boolean(&cfg.VoiceLoopback, "voice_loopback", "offer loopback addresses to voice clients")
	str(&cfg.VoiceTURNURLs, "voice_turn_urls", "comma-separated STUN/TURN URLs for voice clients")
	str(&cfg.VoiceTURNUsername, "voice_turn_username", "TURN username")
	str(&cfg.VoiceTURNCredential, "voice_turn_credential", "TURN credential")
	flagVals := map[string]*string{}
	for _, b := range bindings {
		name := strings.ReplaceAll(b.key, "_", "-")
		flagVals[b.key] = fs.String(name, "", fmt.Sprintf("%s (env HEARTH_%s)", b.help, strings.ToUpper(b.key)))
	}
	if err := fs.Parse(args); err != nil {
		return cfg, err
	}
	if fs.NArg() > 0 {
		return cfg, fmt.Errorf("config: unexpected argument %q", fs.Arg(0))
	}
	if *configPath != "" {
		md, err := toml.DecodeFile(*configPath, &cfg)
		if err != nil {
			return cfg, fmt.Errorf("config: %s: %w", *configPath, err)
		}
		if und := md.Undecoded(); len(und) > 0 {
			return cfg, fmt.Errorf("config: %s: unknown key %q", *configPath, und[0].String())
		}
	}
	for _, b := range bindings {
		if v := lookup(env, "HEARTH_"+strings.ToUpper(b.key)); v != "" {
			if err := b.set(v); err != nil {
				return cfg, fmt.Errorf("config: HEARTH_%s: %w", strings.ToUpper(b.key), err)
			}
		}
	}
	for _, b := range bindings {
		if v := *flagVals[b.key]; v != "" {
			if err := b.set(v); err != nil {
				return cfg, fmt.Errorf("config: -%s: %w", strings.ReplaceAll(b.key, "_", "-"), err)
			}
		}
	}
	return cfg, cfg.validate()
}

func (c Config) validate() error {
	var errs []error
	if c.DataDir == "" {
		errs = append(errs, errors.New("config: data_dir must not be empty"))
	}
	if c.GatewayMaxQueue < 1 {
		errs = append(errs, errors.New("config: gateway_max_queue must be at least 1"))
	}
	if c.RateGlobal <= 0 || c.RateMessages <= 0 {
		errs = append(errs, errors.New("config: rate limits must be positive"))
	}
	if c.MediaQuota == 0 {
		errs = append(errs, errors.New("config: media_quota must not be 0 (negative: unlimited)"))
	}
	if c.MediaGCInterval < 10*time.Millisecond || c.MediaGCGrace <= 0 || c.MediaThumbTimeout <= 0 || c.SearchTimeout <= 0 {
		errs = append(errs, errors.New("config: media_gc_interval must be at least 10ms, media_gc_grace, media_thumb_timeout and search_timeout positive"))
	}
	if c.MinFreeDisk < 0 {
		errs = append(errs, errors.New("config: min_free_disk must not be negative (0: no check)"))
	}
	if c.GCPercent < 0 {
		errs = append(errs, errors.New("config: gc_percent must not be negative (0: GOGC if set, else the default)"))
	}
	if c.HeartbeatInterval < 100*time.Millisecond {
		errs = append(errs, errors.New("config: heartbeat_interval must be at least 100ms"))
	}
	for key, p := range map[string]int{"voice_udp_port": c.VoiceUDPPort, "voice_tcp_port": c.VoiceTCPPort} {
		if p < 0 || p > 65535 {
			errs = append(errs, fmt.Errorf("config: %s %d is not a port", key, p))
		}
	}
	if _, _, err := c.VoicePortRange(); err != nil {
		errs = append(errs, err)
	} else if c.VoiceUDPRange != "" && c.VoiceUDPPort != 0 {
		errs = append(errs, errors.New("config: voice_udp_port and voice_udp_range are exclusive"))
	}
	for _, ip := range c.VoicePublicIPs() {
		if net.ParseIP(ip) == nil {
			errs = append(errs, fmt.Errorf("config: voice_public_ip %q is not an IP address", ip))
		}
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		errs = append(errs, fmt.Errorf("config: log_level %q is not debug, info, warn or error", c.LogLevel))
	}
	return errors.Join(errs...)
}

func lookup(env []string, key string) string {
	for i := len(env) - 1; i >= 0; i-- {
		if k, v, ok := strings.Cut(env[i], "="); ok && k == key {
			return v
		}
	}
	return ""
}

// Environ is os.Environ, for callers that want the process environment.
func Environ() []string { return os.Environ() }
