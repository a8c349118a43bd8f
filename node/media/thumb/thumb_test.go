package thumb

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"image"
	"image/color"
	"image/gif"
	"image/jpeg"
	"image/png"
	"os"
	"testing"
	"time"
)

func encoded(t testing.TB, format string, w, h int, opaque bool) []byte {
	t.Helper()
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			a := uint8(255)
			if !opaque && x < w/2 {
				a = 0
			}
			img.Set(x, y, color.NRGBA{uint8(x), uint8(y), 90, a})
		}
	}
	var buf bytes.Buffer
	var err error
	switch format {
	case "png":
		err = png.Encode(&buf, img)
	case "jpeg":
		err = jpeg.Encode(&buf, img, nil)
	case "gif":
		err = gif.Encode(&buf, img, nil)
	}
	if err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// hugePNG returns a valid-looking PNG header declaring w×h pixels.
func hugePNG(t testing.TB, w, h uint32) []byte {
	b := encoded(t, "png", 1, 1, true)
	binary.BigEndian.PutUint32(b[16:], w)
	binary.BigEndian.PutUint32(b[20:], h)
	binary.BigEndian.PutUint32(b[29:], crc32.ChecksumIEEE(b[12:29]))
	return b
}

func TestRender(t *testing.T) {
	webp, err := os.ReadFile("testdata/blue-purple-pink.lossy.webp")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		in       []byte
		lim      Limits
		wantType string
		wantW    int
		wantH    int
		wantErr  error
	}{
		{"png landscape", encoded(t, "png", 1200, 600, true), Limits{}, TypeJPEG, 512, 256, nil},
		{"jpeg portrait", encoded(t, "jpeg", 300, 900, true), Limits{MaxSide: 100}, TypeJPEG, 33, 100, nil},
		{"transparent png", encoded(t, "png", 64, 64, false), Limits{}, TypePNG, 64, 64, nil},
		{"gif", encoded(t, "gif", 50, 20, true), Limits{MaxSide: 10}, TypeJPEG, 10, 4, nil},
		{"webp", webp, Limits{MaxSide: 64}, TypeJPEG, 64, 42, nil},
		{"small stays small", encoded(t, "png", 3, 2, true), Limits{}, TypeJPEG, 3, 2, nil},
		{"over pixel budget", encoded(t, "png", 100, 100, true), Limits{MaxPixels: 9999}, "", 0, 0, ErrTooManyPixels},
		{"decompression bomb", hugePNG(t, 70000, 70000), Limits{}, "", 0, 0, ErrTooManyPixels},
		{"not an image", []byte("hello"), Limits{}, "", 0, 0, ErrUnsupported},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			res, err := Render(context.Background(), bytes.NewReader(tt.in), tt.lim, &out)
			if !errors.Is(err, tt.wantErr) || (err == nil) != (tt.wantErr == nil) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if err != nil {
				return
			}
			if res != (Result{tt.wantType, tt.wantW, tt.wantH}) {
				t.Errorf("result = %+v, want %s %dx%d", res, tt.wantType, tt.wantW, tt.wantH)
			}
			cfg, format, err := image.DecodeConfig(&out)
			if err != nil || "image/"+format != res.ContentType || cfg.Width != res.Width || cfg.Height != res.Height {
				t.Errorf("output is %s %dx%d (%v), result says %+v", format, cfg.Width, cfg.Height, err, res)
			}
		})
	}
}

func TestRenderStopsWhenContextEnds(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := Render(ctx, bytes.NewReader(encoded(t, "png", 10, 10, true)), Limits{}, &bytes.Buffer{})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want Canceled", err)
	}
	ctx, cancel = context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancel()
	_, err = Render(ctx, bytes.NewReader(encoded(t, "png", 10, 10, true)), Limits{}, &bytes.Buffer{})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("err = %v, want DeadlineExceeded", err)
	}
}

func TestFit(t *testing.T) {
	tests := []struct{ w, h, max, ww, wh int }{
		{100, 50, 512, 100, 50},
		{1024, 512, 512, 512, 256},
		{512, 1024, 512, 256, 512},
		{100000, 1, 512, 512, 1},
		{1, 100000, 512, 1, 512},
		{513, 513, 512, 512, 512},
	}
	for _, tt := range tests {
		if w, h := Fit(tt.w, tt.h, tt.max); w != tt.ww || h != tt.wh {
			t.Errorf("Fit(%d,%d,%d) = %d,%d; want %d,%d", tt.w, tt.h, tt.max, w, h, tt.ww, tt.wh)
		}
	}
}

func FuzzRender(f *testing.F) {
	f.Add(encoded(f, "png", 8, 8, false))
	f.Add(encoded(f, "jpeg", 8, 8, true))
	f.Add(encoded(f, "gif", 8, 8, true))
	f.Add(hugePNG(f, 70000, 70000))
	if b, err := os.ReadFile("testdata/blue-purple-pink.lossy.webp"); err == nil {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		var out bytes.Buffer
		lim := Limits{MaxSide: 32, MaxPixels: 1 << 20}
		res, err := Render(context.Background(), bytes.NewReader(in), lim, &out)
		if err != nil {
			return
		}
		if res.Width < 1 || res.Height < 1 || res.Width > 32 || res.Height > 32 {
			t.Fatalf("thumbnail %dx%d outside 1..32", res.Width, res.Height)
		}
	})
}

func BenchmarkRender12MP(b *testing.B) {
	in := encoded(b, "jpeg", 4000, 3000, true)
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Render(context.Background(), bytes.NewReader(in), Limits{}, &bytes.Buffer{}); err != nil {
			b.Fatal(err)
		}
	}
}
