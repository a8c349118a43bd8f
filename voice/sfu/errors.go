package sfu

import "errors"

// Errors that end a session or refuse a request. CloseCode maps each to the
// voice WebSocket close code of spec/voice.md section 3.10.
var (
	ErrBadSDP           = errors.New("sfu: bad sdp")
	ErrUnsupportedCodec = errors.New("sfu: no supported codec")
	ErrTooManyTracks    = errors.New("sfu: too many tracks")
	ErrRateLimited      = errors.New("sfu: rate limited")
	ErrICETimeout       = errors.New("sfu: ice did not connect in time")
	ErrDisconnected     = errors.New("sfu: disconnected")
	ErrShutdown         = errors.New("sfu: shutting down")
	ErrNoSession        = errors.New("sfu: no such voice session")
	ErrGlare            = errors.New("sfu: server offer outstanding")
	ErrStaleAnswer      = errors.New("sfu: answer for an old offer")
)

// CloseCode returns the voice WebSocket close code for err, or 0 if err is
// not an SFU error.
func CloseCode(err error) int {
	switch {
	case errors.Is(err, ErrBadSDP):
		return 4100
	case errors.Is(err, ErrUnsupportedCodec):
		return 4101
	case errors.Is(err, ErrTooManyTracks):
		return 4102
	case errors.Is(err, ErrRateLimited):
		return 4103
	case errors.Is(err, ErrICETimeout):
		return 4104
	case errors.Is(err, ErrDisconnected):
		return 4014
	case errors.Is(err, ErrShutdown):
		return 4015
	case errors.Is(err, ErrNoSession):
		return 4006
	}
	return 0
}
