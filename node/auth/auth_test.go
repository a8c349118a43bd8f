package auth

import (
	"testing"
	"time"
)

var testParams = Params{Time: 1, MemoryK: 64, Threads: 1}

func TestPassword(t *testing.T) {
	h, err := HashPassword("correct horse", testParams)
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := CheckPassword(h, "correct horse"); !ok || err != nil {
		t.Fatalf("right password rejected: %v", err)
	}
	if ok, _ := CheckPassword(h, "wrong horse"); ok {
		t.Fatal("wrong password accepted")
	}
	h2, _ := HashPassword("correct horse", testParams)
	if h == h2 {
		t.Fatal("same hash twice: salt not random")
	}
	for _, bad := range []string{"", "$argon2i$v=19$m=1,t=1,p=1$AA$AA", "$argon2id$v=19$x$AA$AA", "$argon2id$v=19$m=64,t=1,p=1$!!$AA"} {
		if _, err := CheckPassword(bad, "x"); err == nil {
			t.Errorf("CheckPassword(%q) accepted a malformed hash", bad)
		}
	}
}

func TestParseAuthorization(t *testing.T) {
	for in, want := range map[string]string{"abc": "abc", "Bot abc": "abc", "Bearer abc": "abc", "bearer  abc ": "abc", "": "", "Bot": "Bot"} {
		if got := ParseAuthorization(in); got != want {
			t.Errorf("ParseAuthorization(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestGuard(t *testing.T) {
	g := NewGuard(3, time.Minute)
	now := time.Unix(1000, 0)
	g.now = func() time.Time { return now }
	for i := 0; i < 3; i++ {
		if ok, _ := g.Allow("alice"); !ok {
			t.Fatalf("refused after %d failures", i)
		}
		g.Fail("alice")
	}
	ok, wait := g.Allow("alice")
	if ok || wait != time.Minute {
		t.Fatalf("Allow after 3 failures = %v, %v", ok, wait)
	}
	if ok, _ := g.Allow("bob"); !ok {
		t.Fatal("other key refused")
	}
	now = now.Add(time.Minute + time.Second)
	if ok, _ := g.Allow("alice"); !ok {
		t.Fatal("still refused after the window")
	}
	g.Fail("alice")
	g.Succeed("alice")
	if len(g.failures) != 0 {
		t.Fatal("Succeed did not clear")
	}
}
