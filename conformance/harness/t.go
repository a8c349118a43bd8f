package harness

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"time"
)

// Needs says what a test requires from the environment.
type Needs struct {
	// OwnNode: the test crashes, stops or floods a node, so it gets a node of its
	// own when the suite starts nodes (--binary), and runs alone after every other
	// test against a --target node; with Managed also set it is skipped there.
	OwnNode bool
	// Managed: the test kills or restarts the node or reads its data dir, so it
	// needs a node the suite started (skipped against --target).
	Managed bool
	// Nodes is the number of nodes needed (0 means 1). With OwnNode in binary
	// mode the test gets that many fresh nodes; otherwise it shares the run's
	// nodes and is skipped when the run has fewer.
	Nodes int
	// Proxy: the test cuts and heals links between nodes, so its own nodes are
	// started behind proxies (T.Nodes[i].Proxy). Implies OwnNode and Managed.
	Proxy bool
	// P2P: the test talks libp2p to the node, so it needs Node.P2P; skipped
	// when the address is unknown.
	P2P bool
	// Args are extra serve arguments for the test's own nodes (with OwnNode
	// and Managed), after the run's; "{free_port}" becomes a free port, a new
	// one at each place.
	Args []string
}

// Test is one conformance test. IDs lists the requirements it checks; a failure
// fails each of them.
type Test struct {
	IDs   []string
	Name  string
	Needs Needs
	Run   func(t *T)
}

// Env is what the runner hands to a test: the nodes to talk to and, for tests
// with Needs.OwnNode in binary mode, a way to get a fresh node.
type Env struct {
	// Nodes are the shared nodes; Nodes[0] is the primary.
	Nodes []*Node
	// Schema validates payloads against spec/schemas; nil skips validation.
	Schema *Schema
	// Timeout bounds waits for dispatches and conditions (default 10 s).
	Timeout time.Duration
}

// T is a running test: its context, nodes, failure recording and cleanups.
// Methods must be called from the test's goroutine, except Errorf and Logf.
type T struct {
	Ctx  context.Context
	Node *Node // primary node, Nodes[0]
	// Nodes are the test's nodes: its own with Needs.OwnNode in binary mode,
	// else the run's shared nodes.
	Nodes []*Node
	Env   *Env
	Name  string

	mu       sync.Mutex
	failures []string
	logs     []string
	skipped  string
	cleanups []func()
}

// NewT prepares a T; the runner calls Run on it.
func NewT(ctx context.Context, name string, env *Env, nodes ...*Node) *T {
	return &T{Ctx: ctx, Node: nodes[0], Nodes: nodes, Env: env, Name: name}
}

// Outcome of a run.
type Outcome struct {
	Failures []string
	Skipped  string
	Logs     []string
}

// Run runs f in a new goroutine (so Fatalf can stop it), then the cleanups, and
// returns what happened. A panic is recorded as a failure.
func (t *T) Run(f func(*T)) Outcome {
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer func() {
			if r := recover(); r != nil {
				buf := make([]byte, 4096)
				buf = buf[:runtime.Stack(buf, false)]
				t.record(fmt.Sprintf("panic: %v\n%s", r, buf))
			}
		}()
		f(t)
	}()
	<-done
	for i := len(t.cleanups) - 1; i >= 0; i-- {
		t.cleanups[i]()
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	return Outcome{Failures: t.failures, Skipped: t.skipped, Logs: t.logs}
}

func (t *T) record(s string) {
	t.mu.Lock()
	t.failures = append(t.failures, s)
	t.mu.Unlock()
}

// Cleanup registers f to run after the test, last registered first.
func (t *T) Cleanup(f func()) { t.cleanups = append(t.cleanups, f) }

// Errorf records a failure and continues.
func (t *T) Errorf(format string, args ...any) { t.record(fmt.Sprintf(format, args...)) }

// Fatalf records a failure and stops the test.
func (t *T) Fatalf(format string, args ...any) {
	t.record(fmt.Sprintf(format, args...))
	runtime.Goexit()
}

