package media

import (
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"
)

func TestParseHash(t *testing.T) {
	good := strings.Repeat("0a", 32)
	tests := []struct {
		in string
		ok bool
	}{
		{good, true},
		{strings.ToUpper(good), false},
		{good[:63], false},
		{good + "0", false},
		{strings.Repeat("g", 64), false},
		{"", false},
		{"../" + good[3:], false},
	}
	for _, tt := range tests {
		h, err := ParseHash(tt.in)
		if (err == nil) != tt.ok {
			t.Errorf("ParseHash(%q) err = %v, want ok=%v", tt.in, err, tt.ok)
		}
		if err == nil && h.String() != tt.in {
			t.Errorf("round trip %q -> %q", tt.in, h.String())
		}
		if err != nil && !errors.Is(err, ErrBadHash) {
			t.Errorf("ParseHash(%q) err = %v, want ErrBadHash", tt.in, err)
		}
	}
}

func FuzzParseHash(f *testing.F) {
	f.Add(strings.Repeat("ab", 32))
	f.Add("zz")
	f.Fuzz(func(t *testing.T, s string) {
		h, err := ParseHash(s)
		if err == nil && h.String() != s {
			t.Fatalf("ParseHash(%q) accepted a non-canonical form", s)
		}
	})
}

func TestSanitizeFilename(t *testing.T) {
	tests := []struct{ in, want string }{
		{"photo.png", "photo.png"},
		{"../../etc/passwd", "passwd"},
		{`C:\Users\me\evil.exe`, "evil.exe"},
		{"..", "file"},
		{".", "file"},
		{"", "file"},
		{".bashrc", "bashrc"},
		{"my holiday photo.jpg", "my_holiday_photo.jpg"},
		{"a\x00b\nc.txt", "a_b_c.txt"},
		{"invoice\u202Etxt.exe", "invoice_txt.exe"},
		{"résumé.pdf", "résumé.pdf"},
		{"a<b>c:d\"e|f?g*h.txt", "a_b_c_d_e_f_g_h.txt"},
		{"trailing...", "trailing"},
		{"spaced. . .", "spaced._._"},
		{"CON.txt", "_CON.txt"},
		{"nul", "_nul"},
		{"bad\xffutf8", "bad_utf8"},
		{strings.Repeat("a", 300) + ".jpeg", strings.Repeat("a", maxFilenameBytes-5) + ".jpeg"},
	}
	for _, tt := range tests {
		if got := SanitizeFilename(tt.in); got != tt.want {
			t.Errorf("SanitizeFilename(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func FuzzSanitizeFilename(f *testing.F) {
	for _, s := range []string{"a.png", "../x", "\u202e", "CON", strings.Repeat("é", 150) + ".txt", ". .", "a/b\\c"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		got := SanitizeFilename(in)
		switch {
		case got == "" || got == "." || got == "..":
			t.Fatalf("%q -> %q", in, got)
		case !utf8.ValidString(got):
			t.Fatalf("%q -> invalid UTF-8 %q", in, got)
		case len(got) > maxFilenameBytes+1:
			t.Fatalf("%q -> %d bytes", in, len(got))
		case strings.ContainsAny(got, `/\`) || strings.HasPrefix(got, "."):
			t.Fatalf("%q -> path-like %q", in, got)
		case SanitizeFilename(got) != got:
			t.Fatalf("not idempotent: %q -> %q -> %q", in, got, SanitizeFilename(got))
		}
		for _, r := range got {
			if unicode.IsControl(r) || unicode.Is(unicode.Cf, r) || unicode.IsSpace(r) {
				t.Fatalf("%q -> %q keeps %U", in, got, r)
			}
		}
	})
}

func TestDetectContentType(t *testing.T) {
	png := "\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"
	tests := []struct {
		name, head, declared, filename, want string
	}{
		{"png bytes win", png, "image/jpeg", "a.jpg", "image/png"},
		{"html posing as png", "<html><script>alert(1)</script>", "image/png", "a.png", "text/html; charset=utf-8"},
		{"svg declared", `<svg xmlns="http://www.w3.org/2000/svg"></svg>`, "image/svg+xml", "a.svg", "image/svg+xml"},
		{"svg by extension", `<svg xmlns="http://www.w3.org/2000/svg"></svg>`, "", "a.svg", "image/svg+xml"},
		{"text claiming image", "just some words", "image/png", "a.png", "text/plain; charset=utf-8"},
		{"csv", "a,b\n1,2\n", "text/csv", "a.csv", "text/csv; charset=utf-8"},
		{"json", `{"a":1}`, "application/json", "a.json", "application/json"},
		{"binary claiming image", "\x00\x01\x02\x03garbage", "image/png", "a.png", "application/octet-stream"},
		{"binary claiming html", "\x00\x01\x02\x03garbage", "text/html", "a.html", "application/octet-stream"},
		{"binary archive by type", "\x00\x01\x02\x037z", "application/x-7z-compressed", "a.7z", "application/x-7z-compressed"},
		{"binary unknown", "\x00\x01\x02\x03", "", "blob", "application/octet-stream"},
		{"malformed declared", "\x00\x01", "not a type", "", "application/octet-stream"},
		{"flac", "fLaC\x00\x00\x00\x22", "", "a.flac", "audio/flac"},
		{"ogg opus", "OggS\x00\x02\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01\x13OpusHead", "", "", "audio/ogg"},
		{"m4a", "\x00\x00\x00\x18ftypM4A \x00\x00\x00\x00M4A mp42", "", "", "audio/mp4"},
		{"mp4", "\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isommp41", "", "", "video/mp4"},
		{"pdf", "%PDF-1.7\n", "application/pdf", "a.pdf", "application/pdf"},
		{"empty", "", "image/png", "a.png", "text/plain; charset=utf-8"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := DetectContentType([]byte(tt.head), tt.declared, tt.filename); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestInlineOnlyForPassiveTypes(t *testing.T) {
	for ct, want := range map[string]bool{
		"image/png": true, "video/mp4": true, "text/plain; charset=utf-8": true,
		"text/html; charset=utf-8": false, "image/svg+xml": false, "application/javascript": false,
		"text/xml; charset=utf-8": false, "application/pdf": false, "application/octet-stream": false,
		"IMAGE/PNG": true, "": false,
	} {
		if got := isInline(ct); got != want {
			t.Errorf("isInline(%q) = %v, want %v", ct, got, want)
		}
	}
}

func TestSigner(t *testing.T) {
	s, err := NewSigner([]byte(strings.Repeat("k", 32)))
	if err != nil {
		t.Fatal(err)
	}
	other, _ := NewSigner([]byte(strings.Repeat("j", 32)))
	h := hashOf([]byte("x"))
	now := time.Unix(1_800_000_000, 0)
	q := func(signer *Signer, h Hash, name string, exp time.Time) url.Values {
		v, err := url.ParseQuery(signer.Query(h, name, exp))
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	good := q(s, h, "a.png", now.Add(time.Hour))
	edit := func(k, v string) url.Values {
		c := url.Values{}
		for k, vs := range good {
			c[k] = append([]string(nil), vs...)
		}
		c.Set(k, v)
		return c
	}
	tests := []struct {
		name    string
		h       Hash
		file    string
		q       url.Values
		now     time.Time
		wantErr error
	}{
		{"valid", h, "a.png", good, now, nil},
		{"expired", h, "a.png", good, now.Add(time.Hour), ErrExpired},
		{"other hash", hashOf([]byte("y")), "a.png", good, now, ErrBadSignature},
		{"other filename", h, "a.html", good, now, ErrBadSignature},
		{"later expiry", h, "a.png", edit("ex", "7fffffff"), now, ErrBadSignature},
		{"non-canonical expiry", h, "a.png", edit("ex", "0"+good.Get("ex")), now, ErrBadSignature},
		{"flipped signature", h, "a.png", edit("sig", "A"+good.Get("sig")[1:]), now, ErrBadSignature},
		{"no signature", h, "a.png", url.Values{"ex": good["ex"]}, now, ErrBadSignature},
		{"other key", h, "a.png", q(other, h, "a.png", now.Add(time.Hour)), now, ErrBadSignature},
		{"expired and forged", h, "a.png", edit("sig", "AAAA"), now.Add(2 * time.Hour), ErrBadSignature},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := s.Verify(tt.h, tt.file, tt.q, tt.now)
			if !errors.Is(err, tt.wantErr) || (err == nil) != (tt.wantErr == nil) {
				t.Errorf("Verify err = %v, want %v", err, tt.wantErr)
			}
		})
	}
}

func FuzzVerify(f *testing.F) {
	s, _ := NewSigner([]byte(strings.Repeat("k", 32)))
	h := hashOf([]byte("x"))
	f.Add(s.Query(h, "a.png", time.Unix(1_900_000_000, 0)), "a.png")
	f.Add("ex=zz&sig=%%", "")
	f.Fuzz(func(t *testing.T, query, name string) {
		q, err := url.ParseQuery(query)
		if err != nil {
			return
		}
		exp, err := s.Verify(h, name, q, time.Unix(1_800_000_000, 0))
		if err != nil {
			return
		}
		// Only the exact signed query may verify.
		want, _ := url.ParseQuery(s.Query(h, name, exp))
		if q.Get("sig") != want.Get("sig") || q.Get("ex") != want.Get("ex") {
			t.Fatalf("forged query verified: %q for %q", query, name)
		}
	})
}
