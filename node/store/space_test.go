package store

import (
	"errors"
	"testing"
)

// TestSpaceReserve checks the free-space reserve: below it writes fail with ErrNoSpace and
// reads go on; once space is back (here: the reserve lowered), writes are accepted again. A
// new database cannot even record its format below the reserve, so Open fails clearly.
func TestSpaceReserve(t *testing.T) {
	dir := t.TempDir()
	const huge = 1 << 62 // more than any disk has free
	if _, err := Open(t.TempDir(), Options{MinFree: huge}); !errors.Is(err, ErrNoSpace) {
		t.Fatalf("opening a new database below the reserve: %v, want ErrNoSpace", err)
	}
	db, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(func(tx *Tx) error { return tx.Put([]byte("k"), "before") }); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	db, err = Open(dir, Options{MinFree: huge})
	if err != nil {
		t.Fatalf("reopening below the reserve (reads need no space): %v", err)
	}
	defer db.Close()
	writes := []struct {
		name  string
		write func() error
	}{
		{"Update", func() error { return db.Update(func(tx *Tx) error { return tx.Put([]byte("k"), "after") }) }},
		{"UpdateLazy", func() error { return db.UpdateLazy(func(tx *Tx) error { return tx.Put([]byte("k"), "after") }) }},
		{"Batch", func() error { return db.Batch(func(b *Batch) error { return b.Put([]byte("k"), "after") }) }},
		{"Space", db.Space},
	}
	for _, w := range writes {
		if err := w.write(); !errors.Is(err, ErrNoSpace) {
			t.Errorf("%s below the reserve: %v, want ErrNoSpace", w.name, err)
		}
	}
	var got string
	if err := db.View(func(tx *Tx) error { return tx.Get([]byte("k"), &got) }); err != nil || got != "before" {
		t.Fatalf("read below the reserve: %q, %v; want the value written before", got, err)
	}

	db.space.min = 1 // space freed
	db.space.checked.Store(0)
	if err := db.Update(func(tx *Tx) error { return tx.Put([]byte("k"), "after") }); err != nil {
		t.Fatalf("write once space is back: %v", err)
	}
}
