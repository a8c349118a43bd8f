package capi

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/hearth-chat/hearth/conformance/harness"
)

var general = []Test{
	{IDs: []string{"CAPI-001"}, Name: "rest/routes-under-api-v10", Run: routesUnderV10},
	{IDs: []string{"CAPI-002"}, Name: "rest/unknown-fields-ignored", Run: unknownFieldsIgnored},
	{IDs: []string{"CAPI-003"}, Name: "rest/ids-are-strings", Run: idsAreStrings},
	{IDs: []string{"CAPI-004"}, Name: "rest/ids-accepted-as-numbers", Run: idsAsNumbers},
	{IDs: []string{"CAPI-005"}, Name: "rest/timestamps-iso8601", Run: timestampsISO},
	{IDs: []string{"CAPI-006"}, Name: "rest/healthz", Run: healthz},
	{IDs: []string{"CAPI-020"}, Name: "errors/body-shape", Run: errorBodyShape},
	{IDs: []string{"CAPI-021"}, Name: "errors/invalid-json", Run: invalidJSON},
	{IDs: []string{"CAPI-022"}, Name: "errors/body-too-large", Run: bodyTooLarge},
	{IDs: []string{"CAPI-023"}, Name: "errors/unknown-route", Run: unknownRoute},
	{IDs: []string{"CAPI-024"}, Name: "errors/failed-request-changes-nothing", Run: failedRequestNoChange},
	{IDs: []string{"CAPI-025", "CAPI-026"}, Name: "ratelimit/message-bucket", Run: rateLimitMessages},
	{IDs: []string{"CAPI-025", "CAPI-026"}, Name: "ratelimit/global-per-token", Run: rateLimitGlobal},
}

// CAPI-001: "A node MUST serve every route listed here under that prefix."
// Samples one route of each resource family, reading.
func routesUnderV10(t *T) {
	u := t.NewUser()
	g := t.NewGuild(u)
	m := t.Send(u, g.Text, "hello")
	for _, p := range []string{
		"/users/@me", "/users/@me/guilds", "/users/@me/channels", "/users/" + u.ID,
		"/guilds/" + g.ID, "/guilds/" + g.ID + "/channels", "/guilds/" + g.ID + "/roles",
		"/guilds/" + g.ID + "/members?limit=10", "/guilds/" + g.ID + "/members/" + u.ID,
		"/guilds/" + g.ID + "/bans", "/guilds/" + g.ID + "/invites",
		"/channels/" + g.Text, "/channels/" + g.Text + "/messages", "/channels/" + g.Text + "/messages/" + str(m["id"]),
		"/channels/" + g.Text + "/pins", "/channels/" + g.Text + "/invites", "/gateway", "/gateway/bot",
	} {
		if r := t.Call(u.Client, "GET", p, nil); r.Status != 200 {
			t.Errorf("expected 200, got %s", r)
		}
	}
}

// CAPI-002: "A node MUST ignore unknown fields in request bodies."
func unknownFieldsIgnored(t *T) {
	name := harness.RandName()
	r := t.Call(t.Anon(), "POST", "/auth/register", Obj{"username": name, "password": "correct horse", "email": "x@example.org", "x_extra": Obj{"a": 1}})
	if r.Status != 201 {
		t.Fatalf("register with extra fields: expected 201, got %s", r)
	}
	u := t.NewUser()
	var g Obj
	t.Must(u.Client, 201, "POST", "/guilds", Obj{"name": "extra fields", "region": "eu", "x_extra": []int{1}}, &g)
	chans := []Obj{}
	t.Must(u.Client, 200, "GET", "/guilds/"+str(g["id"])+"/channels", nil, &chans)
	for _, c := range chans {
		if num(c["type"]) == 0 {
			t.Must(u.Client, 200, "POST", "/channels/"+str(c["id"])+"/messages",
				Obj{"content": "x", "embeds": []any{}, "components": []any{}, "sticker_ids": []any{}, "flags": 0}, nil)
			return
		}
	}
	t.Fatalf("no text channel in %s", harness.JSON(chans))
}

var idKey = regexp.MustCompile(`(^id$|_id$)`)

