package gateway

import (
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/hearth-chat/hearth/node/fanout"
)

// BenchmarkFanout publishes one dispatch to 5,000 identified WebSocket sessions of one guild
// (over loopback, clients in this process) and waits until every client has read it. The
// figure per op is one whole fanout; clients and server share the machine's cores.
//
//	go test -run X -bench Fanout -benchtime 50x ./node/gateway/
func BenchmarkFanout(b *testing.B) {
	const n = 5000
	tg := startGateway(b, Options{HeartbeatInterval: time.Hour, MaxQueue: 1000})
	var got atomic.Int64
	var wg sync.WaitGroup
	var conns []*websocket.Conn
	for i := range n {
		ws := tg.identifyB(b, 1000+i%100)
		conns = append(conns, ws)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				if _, _, err := ws.NextReader(); err != nil {
					return
				}
				got.Add(1)
			}
		}()
	}
	defer func() {
		for _, ws := range conns {
			ws.Close()
		}
		wg.Wait()
	}()
	// Wait for the GUILD_CREATE-less READY traffic to settle.
	time.Sleep(200 * time.Millisecond)
	ev := []byte(`{"id":"1","channel_id":"2","content":"hello, fanout","author":{"id":"3","username":"bench"}}`)
	b.ResetTimer()
	for range b.N {
		got.Store(0)
		tg.hub.Publish(&fanout.Event{Type: "MESSAGE_CREATE", GuildID: 1, Data: ev})
		for got.Load() < n {
			time.Sleep(50 * time.Microsecond)
		}
	}
}

func (tg *testGateway) identifyB(b *testing.B, user int) *websocket.Conn {
	ws, _, err := websocket.DefaultDialer.Dial(tg.url, nil)
	if err != nil {
		b.Fatal(err)
	}
	if _, _, err := ws.ReadMessage(); err != nil {
		b.Fatal(err)
	}
	if err := ws.WriteJSON(map[string]any{"op": OpIdentify, "d": map[string]any{"token": fmt.Sprintf("t%d", user)}}); err != nil {
		b.Fatal(err)
	}
	if _, _, err := ws.ReadMessage(); err != nil {
		b.Fatal(err)
	}
	return ws
}

// BenchmarkLoopbackWrite is the floor under BenchmarkFanout: one 100-byte write on each of
// 5,000 loopback TCP connections whose readers are blocked, until all have read it, with no
// WebSocket or gateway code at all. The kernel's receive path and the readers' wake-ups run
// on the writer's and readers' CPUs, so this is what a fanout costs per session at least.
//
//	go test -run X -bench LoopbackWrite -benchtime 50x ./node/gateway/
func BenchmarkLoopbackWrite(b *testing.B) {
	const n = 5000
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	var servers, clients []net.Conn
	var got atomic.Int64
	var wg sync.WaitGroup
	for range n {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			b.Fatal(err)
		}
		s, err := ln.Accept()
		if err != nil {
			b.Fatal(err)
		}
		servers, clients = append(servers, s), append(clients, c)
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, 100)
			for {
				if _, err := io.ReadFull(c, buf); err != nil {
					return
				}
				got.Add(1)
			}
		}()
	}
	defer func() {
		for i := range servers {
			servers[i].Close()
			clients[i].Close()
		}
		wg.Wait()
	}()
	msg := make([]byte, 100)
	b.ResetTimer()
	for range b.N {
		got.Store(0)
		for _, s := range servers {
			if _, err := s.Write(msg); err != nil {
				b.Fatal(err)
			}
		}
		for got.Load() < n {
			time.Sleep(50 * time.Microsecond)
		}
	}
}
