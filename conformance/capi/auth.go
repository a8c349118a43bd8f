package capi

import (
	"slices"
	"strings"

	"github.com/hearth-chat/hearth/conformance/harness"
)

var auth = []Test{
	{IDs: []string{"CAPI-010"}, Name: "auth/register-validation", Run: registerValidation},
	{IDs: []string{"CAPI-011"}, Name: "auth/username-taken", Run: usernameTaken},
	{IDs: []string{"CAPI-014"}, Name: "auth/login-invalid", Run: loginInvalid},
	{IDs: []string{"CAPI-015"}, Name: "auth/login-rate-limited", Needs: harness.Needs{OwnNode: true}, Run: loginRateLimited},
	{IDs: []string{"CAPI-016"}, Name: "auth/authorization-forms", Run: authForms},
	{IDs: []string{"CAPI-017"}, Name: "auth/unauthorized", Run: unauthorized},
	{IDs: []string{"CAPI-018"}, Name: "auth/logout-revokes", Run: logoutRevokes},
	{IDs: []string{"CAPI-012", "CAPI-013"}, Name: "auth/secrets-at-rest", Needs: harness.Needs{OwnNode: true, Managed: true}, Run: secretsAtRest},
}

// CAPI-010: "A node MUST reject a register request that violates these rules with
// 400 and error code 50035 naming the field." username: 2–32 of a-z 0-9 _ .;
// password: 8–256 characters.
func registerValidation(t *T) {
	ok := "pw-" + harness.RandName()
	cases := []struct{ field, username, password string }{
		{"username", "a", ok},
		{"username", strings.Repeat("a", 33), ok},
		{"username", "has space", ok},
		{"username", "bad!char", ok},
		{"username", "", ok},
		{"password", harness.RandName(), "short7!"},
		{"password", harness.RandName(), strings.Repeat("p", 257)},
	}
	for _, c := range cases {
		r := t.Call(t.Anon(), "POST", "/auth/register", Obj{"username": c.username, "password": c.password})
		body := t.ErrorBody(r, 400, 50035)
		if body != nil && len(harness.FieldErrors(body, c.field)) == 0 {
			t.Errorf("register %q/%d-char password: expected errors.%s, got %s", c.username, len(c.password), c.field, r)
		}
	}
	// The upper bounds themselves are valid.
	for _, pw := range []string{"12345678", strings.Repeat("p", 256)} {
		name := harness.RandName() + strings.Repeat("x", 32-len(harness.RandName()))
		if r := t.Call(t.Anon(), "POST", "/auth/register", Obj{"username": name, "password": pw}); r.Status != 201 {
			t.Errorf("register %q (%d chars) with a %d-char password: expected 201, got %s", name, len(name), len(pw), r)
		}
	}
}

// CAPI-011: "[A node] MUST reject an already-taken username with 400, code 50035 and
// field error code USERNAME_ALREADY_TAKEN." Usernames compare case-insensitively.
func usernameTaken(t *T) {
	u := t.NewUser()
	r := t.Call(t.Anon(), "POST", "/auth/register", Obj{"username": u.Name, "password": "another-password"})
	if body := t.ErrorBody(r, 400, 50035); body != nil {
		if !slices.Contains(harness.FieldErrors(body, "username"), "USERNAME_ALREADY_TAKEN") {
			t.Errorf("expected errors.username USERNAME_ALREADY_TAKEN, got %s", r)
		}
	}
	r = t.Call(t.Anon(), "POST", "/auth/register", Obj{"username": strings.ToUpper(u.Name), "password": "another-password"})
	if r.Status == 201 {
		t.Errorf("registering %q succeeded although %q exists (names compare case-insensitively): %s", strings.ToUpper(u.Name), u.Name, r)
	}
}

