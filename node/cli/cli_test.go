package cli

import (
	"runtime/debug"
	"testing"

	"github.com/hearth-chat/hearth/node/config"
)

func TestSetGC(t *testing.T) {
	prev := debug.SetGCPercent(100)
	t.Cleanup(func() { debug.SetGCPercent(prev) })
	env := func(gogc string) func(string) string {
		return func(k string) string {
			if k == "GOGC" {
				return gogc
			}
			return ""
		}
	}
	for _, c := range []struct {
		name      string
		cfg       int
		gogc      string
		runtimeGC int // what GOGC made the runtime's target before setGC ran
		want      int
	}{
		{"default", 0, "", 100, config.DefaultGCPercent},
		{"GOGC kept", 0, "300", 300, 300},
		{"GOGC=off kept", 0, "off", -1, -1},
		{"setting wins over GOGC", 150, "300", 300, 150},
		{"setting", 50, "", 100, 50},
	} {
		debug.SetGCPercent(c.runtimeGC)
		got := setGC(config.Config{GCPercent: c.cfg}, env(c.gogc))
		if now := debug.SetGCPercent(100); got != c.want || now != c.want {
			t.Errorf("%s: setGC = %d, runtime target %d; want %d", c.name, got, now, c.want)
		}
	}
}
