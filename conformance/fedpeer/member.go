package fedpeer

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

// JoinRequest is {0: guild, 1: code, 2: name, 3: node-name, 4: [addrs], ? 5: have-sn}.
type JoinRequest struct {
	Guild    []byte   `cbor:"0,keyasint"`
	Code     string   `cbor:"1,keyasint"`
	Name     string   `cbor:"2,keyasint"`
	NodeName string   `cbor:"3,keyasint"`
	Addrs    [][]byte `cbor:"4,keyasint"`
	// Have is the state head the joining node holds (have-sn, field 5); 0 leaves it out.
	Have uint64 `cbor:"5,keyasint,omitempty"`
}

// PeerAddrs is {0: peer-id, 1: [addrs]}.
type PeerAddrs struct {
	ID    []byte   `cbor:"0,keyasint"`
	Addrs [][]byte `cbor:"1,keyasint"`
}

// JoinResponse is {0: status, 1: error, 2: state, 3: recent, 4: peers}.
type JoinResponse struct {
	Status uint64      `cbor:"0,keyasint"`
	Error  string      `cbor:"1,keyasint"`
	State  [][]byte    `cbor:"2,keyasint,omitempty"`
	Recent [][]byte    `cbor:"3,keyasint,omitempty"`
	Peers  []PeerAddrs `cbor:"4,keyasint,omitempty"`
	// Snapshot is a signed state snapshot (spec/federation.md §6.2).
	Snapshot *SignedSnapshot `cbor:"5,keyasint,omitempty"`
}

// SignedSnapshot is {0: state, 1: sig}: the CBOR of a guild state snapshot and
// the home node's Ed25519ctx signature over it (FED-101).
type SignedSnapshot struct {
	State []byte `cbor:"0,keyasint"`
	Sig   []byte `cbor:"1,keyasint"`
}

// Range is {0: origin, 1: from, 2: to}.
type Range struct {
	Origin []byte `cbor:"0,keyasint"`
	From   uint64 `cbor:"1,keyasint"`
	To     uint64 `cbor:"2,keyasint"`
}

// SyncRequest is {0: op, 1: guild, ? 2: ranges, ? 3: channel, ? 4: before, ? 5: limit}.
type SyncRequest struct {
	Op      uint64  `cbor:"0,keyasint"`
	Guild   []byte  `cbor:"1,keyasint"`
	Ranges  []Range `cbor:"2,keyasint,omitempty"`
	Channel []byte  `cbor:"3,keyasint,omitempty"`
	Before  uint64  `cbor:"4,keyasint,omitempty"`
	Limit   uint64  `cbor:"5,keyasint,omitempty"`
}

// Head is a version vector entry {0: origin, 1: seq}.
type Head struct {
	Origin []byte `cbor:"0,keyasint"`
	Seq    uint64 `cbor:"1,keyasint"`
}

// SyncResponse is {0: status, 1: error, ? 2: vector, ? 3: state head, ? 4: events, ? 5: more}.
type SyncResponse struct {
	Status    uint64   `cbor:"0,keyasint"`
	Error     string   `cbor:"1,keyasint"`
	Vector    []Head   `cbor:"2,keyasint,omitempty"`
	StateHead uint64   `cbor:"3,keyasint,omitempty"`
	Events    [][]byte `cbor:"4,keyasint,omitempty"`
	More      bool     `cbor:"5,keyasint,omitempty"`
}

// Sync operations.
const (
	OpHeads   = 1
	OpFetch   = 2
	OpHistory = 3
)

// ModRequest is {0: guild, 1: kind, ? 2: channel, 3: body, 4: actor-name}.
type ModRequest struct {
	Guild   []byte `cbor:"0,keyasint"`
	Kind    string `cbor:"1,keyasint"`
	Channel []byte `cbor:"2,keyasint,omitempty"`
	Body    any    `cbor:"3,keyasint"`
	Actor   string `cbor:"4,keyasint"`
}

// ModResponse is {0: status, 1: error, ? 2: event id}.
type ModResponse struct {
	Status uint64 `cbor:"0,keyasint"`
	Error  string `cbor:"1,keyasint"`
	Event  []byte `cbor:"2,keyasint,omitempty"`
}

