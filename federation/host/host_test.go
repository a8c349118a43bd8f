package host

import (
	"context"
	"testing"
	"time"
)

func TestIdentityPersists(t *testing.T) {
	dir := t.TempDir()
	cfg := Config{DataDir: dir, ListenAddrs: []string{"/ip4/127.0.0.1/tcp/0", "/ip4/127.0.0.1/udp/0/quic-v1"}}
	h1, _, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	id := h1.ID()
	h1.Close()
	h2, _, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer h2.Close()
	if h2.ID() != id {
		t.Fatalf("peer ID changed across restarts: %s != %s", h2.ID(), id)
	}
}

func TestConnectTCPAndQUIC(t *testing.T) {
	for _, listen := range []string{"/ip4/127.0.0.1/tcp/0", "/ip4/127.0.0.1/udp/0/quic-v1"} {
		t.Run(listen, func(t *testing.T) {
			a, _, err := New(Config{DataDir: t.TempDir(), ListenAddrs: []string{listen}})
			if err != nil {
				t.Fatal(err)
			}
			defer a.Close()
			b, _, err := New(Config{DataDir: t.TempDir(), ListenAddrs: []string{listen},
				AnnounceAddrs: []string{"/dns4/chat.example/tcp/4001"}})
			if err != nil {
				t.Fatal(err)
			}
			defer b.Close()
			if got := b.Addrs(); len(got) != 1 || got[0].String() != "/dns4/chat.example/tcp/4001" {
				t.Fatalf("announce addrs %v", got)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			infos, err := ParseAddrInfos([]string{a.Addrs()[0].String() + "/p2p/" + a.ID().String()})
			if err != nil {
				t.Fatal(err)
			}
			if err := Connect(ctx, b, infos); err != nil {
				t.Fatal(err)
			}
		})
	}
}
