package fedpeer

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
)

// The voice cascade protocol between nodes (spec/voice.md §5), from the
// fake node's side: it records every frame the node under test says on its
// links to the fake, and opens the fake's own link to say things back.

// ProtoCascade is the cascade stream protocol.
const ProtoCascade = "/hearth/voice/cascade/1.0.0"

// MaxCascadeFrame bounds a frame's type and body [VOICE-130].
const MaxCascadeFrame = 65535

// Cascade frame types.
const (
	CascadeState       byte = 1
	CascadeSubscribe   byte = 2
	CascadeUnsubscribe byte = 3
	CascadeKeyframe    byte = 4
	CascadePing        byte = 5
	CascadeModerate    byte = 6
	CascadeRTP         byte = 16
)

// CascadeStateBody is {1: guild, 2: [member]}.
type CascadeStateBody struct {
	Guild   string          `cbor:"1,keyasint"`
	Members []CascadeMember `cbor:"2,keyasint"`
}

// CascadeMember is {1: name, 2: channel, 3: session_id, 4: flags, 5: [track]}.
type CascadeMember struct {
	Name    string         `cbor:"1,keyasint"`
	Channel string         `cbor:"2,keyasint"`
	Session string         `cbor:"3,keyasint,omitempty"`
	Flags   uint32         `cbor:"4,keyasint"`
	Tracks  []CascadeTrack `cbor:"5,keyasint,omitempty"`
}

// CascadeTrack is {1: id, 2: source, 3: mime type, 4: clock rate, 5: channels, 6: fmtp}.
type CascadeTrack struct {
	ID       uint64 `cbor:"1,keyasint"`
	Source   string `cbor:"2,keyasint"`
	Mime     string `cbor:"3,keyasint"`
	Clock    uint32 `cbor:"4,keyasint"`
	Channels uint16 `cbor:"5,keyasint,omitempty"`
	Fmtp     string `cbor:"6,keyasint,omitempty"`
}

// CascadeTrackRef is a subscribe, unsubscribe or keyframe body
// {1: guild, 2: track id, 3: layer}.
type CascadeTrackRef struct {
	Guild string `cbor:"1,keyasint"`
	Track uint64 `cbor:"2,keyasint"`
	Layer uint8  `cbor:"3,keyasint,omitempty"`
}

// CascadeModerateBody is {1: guild, 2: name, 3: mute, 4: deaf, 5: channel, 6: disconnect}.
type CascadeModerateBody struct {
	Guild      string `cbor:"1,keyasint"`
	Name       string `cbor:"2,keyasint"`
	Mute       *bool  `cbor:"3,keyasint,omitempty"`
	Deaf       *bool  `cbor:"4,keyasint,omitempty"`
	Channel    string `cbor:"5,keyasint,omitempty"`
	Disconnect bool   `cbor:"6,keyasint,omitempty"`
}

// CascadeFrame is one frame the node sent on one of its links.
type CascadeFrame struct {
	Link int // the number of the link it came on, from 1
	From peer.ID
	Type byte
	Body []byte
	At   time.Time
}

// RTP splits an rtp frame's body into the track ID and the RTP packet.
func (f CascadeFrame) RTP() (track uint64, packet []byte, err error) {
	track, n := binary.Uvarint(f.Body)
	if n <= 0 {
		return 0, nil, errors.New("fedpeer: rtp frame without a track ID")
	}
	return track, f.Body[n:], nil
}

// Cascade records the links the node under test opens to the fake.
type Cascade struct {
	mu     sync.Mutex
	frames []CascadeFrame
	links  int
	ended  []error // by link - 1: why it ended (nil while open)
}

// ListenCascade makes the fake accept cascade links and record their frames.
func (p *Peer) ListenCascade() *Cascade {
	c := &Cascade{}
	p.Host.SetStreamHandler(ProtoCascade, func(s network.Stream) {
		// libp2p's goroutine: it ends when the link ends or the host closes.
		c.mu.Lock()
		c.links++
		link := c.links
		c.ended = append(c.ended, nil)
		c.mu.Unlock()
		r := bufio.NewReader(s)
		for {
			raw, err := ReadFrame(r, MaxCascadeFrame)
			if err == nil && len(raw) == 0 {
				err = errors.New("fedpeer: empty cascade frame")
			}
			if err != nil {
				c.mu.Lock()
				c.ended[link-1] = err
				c.mu.Unlock()
				_ = s.Reset()
				return
			}
			c.mu.Lock()
			c.frames = append(c.frames, CascadeFrame{Link: link, From: s.Conn().RemotePeer(), Type: raw[0], Body: raw[1:], At: time.Now()})
			c.mu.Unlock()
		}
	})
	return c
}

// Frames returns the frames received so far of type typ (0: all).
func (c *Cascade) Frames(typ byte) []CascadeFrame {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []CascadeFrame
	for _, f := range c.frames {
		if typ == 0 || f.Type == typ {
			out = append(out, f)
		}
	}
	return out
}

// Links is how many links the node has opened to the fake.
func (c *Cascade) Links() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.links
}

// CascadeLink is the fake's own link to a node.
type CascadeLink struct {
	s  network.Stream
	mu sync.Mutex // one frame at a time
}

// OpenCascade opens the fake's link to node to.
func (p *Peer) OpenCascade(ctx context.Context, to peer.ID) (*CascadeLink, error) {
	s, err := p.Host.NewStream(ctx, to, ProtoCascade)
	if err != nil {
		return nil, fmt.Errorf("fedpeer: open cascade link: %w", err)
	}
	return &CascadeLink{s: s}, nil
}

// Send writes one frame of type typ with body encoded in CBOR ([]byte is
// written as it is).
func (l *CascadeLink) Send(typ byte, body any) error {
	raw, ok := body.([]byte)
	if !ok {
		var err error
		if raw, err = Marshal(body); err != nil {
			return err
		}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return WriteFrame(l.s, append([]byte{typ}, raw...))
}

// SendRTP writes an rtp frame carrying packet for track.
func (l *CascadeLink) SendRTP(track uint64, packet []byte) error {
	return l.Send(CascadeRTP, append(binary.AppendUvarint(nil, track), packet...))
}

// SendRaw writes b as it is, between frames.
func (l *CascadeLink) SendRaw(b []byte) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, err := l.s.Write(b); err != nil {
		return fmt.Errorf("fedpeer: cascade write: %w", err)
	}
	return nil
}

// WaitEnd waits up to timeout for the node to end the link (it never writes
// on it, so a read returns only when the stream ends).
func (l *CascadeLink) WaitEnd(timeout time.Duration) error {
	_ = l.s.SetReadDeadline(time.Now().Add(timeout))
	var b [1]byte
	_, err := l.s.Read(b[:])
	var te interface{ Timeout() bool }
	if errors.As(err, &te) && te.Timeout() {
		return fmt.Errorf("fedpeer: the link is still open after %v", timeout)
	}
	if err == nil {
		return errors.New("fedpeer: the node wrote on the fake's own link")
	}
	return nil
}

// Close resets the link.
func (l *CascadeLink) Close() { _ = l.s.Reset() }