// Member is a fake member node of a guild homed on the node under test: it
// joined with an invite code through /hearth/join/1.0.0, holds the state chain
// the home node returned, and is subscribed to the guild's topics.
type Member struct {
	*Peer
	Gossip *Gossip
	Signer *Signer
	Home   peer.ID
	Guild  []byte
	// Name is the member's user (on this fake node); NodeName its node's name.
	Name, NodeName string
	// Join is the home node's join response, decoded.
	Join   JoinResponse
	State  []*Event
	Recent []*Event

	mu   sync.Mutex
	seq  uint64
	last uint64            // last ts signed
	sent map[uint64][]byte // persistent events published, by seq
}

// JoinOptions tune JoinGuild.
type JoinOptions struct {
	// Name is the user who joins; NodeName the fake node's name.
	Name, NodeName string
}

// JoinGuild starts a fake node, joins the guild of a "hearth:" invite code as
// user name, and subscribes to the guild's topics, waiting until the home node
// is seen on them. The caller must Close the member.
func JoinGuild(ctx context.Context, code string, opts JoinOptions) (*Member, error) {
	inv, err := ParseInvite(code)
	if err != nil {
		return nil, err
	}
	p, err := New()
	if err != nil {
		return nil, err
	}
	m, err := p.JoinWith(ctx, inv, opts)
	if err != nil {
		_ = p.Close()
		return nil, err
	}
	return m, nil
}

// JoinWith joins the guild of inv as a member node on this peer.
func (p *Peer) JoinWith(ctx context.Context, inv Invite, opts JoinOptions) (*Member, error) {
	home, err := inv.HomeID()
	if err != nil {
		return nil, err
	}
	addrs, err := inv.HomeAddrs()
	if err != nil {
		return nil, err
	}
	// Gossip runs before the first connection, as on a real node: a peer that
	// connects before we speak gossipsub may never open its stream to us.
	g, err := p.StartGossip()
	if err != nil {
		return nil, err
	}
	var cerr error
	for _, a := range addrs {
		if _, cerr = p.Connect(ctx, a); cerr == nil {
			break
		}
	}
	if cerr != nil {
		return nil, cerr
	}
	signer, err := NewSigner(p.Key)
	if err != nil {
		return nil, err
	}
	m := &Member{Peer: p, Gossip: g, Signer: signer, Home: home, Guild: inv.Guild, Name: opts.Name, NodeName: opts.NodeName}
	frame, err := p.Request(ctx, home, ProtoJoin, JoinRequest{Guild: inv.Guild, Code: inv.Code, Name: opts.Name,
		NodeName: opts.NodeName, Addrs: p.AddrBytes()})
	if err != nil {
		return nil, err
	}
	if err := Unmarshal(frame, &m.Join); err != nil {
		return nil, err
	}
	if m.Join.Status != StatusOK {
		return nil, &StatusError{Status: m.Join.Status, Msg: m.Join.Error}
	}
	for _, raw := range m.Join.State {
		ev, err := DecodeEvent(raw)
		if err != nil {
			return nil, fmt.Errorf("fedpeer: join response state event: %w", err)
		}
		m.State = append(m.State, ev)
	}
	for _, raw := range m.Join.Recent {
		ev, err := DecodeEvent(raw)
		if err != nil {
			return nil, fmt.Errorf("fedpeer: join response message event: %w", err)
		}
		m.Recent = append(m.Recent, ev)
	}
	for _, t := range []string{Topic(inv.Guild), EphemeralTopic(inv.Guild)} {
		if err := m.Gossip.Join(t); err != nil {
			return nil, err
		}
	}
	// Answer sync like an honest member node: heads and fetch from what this
	// fake published. A node may penalise peers whose sync fails.
	m.sent = map[uint64][]byte{}
	p.Handle(ProtoSync, m.serveSync)
	if err := m.WaitTopicPeer(ctx, home); err != nil {
		return nil, err
	}
	return m, nil
}