// Skipf marks the test skipped (not applicable here) and stops it.
func (t *T) Skipf(format string, args ...any) {
	t.mu.Lock()
	t.skipped = fmt.Sprintf(format, args...)
	t.mu.Unlock()
	runtime.Goexit()
}

// Logf adds a note shown with a failure.
func (t *T) Logf(format string, args ...any) {
	t.mu.Lock()
	t.logs = append(t.logs, fmt.Sprintf(format, args...))
	t.mu.Unlock()
}

// Failed reports whether a failure was recorded.
func (t *T) Failed() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.failures) > 0
}

// Timeout is the bound for waits in this test.
func (t *T) Timeout() time.Duration {
	if t.Env != nil && t.Env.Timeout > 0 {
		return t.Env.Timeout
	}
	return 10 * time.Second
}

// Eventually polls cond within the test timeout and fails the test with cond's
// last reason if it never holds.
func (t *T) Eventually(what string, cond func() error) {
	if err := Eventually(t.Ctx, t.Timeout(), cond); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// Anon is a client without a token.
func (t *T) Anon() *Client { return NewClient(t.Node, "") }

// Call sends a request and fails the test on a transport error.
func (t *T) Call(c *Client, method, path string, body any) *Response {
	r, err := c.Do(t.Ctx, method, path, body)
	if err != nil {
		t.Fatalf("%v", err)
	}
	return r
}

// Must sends a request, fails the test unless it answers status, and decodes
// the body into out (if not nil).
func (t *T) Must(c *Client, status int, method, path string, body any, out any) *Response {
	r := t.Call(c, method, path, body)
	if r.Status != status {
		t.Fatalf("expected %d, got %s", status, r)
	}
	if out != nil {
		if err := r.JSON(out); err != nil {
			t.Fatalf("%v", err)
		}
	}
	return r
}

// RandName is a fresh valid username: "cf_" and 12 hex digits.
func RandName() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return "cf_" + hex.EncodeToString(b[:])
}

// User is an account created for one test.
type User struct {
	ID, Name, Password, Token string
	*Client
}

// NewUser registers a fresh user on the primary node.
func (t *T) NewUser() *User { return t.NewUserOn(t.Node) }

// NewUserOn registers a fresh user on node.
func (t *T) NewUserOn(node *Node) *User {
	u := &User{Name: RandName(), Password: "pw-" + RandName()}
	var out struct {
		Token  string `json:"token"`
		UserID string `json:"user_id"`
	}
	t.Must(NewClient(node, ""), 201, "POST", "/auth/register",
		map[string]string{"username": u.Name, "password": u.Password}, &out)
	if out.Token == "" || out.UserID == "" {
		t.Fatalf("register answered no token or user_id")
	}
	u.ID, u.Token = out.UserID, out.Token
	u.Client = NewClient(node, out.Token)
	return u
}

// Guild is a guild created for one test, with the IDs of its default channels.
type Guild struct {
	ID      string
	Owner   *User
	Raw     map[string]any
	Text    string // the text channel "general"
	Voice   string // the voice channel "General"
	Channel []Obj
}

// Obj is a decoded JSON object.
type Obj = map[string]any

// NewGuild creates a guild owned by owner and finds its default channels.
func (t *T) NewGuild(owner *User) *Guild {
	var raw Obj
	t.Must(owner.Client, 201, "POST", "/guilds", Obj{"name": "conf " + RandName()}, &raw)
	g := &Guild{ID: Str(raw["id"]), Owner: owner, Raw: raw}
	var chans []Obj
	t.Must(owner.Client, 200, "GET", "/guilds/"+g.ID+"/channels", nil, &chans)
	g.Channel = chans
	for _, c := range chans {
		switch Num(c["type"]) {
		case 0:
			if g.Text == "" {
				g.Text = Str(c["id"])
			}
		case 2:
			if g.Voice == "" {
				g.Voice = Str(c["id"])
			}
		}
	}
	if g.Text == "" {
		t.Fatalf("new guild %s has no text channel: %s", g.ID, mustJSON(chans))
	}
	return g
}

