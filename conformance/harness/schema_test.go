package harness

import "testing"

func TestSchema(t *testing.T) {
	s, err := LoadSchema("../../spec/schemas/client-api.schema.json")
	if err != nil {
		t.Fatal(err)
	}
	user := `{"id":"175928847299117063","username":"alice","global_name":null,"avatar":null,"discriminator":"0","bot":false}`
	cases := []struct {
		def, doc string
		ok       bool
	}{
		{"user", user, true},
		{"user", `{"id":175928847299117063,"username":"alice","discriminator":"0"}`, false},
		{"user", `{"id":"1","username":"alice","discriminator":"1234"}`, false},
		{"error", `{"code":50035,"message":"Invalid Form Body","errors":{"content":{"_errors":[{"code":"BASE_TYPE_MAX_LENGTH","message":"too long"}]}}}`, true},
		{"error", `{"code":0,"message":"401: Unauthorized"}`, true},
		{"error", `{"message":"no code"}`, false},
		{"error", `{"code":50035,"message":"x","errors":{"content":{"_errors":[]}}}`, false},
		{"message", `{"id":"2","channel_id":"3","author":` + user + `,"content":"hi","timestamp":"2026-11-28T04:32:07.123000+00:00","edited_timestamp":null,"mentions":[],"mention_roles":[],"mention_everyone":false,"pinned":false,"type":0}`, true},
		{"message", `{"id":"2","channel_id":"3","author":` + user + `,"content":"hi","timestamp":"28 Nov 2026","edited_timestamp":null,"mentions":[],"mention_roles":[],"mention_everyone":false,"pinned":false,"type":0}`, false},
		{"channel", `{"id":"4","type":0,"guild_id":"1","name":"general","position":0,"permission_overwrites":[{"id":"1","type":0,"allow":"0","deny":"2048"}]}`, true},
		{"channel", `{"id":"4","type":0,"guild_id":"1","name":"general","position":0,"permission_overwrites":[{"id":"1","type":0,"allow":0,"deny":"2048"}]}`, false},
		{"channel", `{"id":"5","type":1,"recipients":[` + user + `]}`, true},
		{"channel", `{"id":"5","type":1}`, false},
		{"role", `{"id":"1","name":"@everyone","permissions":"104324673","position":0,"color":0,"hoist":false,"managed":false,"mentionable":false}`, true},
		{"member", `{"user":` + user + `,"nick":null,"roles":[],"joined_at":"2026-11-28T04:32:07Z","deaf":false,"mute":false}`, true},
		{"invite", `{"code":"aB3dE6gH","guild":{"id":"1","name":"g"},"channel":{"id":"2","type":0,"name":"general"},"uses":0,"max_uses":0,"max_age":86400,"temporary":false}`, true},
		{"invite", `{"code":"abc","guild":{"id":"1","name":"g"},"channel":{"id":"2","type":0}}`, false},
		{"gateway_frame", `{"op":10,"d":{"heartbeat_interval":41250},"s":null,"t":null}`, true},
		{"gateway_frame", `{"op":0,"d":{},"s":1,"t":"READY"}`, true},
		{"gateway_frame", `{"op":0,"d":{},"s":null,"t":"READY"}`, false},
		{"gateway_frame", `{"op":11,"d":null,"s":3,"t":null}`, false},
		{"gateway_frame", `{"op":9,"d":false}`, true},
		{"guild", `{"id":"1","name":"g","owner_id":"2","roles":[]}`, false},
		{"guild", `{"id":"1","name":"gg","owner_id":"2","roles":[]}`, true},
	}
	for i, c := range cases {
		err := s.Validate(c.def, []byte(c.doc))
		if (err == nil) != c.ok {
			t.Errorf("case %d (%s): ok=%v, err=%v", i, c.def, c.ok, err)
		}
	}
	for _, def := range []string{"auth_response", "partial_guild", "gateway_guild", "ready", "read_state", "poll_response", "gateway_url", "message_reference", "reaction", "partial_member"} {
		if _, err := s.c.Compile(SchemaURL + "#/$defs/" + def); err != nil {
			t.Errorf("definition %s: %v", def, err)
		}
	}
	if err := s.Validate("nonexistent", []byte(`{}`)); err == nil {
		t.Error("unknown definition validated")
	}
}

func TestEventually(t *testing.T) {
	n := 0
	if err := Eventually(t.Context(), 5e9, func() error {
		if n++; n < 3 {
			return errNot
		}
		return nil
	}); err != nil || n != 3 {
		t.Fatalf("Eventually = %v after %d polls", err, n)
	}
	if err := Eventually(t.Context(), 5e9, func() error { return Permanent(errNot) }); err != errNot {
		t.Fatalf("Permanent: %v", err)
	}
	if err := Eventually(t.Context(), 3e7, func() error { return errNot }); err == nil {
		t.Fatal("timeout not reported")
	}
}

var errNot = errString("not yet")

type errString string

func (e errString) Error() string { return string(e) }
