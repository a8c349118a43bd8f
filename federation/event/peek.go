package event

// PeekID returns the ID of a signed event by locating its payload without
// decoding anything else. Gossip uses it as the pubsub message ID [FED-012]
// before validation; ok is false when raw does not start like a signed event
// (such messages are rejected by validation anyway).
func PeekID(raw []byte) (id ID, ok bool) {
	// A canonical signed event starts with map(2) {0: bstr ...}.
	if len(raw) < 3 || raw[0] != 0xa2 || raw[1] != 0x00 {
		return "", false
	}
	b := raw[2:]
	if b[0]>>5 != 2 { // major type 2: byte string
		return "", false
	}
	n, hdr := uint64(b[0]&0x1f), 1
	switch {
	case n < 24:
	case n == 24 && len(b) >= 2:
		n, hdr = uint64(b[1]), 2
	case n == 25 && len(b) >= 3:
		n, hdr = uint64(b[1])<<8|uint64(b[2]), 3
	case n == 26 && len(b) >= 5:
		n, hdr = uint64(b[1])<<24|uint64(b[2])<<16|uint64(b[3])<<8|uint64(b[4]), 5
	default:
		return "", false
	}
	if uint64(len(b)-hdr) < n {
		return "", false
	}
	return HashID(b[hdr : hdr+int(n)]), true
}