// checkIDs walks v and reports every "id"/"*_id" field that is not a string or null.
func checkIDs(t *T, where string, v any) {
	switch c := v.(type) {
	case map[string]any:
		for k, x := range c {
			if idKey.MatchString(k) {
				switch x.(type) {
				case string, nil:
				default:
					t.Errorf("%s: field %q is %T (%v), expected a string", where, k, x, x)
				}
			}
			if k == "roles" || k == "mention_roles" {
				if arr, ok := x.([]any); ok {
					for _, e := range arr {
						switch e.(type) {
						case string, map[string]any: // IDs, or role objects in a guild
						default:
							t.Errorf("%s: %s holds %T, expected ID strings", where, k, e)
						}
					}
				}
			}
			checkIDs(t, where, x)
		}
	case []any:
		for _, x := range c {
			checkIDs(t, where, x)
		}
	}
}

// CAPI-003: "A node MUST encode every ID as a JSON string."
func idsAreStrings(t *T) {
	u := t.NewUser()
	g := t.NewGuild(u)
	m := t.Send(u, g.Text, "ids")
	for _, p := range []string{"/users/@me", "/guilds/" + g.ID, "/guilds/" + g.ID + "/channels",
		"/guilds/" + g.ID + "/members/" + u.ID, "/channels/" + g.Text + "/messages/" + str(m["id"])} {
		var v any
		t.Must(u.Client, 200, "GET", p, nil, &v)
		checkIDs(t, "GET "+p, v)
	}
	var reg any
	t.Must(t.Anon(), 201, "POST", "/auth/register", Obj{"username": harness.RandName(), "password": "password1"}, &reg)
	checkIDs(t, "POST /auth/register", reg)
}

// CAPI-004: "[A node] MUST accept IDs in request bodies both as strings and as numbers."
func idsAsNumbers(t *T) {
	u := t.NewUser()
	g := t.NewGuild(u)
	first := t.Send(u, g.Text, "first")
	for _, form := range []string{`"` + str(first["id"]) + `"`, str(first["id"])} {
		body := `{"content":"reply","message_reference":{"message_id":` + form + `}}`
		var m Obj
		t.Must(u.Client, 200, "POST", "/channels/"+g.Text+"/messages", body, &m)
		if num(m["type"]) != 19 || str(get(m, "message_reference.message_id")) != str(first["id"]) {
			t.Errorf("reply with message_id %s: expected type 19 referencing %s, got %s", form, str(first["id"]), harness.JSON(m))
		}
	}
}

