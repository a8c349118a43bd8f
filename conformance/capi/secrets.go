package capi

import (
	"encoding/base64"
	"encoding/hex"

	"github.com/hearth-chat/hearth/conformance/harness"
)

// CAPI-012: "A node MUST store passwords only as argon2id hashes" and CAPI-013:
// "tokens only as hashes". What a node stores shows in its data dir: after kill -9
// (nothing is compacted or compressed on a clean close) no file may hold the
// password or a token in clear, in hex or in base64, nor a token's decoded bytes;
// the argon2id hash shows as its PHC string ($argon2id$). The user's name must show
// in clear, or the node's storage hides everything (compressed or encrypted) and
// the test cannot judge.
func secretsAtRest(t *T) {
	u := t.NewUser()
	var login Obj
	t.Must(t.Anon(), 200, "POST", "/auth/login", Obj{"login": u.Name, "password": u.Password}, &login)
	secrets := map[string]string{"the password": u.Password, "the registration token": u.Token, "the login token": str(login["token"])}
	needles := [][]byte{[]byte(u.Name), []byte("$argon2id$")}
	var what []string
	for name, s := range secrets {
		forms := map[string][]byte{"in clear": []byte(s), "in hex": []byte(hex.EncodeToString([]byte(s))),
			"in base64": []byte(base64.StdEncoding.EncodeToString([]byte(s))), "in URL base64": []byte(base64.RawURLEncoding.EncodeToString([]byte(s)))}
		for _, enc := range []*base64.Encoding{base64.RawURLEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.StdEncoding} {
			if raw, err := enc.DecodeString(s); err == nil && len(raw) >= 16 {
				forms["as decoded bytes"] = raw
			}
		}
		for form, b := range forms {
			needles = append(needles, b)
			what = append(what, name+" "+form)
		}
	}
	if err := t.Node.Kill(); err != nil {
		t.Fatalf("kill -9: %v", err)
	}
	found, err := harness.CountInDir(t.Node.DataDir(), needles)
	if err != nil {
		t.Fatalf("reading the data dir: %v", err)
	}
	if found[0] == 0 {
		t.Skipf("the data dir does not show the user's name %q in clear either (compressed or encrypted storage): what it stores cannot be judged", u.Name)
	}
	if found[1] == 0 {
		t.Errorf("no argon2id hash (PHC string $argon2id$) in the data dir")
	}
	for i, w := range what {
		if found[i+2] > 0 {
			t.Errorf("the data dir holds %s", w)
		}
	}
}
