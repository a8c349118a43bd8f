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
		"unknown toml key":          {"-config", file},
		"bad duration":              {"-heartbeat-interval", "soon"},
		"bad level":                 {"-log-level", "loud"},
		"stray argument":            {"extra"},
		"bad voice port":            {"-voice-udp-port", "70000"},
		"bad voice range":           {"-voice-udp-range", "9-3"},
		"voice port and range":      {"-voice-udp-port", "5000", "-voice-udp-range", "6000-6100"},
		"voice public ip not an ip": {"-voice-public-ip", "example.org"},
		"zero media quota":          {"-media-quota", "0"},
		"media quota not a number":  {"-media-quota", "1GiB"},
		"tiny gc interval":          {"-media-gc-interval", "1ms"},
		"zero gc grace":             {"-media-gc-grace", "0s"},
		"zero thumb timeout":        {"-media-thumb-timeout", "0s"},
		"negative search timeout":   {"-search-timeout", "-1s"},
		"negative gc percent":       {"-gc-percent", "-1"},
		"gc percent not a number":   {"-gc-percent", "off"},
		"negative min free disk":    {"-min-free-disk", "-1"},
	} {
		if _, err := Load(args, nil); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func TestVoice(t *testing.T) {
	cfg, err := Load([]string{"-voice-udp-range", "50000-50100", "-voice-tcp-port", "3479",
		"-voice-public-ip", "203.0.113.7, 2001:db8::7", "-voice-turn-urls", "turn:t.example:3478,stun:s.example"},
		[]string{"HEARTH_VOICE_TURN_USERNAME=u", "HEARTH_VOICE_LOOPBACK=true"})
	if err != nil {
		t.Fatal(err)
	}
	lo, hi, err := cfg.VoicePortRange()
	if err != nil || lo != 50000 || hi != 50100 {
		t.Errorf("range = %d-%d, %v", lo, hi, err)
	}
	if got := cfg.VoicePublicIPs(); len(got) != 2 || got[1] != "2001:db8::7" {
		t.Errorf("public IPs = %q", got)
	}
	if got := cfg.VoiceTURN(); len(got) != 2 || got[0] != "turn:t.example:3478" {
		t.Errorf("TURN = %q", got)
	}
	if cfg.VoiceTCPPort != 3479 || cfg.VoiceTURNUsername != "u" || !cfg.VoiceLoopback {
		t.Errorf("cfg = %+v", cfg)
	}
}

func TestLimits(t *testing.T) {
	def := Default()
	if def.MinFreeDisk != 256<<20 || def.MediaQuota != 1<<30 || def.MediaGCInterval != time.Hour || def.MediaGCGrace != time.Hour || def.SearchTimeout != 2*time.Second || def.MediaThumbTimeout != 10*time.Second {
		t.Errorf("defaults = %+v", def)
	}
	cfg, err := Load([]string{"-media-quota", "65536", "-media-gc-interval", "100ms", "-search-timeout", "1ns", "-media-thumb-timeout", "5s"},
		[]string{"HEARTH_MEDIA_GC_GRACE=3s", "HEARTH_MEDIA_QUOTA=-1", "HEARTH_MIN_FREE_DISK=0"})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.MinFreeDisk != 0 || cfg.MediaQuota != 65536 || cfg.MediaGCInterval != 100*time.Millisecond || cfg.MediaGCGrace != 3*time.Second || cfg.SearchTimeout != time.Nanosecond || cfg.MediaThumbTimeout != 5*time.Second {
		t.Errorf("cfg = %+v", cfg)
	}
}

func TestGCPercent(t *testing.T) {
	for _, c := range []struct {
		args, env []string
		want      int
	}{
		{nil, nil, 0},
		{[]string{"-gc-percent", "150"}, nil, 150},
		{nil, []string{"HEARTH_GC_PERCENT=400"}, 400},
		{[]string{"-gc-percent", "100"}, []string{"HEARTH_GC_PERCENT=400"}, 100},
	} {
		cfg, err := Load(c.args, c.env)
		if err != nil || cfg.GCPercent != c.want {
			t.Errorf("Load(%q, %q): gc_percent %d, %v; want %d", c.args, c.env, cfg.GCPercent, err, c.want)
		}
	}
}

func TestDMFromStrangers(t *testing.T) {
	for _, c := range []struct {
		args, env []string
		want      bool
	}{
		{nil, nil, true},
		{[]string{"-dm-from-strangers=false"}, nil, false},
		{nil, []string{"HEARTH_DM_FROM_STRANGERS=false"}, false},
		{[]string{"-dm-from-strangers", "true"}, []string{"HEARTH_DM_FROM_STRANGERS=false"}, true},
	} {
		cfg, err := Load(c.args, c.env)
		if err != nil || cfg.DMFromStrangers != c.want {
			t.Errorf("Load(%q, %q): dm_from_strangers %v, %v; want %v", c.args, c.env, cfg.DMFromStrangers, err, c.want)
		}
	}
	if _, err := Load([]string{"-dm-from-strangers=maybe"}, nil); err == nil {
		t.Error("dm_from_strangers=maybe accepted")
	}
}
