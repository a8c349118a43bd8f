// Package thumb renders bounded thumbnails of untrusted images.
//
// Every input is treated as hostile: dimensions are read with
// image.DecodeConfig and checked against a pixel budget before any pixel is
// decoded (a decompression bomb costs a few header bytes, not gigabytes),
// decoding stops when the context ends, and decoder panics are turned into
// errors. Supported inputs are PNG, JPEG, GIF (first frame) and WebP.
package thumb

import (
	"context"
	"errors"
	"fmt"
	"image"
	"image/gif"
	"image/jpeg"
	"image/png"
	"io"

	"golang.org/x/image/draw"
	"golang.org/x/image/webp"
)

// Limits bound the work Render may do. The zero value selects the defaults.
type Limits struct {
	// MaxSide is the longest side, in pixels, of the thumbnail. Images that
	// already fit are re-encoded at their own size, never enlarged.
	// Zero means DefaultMaxSide.
	MaxSide int
	// MaxPixels is the largest width×height Render will decode. Decoding
	// needs about four bytes per pixel, so this bounds memory per call.
	// Zero means DefaultMaxPixels.
	MaxPixels int64
}

// Defaults for the zero Limits.
const (
	DefaultMaxSide   = 512
	DefaultMaxPixels = 50_000_000
)

// Errors Render returns; wrap-compatible with errors.Is.
var (
	// ErrTooManyPixels means the image's declared dimensions exceed
	// Limits.MaxPixels; nothing was decoded.
	ErrTooManyPixels = errors.New("thumb: image exceeds pixel limit")
	// ErrUnsupported means the bytes are not an image format Render decodes.
	ErrUnsupported = errors.New("thumb: unsupported image format")
)

// Output content types of Render.
const (
	TypeJPEG = "image/jpeg"
	TypePNG  = "image/png"
)

func (l Limits) withDefaults() Limits {
	if l.MaxSide <= 0 {
		l.MaxSide = DefaultMaxSide
	}
	if l.MaxPixels <= 0 {
		l.MaxPixels = DefaultMaxPixels
	}
	return l
}

// Result describes a rendered thumbnail.
type Result struct {
	// ContentType is TypeJPEG for opaque images and TypePNG for images with
	// transparency.
	ContentType string
	// Width and Height are the thumbnail's dimensions.
	Width, Height int
}

// Config reads only the header of the image in r and returns its format
// ("png", "jpeg", "gif" or "webp") and dimensions.
func Config(r io.Reader) (format string, width, height int, err error) {
	cfg, format, err := image.DecodeConfig(r)
	if err != nil {
		if errors.Is(err, image.ErrFormat) {
			return "", 0, 0, ErrUnsupported
		}
		return "", 0, 0, fmt.Errorf("thumb: decode config: %w", err)
	}
	return format, cfg.Width, cfg.Height, nil
}

// Render decodes the image read from src, scales it to fit a square of
// lim.MaxSide pixels keeping its aspect ratio, and encodes it to dst. It
// reads src twice (header, then pixels), so src must be seekable. It returns
// when ctx ends, with ctx's error, as soon as the decoder next reads.
func Render(ctx context.Context, src io.ReadSeeker, lim Limits, dst io.Writer) (res Result, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("thumb: decoder panic: %v", p)
		}
	}()
	lim = lim.withDefaults()
	r := &ctxReader{ctx: ctx, r: src}
	format, w, h, err := Config(r)
	if cerr := ctx.Err(); cerr != nil {
		return Result{}, fmt.Errorf("thumb: %w", cerr)
	}
	if err != nil {
		return Result{}, err
	}
	if w <= 0 || h <= 0 {
		return Result{}, fmt.Errorf("thumb: empty image %dx%d", w, h)
	}
	if int64(w)*int64(h) > lim.MaxPixels {
		return Result{}, fmt.Errorf("%w: %dx%d", ErrTooManyPixels, w, h)
	}
	if _, err := src.Seek(0, io.SeekStart); err != nil {
		return Result{}, fmt.Errorf("thumb: rewind: %w", err)
	}
	img, err := decode(format, r)
	if err != nil {
		if ctx.Err() != nil {
			return Result{}, fmt.Errorf("thumb: decode: %w", ctx.Err())
		}
		return Result{}, fmt.Errorf("thumb: decode %s: %w", format, err)
	}
	// A decoder must not return more pixels than its header declared; check
	// anyway, since the pixel budget is what protects memory.
	b := img.Bounds()
	if int64(b.Dx())*int64(b.Dy()) > lim.MaxPixels || b.Empty() {
		return Result{}, fmt.Errorf("%w: decoded %v", ErrTooManyPixels, b)
	}
	if err := ctx.Err(); err != nil {
		return Result{}, fmt.Errorf("thumb: %w", err)
	}
	tw, th := Fit(b.Dx(), b.Dy(), lim.MaxSide)
	out := scale(img, tw, th)
	if err := ctx.Err(); err != nil {
		return Result{}, fmt.Errorf("thumb: %w", err)
	}
	res = Result{Width: tw, Height: th}
	if out.Opaque() {
		res.ContentType = TypeJPEG
		err = jpeg.Encode(dst, out, &jpeg.Options{Quality: 82})
	} else {
		res.ContentType = TypePNG
		enc := png.Encoder{CompressionLevel: png.BestSpeed}
		err = enc.Encode(dst, out)
	}
	if err != nil {
		return Result{}, fmt.Errorf("thumb: encode: %w", err)
	}
	return res, nil
}

// Fit returns the size of a w×h image scaled down to fit in a maxSide square,
// keeping the aspect ratio; images that already fit keep their size. Neither
// side of the result is below 1.
func Fit(w, h, maxSide int) (int, int) {
	if w <= maxSide && h <= maxSide {
		return w, h
	}
	if w >= h {
		return maxSide, max(1, int(int64(h)*int64(maxSide)/int64(w)))
	}
	return max(1, int(int64(w)*int64(maxSide)/int64(h))), maxSide
}

func decode(format string, r io.Reader) (image.Image, error) {
	switch format {
	case "png":
		return png.Decode(r)
	case "jpeg":
		return jpeg.Decode(r)
	case "gif":
		return gif.Decode(r) // first frame only
	case "webp":
		return webp.Decode(r)
	}
	return nil, ErrUnsupported
}

// scale resizes img to w×h. A large reduction first goes through a cheap
// approximate pass down to twice the target, so that the bilinear kernel's
// scratch buffer (about 32 bytes per target column per source row) stays
// small whatever the source size.
func scale(img image.Image, w, h int) *image.RGBA {
	src := img
	sb := img.Bounds()
	if sb.Dx() > 2*w && sb.Dy() > 2*h {
		mid := image.NewRGBA(image.Rect(0, 0, 2*w, 2*h))
		draw.ApproxBiLinear.Scale(mid, mid.Bounds(), img, sb, draw.Src, nil)
		src, sb = mid, mid.Bounds()
	}
	dst := image.NewRGBA(image.Rect(0, 0, w, h))
	if sb.Dx() == w && sb.Dy() == h {
		draw.Copy(dst, image.Point{}, src, sb, draw.Src, nil)
	} else {
		draw.BiLinear.Scale(dst, dst.Bounds(), src, sb, draw.Src, nil)
	}
	return dst
}

// ctxReader fails reads once its context has ended, which is how a decode
// already in progress is abandoned.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c *ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
