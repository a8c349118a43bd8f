// Package config loads the node's settings from, in increasing order of precedence,
// built-in defaults, an optional TOML file, HEARTH_* environment variables, and flags.
// Unknown keys in the TOML file are an error, so a typo is never a silent default.
package config

import (
	"errors"
	"flag"
	"fmt"
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
	// Pprof serves net/http/pprof under /debug/pprof/ on the listen address. Off by default:
	// profiles reveal internals, so enable it only on a trusted address.
	Pprof bool `toml:"pprof"`
}

// Default returns the built-in defaults.
func Default() Config {
	return Config{
		DataDir: "./hearth-data", Listen: "127.0.0.1:8080", LogLevel: "info", LogFormat: "text",
		RateGlobal: 50, RateMessages: 10, HeartbeatInterval: 41250 * time.Millisecond, ShutdownTimeout: 10 * time.Second,
		GatewayMaxQueue: 500,
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
	num("heartbeat_interval", "gateway heartbeat interval (e.g. 41.25s)", func(v string) error {
		d, err := time.ParseDuration(v)
		cfg.HeartbeatInterval = d
		return err
	})
	num("shutdown_timeout", "graceful shutdown limit", func(v string) error {
		d, err := time.ParseDuration(v)
		cfg.ShutdownTimeout = d
		return err
	})
	num("gateway_max_queue", "dispatches a gateway connection may fall behind before close 4000", func(v string) error {
		n, err := strconv.Atoi(v)
		cfg.GatewayMaxQueue = n
		return err
	})
	num("pprof", "serve /debug/pprof/ (true or false)", func(v string) error {
		b, err := strconv.ParseBool(v)
		cfg.Pprof = b
		return err
	})
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
	if c.HeartbeatInterval < 100*time.Millisecond {
		errs = append(errs, errors.New("config: heartbeat_interval must be at least 100ms"))
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
