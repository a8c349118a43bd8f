package search

import (
	"math/rand/v2"
	"testing"
	"time"
)

// TestCoverDays checks that the buckets chosen for a day range hold exactly
// the days of the range, and stay few.
func TestCoverDays(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	dayTerms := func(day uint64) map[string]bool {
		m := make(map[string]bool)
		for level := range bucketLevels {
			m[bucketTerm(level, day>>(3*level))] = true
		}
		return m
	}
	for range 500 {
		lo := uint64(rng.IntN(3000))
		hi := lo + uint64(rng.IntN(2000))
		terms := coverDays(lo, hi)
		if len(terms) > 60 {
			t.Errorf("%d..%d: %d terms", lo, hi, len(terms))
		}
		for day := lo - min(lo, 600); day < hi+600; day++ {
			in := false
			for term := range dayTerms(day) {
				for _, c := range terms {
					in = in || c == term
				}
			}
			if want := day >= lo && day <= hi; in != want {
				t.Fatalf("%d..%d: day %d covered = %v", lo, hi, day, in)
			}
		}
	}
	if n := len(coverDays(0, maxDay)); n > 120 {
		t.Errorf("the whole snowflake range takes %d terms", n)
	}
}

func TestSnowflakeTime(t *testing.T) {
	at := time.Date(2026, 3, 4, 5, 6, 7, 8e6, time.UTC)
	id := SnowflakeAt(at) | 12345
	if got := SnowflakeTime(id); !got.Equal(at) {
		t.Errorf("SnowflakeTime = %v, want %v", got, at)
	}
	if SnowflakeAt(time.Date(2010, 1, 1, 0, 0, 0, 0, time.UTC)) != 0 {
		t.Error("time before the epoch is not 0")
	}
	if d := snowflakeDay(^uint64(0)); d != maxDay || lastID(d) != ^uint64(0) {
		t.Errorf("last day %d, last ID %d", d, lastID(d))
	}
	if firstID(snowflakeDay(id)) > id || lastID(snowflakeDay(id)) < id {
		t.Error("day bounds do not hold the ID")
	}
}
