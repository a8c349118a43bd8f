// Package store keeps the node's records in one BadgerDB.
//
// Keys are a short ASCII prefix followed by fixed-width big-endian IDs, so that the reads that
// matter are prefix scans in order: a channel's messages by ID for history pages, a guild's
// members, a user's read states. Values are JSON. Writes are synced before a commit returns,
// so a write that a client was told succeeded survives kill -9; concurrent commits share one
// fsync (Update, Sync), which is what keeps that affordable.
package store

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"

	"github.com/dgraph-io/badger/v4"
)

// ErrNotFound is returned by Get when a key has no value.
var ErrNotFound = errors.New("store: not found")

// Options configure Open. The zero value is a durable on-disk store.
type Options struct {
	// InMemory keeps everything in memory (tests only; nothing survives Close).
	InMemory bool
	// Logger receives Badger's warnings and errors. Nil means slog.Default().
	Logger *slog.Logger
	// MinFree is the free space, in bytes, that the database's file system must keep: below
	// it writes fail with ErrNoSpace (reads go on) until space is freed. Badger writes
	// through memory maps, and a write into a map on a full disk kills the process
	// (SIGBUS), so the reserve must hold a memtable's log and its flush. 0 means no check.
	MinFree uint64
}

// ErrNoSpace is returned by writes while the database's file system has less free space
// than Options.MinFree.
var ErrNoSpace = errors.New("store: the disk is nearly full")

// DB is the node's database.
type DB struct {
	db    *badger.DB
	gs    groupSync
	space *spaceGuard // nil without a reserve
}

// groupSync lets concurrent writers share fsyncs: a writer takes a ticket after its commit and
// waits until a sync that started after the ticket finished; whoever finds no sync running
// performs one for everybody.
type groupSync struct {
	mu      sync.Mutex
	cond    *sync.Cond
	issued  uint64
	synced  uint64
	running bool
	err     error
}

// wait returns once everything committed before the call is on disk.
func (g *groupSync) wait(syncFn func() error) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.cond == nil {
		g.cond = sync.NewCond(&g.mu)
	}
	g.issued++
	ticket := g.issued
	for g.synced < ticket {
		if g.running {
			g.cond.Wait()
			continue
		}
		g.running = true
		target := g.issued
		g.mu.Unlock()
		err := syncFn()
		g.mu.Lock()
		g.running = false
		g.synced, g.err = target, err
		g.cond.Broadcast()
	}
	return g.err
}

// Open opens or creates the database in dir.
func Open(dir string, opts Options) (*DB, error) {
	bo := badger.DefaultOptions(dir).
		WithSyncWrites(false). // see the package comment: Update syncs in groups
		WithLogger(badgerLogger{logger(opts.Logger)}).
		WithNumVersionsToKeep(1).
		WithBlockCacheSize(64 << 20).
		WithIndexCacheSize(32 << 20).
		WithMemTableSize(32 << 20).
		WithNumMemtables(3).
		WithValueThreshold(1 << 10)
	if opts.InMemory {
		bo = bo.WithInMemory(true).WithDir("").WithValueDir("")
	}
	db, err := badger.Open(bo)
	if err != nil {
		return nil, fmt.Errorf("store: open %s: %w", dir, err)
	}
	d := &DB{db: db}
	if opts.MinFree > 0 && !opts.InMemory {
		d.space = &spaceGuard{dir: dir, min: opts.MinFree, log: logger(opts.Logger)}
	}
	if err := d.checkFormat(); err != nil {
		return nil, errors.Join(fmt.Errorf("store: open %s: %w", dir, err), db.Close())
	}
	return d, nil
}

// Format is the version of the database's layout that this build writes: the record kinds
// and encodings listed under the key prefixes, and the federation store's records beside
// them. A change that an older build would misread raises it, and Open then upgrades older
// databases; a database of a newer format is refused, so that a downgraded node never
// misreads or overwrites what a newer one wrote.
const Format = 1

