package sfu

import (
	"sync"
	"time"
)

// Speaking detection (VOICE-071, VOICE-072): start when 2 of the last 3
// packets are louder than loudLevel, stop after the hangover without a loud
// packet. The hangover also bounds how often the state can flip.
const loudLevel = 50 // -dBov; smaller is louder (RFC 6464)

type speakingDetector struct {
	mu       sync.Mutex
	history  uint8 // last 3 packets, 1 = loud, newest in bit 0
	speaking bool
	lastLoud time.Time
	// onChange is called with the new state, outside mu.
	onChange func(bool)
}

// observe feeds one packet's audio level. It is called from the track's
// read loop.
func (s *speakingDetector) observe(level uint8, now time.Time) {
	s.mu.Lock()
	loud := level < loudLevel
	s.history = (s.history << 1) & 0x7
	if loud {
		s.history |= 1
		s.lastLoud = now
	}
	start := !s.speaking && loud && popcount3(s.history) >= 2
	if start {
		s.speaking = true
	}
	s.mu.Unlock()
	if start && s.onChange != nil {
		s.onChange(true)
	}
}

// expire ends speaking after the hangover; the SFU's ticker calls it so
// that silence by DTX (no packets at all) also ends speaking.
func (s *speakingDetector) expire(now time.Time, hangover time.Duration) {
	s.mu.Lock()
	stop := s.speaking && now.Sub(s.lastLoud) >= hangover
	if stop {
		s.speaking = false
		s.history = 0
	}
	s.mu.Unlock()
	if stop && s.onChange != nil {
		s.onChange(false)
	}
}

// reset clears the state without reporting it, for a muted member.
func (s *speakingDetector) reset() (was bool) {
	s.mu.Lock()
	was, s.speaking, s.history = s.speaking, false, 0
	s.mu.Unlock()
	return was
}

func popcount3(b uint8) int { return int(b&1 + b>>1&1 + b>>2&1) }

// set sets the state from a remote member's node; it reports whether it
// changed. The SFU's ticker does not expire remote members.
func (s *speakingDetector) set(on bool) (changed bool) {
	s.mu.Lock()
	changed, s.speaking = s.speaking != on, on
	s.mu.Unlock()
	return changed
}

// is reports the current state.
func (s *speakingDetector) is() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.speaking
}
