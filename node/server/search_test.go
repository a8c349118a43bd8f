package server_test

import (
	"net/url"
	"testing"
	"time"
)

type searchResult struct {
	TotalResults int         `json:"total_results"`
	Messages     [][]message `json:"messages"`
}

func TestSearch(t *testing.T) {
	_, alice, bob, g, _, _ := setup(t)
	var secret struct{ ID string }
	alice.Must("POST", "/guilds/"+g.ID+"/channels", map[string]any{
		"name": "hidden", "permission_overwrites": []map[string]any{{"id": g.ID, "type": 0, "allow": "0", "deny": "1024"}},
	}, &secret)
	alice.Must("POST", "/channels/"+g.text(t)+"/messages", map[string]string{"content": "the quick brown fox jumps"}, nil)
	alice.Must("POST", "/channels/"+secret.ID+"/messages", map[string]string{"content": "the quick secret fox"}, nil)
	bob.Must("POST", "/channels/"+g.text(t)+"/messages", map[string]string{"content": "lazy dogs sleep, see https://example.org"}, nil)

	// Indexing is asynchronous: poll until the index has caught up.
	find := func(c interface {
		Do(string, string, any, any) int
	}, q string, want int) searchResult {
		var res searchResult
		deadline := time.Now().Add(10 * time.Second)
		for {
			res = searchResult{}
			st := c.Do("GET", "/guilds/"+g.ID+"/messages/search?"+q, nil, &res)
			if st != 200 {
				t.Fatalf("search %s: status %d", q, st)
			}
			if res.TotalResults == want || time.Now().After(deadline) {
				return res
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	res := find(alice, "content="+url.QueryEscape("quick fox"), 2)
	if res.TotalResults != 2 {
		t.Fatalf("alice's search found %d, want 2 (she can read both channels)", res.TotalResults)
	}
	res = find(bob, "content="+url.QueryEscape("quick fox"), 1)
	if res.TotalResults != 1 || res.Messages[0][0].ChannelID != g.text(t) {
		t.Fatalf("bob's search = %+v, want only the public message", res)
	}
	res = find(bob, "author_id="+bob.UserID+"&has=link", 1)
	if res.TotalResults != 1 || res.Messages[0][0].Content == "" {
		t.Fatalf("author+has:link = %+v", res)
	}
	var e struct {
		Code int `json:"code"`
	}
	if st := bob.Do("GET", "/guilds/"+g.ID+"/messages/search?min_id=abc", nil, &e); st != 400 || e.Code != 50035 {
		t.Fatalf("bad query: status %d code %d", st, e.Code)
	}
}