// keyFormat holds the database's Format (a JSON number).
const keyFormat = "meta/format"

// ErrNewerFormat is returned by Open for a database written by a newer build.
var ErrNewerFormat = errors.New("database written by a newer Hearth")

// checkFormat records Format in a database that has none (a new one, or one written before
// the format was recorded, which is format 1) and refuses a newer one.
func (d *DB) checkFormat() error {
	var f int
	err := d.View(func(tx *Tx) error { return tx.Get([]byte(keyFormat), &f) })
	switch {
	case errors.Is(err, ErrNotFound):
		return d.Update(func(tx *Tx) error { return tx.Put([]byte(keyFormat), Format) })
	case err != nil:
		return fmt.Errorf("read the database format: %w", err)
	case f > Format:
		return fmt.Errorf("%w (format %d; this build reads format %d): run that version or newer, or restore the backup taken before the upgrade", ErrNewerFormat, f, Format)
	}
	return nil
}

// Close flushes and closes the database.
func (d *DB) Close() error {
	if err := d.db.Close(); err != nil {
		return fmt.Errorf("store: close: %w", err)
	}
	return nil
}

// Space returns ErrNoSpace while the database's file system is below its reserve
// (Options.MinFree). Components that write through Badger directly call it before they
// write.
func (d *DB) Space() error { return d.space.check() }

// Badger exposes the underlying database for components that keep their own keys under
// their own prefix (federation, media). They must not write keys of this package's prefixes,
// and they call Sync after a commit that must be durable.
func (d *DB) Badger() *badger.DB { return d.db }

// RunGC reclaims value log space; call it periodically from the owner of the DB.
func (d *DB) RunGC() {
	for d.db.RunValueLogGC(0.5) == nil {
	}
}

// Update runs fn in a read-write transaction and commits it durably: it returns after the
// commit is synced to disk. Conflicting transactions are retried a few times.
func (d *DB) Update(fn func(*Tx) error) error {
	if err := d.UpdateLazy(fn); err != nil {
		return err
	}
	return d.Sync()
}

// UpdateLazy is Update without waiting for the fsync: the write survives a crash of the
// process at once, and a power loss once any later Update (or Sync) has synced. Use it for
// writes that can be redone from another durable source, such as federation events the
// federation store holds and replays at start.
func (d *DB) UpdateLazy(fn func(*Tx) error) error {
	if err := d.Space(); err != nil {
		return err
	}
	for attempt := 0; ; attempt++ {
		err := d.db.Update(func(txn *badger.Txn) error { return fn(&Tx{txn: txn}) })
		if errors.Is(err, badger.ErrConflict) && attempt < 5 {
			continue
		}
		return err
	}
}

// Sync returns once everything committed to the database before the call is on disk, sharing
// the fsync with concurrent Update calls. Components that write through Badger directly (see
// Badger) call it after their commits, since the database does not sync writes by itself.
func (d *DB) Sync() error {
	if err := d.gs.wait(d.db.Sync); err != nil {
		return fmt.Errorf("store: sync: %w", err)
	}
	return nil
}

// Batch runs fn to write more keys than one transaction holds (a Badger transaction is
// bounded by the memtable's size): its writes are committed in as many commits as they need,
// and Batch returns once they are on disk. It is not atomic: a crash may keep some of the
// writes and not others, so callers write only records that nothing refers to until a later
// Update (which makes them reachable) has committed.
func (d *DB) Batch(fn func(*Batch) error) error {
	if err := d.Space(); err != nil {
		return err
	}
	wb := d.db.NewWriteBatch()
	defer wb.Cancel()
	if err := fn(&Batch{wb: wb}); err != nil {
		return err
	}
	if err := wb.Flush(); err != nil {
		return fmt.Errorf("store: batch: %w", err)
	}
	return d.Sync()
}

// Batch collects the writes of DB.Batch.
type Batch struct {
	wb *badger.WriteBatch
}

