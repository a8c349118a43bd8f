// Package loadwire holds what the load tools (conformance/bench for one node,
// conformance/fedbench for several) share: waiting for a node to come up and
// reading dispatch frames cheaply. Like the tools, it speaks only the public
// protocols and imports nothing of the node.
package loadwire

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"time"
)

// WaitHealthy polls base/healthz until it answers 200, for at most within.
func WaitHealthy(base string, within time.Duration) error {
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		if resp, err := http.Get(base + "/healthz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return nil
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("node at %s not healthy after %v", base, within)
}

// DispatchType extracts "t" from a dispatch frame, cheaply when the frame starts
// {"op":0,"t":"..." (as Hearth writes it) and by decoding otherwise; "" for other frames.
func DispatchType(frame []byte) string {
	const prefix = `{"op":0,"t":"`
	if !bytes.HasPrefix(frame, []byte(prefix)) {
		var f struct {
			Op int    `json:"op"`
			T  string `json:"t"`
		}
		if json.Unmarshal(frame, &f) != nil || f.Op != 0 {
			return ""
		}
		return f.T
	}
	rest := frame[len(prefix):]
	if i := bytes.IndexByte(rest, '"'); i > 0 {
		return string(rest[:i])
	}
	return ""
}

// ContentOf extracts the message content from a MESSAGE_CREATE frame.
func ContentOf(frame []byte) string {
	var f struct {
		D struct {
			Content string `json:"content"`
		} `json:"d"`
	}
	_ = json.Unmarshal(frame, &f)
	return f.D.Content
}
