package chat

import (
	"bytes"
	"encoding/json"
)

// Optional is a PATCH body field that tells absent (Set false) from null (Set true, Val nil)
// and from a value: Discord's PATCH routes give null a meaning of its own ("remove").
type Optional[T any] struct {
	Set bool
	Val *T
}

// UnmarshalJSON implements json.Unmarshaler; encoding/json calls it only for a present key.
func (o *Optional[T]) UnmarshalJSON(b []byte) error {
	o.Set = true
	if bytes.Equal(bytes.TrimSpace(b), []byte("null")) {
		o.Val = nil
		return nil
	}
	var v T
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	o.Val = &v
	return nil
}