// Put encodes v as JSON at key.
func (b *Batch) Put(key []byte, v any) error {
	enc, err := encode(key, v)
	if err != nil {
		return err
	}
	if err := b.wb.Set(key, enc); err != nil {
		return fmt.Errorf("store: batch set: %w", err)
	}
	return nil
}

// Delete removes key; deleting a missing key is not an error.
func (b *Batch) Delete(key []byte) error {
	if err := b.wb.Delete(key); err != nil {
		return fmt.Errorf("store: batch delete: %w", err)
	}
	return nil
}

// View runs fn in a read-only transaction.
func (d *DB) View(fn func(*Tx) error) error {
	return d.db.View(func(txn *badger.Txn) error { return fn(&Tx{txn: txn}) })
}

// Tx is a transaction. It is valid only inside the function given to Update or View.
type Tx struct {
	txn *badger.Txn
}

// Get decodes the value at key into v, or returns ErrNotFound.
func (t *Tx) Get(key []byte, v any) error {
	item, err := t.txn.Get(key)
	if errors.Is(err, badger.ErrKeyNotFound) {
		return ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("store: get: %w", err)
	}
	return item.Value(func(b []byte) error {
		if err := json.Unmarshal(b, v); err != nil {
			return fmt.Errorf("store: decode %q: %w", key, err)
		}
		return nil
	})
}

// Has reports whether key exists.
func (t *Tx) Has(key []byte) (bool, error) {
	_, err := t.txn.Get(key)
	if errors.Is(err, badger.ErrKeyNotFound) {
		return false, nil
	}
	return err == nil, err
}

// Put encodes v as JSON at key.
func (t *Tx) Put(key []byte, v any) error {
	b, err := encode(key, v)
	if err != nil {
		return err
	}
	return t.PutRaw(key, b)
}

// encode is how Put stores values: JSON.
func encode(key []byte, v any) ([]byte, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("store: encode %q: %w", key, err)
	}
	return b, nil
}

// PutRaw stores b at key as is.
func (t *Tx) PutRaw(key, b []byte) error {
	if err := t.txn.Set(key, b); err != nil {
		return fmt.Errorf("store: set: %w", err)
	}
	return nil
}

// Delete removes key; deleting a missing key is not an error.
func (t *Tx) Delete(key []byte) error {
	if err := t.txn.Delete(key); err != nil {
		return fmt.Errorf("store: delete: %w", err)
	}
	return nil
}

// Scan calls fn for each key with the prefix, in key order (reverse order if reverse is
// set), starting at start (inclusive; nil means the first or, reversed, the last key of the
// prefix). fn returns false to stop. The key and value are valid only during the call.
func (t *Tx) Scan(prefix, start []byte, reverse bool, fn func(key, val []byte) (bool, error)) error {
	opts := badger.DefaultIteratorOptions
	opts.Prefix = prefix
	opts.Reverse = reverse
	opts.PrefetchValues = false
	it := t.txn.NewIterator(opts)
	defer it.Close()
	seek := start
	if seek == nil {
		seek = prefix
		if reverse {
			seek = append(bytes.Clone(prefix), 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff)
		}
	}
	for it.Seek(seek); it.ValidForPrefix(prefix); it.Next() {
		item := it.Item()
		var goOn bool
		err := item.Value(func(v []byte) error {
			var err error
			goOn, err = fn(item.Key(), v)
			return err
		})
		if err != nil {
			return err
		}
		if !goOn {
			return nil
		}
	}
	return nil
}

// Key builds a key from a prefix and IDs, each as 8 big-endian bytes.
func Key(prefix string, ids ...uint64) []byte {
	b := make([]byte, len(prefix), len(prefix)+8*len(ids))
	copy(b, prefix)
	for _, id := range ids {
		b = binary.BigEndian.AppendUint64(b, id)
	}
	return b
}

