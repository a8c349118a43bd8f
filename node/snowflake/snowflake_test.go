package snowflake

import (
	"encoding/json"
	"testing"
	"time"
)

func TestNextIncreasesAcrossClockSteps(t *testing.T) {
	g := New(3)
	clock := time.UnixMilli(Epoch + 1_000_000)
	g.now = func() time.Time { return clock }
	var last ID
	for i := 0; i < 10_000; i++ { // more than 4096 per millisecond
		id := g.Next()
		if id <= last {
			t.Fatalf("id %d not greater than %d at %d", id, last, i)
		}
		last = id
	}
	clock = clock.Add(-time.Hour) // clock goes backwards
	if id := g.Next(); id <= last {
		t.Fatalf("after clock step back: %d <= %d", id, last)
	}
}

func TestTimeRoundTrip(t *testing.T) {
	now := time.Now().Truncate(time.Millisecond)
	g := New(1)
	g.now = func() time.Time { return now }
	id := g.Next()
	if !id.Time().Equal(now.UTC()) {
		t.Fatalf("Time() = %v, want %v", id.Time(), now)
	}
	if FromTime(now) > id || FromTime(now.Add(time.Millisecond)) <= id {
		t.Fatalf("FromTime bounds wrong for %d", id)
	}
}

func TestObserve(t *testing.T) {
	g := New(0)
	future := FromTime(time.Now().Add(time.Hour)) | 5
	g.Observe(future)
	if id := g.Next(); id <= future {
		t.Fatalf("Next() = %d after Observe(%d)", id, future)
	}
}

func TestParse(t *testing.T) {
	for _, s := range []string{"", "-1", "abc", "18446744073709551616"} {
		if _, err := Parse(s); err == nil {
			t.Errorf("Parse(%q) succeeded", s)
		}
	}
	if id, err := Parse("175928847299117063"); err != nil || id != 175928847299117063 {
		t.Errorf("Parse: %v %v", id, err)
	}
}

func TestJSON(t *testing.T) {
	var id ID
	for _, in := range []string{`"42"`, `42`} {
		if err := id.UnmarshalJSON([]byte(in)); err != nil || id != 42 {
			t.Errorf("UnmarshalJSON(%s) = %v, %v", in, id, err)
		}
	}
	for _, in := range []string{`"x"`, `-1`, `"1.5"`, `{}`} {
		if err := id.UnmarshalJSON([]byte(in)); err == nil {
			t.Errorf("UnmarshalJSON(%s) succeeded", in)
		}
	}
	b, _ := json.Marshal(struct {
		ID  ID
		Map map[ID]bool
	}{42, map[ID]bool{7: true}})
	if string(b) != `{"ID":"42","Map":{"7":true}}` {
		t.Errorf("json.Marshal = %s", b)
	}
}
