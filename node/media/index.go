package media

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/dgraph-io/badger/v4"
)

// Key layout in the Badger database, all under "m/":
//
//	m/b/<hash 32 bytes>                  → meta (JSON)
//	m/r/<hash 32 bytes><owner 8 bytes BE> → empty: owner is charged for hash
//	m/u/<owner 8 bytes BE>                → bytes charged to owner (uint64 BE)
const (
	prefixBlob  = "m/b/"
	prefixRef   = "m/r/"
	prefixUsage = "m/u/"
)

func blobKey(h Hash) []byte { return append([]byte(prefixBlob), h[:]...) }

func refKey(h Hash, owner uint64) []byte {
	k := append([]byte(prefixRef), h[:]...)
	return binary.BigEndian.AppendUint64(k, owner)
}

func usageKey(owner uint64) []byte {
	return binary.BigEndian.AppendUint64([]byte(prefixUsage), owner)
}

// thumbState records thumbnail progress, so each image is rendered once.
type thumbState uint8

const (
	thumbNone    thumbState = iota // not an image the thumbnailer reads
	thumbPending                   // to be rendered
	thumbReady                     // rendered, on disk
	thumbFailed                    // rendering failed for good; never retried
)

// meta is what the index knows about one blob.
type meta struct {
	Size   int64  `json:"s"`
	Type   string `json:"t,omitempty"`
	Width  int    `json:"w,omitempty"`
	Height int    `json:"h,omitempty"`
	// Touched is the Unix time in nanoseconds of the last Put or AddRemote
	// of the blob; GC keeps it for Options.GCGrace after that.
	Touched int64 `json:"at"`
	// Present says the bytes are on local disk. A blob announced by another
	// node is not present until fetched from Origin.
	Present   bool       `json:"p,omitempty"`
	Origin    string     `json:"o,omitempty"`
	Thumb     thumbState `json:"th,omitempty"`
	ThumbType string     `json:"tt,omitempty"`
}

func (m meta) blob(h Hash) Blob {
	return Blob{Hash: h, Size: m.Size, ContentType: m.Type, Width: m.Width, Height: m.Height}
}

// getMeta reads the meta of h; found is false if the index has none.
func getMeta(txn *badger.Txn, h Hash) (m meta, found bool, err error) {
	item, err := txn.Get(blobKey(h))
	if errors.Is(err, badger.ErrKeyNotFound) {
		return meta{}, false, nil
	}
	if err != nil {
		return meta{}, false, err
	}
	err = item.Value(func(v []byte) error { return json.Unmarshal(v, &m) })
	if err != nil {
		return meta{}, false, fmt.Errorf("blob %v: %w", h, err)
	}
	return m, true, nil
}

func setMeta(txn *badger.Txn, h Hash, m meta) error {
	v, err := json.Marshal(m)
	if err != nil {
		return err
	}
	return txn.Set(blobKey(h), v)
}

func getUsage(txn *badger.Txn, owner uint64) (int64, error) {
	item, err := txn.Get(usageKey(owner))
	if errors.Is(err, badger.ErrKeyNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	var n int64
	err = item.Value(func(v []byte) error {
		if len(v) != 8 {
			return fmt.Errorf("usage of %d: %d-byte value", owner, len(v))
		}
		n = int64(binary.BigEndian.Uint64(v))
		return nil
	})
	return n, err
}

// addUsage adds delta (which may be negative) to owner's counter, deleting
// it when it reaches zero.
func addUsage(txn *badger.Txn, owner uint64, delta int64) error {
	n, err := getUsage(txn, owner)
	if err != nil {
		return err
	}
	n = max(n+delta, 0)
	if n == 0 {
		return txn.Delete(usageKey(owner))
	}
	return txn.Set(usageKey(owner), binary.BigEndian.AppendUint64(nil, uint64(n)))
}

func exists(txn *badger.Txn, key []byte) (bool, error) {
	_, err := txn.Get(key)
	if errors.Is(err, badger.ErrKeyNotFound) {
		return false, nil
	}
	return err == nil, err
}

// update runs fn in a read-write transaction, retrying when a concurrent
// transaction conflicted with it.
func update(db *badger.DB, fn func(txn *badger.Txn) error) error {
	var err error
	for range 16 {
		err = db.Update(fn)
		if !errors.Is(err, badger.ErrConflict) {
			return err
		}
	}
	return err
}