func (m *Member) serveSync(_ peer.ID, frame []byte) any {
	var req SyncRequest
	if err := Unmarshal(frame, &req); err != nil {
		return SyncResponse{Status: StatusBadRequest, Error: err.Error()}
	}
	if string(req.Guild) != string(m.Guild) {
		return SyncResponse{Status: StatusForbidden, Error: "not a guild of this node"}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	switch req.Op {
	case OpHeads:
		resp := SyncResponse{StateHead: m.StateHead()}
		var top uint64
		for top = 0; m.sent[top+1] != nil; top++ {
		}
		if top > 0 {
			resp.Vector = []Head{{Origin: m.Signer.Origin, Seq: top}}
		}
		return resp
	case OpFetch:
		var resp SyncResponse
		for _, r := range req.Ranges {
			if string(r.Origin) != string(m.Signer.Origin) {
				continue
			}
			for seq := r.From; seq <= r.To && seq < r.From+1000; seq++ {
				if raw := m.sent[seq]; raw != nil {
					resp.Events = append(resp.Events, raw)
				}
			}
		}
		return resp
	}
	return SyncResponse{}
}

// WaitTopicPeer waits until pid is subscribed to the guild's event topic as
// the fake sees it, so that a publication reaches it.
func (m *Member) WaitTopicPeer(ctx context.Context, pid peer.ID) error {
	return m.waitTopics(ctx, "subscribed to", func(t string) bool { return slices.Contains(m.Gossip.Peers(t), pid) }, pid)
}

// WaitMesh waits until the fake and pid are mesh peers on both of the guild's
// topics, so that what pid forwards from other peers reaches the fake too.
// gossipsub grafts a new subscriber at the next heartbeat (every second).
func (m *Member) WaitMesh(ctx context.Context, pid peer.ID) error {
	return m.waitTopics(ctx, "in the mesh of", func(t string) bool { return m.Gossip.InMesh(t, pid) }, pid)
}

// waitTopics polls until ok holds for both of the guild's topics.
func (m *Member) waitTopics(ctx context.Context, what string, ok func(topic string) bool, pid peer.ID) error {
	for _, t := range []string{Topic(m.Guild), EphemeralTopic(m.Guild)} {
		for delay := 10 * time.Millisecond; !ok(t); delay = min(2*delay, 200*time.Millisecond) {
			select {
			case <-ctx.Done():
				return fmt.Errorf("fedpeer: %s never %s topic %s: %w", pid, what, t, ctx.Err())
			case <-time.After(delay):
			}
		}
	}
	return nil
}

// StatusError is a non-zero response status.
type StatusError struct {
	Status uint64
	Msg    string
}

func (e *StatusError) Error() string { return fmt.Sprintf("fedpeer: status %d: %s", e.Status, e.Msg) }

// StateHead is the highest sn in the state chain the member holds.
func (m *Member) StateHead() uint64 {
	var sn uint64
	for _, ev := range m.State {
		sn = max(sn, ev.Env.SN)
	}
	return sn
}

// Channel returns the ID of the text channel called name in the state chain.
func (m *Member) Channel(name string) ([]byte, error) {
	var id []byte
	for _, ev := range m.State {
		switch ev.Env.Kind {
		case "channel.create":
			var b struct {
				Name string `cbor:"0,keyasint"`
				Type uint64 `cbor:"1,keyasint"`
			}
			if Unmarshal(ev.Env.Body, &b) == nil && b.Name == name && b.Type == 0 {
				id = ev.ID
			}
		case "channel.delete":
			if string(ev.Env.Channel) == string(id) {
				id = nil
			}
		}
	}
	if id == nil {
		return nil, fmt.Errorf("fedpeer: no text channel %q in the state chain", name)
	}
	return id, nil
}

// Seq is the last sequence number this origin used in the guild.
func (m *Member) Seq() uint64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.seq
}

// NextSeq reserves the next sequence number of this origin in the guild.
func (m *Member) NextSeq() uint64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.seq++
	return m.seq
}

