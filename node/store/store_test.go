package store

import (
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"
)

func TestPutGetScanDelete(t *testing.T) {
	db, err := Open(t.TempDir(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	err = db.Update(func(tx *Tx) error {
		for i := uint64(1); i <= 5; i++ {
			if err := tx.Put(Key(PrefixMessage, 7, i), map[string]uint64{"n": i}); err != nil {
				return err
			}
		}
		return tx.Put(Key(PrefixMessage, 8, 1), "other channel")
	})
	if err != nil {
		t.Fatal(err)
	}
	var got []uint64
	err = db.View(func(tx *Tx) error {
		prefix := Key(PrefixMessage, 7)
		return tx.Scan(prefix, nil, true, func(k, _ []byte) (bool, error) {
			got = append(got, IDAt(k, len(prefix)))
			return len(got) < 3, nil
		})
	})
	if err != nil || len(got) != 3 || got[0] != 5 || got[2] != 3 {
		t.Fatalf("reverse scan = %v, %v", got, err)
	}
	_ = db.Update(func(tx *Tx) error { return tx.Delete(Key(PrefixMessage, 7, 5)) })
	err = db.View(func(tx *Tx) error {
		var v map[string]uint64
		if err := tx.Get(Key(PrefixMessage, 7, 5), &v); !errors.Is(err, ErrNotFound) {
			t.Errorf("deleted key: %v", err)
		}
		if err := tx.Get(Key(PrefixMessage, 7, 4), &v); err != nil || v["n"] != 4 {
			t.Errorf("Get = %v, %v", v, err)
		}
		ok, err := tx.Has(Key(PrefixMessage, 8, 1))
		if !ok || err != nil {
			t.Errorf("Has = %v, %v", ok, err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestGroupSyncSharesFsyncs: many concurrent writers complete with far fewer syncs than
// writes, and every writer waits for a sync that started after its commit.
func TestGroupSyncSharesFsyncs(t *testing.T) {
	var g groupSync
	var syncs, committed, coveredAtSync atomic.Int64
	syncFn := func() error {
		syncs.Add(1)
		coveredAtSync.Store(committed.Load())
		time.Sleep(time.Millisecond) // an fsync takes time; writers pile up meanwhile
		return nil
	}
	var wg sync.WaitGroup
	for w := 0; w < 50; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 20; i++ {
				mine := committed.Add(1)
				if err := g.wait(syncFn); err != nil {
					t.Error(err)
				}
				if coveredAtSync.Load() < mine {
					t.Errorf("returned before a sync covered write %d", mine)
				}
			}
		}()
	}
	wg.Wait()
	if n := syncs.Load(); n >= 1000 || n == 0 {
		t.Fatalf("%d syncs for 1000 writes", n)
	}
	if err := g.wait(func() error { return errors.New("disk on fire") }); err == nil {
		t.Fatal("sync error not returned")
	}
}

func TestFormat(t *testing.T) {
	dir := t.TempDir()
	reopen := func() (*DB, error) { return Open(dir, Options{}) }

	// A new database records the format.
	db, err := reopen()
	if err != nil {
		t.Fatal(err)
	}
	var f int
	if err := db.View(func(tx *Tx) error { return tx.Get([]byte(keyFormat), &f) }); err != nil || f != Format {
		t.Fatalf("format = %d, %v; want %d", f, err, Format)
	}
	// One written before the format was recorded is format 1 and gets the record.
	if err := db.Update(func(tx *Tx) error {
		return errors.Join(tx.Delete([]byte(keyFormat)), tx.Put(Key(PrefixUser, 1), "kept"))
	}); err != nil {
		t.Fatal(err)
	}
	db.Close()
	if db, err = reopen(); err != nil {
		t.Fatalf("database without a format record: %v", err)
	}
	var kept string
	if err := db.View(func(tx *Tx) error {
		return errors.Join(tx.Get([]byte(keyFormat), &f), tx.Get(Key(PrefixUser, 1), &kept))
	}); err != nil || f != Format || kept != "kept" {
		t.Fatalf("after reopen: format %d, record %q, %v", f, kept, err)
	}
	// A newer format is refused, and the database is left as it was.
	if err := db.Update(func(tx *Tx) error { return tx.Put([]byte(keyFormat), Format+1) }); err != nil {
		t.Fatal(err)
	}
	db.Close()
	if _, err := reopen(); !errors.Is(err, ErrNewerFormat) {
		t.Fatalf("newer format: err = %v, want ErrNewerFormat", err)
	}
	raw, err := badger.Open(badger.DefaultOptions(dir).WithLogger(nil))
	if err != nil {
		t.Fatalf("the refused database was left locked or broken: %v", err)
	}
	defer raw.Close()
	if err := raw.View(func(txn *badger.Txn) error {
		it, err := txn.Get([]byte(keyFormat))
		if err != nil {
			return err
		}
		return it.Value(func(v []byte) error {
			if string(v) != strconv.Itoa(Format+1) {
				return fmt.Errorf("format record rewritten to %s", v)
			}
			return nil
		})
	}); err != nil {
		t.Fatal(err)
	}
}
