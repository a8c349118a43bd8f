package chat

import (
	"encoding/json"
	"testing"
	"time"
)

func TestTimestampJSON(t *testing.T) {
	at := time.Date(2026, 1, 2, 3, 4, 5, 678901000, time.FixedZone("x", 3600))
	b, err := json.Marshal(struct {
		At  Timestamp  `json:"at"`
		Nil *Timestamp `json:"nil"`
	}{At: Timestamp(at)})
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"at":"2026-01-02T02:04:05.678901+00:00","nil":null}`; string(b) != want {
		t.Errorf("got %s, want %s", b, want)
	}
}
