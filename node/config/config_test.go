package config

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestPrecedence(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "hearth.toml")
	if err := os.WriteFile(file, []byte("listen = \"127.0.0.1:1\"\ndata_dir = \"/from-file\"\nrate_messages = 3\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := Load([]string{"-config", file, "-listen", "127.0.0.1:3"},
		[]string{"HEARTH_LISTEN=127.0.0.1:2", "HEARTH_DATA_DIR=/from-env", "HEARTH_HEARTBEAT_INTERVAL=2s"})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Listen != "127.0.0.1:3" {
		t.Errorf("flag should win: listen = %s", cfg.Listen)
	}
	if cfg.DataDir != "/from-env" {
		t.Errorf("env should beat file: data_dir = %s", cfg.DataDir)
	}
	if cfg.RateMessages != 3 {
		t.Errorf("file should beat default: rate_messages = %d", cfg.RateMessages)
	}
	if cfg.HeartbeatInterval != 2*time.Second {
		t.Errorf("heartbeat = %v", cfg.HeartbeatInterval)
	}
}

func TestErrors(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "bad.toml")
	_ = os.WriteFile(file, []byte("lisen = \"typo\"\n"), 0o600)
	for name, args := range map[string][]string{
		"unknown toml key": {"-config", file},
		"bad duration":     {"-heartbeat-interval", "soon"},
		"bad level":        {"-log-level", "loud"},
		"stray argument":   {"extra"},
	} {
		if _, err := Load(args, nil); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}
