package media

import (
	"log/slog"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/hearth-chat/hearth/node/media/thumb"
)

// Options configure a Store. The zero value is usable: every zero field
// selects the default documented on it.
type Options struct {
	// DB is the Badger database that holds the media index (blob metadata,
	// ownership and quota counters) under the key prefix "m/". The node
	// passes its one database, opened with SyncWrites so an acknowledged
	// upload survives a crash; the Store never closes it. If nil, Open
	// opens a private database in dir/index and Close closes it.
	DB *badger.DB
	// Space, if set, is asked before each upload and fetch is stored; its error
	// refuses it (the node's free-space reserve, node/store.DB.Space).
	Space func() error
	// SigningKey is the HMAC key for media URLs, at least MinKeySize bytes.
	// If nil, Open loads dir/url.key, creating it with 32 random bytes
	// (mode 0600) on first use, so signed URLs survive restarts.
	SigningKey []byte
	// MaxFileSize is the largest blob, in bytes, that Put accepts and that
	// is fetched from another node. Zero means 25 MiB.
	MaxFileSize int64
	// OwnerQuota is how many bytes of distinct blobs one owner may hold.
	// Zero means 1 GiB; negative means unlimited.
	OwnerQuota int64
	// Thumb bounds thumbnail generation (longest side, pixel budget); its
	// zero value selects thumb's defaults (512 px, 50 megapixels).
	Thumb thumb.Limits
	// ThumbTimeout bounds the time spent rendering one thumbnail. Zero
	// means 10 s.
	ThumbTimeout time.Duration
	// ThumbWorkers is how many thumbnails render at once, which bounds the
	// memory thumbnailing can take (about 4 bytes × Thumb.MaxPixels each).
	// Zero means 1.
	ThumbWorkers int
	// GCGrace is how long a blob is kept after its last upload or remote
	// reference even if nothing references it, so that a message being
	// composed does not lose its files. It also protects temporary files of
	// uploads in progress. Zero means 1 hour.
	GCGrace time.Duration
	// Fetcher fetches the bytes of blobs announced by other nodes (see
	// AddRemote). If nil, such blobs are served only once uploaded locally.
	Fetcher Fetcher
	// FetchTimeout bounds one remote fetch. Zero means 2 minutes.
	FetchTimeout time.Duration
	// Logger receives background errors (thumbnails, fetches). Nil means
	// slog.Default().
	Logger *slog.Logger
	// Now is the clock used for URL expiry and GC grace. Nil means time.Now.
	Now func() time.Time
}

func (o Options) withDefaults() Options {
	if o.MaxFileSize <= 0 {
		o.MaxFileSize = 25 << 20
	}
	if o.OwnerQuota == 0 {
		o.OwnerQuota = 1 << 30
	}
	if o.ThumbTimeout <= 0 {
		o.ThumbTimeout = 10 * time.Second
	}
	if o.ThumbWorkers <= 0 {
		o.ThumbWorkers = 1
	}
	if o.GCGrace <= 0 {
		o.GCGrace = time.Hour
	}
	if o.FetchTimeout <= 0 {
		o.FetchTimeout = 2 * time.Minute
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o
}
