package fed

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/url"
	"time"

	"github.com/hearth-chat/hearth/conformance/harness"
)

// Tests between nodes of the implementation under test, driven only through
// their client APIs: a guild on one node, users of other nodes joining it with
// its federated invite, messages crossing, links cut and healed through the
// suite's proxies, nodes stopped and restarted.

// converge is how long nodes get to deliver across a link that was just
// healed or a node that just restarted: the spec lets a node wait up to 30 s
// before it redials and exchanges heads [FED-035].
const converge = 90 * time.Second

// side is one node's view of a federated guild: a user there and the IDs the
// node gave the guild and its text channel.
type side struct {
	Node  *harness.Node
	User  *harness.User
	Guild string
	Text  string
}

// hostGuild creates a guild on node's new user and returns that side and the
// guild's federated invite.
func hostGuild(t *T, node *harness.Node) (*side, string) {
	u := t.NewUserOn(node)
	var raw harness.Obj
	t.Must(u.Client, 201, "POST", "/guilds", harness.Obj{"name": "fed " + harness.RandName()}, &raw)
	g := &harness.Guild{ID: harness.Str(raw["id"]), Owner: u}
	s := &side{Node: node, User: u, Guild: g.ID}
	var chans []harness.Obj
	t.Must(u.Client, 200, "GET", "/guilds/"+g.ID+"/channels", nil, &chans)
	for _, c := range chans {
		if harness.Num(c["type"]) == 0 && s.Text == "" {
			s.Text = harness.Str(c["id"])
		}
	}
	g.Text = s.Text
	return s, fedInvite(t, u, g)
}

// joinFrom makes a new user of node join with code and finds the guild's text
// channel there.
func joinFrom(t *T, node *harness.Node, code string) *side {
	u := t.NewUserOn(node)
	var out harness.Obj
	r := t.Call(u.Client, "POST", "/invites/"+inviteCode(code), harness.Obj{})
	if r.Status != 200 {
		t.Fatalf("a user of %s joining with the federated invite: %s", node.BaseURL, r)
	}
	_ = r.JSON(&out)
	s := &side{Node: node, User: u, Guild: harness.Str(out["guild_id"])}
	if s.Guild == "" {
		s.Guild = harness.Str(harness.Get(out, "guild.id"))
	}
	if s.Guild == "" {
		t.Fatalf("the join answered no guild_id: %s", r)
	}
	var chans []harness.Obj
	t.Must(u.Client, 200, "GET", "/guilds/"+s.Guild+"/channels", nil, &chans)
	for _, c := range chans {
		if harness.Num(c["type"]) == 0 && s.Text == "" {
			s.Text = harness.Str(c["id"])
		}
	}
	if s.Text == "" {
		t.Fatalf("the joined guild has no text channel on %s", node.BaseURL)
	}
	return s
}

// contents lists the channel's message contents on this side, oldest first.
func (s *side) contents(t *T) ([]string, error) {
	r, err := s.User.Do(t.Ctx, "GET", "/channels/"+s.Text+"/messages?limit=100", nil)
	if err != nil {
		return nil, err
	}
	if r.Status != 200 {
		return nil, fmt.Errorf("%s", r)
	}
	var msgs []harness.Obj
	if err := r.JSON(&msgs); err != nil {
		return nil, err
	}
	out := make([]string, 0, len(msgs))
	for i := len(msgs) - 1; i >= 0; i-- {
		out = append(out, harness.Str(msgs[i]["content"]))
	}
	return out, nil
}

// post sends content as this side's user.
func (s *side) post(t *T, content string) { t.Send(s.User, s.Text, content) }

