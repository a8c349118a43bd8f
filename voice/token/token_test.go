package token

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"
)

var testKey = bytes.Repeat([]byte{7}, 32)

func newAt(t testing.TB, now *time.Time) *Issuer {
	t.Helper()
	is, err := New(testKey, 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	is.now = func() time.Time { return *now }
	return is
}

func TestRoundTrip(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	is := newAt(t, &now)
	c := Claims{UserID: "1", GuildID: "2", ChannelID: "3", SessionID: "s"}
	tok, err := is.Mint(c)
	if err != nil {
		t.Fatal(err)
	}
	got, err := is.Verify(tok)
	if err != nil {
		t.Fatal(err)
	}
	c.Expires = now.Add(30 * time.Second)
	if got != c {
		t.Fatalf("claims = %+v, want %+v", got, c)
	}
	tok2, _ := is.Mint(c)
	if tok == tok2 {
		t.Fatal("two tokens for the same claims are equal; nonce missing")
	}
}

func TestVerifyRejects(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	is := newAt(t, &now)
	tok, err := is.Mint(Claims{UserID: "1", GuildID: "2", ChannelID: "3"})
	if err != nil {
		t.Fatal(err)
	}
	other, _ := New(bytes.Repeat([]byte{8}, 32), 0)
	otherTok, _ := other.Mint(Claims{UserID: "1", GuildID: "2", ChannelID: "3"})
	parts := strings.Split(tok, ".")
	// A token for channel 3 with its payload swapped for channel 4 must fail.
	forged, _ := is.Mint(Claims{UserID: "1", GuildID: "2", ChannelID: "4"})
	swapped := parts[0] + "." + strings.Split(forged, ".")[1] + "." + parts[2]

	tests := []struct {
		name string
		tok  string
		now  time.Time
		want error
	}{
		{"empty", "", now, ErrMalformed},
		{"wrong prefix", "hv2" + tok[3:], now, ErrMalformed},
		{"two parts", parts[0] + "." + parts[1], now, ErrMalformed},
		{"other key", otherTok, now, ErrSignature},
		{"channel swapped", swapped, now, ErrSignature},
		{"bad base64 sig", parts[0] + "." + parts[1] + ".!!", now, ErrMalformed},
		{"expired", tok, now.Add(30 * time.Second), ErrExpired},
		{"huge", strings.Repeat("a", 5000), now, ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := tt.now
			is.now = func() time.Time { return n }
			if _, err := is.Verify(tt.tok); !errors.Is(err, tt.want) {
				t.Fatalf("Verify = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestNew(t *testing.T) {
	tests := []struct {
		name string
		key  []byte
		ttl  time.Duration
		ok   bool
	}{
		{"short key", []byte("short"), 0, false},
		{"default ttl", testKey, 0, true},
		{"ttl too long", testKey, 2 * MaxTTL, false},
		{"negative ttl", testKey, -time.Second, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(tt.key, tt.ttl)
			if (err == nil) != tt.ok {
				t.Fatalf("New err = %v, want ok=%v", err, tt.ok)
			}
		})
	}
	is, _ := New(testKey, 0)
	if _, err := is.Mint(Claims{UserID: "1"}); err == nil {
		t.Fatal("Mint without guild and channel succeeded")
	}
}

func FuzzVerify(f *testing.F) {
	now := time.Unix(1_800_000_000, 0)
	is := newAt(f, &now)
	tok, _ := is.Mint(Claims{UserID: "1", GuildID: "2", ChannelID: "3"})
	f.Add(tok)
	f.Add("hv1..")
	f.Add("hv1.e30.AAAA")
	f.Fuzz(func(t *testing.T, s string) {
		c, err := is.Verify(s)
		if err == nil && (c.UserID == "" || c.GuildID == "" || c.ChannelID == "") {
			t.Fatalf("accepted token with empty claims: %+v", c)
		}
	})
}
