package capi

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"

	"github.com/hearth-chat/hearth/conformance/harness"
)

// CAPI-155: "A session that falls more than the bound behind MUST be closed with 4000
// (resumable) rather than slow down other sessions." CAPI-140: 4000 when "a session
// fell too far behind (resumable)".
//
// A session stops reading while 15 users post about 20 MB of messages (2,550 of
// 8 KB): more than loopback socket buffers (a few MB while the reader is idle) and
// any sane queue bound hold. Reading afterwards must end in close 4000.
func slowSession(t *T) {
	o := t.NewUser()
	g := t.NewGuild(o)
	var chans []string
	for i := range 10 {
		chans = append(chans, str(createChannel(t, o, g, Obj{"name": fmt.Sprint("flood-", i), "type": 0})["id"]))
	}
	var posters []*harness.User
	for range 15 {
		posters = append(posters, t.NewUser())
	}
	t.Join(g, posters...)

	d := websocket.Dialer{HandshakeTimeout: 10 * time.Second}
	conn, _, err := d.DialContext(t.Ctx, harness.GatewayURL(t.Node, "v=10&encoding=json"), nil)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	defer conn.Close()
	_ = conn.SetReadDeadline(time.Now().Add(t.Timeout()))
	var ready struct {
		D struct {
			SessionID string `json:"session_id"`
		} `json:"d"`
		T string `json:"t"`
	}
	if _, _, err := conn.ReadMessage(); err != nil { // Hello
		t.Fatalf("Hello: %v", err)
	}
	if err := conn.WriteJSON(Obj{"op": 2, "d": Obj{"token": o.Token, "intents": harness.AllIntents, "properties": Obj{}}}); err != nil {
		t.Fatalf("Identify: %v", err)
	}
	for ready.T != "READY" {
		if err := conn.ReadJSON(&ready); err != nil {
			t.Fatalf("waiting for READY: %v", err)
		}
	}
	// From here the session does not read.
	content := strings.Repeat("😀", 2000)
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		statuses = map[int]int{}
	)
	for _, u := range posters {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, c := range chans {
				// 17 accepted messages per channel; a 429 is retried after the wait the node
				// asks for (bounded, so a node that always refuses still ends the test).
				for accepted, tries := 0, 0; accepted < 17 && tries < 100; tries++ {
					r, err := u.Client.Do(t.Ctx, "POST", "/channels/"+c+"/messages", Obj{"content": content})
					if err != nil {
						return
					}
					mu.Lock()
					statuses[r.Status]++
					mu.Unlock()
					if r.Status == 200 {
						accepted++
					}
					if r.Status == 429 {
						var body struct {
							RetryAfter float64 `json:"retry_after"`
						}
						_ = r.JSON(&body)
						time.Sleep(time.Duration(body.RetryAfter*float64(time.Second)) + 10*time.Millisecond) // told by the node
					}
				}
			}
		}()
	}
	wg.Wait()
	if statuses[200] < 2000 {
		t.Fatalf("flood: only %d messages accepted (answers by status: %v)", statuses[200], statuses)
	}

	_ = conn.SetReadDeadline(time.Now().Add(t.Timeout()))
	n := 0
	for {
		_, _, err := conn.ReadMessage()
		if err == nil {
			n++
			continue
		}
		var ce *websocket.CloseError
		if errors.As(err, &ce) {
			if ce.Code != 4000 {
				t.Errorf("slow session closed with %d, expected 4000", ce.Code)
			}
			break
		}
		t.Fatalf("slow session not closed after %d large dispatches (%d frames read, then %v)", statuses[200], n, err)
	}
}
