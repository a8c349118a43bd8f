package event

import (
	"bytes"
	"fmt"

	"github.com/fxamacker/cbor/v2"
)

// encMode is core deterministic CBOR (RFC 8949 §4.2.1) [EVT-001].
var encMode cbor.EncMode

// decMode is the strict decoder for untrusted bytes [EVT-002]: duplicate keys,
// indefinite lengths, unknown fields and invalid UTF-8 are errors, and nesting
// and collection sizes are bounded.
var decMode cbor.DecMode

func init() {
	var err error
	encMode, err = cbor.CoreDetEncOptions().EncMode()
	if err != nil {
		panic(err)
	}
	decMode, err = StrictDecOptions(4096).DecMode()
	if err != nil {
		panic(err)
	}
}

// StrictDecOptions are the options of the strict decoder [EVT-002] with room
// for maxArray elements per array: for packages that decode larger untrusted
// structures (a guild state snapshot) as strictly as events.
func StrictDecOptions(maxArray int) cbor.DecOptions {
	return cbor.DecOptions{
		DupMapKey:         cbor.DupMapKeyEnforcedAPF,
		IndefLength:       cbor.IndefLengthForbidden,
		TagsMd:            cbor.TagsForbidden,
		ExtraReturnErrors: cbor.ExtraDecErrorUnknownField,
		UTF8:              cbor.UTF8RejectInvalid,
		MaxNestedLevels:   16,
		MaxArrayElements:  maxArray,
		MaxMapPairs:       64,
	}
}

// Marshal encodes v in core deterministic CBOR. Other federation packages use
// it for their wire messages so that every Hearth frame has one encoding.
func Marshal(v any) ([]byte, error) { return encMode.Marshal(v) }

// Unmarshal decodes untrusted CBOR strictly (see decMode) into v.
func Unmarshal(data []byte, v any) error { return decMode.Unmarshal(data, v) }

// UnmarshalCanonical decodes data strictly into v and then checks that data is
// the canonical encoding of v, so that every accepted value has exactly one
// byte form. It is how signed bytes are checked without trusting a
// re-serialisation for anything but the comparison.
func UnmarshalCanonical(data []byte, v any) error {
	if err := decMode.Unmarshal(data, v); err != nil {
		return err
	}
	again, err := encMode.Marshal(v)
	if err != nil {
		return err
	}
	if !bytes.Equal(again, data) {
		return fmt.Errorf("%w: not in core deterministic form", ErrMalformed)
	}
	return nil
}