// now is a clock value greater than every one signed or received before, as a
// hybrid logical clock must be [EVT-030]: the node's clock may run ahead of
// the wall clock after it accepted an event from the near future.
func (m *Member) now() uint64 {
	seen := uint64(0)
	for _, ev := range slices.Concat(m.State, m.Recent, m.Events(false)) {
		seen = max(seen, ev.Env.TS)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	ts := max(TS(time.Now(), 0), seen+1)
	if ts <= m.last {
		ts = m.last + 1
	}
	m.last = ts
	return ts
}

// Envelope is a valid envelope of kind in channel (nil for none) by the
// member's user, with the next seq (0 for ephemeral kinds), the current time
// and the state head.
func (m *Member) Envelope(kind string, channel []byte) Envelope {
	env := Envelope{V: 1, Kind: kind, Guild: m.Guild, Channel: channel,
		Author: User{Node: m.Signer.Origin, Name: m.Name}, Origin: m.Signer.Origin, TS: m.now(), SN: m.StateHead()}
	if kind != "presence.batch" && kind != "typing.batch" {
		env.Seq = m.NextSeq()
	}
	return env
}

// Body builds a body map from alternating integer keys and values.
func Body(kv ...any) map[uint64]any {
	b := map[uint64]any{}
	for i := 0; i+1 < len(kv); i += 2 {
		b[uint64(kv[i].(int))] = kv[i+1]
	}
	return b
}

// Message signs a valid message.create of content in channel and keeps it
// for sync.
func (m *Member) Message(channel []byte, content string) (raw, id []byte) {
	raw, id, seq := m.Unkept(channel, content)
	m.Keep(seq, raw)
	return raw, id
}

// Unkept signs a valid message.create that sync will not serve.
func (m *Member) Unkept(channel []byte, content string) (raw, id []byte, seq uint64) {
	env := m.Envelope("message.create", channel)
	raw, id, _ = m.Signer.Sign(env, Body(0, content, 1, ""))
	return raw, id, env.Seq
}

// Publish sends raw on the guild's event topic.
func (m *Member) Publish(ctx context.Context, raw []byte) error {
	return m.Gossip.Publish(ctx, Topic(m.Guild), raw)
}

// Keep makes sync serve raw as this origin's event seq (Message keeps what it
// signs).
func (m *Member) Keep(seq uint64, raw []byte) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.sent[seq] == nil {
		m.sent[seq] = raw
	}
}

// PublishEphemeral sends raw on the guild's presence and typing topic.
func (m *Member) PublishEphemeral(ctx context.Context, raw []byte) error {
	return m.Gossip.Publish(ctx, EphemeralTopic(m.Guild), raw)
}

// Sync sends a sync request to the home node.
func (m *Member) Sync(ctx context.Context, req SyncRequest) (SyncResponse, error) {
	return m.SyncWith(ctx, m.Home, req)
}

// SyncWith sends a sync request for the member's guild to peer to.
func (m *Member) SyncWith(ctx context.Context, to peer.ID, req SyncRequest) (SyncResponse, error) {
	var resp SyncResponse
	if req.Guild == nil {
		req.Guild = m.Guild
	}
	frame, err := m.Request(ctx, to, ProtoSync, req)
	if err != nil {
		return resp, err
	}
	err = Unmarshal(frame, &resp)
	return resp, err
}

// Mod sends a mod-request to the home node.
func (m *Member) Mod(ctx context.Context, req ModRequest) (ModResponse, error) {
	var resp ModResponse
	if req.Guild == nil {
		req.Guild = m.Guild
	}
	frame, err := m.Request(ctx, m.Home, ProtoMod, req)
	if err != nil {
		return resp, err
	}
	err = Unmarshal(frame, &resp)
	return resp, err
}

// Events decodes the events received on the guild's topics so far, skipping
// undecodable ones; ephemeral selects the presence and typing topic.
func (m *Member) Events(ephemeral bool) []*Event {
	topic := Topic(m.Guild)
	if ephemeral {
		topic = EphemeralTopic(m.Guild)
	}
	var out []*Event
	for _, r := range m.Gossip.Received() {
		if r.Topic != topic {
			continue
		}
		if ev, err := DecodeEvent(r.Msg.Data); err == nil {
			out = append(out, ev)
		}
	}
	return out
}

// ErrNoEvent is returned by WaitEvent when no matching event arrived in time.
var ErrNoEvent = errors.New("fedpeer: no matching event")

// WaitEvent waits until an event matching match has arrived on a topic.
func (m *Member) WaitEvent(ctx context.Context, ephemeral bool, match func(*Event) bool) (*Event, error) {
	for delay := 10 * time.Millisecond; ; delay = min(2*delay, 200*time.Millisecond) {
		for _, ev := range m.Events(ephemeral) {
			if match(ev) {
				return ev, nil
			}
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("%w: %v", ErrNoEvent, ctx.Err())
		case <-time.After(delay):
		}
	}
}