// waitExactlyOnce waits up to bound until every content shows exactly once on s.
func (s *side) waitExactlyOnce(t *T, bound time.Duration, what string, contents ...string) {
	err := harness.Eventually(t.Ctx, bound, func() error {
		got, err := s.contents(t)
		if err != nil {
			return err
		}
		n := map[string]int{}
		for _, c := range got {
			n[c]++
		}
		for _, c := range contents {
			switch n[c] {
			case 1:
			case 0:
				return fmt.Errorf("%q not shown on %s", c, s.Node.Name)
			default:
				return harness.Permanent(fmt.Errorf("%q shown %d times on %s", c, n[c], s.Node.Name))
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// FED-056: a user of the home node joins with the invite and may then post.
// FED-016: every message shows exactly once on every node. FED-055: member
// nodes reach each other: a message from one member node reaches another.
func threeNodes(t *T) {
	home, code := hostGuild(t, t.Nodes[0])
	b := joinFrom(t, t.Nodes[1], code)
	local := joinFrom(t, t.Nodes[0], code)
	sides := []*side{home, b, local}
	if len(t.Nodes) > 2 {
		sides = append(sides, joinFrom(t, t.Nodes[2], code))
	}
	var all []string
	for i, s := range sides {
		c := fmt.Sprintf("from side %d %s", i, harness.RandName())
		s.post(t, c)
		all = append(all, c)
	}
	for _, s := range sides {
		s.waitExactlyOnce(t, t.Timeout(), "every message on every node", all...)
	}
	// FED-066: message IDs derive from the events, so every node serves the
	// channel's history in the same order.
	var first []string
	for i, s := range sides {
		got, err := s.contents(t)
		if err != nil {
			t.Fatalf("%v", err)
		}
		var ours []string
		for _, c := range got {
			if contains(all, c) {
				ours = append(ours, c)
			}
		}
		if i == 0 {
			first = ours
		} else if fmt.Sprint(ours) != fmt.Sprint(first) {
			t.Errorf("FED-066: %s serves the history in another order than %s: %q, then %q", s.Node.Name, sides[0].Node.Name, first, ours)
		}
	}
}

// FED-035: "A node MUST exchange heads with every peer sharing a guild on connect
// ... and MUST fetch exactly the ranges above its vector that the peer
// advertises." FED-016: nothing delivered twice. The link between two nodes is
// cut, both sides post, the link heals: both converge on every message, once.
func partitionHeal(t *T) {
	a, b := t.Nodes[0], t.Nodes[1]
	home, code := hostGuild(t, a)
	member := joinFrom(t, b, code)
	before := "before " + harness.RandName()
	home.post(t, before)
	member.waitExactlyOnce(t, t.Timeout(), "a message before the cut", before)

	a.Proxy.Cut()
	b.Proxy.Cut()
	var fromA, fromB []string
	for i := range 3 {
		fromA = append(fromA, fmt.Sprintf("cut A%d %s", i, harness.RandName()))
		home.post(t, fromA[i])
		fromB = append(fromB, fmt.Sprintf("cut B%d %s", i, harness.RandName()))
		member.post(t, fromB[i])
	}
	home.waitExactlyOnce(t, t.Timeout(), "A's own messages during the cut", fromA...)
	member.waitExactlyOnce(t, t.Timeout(), "B's own messages during the cut", fromB...)
	if got, _ := home.contents(t); contains(got, fromB[0]) {
		t.Fatalf("a message crossed a cut link: the proxy does not separate the nodes (%v)", got)
	}
	a.Proxy.Heal()
	b.Proxy.Heal()
	all := append(append([]string{before}, fromA...), fromB...)
	home.waitExactlyOnce(t, converge, "the home node after the link healed", all...)
	member.waitExactlyOnce(t, converge, "the member node after the link healed", all...)
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// FED-055: "A node SHOULD connect to the member nodes of its guilds so that
// gossip continues while the home node is unreachable." The home node stops;
// a message from one member node still reaches the other.
func homeDown(t *T) {
	home, code := hostGuild(t, t.Nodes[0])
	b := joinFrom(t, t.Nodes[1], code)
	c := joinFrom(t, t.Nodes[2], code)
	hello := "all up " + harness.RandName()
	b.post(t, hello)
	c.waitExactlyOnce(t, t.Timeout(), "a message between member nodes", hello)
	home.waitExactlyOnce(t, t.Timeout(), "a member's message on the home node", hello)
	t.Nodes[0].Stop(10 * time.Second)
	while := "home down " + harness.RandName()
	b.post(t, while)
	c.waitExactlyOnce(t, converge, "a message between member nodes while the home node is down", while)
}

// FED-057: "A member node SHOULD keep the home node's addresses ... across
// restarts and reconnect to the home node and the member nodes when it starts,
// so that catch-up runs without waiting for a peer to dial it." FED-038: what
// is fetched is stored and shown. The member node is stopped, the home node
// posts, the member restarts and catches up; then the other way round.
func restartCatchUp(t *T) {
	a, b := t.Nodes[0], t.Nodes[1]
	home, code := hostGuild(t, a)
	member := joinFrom(t, b, code)
	first := "first " + harness.RandName()
	home.post(t, first)
	member.waitExactlyOnce(t, t.Timeout(), "a message before the restart", first)

	b.Stop(10 * time.Second)
	var missed []string
	for i := range 3 {
		missed = append(missed, fmt.Sprintf("while B was down %d %s", i, harness.RandName()))
		home.post(t, missed[i])
	}
	if err := b.Restart(t.Ctx, 60*time.Second); err != nil {
		t.Fatalf("%v", err)
	}
	member.waitExactlyOnce(t, converge, "the member node after its restart", append([]string{first}, missed...)...)

	a.Stop(10 * time.Second)
	var missedA []string
	for i := range 3 {
		missedA = append(missedA, fmt.Sprintf("while A was down %d %s", i, harness.RandName()))
		member.post(t, missedA[i])
	}
	if err := a.Restart(t.Ctx, 60*time.Second); err != nil {
		t.Fatalf("%v", err)
	}
	home.waitExactlyOnce(t, converge, "the home node after its restart", missedA...)
}

// remoteMember finds, on side s, the member whose username starts with name
// (a remote user shows as name@node).
func (s *side) remoteMember(t *T, name string) (harness.Obj, error) {
	r, err := s.User.Do(t.Ctx, "GET", "/guilds/"+s.Guild+"/members?limit=1000", nil)
	if err != nil {
		return nil, err
	}
	var members []harness.Obj
	if err := r.JSON(&members); err != nil {
		return nil, err
	}
	for _, m := range members {
		if u := harness.Str(harness.Get(m, "user.username")); len(u) > len(name) && u[:len(name)+1] == name+"@" {
			return m, nil
		}
	}
	return nil, fmt.Errorf("no member %s@… among %d on %s", name, len(members), s.Node.Name)
}

// FED-059: a local member's nickname and display name cross to the other
// nodes of the guild, which show them as the member's nick and global_name.
func profiles(t *T) {
	home, code := hostGuild(t, t.Nodes[0])
	b := joinFrom(t, t.Nodes[1], code)
	nick, display := "nick"+harness.RandName()[3:9], "Display "+harness.RandName()[3:9]
	// One change at a time: two profile changes in quick succession can reach
	// the home node out of order (reported in docs/conformance.md).
	want := func(what, wantNick, wantDisplay string) {
		t.Eventually("the member's "+what+" on the home node", func() error {
			m, err := home.remoteMember(t, b.User.Name)
			if err != nil {
				return err
			}
			if harness.Str(m["nick"]) != wantNick || harness.Str(harness.Get(m, "user.global_name")) != wantDisplay {
				return fmt.Errorf("nick %q, global_name %q", harness.Str(m["nick"]), harness.Str(harness.Get(m, "user.global_name")))
			}
			return nil
		})
	}
	t.OK(b.User.Client, "PATCH", "/users/@me", harness.Obj{"global_name": display}, nil)
	want("display name", "", display)
	t.OK(b.User.Client, "PATCH", "/guilds/"+b.Guild+"/members/@me", harness.Obj{"nick": nick}, nil)
	want("nickname", nick, display)
}

// FED-063: the other user's node joins the conversation for that user before
// answering. FED-065: both nodes show it as a DM channel (type 1) and messages
// cross both ways.
func directMessages(t *T) {
	home, code := hostGuild(t, t.Nodes[0])
	b := joinFrom(t, t.Nodes[1], code)
	var bOnA harness.Obj
	t.Eventually("the remote user known to the home node", func() error {
		var err error
		bOnA, err = home.remoteMember(t, b.User.Name)
		return err
	})
	var dm harness.Obj
	t.OK(home.User.Client, "POST", "/users/@me/channels", harness.Obj{"recipient_id": harness.Str(harness.Get(bOnA, "user.id"))}, &dm)
	if harness.Num(dm["type"]) != 1 {
		t.Fatalf("FED-065: a DM with a user of another node has type %v: %s", dm["type"], harness.JSON(dm))
	}
	hello := "dm hello " + harness.RandName()
	t.Send(home.User, harness.Str(dm["id"]), hello)
	var onB string
	t.Eventually("the DM on the other user's node", func() error {
		var chans []harness.Obj
		t.Must(b.User.Client, 200, "GET", "/users/@me/channels", nil, &chans)
		for _, c := range chans {
			if harness.Num(c["type"]) == 1 {
				onB = harness.Str(c["id"])
				return nil
			}
		}
		return fmt.Errorf("no DM channel among %d", len(chans))
	})
	dmB := &side{Node: b.Node, User: b.User, Text: onB}
	dmA := &side{Node: home.Node, User: home.User, Text: harness.Str(dm["id"])}
	dmB.waitExactlyOnce(t, t.Timeout(), "the DM message on the other node", hello)
	reply := "dm reply " + harness.RandName()
	dmB.post(t, reply)
	dmA.waitExactlyOnce(t, t.Timeout(), "the DM reply on the opener's node", hello, reply)
}

// attach posts a message with one file as s's user and returns its content.
func (s *side) attach(t *T, name string, data []byte) string {
	content := "file " + harness.RandName()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	_ = mw.WriteField("payload_json", `{"content":"`+content+`"}`)
	p, _ := mw.CreateFormFile("files[0]", name)
	_, _ = p.Write(data)
	_ = mw.Close()
	req, _ := http.NewRequestWithContext(t.Ctx, "POST", s.Node.BaseURL+harness.API+"/channels/"+s.Text+"/messages", &buf)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	req.Header.Set("Authorization", s.User.Token)
	resp, err := mediaHTTP.Do(req)
	if err != nil {
		t.Fatalf("upload: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("upload answered %d", resp.StatusCode)
	}
	return content
}

// attachmentURL waits until s shows the message with content and returns its
// first attachment's URL.
func (s *side) attachmentURL(t *T, content string) string {
	u := ""
	t.Eventually("the message with an attachment on "+s.Node.Name, func() error {
		r, err := s.User.Do(t.Ctx, "GET", "/channels/"+s.Text+"/messages?limit=50", nil)
		if err != nil || r.Status != 200 {
			return fmt.Errorf("%v %v", err, r)
		}
		var msgs []harness.Obj
		_ = r.JSON(&msgs)
		for _, m := range msgs {
			if harness.Str(m["content"]) == content {
				if u = harness.Str(harness.Get(m, "attachments.0.url")); u != "" {
					return nil
				}
			}
		}
		return errors.New("not shown yet")
	})
	return u
}

// download fetches a media URL at s's node.
func (s *side) download(t *T, raw string) (int, []byte) {
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatalf("%v", err)
	}
	base, _ := url.Parse(s.Node.BaseURL)
	u.Scheme, u.Host = base.Scheme, base.Host
	req, _ := http.NewRequestWithContext(t.Ctx, "GET", u.String(), nil)
	resp, err := mediaHTTP.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", u.Path, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	return resp.StatusCode, data
}

// MEDIA-074: when the origin node cannot serve a blob, a node may fetch it from
// another member node, which serves it under MEDIA-080, with the same
// verification. B attaches a file; A (home) downloads it; B stops; C downloads it.
func mediaFromAnotherMember(t *T) {
	a, code := hostGuild(t, t.Nodes[0])
	b := joinFrom(t, t.Nodes[1], code)
	c := joinFrom(t, t.Nodes[2], code)
	data := testPNG()
	content := b.attach(t, "shared.png", data)
	if st, got := a.download(t, a.attachmentURL(t, content)); st != 200 || !bytes.Equal(got, data) {
		t.Fatalf("the home node serving the member's attachment: %d, %d bytes", st, len(got))
	}
	cu := c.attachmentURL(t, content)
	t.Nodes[1].Stop(10 * time.Second)
	if st, got := c.download(t, cu); st != 200 || !bytes.Equal(got, data) {
		t.Errorf("with the origin node down, another member node's copy was not used: %d, %d bytes", st, len(got))
	}
}

// Side is one node's view of a federated guild, for tests of other packages
// (the voice cascade tests).
type Side = side

// HostGuild creates a guild on a new user of node and returns that side and
// the guild's federated invite.
func HostGuild(t *T, node *harness.Node) (*Side, string) { return hostGuild(t, node) }

// JoinFrom makes a new user of node join with a federated invite.
func JoinFrom(t *T, node *harness.Node, code string) *Side { return joinFrom(t, node, code) }

// RemoteMember finds, on this side, the member name@node of another node.
func (s *side) RemoteMember(t *T, name string) (harness.Obj, error) { return s.remoteMember(t, name) }
