package store

import (
	"log/slog"
	"sync/atomic"
	"time"
)

// spaceGuard refuses writes while the file system holding dir has less than min bytes
// free. It looks at most once a second (a statfs), on the first write after that second.
type spaceGuard struct {
	dir     string
	min     uint64
	log     *slog.Logger
	checked atomic.Int64 // when it last looked, in Unix nanoseconds
	low     atomic.Bool
}

// check returns ErrNoSpace while the free space is below the reserve. A nil guard never
// refuses.
func (g *spaceGuard) check() error {
	if g == nil {
		return nil
	}
	now, last := time.Now().UnixNano(), g.checked.Load()
	if now-last >= int64(time.Second) && g.checked.CompareAndSwap(last, now) {
		g.update()
	}
	if g.low.Load() {
		return ErrNoSpace
	}
	return nil
}

// update looks at the free space and logs a change of state.
func (g *spaceGuard) update() {
	free, err := freeBytes(g.dir)
	if err != nil {
		g.log.Debug("cannot tell the free disk space; writes go on", "dir", g.dir, "err", err)
		return
	}
	low := free < g.min
	if low == g.low.Swap(low) {
		return
	}
	if low {
		g.log.Error("the disk is nearly full: writes are refused until space is freed",
			"dir", g.dir, "free_bytes", free, "min_free_bytes", g.min)
	} else {
		g.log.Info("disk space freed: writes are accepted again", "dir", g.dir, "free_bytes", free)
	}
}
