package media
import ("testing";"time";"github.com/dgraph-io/badger/v4")
func TestXTiming(t *testing.T) {
	t0 := time.Now()
	db, _ := badger.Open(badger.DefaultOptions("").WithInMemory(true).WithLogger(nil))
	t.Log("badger open", time.Since(t0)); t0 = time.Now()
	s, _ := Open(t.TempDir(), Options{DB: db})
	t.Log("open", time.Since(t0)); t0 = time.Now()
	s.Close()
	t.Log("close", time.Since(t0)); t0 = time.Now()
	db.Close()
	t.Log("db close", time.Since(t0))
}