// CAPI-014: "Login with a wrong username or password MUST answer 400, code 50035,
// field error code INVALID_LOGIN, without revealing which of the two was wrong."
func loginInvalid(t *T) {
	u := t.NewUser()
	wrongPw := t.Call(t.Anon(), "POST", "/auth/login", Obj{"login": u.Name, "password": "wrong-password"})
	unknown := t.Call(t.Anon(), "POST", "/auth/login", Obj{"login": harness.RandName(), "password": "wrong-password"})
	var bodies []Obj
	for _, r := range []*harness.Response{wrongPw, unknown} {
		body := t.ErrorBody(r, 400, 50035)
		if body == nil {
			continue
		}
		if !strings.Contains(string(r.Body), "INVALID_LOGIN") {
			t.Errorf("expected field error code INVALID_LOGIN, got %s", r)
		}
		bodies = append(bodies, body)
	}
	if len(bodies) == 2 && harness.JSON(bodies[0]) != harness.JSON(bodies[1]) {
		t.Errorf("wrong password and unknown user answer differently: %s vs %s", wrongPw, unknown)
	}
	// And the right password works.
	var ok Obj
	t.Must(t.Anon(), 200, "POST", "/auth/login", Obj{"login": u.Name, "password": u.Password}, &ok)
	if str(ok["user_id"]) != u.ID || str(ok["token"]) == "" {
		t.Errorf("login answered %s, expected user_id %s and a token", harness.JSON(ok), u.ID)
	}
	t.Conform("auth_response", harness.Raw(ok))
}

// CAPI-015: "A node MUST limit login attempts per username and per client address
// and answer excess attempts with 429."
func loginRateLimited(t *T) {
	u := t.NewUser()
	for i := 0; i < 100; i++ {
		r := t.Call(t.Anon(), "POST", "/auth/login", Obj{"login": u.Name, "password": "wrong-password"})
		if r.Status == 429 {
			check429(t, r)
			return
		}
		if r.Status != 400 {
			t.Fatalf("failed login %d: expected 400 or 429, got %s", i, r)
		}
	}
	t.Errorf("100 failed logins for one username were never answered 429")
}

// CAPI-016: "A node MUST accept all three forms" of Authorization: bare, Bot, Bearer.
func authForms(t *T) {
	u := t.NewUser()
	for _, scheme := range []string{"", "Bot", "Bearer"} {
		c := harness.NewClient(t.Node, u.Token)
		c.AuthScheme = scheme
		var me Obj
		r := t.Call(c, "GET", "/users/@me", nil)
		if r.Status != 200 || r.JSON(&me) != nil || str(me["id"]) != u.ID {
			t.Errorf("Authorization %q: expected 200 with the user, got %s", strings.TrimSpace(scheme+" <token>"), r)
		}
	}
}

// CAPI-017: "A missing, unknown or revoked token MUST answer 401 with code 0 and
// message 401: Unauthorized."
func unauthorized(t *T) {
	for _, tok := range []string{"", "not-a-token", "Bot definitely-not-valid"} {
		r := t.Call(harness.NewClient(t.Node, tok), "GET", "/users/@me", nil)
		if body := t.ErrorBody(r, 401, 0); body != nil && str(body["message"]) != "401: Unauthorized" {
			t.Errorf("token %q: expected message \"401: Unauthorized\", got %s", tok, r)
		}
	}
}

// CAPI-018: "After POST /auth/logout, the token MUST be rejected by every route and
// by the gateway."
func logoutRevokes(t *T) {
	u := t.NewUser()
	g := t.NewGuild(u)
	if r := t.Call(u.Client, "POST", "/auth/logout", nil); r.Status != 204 {
		t.Fatalf("logout: expected 204, got %s", r)
	}
	for _, p := range []string{"/users/@me", "/guilds/" + g.ID, "/channels/" + g.Text + "/messages"} {
		t.ErrorBody(t.Call(u.Client, "GET", p, nil), 401, 0)
	}
	gw := t.Dial()
	t.Hello(gw)
	_ = gw.Send(harness.OpIdentify, Obj{"token": u.Token, "intents": harness.AllIntents, "properties": Obj{}})
	code, err := gw.WaitClose(t.Timeout())
	if err != nil || code != 4004 {
		t.Errorf("Identify with a revoked token: expected close 4004, got code %d (%v; frames %v)", code, err, gw.Frames())
	}
	// Another token of the same user keeps working.
	var ok Obj
	t.Must(t.Anon(), 200, "POST", "/auth/login", Obj{"login": u.Name, "password": u.Password}, &ok)
	if r := t.Call(harness.NewClient(t.Node, str(ok["token"])), "GET", "/users/@me", nil); r.Status != 200 {
		t.Errorf("a fresh login after logout: expected 200, got %s", r)
	}
}