// KeyString builds a key from a prefix and a string suffix.
func KeyString(prefix, s string) []byte { return append([]byte(prefix), s...) }

// IDAt returns the big-endian ID at byte offset off of key, or 0 if the key is too short.
func IDAt(key []byte, off int) uint64 {
	if len(key) < off+8 {
		return 0
	}
	return binary.BigEndian.Uint64(key[off:])
}

// Key prefixes. Each names one kind of record; the IDs that follow are listed beside it.
// Beside them live node/media's index ("m/b/", "m/r/", "m/u/": a scan of PrefixMessage
// meets those too), the federation store ("f/") and the format record (keyFormat).
const (
	PrefixUser          = "u/"   // user → model.User
	PrefixUsername      = "un/"  // lower-case username → user ID (JSON number)
	PrefixCredential    = "pw/"  // user → argon2id hash (JSON string)
	PrefixToken         = "tk/"  // sha256(token) → user ID
	PrefixGuild         = "g/"   // guild → model.Guild
	PrefixRole          = "r/"   // guild, role → model.Role
	PrefixChannel       = "c/"   // channel → model.Channel
	PrefixMember        = "gm/"  // guild, user → model.Member
	PrefixBan           = "ban/" // guild, user → model.Ban
	PrefixInvite        = "inv/" // code → model.Invite
	PrefixMessage       = "m/"   // channel, message → model.Message
	PrefixPin           = "pin/" // channel, message → pin time (RFC 3339 string)
	PrefixReadState     = "rs/"  // user, channel → model.ReadState
	PrefixPrivateChan   = "pc/"  // user, channel → true (the user's DMs and group DMs)
	PrefixAttachRef     = "ar/"  // hex hash, channel, message → true (media GC asks whether a blob is used)
	PrefixFedMessage    = "fm/"  // federation event ID → local message ID (remote messages applied once)
	PrefixFedMessageRev = "fr/"  // local message → its federation event ID
	PrefixFedApplied    = "fa/"  // federation event ID → true (a remote change applied, so a replay skips it)
	PrefixRoleFed       = "rf/"  // guild, role → the role's federation ID (JSON string)
	PrefixImageRef      = "ir/"  // hex hash, "u" user or "g" guild → true (a blob is an avatar or icon)
)

type badgerLogger struct{ l *slog.Logger }

func (b badgerLogger) Errorf(f string, a ...any) {
	b.l.Error(fmt.Sprintf(f, a...), "component", "badger")
}
func (b badgerLogger) Warningf(f string, a ...any) {
	b.l.Warn(fmt.Sprintf(f, a...), "component", "badger")
}
func (b badgerLogger) Infof(string, ...any)  {}
func (b badgerLogger) Debugf(string, ...any) {}

func logger(l *slog.Logger) *slog.Logger {
	if l == nil {
		return slog.Default()
	}
	return l
}

// Iter walks the keys of one prefix in order. It is valid only inside the transaction that
// made it, and must be closed.
type Iter struct {
	it     *badger.Iterator
	prefix []byte
}

// Iter returns an iterator over prefix, positioned at its first key.
func (t *Tx) Iter(prefix []byte) *Iter {
	opts := badger.DefaultIteratorOptions
	opts.Prefix = prefix
	opts.PrefetchValues = false
	it := t.txn.NewIterator(opts)
	it.Seek(prefix)
	return &Iter{it: it, prefix: prefix}
}

// Valid reports whether the iterator is at a key of its prefix.
func (i *Iter) Valid() bool { return i.it.ValidForPrefix(i.prefix) }

// Key is the current key (valid until Next).
func (i *Iter) Key() []byte { return i.it.Item().Key() }

// Value calls fn with the current value (valid only during the call).
func (i *Iter) Value(fn func([]byte) error) error { return i.it.Item().Value(fn) }

// Next moves to the next key.
func (i *Iter) Next() { i.it.Next() }

// Close releases the iterator.
func (i *Iter) Close() { i.it.Close() }