var isoRE = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$`)

func checkTime(t *T, what string, v any) {
	s, ok := v.(string)
	if !ok || !isoRE.MatchString(s) {
		t.Errorf("%s: expected an ISO 8601 timestamp with a zone, got %v", what, v)
		return
	}
	if _, err := time.Parse(time.RFC3339Nano, s); err != nil {
		t.Errorf("%s: %q does not parse: %v", what, s, err)
	}
}

// CAPI-005: "Timestamps are ISO 8601 strings with a time zone."
func timestampsISO(t *T) {
	u := t.NewUser()
	g := t.NewGuild(u)
	m := t.Send(u, g.Text, "time")
	checkTime(t, "message.timestamp", m["timestamp"])
	var e Obj
	t.Must(u.Client, 200, "PATCH", "/channels/"+g.Text+"/messages/"+str(m["id"]), Obj{"content": "edited"}, &e)
	checkTime(t, "message.edited_timestamp", e["edited_timestamp"])
	var mem Obj
	t.Must(u.Client, 200, "GET", "/guilds/"+g.ID+"/members/"+u.ID, nil, &mem)
	checkTime(t, "member.joined_at", mem["joined_at"])
	var inv Obj
	t.Must(u.Client, 200, "POST", "/channels/"+g.Text+"/invites", Obj{"max_age": 3600}, &inv)
	checkTime(t, "invite.created_at", inv["created_at"])
	checkTime(t, "invite.expires_at", inv["expires_at"])
}

// CAPI-006: "GET /healthz MUST answer 200 with body ok while the node accepts requests."
func healthz(t *T) {
	r := t.Call(t.Anon(), "GET", "//healthz", nil)
	if r.Status != 200 || strings.TrimSpace(string(r.Body)) != "ok" {
		t.Errorf("expected 200 \"ok\", got %s", r)
	}
}

// CAPI-020: "Every error answer has Discord's body shape."
func errorBodyShape(t *T) {
	u := t.NewUser()
	cases := []struct {
		c            *harness.Client
		method, path string
		body         any
		status, code int
	}{
		{t.Anon(), "GET", "/users/@me", nil, 401, 0},
		{u.Client, "GET", "/guilds/1", nil, 404, 10004},
		{u.Client, "GET", "/channels/1", nil, 404, 10003},
		{u.Client, "POST", "/guilds", Obj{"name": "x"}, 400, 50035},
		{u.Client, "POST", "/guilds", "{", 400, 50109},
		{u.Client, "GET", "/no-such-route", nil, 404, 0},
	}
	for _, c := range cases {
		r := t.Call(c.c, c.method, c.path, c.body)
		body := t.ErrorBody(r, c.status, c.code)
		if body != nil {
			if _, ok := body["message"].(string); !ok {
				t.Errorf("%s: message is not a string", r)
			}
			if c.code == 50035 && body["errors"] == nil {
				t.Errorf("%s: a validation failure lacks errors", r)
			}
		}
	}
}

// CAPI-021: "A node MUST answer a body that is not valid JSON with 400 code 50109."
func invalidJSON(t *T) {
	u := t.NewUser()
	for _, body := range []string{"{", `{"name": }`, "not json", `{"name":"ok"}}`} {
		t.ErrorBody(t.Call(u.Client, "POST", "/guilds", body), 400, 50109)
	}
	t.ErrorBody(t.Call(t.Anon(), "POST", "/auth/register", "{oops"), 400, 50109)
}

// CAPI-022: "A node MUST reject a request body over 1 MiB (JSON routes) with 413
// code 40005 without reading it all."
func bodyTooLarge(t *T) {
	u := t.NewUser()
	g := t.NewGuild(u)
	big := `{"content":"` + strings.Repeat("a", 2<<20) + `"}`
	t.ErrorBody(t.Call(u.Client, "POST", "/channels/"+g.Text+"/messages", big), 413, 40005)

	// Announce 8 MiB, send 64 KiB and wait: a node that reads it all never answers.
	addr := strings.TrimPrefix(strings.TrimPrefix(t.Node.BaseURL, "http://"), "https://")
	if strings.HasPrefix(t.Node.BaseURL, "https://") {
		t.Logf("partial-body check skipped over TLS")
		return
	}
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(t.Timeout()))
	fmt.Fprintf(conn, "POST %s/channels/%s/messages HTTP/1.1\r\nHost: %s\r\nAuthorization: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n",
		harness.API, g.Text, addr, u.Token, 8<<20)
	chunk := []byte(`{"content":"` + strings.Repeat("a", 64<<10))
	if _, err := conn.Write(chunk); err != nil {
		t.Fatalf("write: %v", err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("announced an 8 MiB body and sent 64 KiB: expected an early 413, got no answer (%v)", err)
	}
	resp.Body.Close()
	if resp.StatusCode != 413 {
		t.Errorf("announced an 8 MiB body: expected 413, got %d", resp.StatusCode)
	}
}

// CAPI-023: "A node MUST answer a route that does not exist with 404."
func unknownRoute(t *T) {
	u := t.NewUser()
	for _, p := range []string{"/no-such-route", "/users/@me/nothing-here", "/channels/1/nope/2"} {
		if r := t.Call(u.Client, "GET", p, nil); r.Status != 404 {
			t.Errorf("expected 404, got %s", r)
		}
	}
}

// CAPI-024: "A request that fails MUST NOT change stored state."
func failedRequestNoChange(t *T) {
	u := t.NewUser()
	g := t.NewGuild(u)
	// An invalid name together with a valid description: nothing may be applied.
	r := t.Call(u.Client, "PATCH", "/guilds/"+g.ID, Obj{"name": "x", "description": "changed"})
	if r.Status != 400 {
		t.Errorf("PATCH guild with a 1-character name: expected 400, got %s", r)
	}
	var after Obj
	t.Must(u.Client, 200, "GET", "/guilds/"+g.ID, nil, &after)
	if str(after["name"]) != str(g.Raw["name"]) || str(after["description"]) == "changed" {
		t.Errorf("failed PATCH changed the guild: before %s, after %s", harness.JSON(g.Raw), harness.JSON(after))
	}
	// A message over the limit is not stored.
	t.Call(u.Client, "POST", "/channels/"+g.Text+"/messages", Obj{"content": strings.Repeat("z", 2001)})
	var msgs []Obj
	t.Must(u.Client, 200, "GET", "/channels/"+g.Text+"/messages", nil, &msgs)
	if len(msgs) != 0 {
		t.Errorf("a rejected message was stored: %s", harness.JSON(msgs))
	}
	// A channel with an invalid parent is not created.
	var before []Obj
	t.Must(u.Client, 200, "GET", "/guilds/"+g.ID+"/channels", nil, &before)
	t.Call(u.Client, "POST", "/guilds/"+g.ID+"/channels", Obj{"name": "orphan", "type": 0, "parent_id": g.Text})
	var chans []Obj
	t.Must(u.Client, 200, "GET", "/guilds/"+g.ID+"/channels", nil, &chans)
	if len(chans) != len(before) {
		t.Errorf("a rejected channel was created: %d channels before, %d after", len(before), len(chans))
	}
}

var rlHeaders = []string{"X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset", "X-RateLimit-Reset-After", "X-RateLimit-Bucket"}

func check429(t *T, r *harness.Response) {
	body := t.ErrorBody(r, 429, 0)
	if body == nil {
		return
	}
	if ra, ok := body["retry_after"].(float64); !ok || ra < 0 {
		t.Errorf("429 body: expected a non-negative retry_after number, got %s", r)
	}
	if _, ok := body["global"].(bool); !ok {
		t.Errorf("429 body: expected a boolean global, got %s", r)
	}
	if r.Header.Get("Retry-After") == "" {
		t.Errorf("429 without a Retry-After header")
	}
}

// CAPI-025: "A node MUST rate-limit REST requests per token and route bucket, and
// send X-RateLimit-* headers on limited routes." CAPI-026: "An excess request MUST
// answer 429 with retry_after in the body and a Retry-After header."
// Message creation is limited to 10 per 2 seconds per channel and user.
func rateLimitMessages(t *T) {
	u := t.NewUser()
	g := t.NewGuild(u)
	var limited *harness.Response
	for i := 0; i < 30 && limited == nil; i++ {
		r := t.Call(u.Client, "POST", "/channels/"+g.Text+"/messages", Obj{"content": fmt.Sprint("burst ", i)})
		switch r.Status {
		case 200:
			if i == 0 {
				for _, h := range rlHeaders {
					if r.Header.Get(h) == "" {
						t.Errorf("message creation answer lacks %s", h)
					}
				}
			}
		case 429:
			limited = r
		default:
			t.Fatalf("expected 200 or 429, got %s", r)
		}
	}
	if limited == nil {
		t.Fatalf("30 messages in a row to one channel were never limited (default 10 per 2 s)")
	}
	check429(t, limited)
	// Another user in the same channel has a bucket of their own.
	v := t.NewUser()
	t.Join(g, v)
	if r := t.Call(v.Client, "POST", "/channels/"+g.Text+"/messages", Obj{"content": "other bucket"}); r.Status != 200 {
		t.Errorf("another user's first message after the limit: expected 200, got %s", r)
	}
}

// CAPI-025, CAPI-026 for the per-token limit (50 requests per second by default).
func rateLimitGlobal(t *T) {
	u := t.NewUser()
	var (
		mu      sync.Mutex
		limited *harness.Response
		wg      sync.WaitGroup
	)
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 40; i++ {
				r, err := u.Client.Do(t.Ctx, "GET", "/users/@me", nil)
				if err != nil {
					t.Errorf("%v", err)
					return
				}
				if r.Status == 429 {
					mu.Lock()
					if limited == nil {
						limited = r
					}
					mu.Unlock()
					return
				}
			}
		}()
	}
	wg.Wait()
	if limited == nil {
		t.Fatalf("320 concurrent requests with one token were never limited (default 50 per second)")
	}
	check429(t, limited)
	// Another token is not affected.
	v := t.NewUser()
	if r := t.Call(v.Client, "GET", "/users/@me", nil); r.Status != 200 {
		t.Errorf("another token: expected 200, got %s", r)
	}
}
