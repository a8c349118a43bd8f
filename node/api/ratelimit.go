package api

import (
	"math"
	"net/http"
	"strconv"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/hearth-chat/hearth/node/chat"
)

// limiter keeps one token bucket per key and forgets idle ones.
type limiter struct {
	mu      sync.Mutex
	buckets map[string]*bucket
	stop    chan struct{}
	done    chan struct{}
}

type bucket struct {
	lim  *rate.Limiter
	seen time.Time
}

func newLimiter() *limiter {
	l := &limiter{buckets: map[string]*bucket{}, stop: make(chan struct{}), done: make(chan struct{})}
	go l.sweep()
	return l
}

func (l *limiter) sweep() {
	defer close(l.done)
	t := time.NewTicker(time.Minute)
	defer t.Stop()
	for {
		select {
		case <-l.stop:
			return
		case now := <-t.C:
			l.mu.Lock()
			for k, b := range l.buckets {
				if now.Sub(b.seen) > 5*time.Minute {
					delete(l.buckets, k)
				}
			}
			l.mu.Unlock()
		}
	}
}

func (l *limiter) close() {
	close(l.stop)
	<-l.done
}

// allow takes one token from key's bucket (perSecond refill, burst capacity), writes the
// X-RateLimit headers, and returns a 429 error when the bucket is empty.
func (l *limiter) allow(w http.ResponseWriter, key string, perSecond float64, burst int, bucketName string) error {
	now := time.Now()
	l.mu.Lock()
	b := l.buckets[key]
	if b == nil {
		b = &bucket{lim: rate.NewLimiter(rate.Limit(perSecond), burst)}
		l.buckets[key] = b
	}
	b.seen = now
	ok := b.lim.AllowN(now, 1)
	remaining := int(math.Max(0, math.Floor(b.lim.TokensAt(now))))
	l.mu.Unlock()
	resetAfter := float64(burst-remaining) / perSecond
	// The keys are written in canonical form, which spares Header.Set's canonicalisation on
	// every request.
	h := w.Header()
	h["X-Ratelimit-Limit"] = []string{strconv.Itoa(burst)}
	h["X-Ratelimit-Remaining"] = []string{strconv.Itoa(remaining)}
	h["X-Ratelimit-Reset-After"] = []string{strconv.FormatFloat(resetAfter, 'f', 3, 64)}
	h["X-Ratelimit-Reset"] = []string{strconv.FormatFloat(float64(now.UnixMilli())/1000+resetAfter, 'f', 3, 64)}
	h["X-Ratelimit-Bucket"] = []string{bucketName}
	if ok {
		return nil
	}
	wait := time.Duration(float64(time.Second) / perSecond)
	return chat.RateLimited(wait)
}