// Invite creates an invite to channel by u and returns its code.
func (t *T) Invite(u *User, channel string, body Obj) string {
	if body == nil {
		body = Obj{}
	}
	var inv Obj
	t.Must(u.Client, 200, "POST", "/channels/"+channel+"/invites", body, &inv)
	code := Str(inv["code"])
	if code == "" {
		t.Fatalf("invite has no code: %s", mustJSON(inv))
	}
	return code
}

// Join makes each user a member of g through an invite.
func (t *T) Join(g *Guild, users ...*User) {
	code := t.Invite(g.Owner, g.Text, Obj{"max_uses": 0})
	for _, u := range users {
		t.Must(u.Client, 200, "POST", "/invites/"+code, Obj{}, nil)
	}
}

// Send posts content to channel as u and returns the stored message.
func (t *T) Send(u *User, channel, content string) Obj {
	var m Obj
	t.Must(u.Client, 200, "POST", "/channels/"+channel+"/messages", Obj{"content": content}, &m)
	return m
}

// Str reads a JSON string ("" if v is not one).
func Str(v any) string {
	s, _ := v.(string)
	return s
}

// Num reads a JSON number (-1 if v is not one).
func Num(v any) float64 {
	switch n := v.(type) {
	case float64:
		return n
	case json.Number:
		f, err := n.Float64()
		if err == nil {
			return f
		}
	}
	return -1
}

// Get walks a decoded JSON value by keys and indexes ("errors.username._errors").
func Get(v any, path string) any {
	for _, k := range strings.Split(path, ".") {
		switch c := v.(type) {
		case map[string]any:
			v = c[k]
		case []any:
			var i int
			if _, err := fmt.Sscan(k, &i); err != nil || i < 0 || i >= len(c) {
				return nil
			}
			v = c[i]
		default:
			return nil
		}
	}
	return v
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return Snip(b)
}

// JSON renders v compactly for messages (shortened).
func JSON(v any) string { return mustJSON(v) }

// Raw renders v as complete JSON, for validation.
func Raw(v any) []byte {
	b, _ := json.Marshal(v)
	return b
}

// OK sends a request, fails the test unless it answers 2xx (the spec leaves
// 200 vs 201 open for this route), and decodes the body into out (if not nil).
func (t *T) OK(c *Client, method, path string, body any, out any) *Response {
	r := t.Call(c, method, path, body)
	if r.Status < 200 || r.Status > 299 {
		t.Fatalf("expected 2xx, got %s", r)
	}
	if out != nil {
		if err := r.JSON(out); err != nil {
			t.Fatalf("%v", err)
		}
	}
	return r
}

// ErrorBody checks that r is an error answer with status and JSON code, that
// its body has the error shape, and returns the decoded body. It records a
// failure (without stopping) when they differ and returns nil.
func (t *T) ErrorBody(r *Response, status, code int) Obj {
	var body Obj
	if r.Status != status {
		t.Errorf("expected %d with code %d, got %s", status, code, r)
		return nil
	}
	if err := r.JSON(&body); err != nil {
		t.Errorf("%v", err)
		return nil
	}
	if got := Num(body["code"]); got != float64(code) {
		t.Errorf("expected error code %d, got %s", code, r)
		return nil
	}
	t.Conform("error", r.Body)
	return body
}

// FieldErrors returns the codes in errors.<field>._errors of an error body.
func FieldErrors(body Obj, field string) []string {
	list, _ := Get(body, "errors."+field+"._errors").([]any)
	var codes []string
	for _, e := range list {
		codes = append(codes, Str(Get(e, "code")))
	}
	return codes
}

// IDs returns the "id" of each object in a decoded JSON array.
func IDs(list any) []string {
	arr, _ := list.([]any)
	var ids []string
	for _, o := range arr {
		ids = append(ids, Str(Get(o, "id")))
	}
	return ids
}
