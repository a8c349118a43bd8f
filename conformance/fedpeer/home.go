package fedpeer

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

// Home is a fake home node: it creates a guild of its own (genesis, a text
// channel called "general" and an invite), signs its state events, admits
// joins, and answers sync and mod-requests, so that the node under test can be
// checked as a member node. Close it with Close.
type Home struct {
	*Peer
	Gossip *Gossip
	Signer *Signer
	Guild  []byte
	Owner  string // the owner's user name
	Code   string // the invite code

	// TamperJoin, if set, may change a join response before it is sent.
	TamperJoin func(*JoinResponse)

	mu    sync.Mutex
	seq   uint64
	last  uint64
	chain [][]byte // state events by sn-1
	ids   [][]byte
	own   map[uint64][]byte // own events by seq
	mods  []ModRequest
	joins []JoinRequest
}

// NewHome starts a fake home node with a fresh guild.
func NewHome(ctx context.Context) (*Home, error) {
	p, err := New()
	if err != nil {
		return nil, err
	}
	h, err := p.home(ctx)
	if err != nil {
		_ = p.Close()
		return nil, err
	}
	return h, nil
}

func (p *Peer) home(ctx context.Context) (*Home, error) {
	g, err := p.StartGossip()
	if err != nil {
		return nil, err
	}
	signer, err := NewSigner(p.Key)
	if err != nil {
		return nil, err
	}
	var rnd [6]byte
	_, _ = rand.Read(rnd[:])
	h := &Home{Peer: p, Gossip: g, Signer: signer, Owner: "owner", Code: "cf" + hex.EncodeToString(rnd[:]), own: map[uint64][]byte{}}
	owner := User{Node: signer.Origin, Name: h.Owner}
	if _, err := h.issue(ctx, "guild.create", nil, Body(0, "fake home "+hex.EncodeToString(rnd[:3]), 1, owner, 2, "fakehome"), false); err != nil {
		return nil, err
	}
	h.Guild = h.ids[0]
	for _, t := range []string{Topic(h.Guild), EphemeralTopic(h.Guild)} {
		if err := g.Join(t); err != nil {
			return nil, err
		}
	}
	if _, err := h.Issue(ctx, "channel.create", nil, Body(0, "general", 1, 0, 2, "", 3, 0)); err != nil {
		return nil, err
	}
	if _, err := h.Issue(ctx, "invite.create", nil, Body(0, h.Code, 1, 0, 2, 0)); err != nil {
		return nil, err
	}
	p.Handle(ProtoJoin, h.serveJoin)
	p.Handle(ProtoSync, h.serveSync)
	p.Handle(ProtoMod, func(_ peer.ID, frame []byte) any {
		var req ModRequest
		if err := Unmarshal(frame, &req); err != nil {
			return ModResponse{Status: StatusBadRequest, Error: err.Error()}
		}
		h.mu.Lock()
		h.mods = append(h.mods, req)
		h.mu.Unlock()
		return ModResponse{Status: StatusForbidden, Error: "the fake home node grants nothing"}
	})
	return h, nil
}

// Invite is the guild's federated invite code.
func (h *Home) Invite() string {
	return Invite{Guild: h.Guild, Code: h.Code, Home: h.Signer.Origin, Addrs: h.AddrBytes()}.String()
}

// Head is the sn of the last state event.
func (h *Home) Head() uint64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	return uint64(len(h.chain))
}

// LastID is the ID of the last state event.
func (h *Home) LastID() []byte {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.ids[len(h.ids)-1]
}

// Channel finds a channel created by name.
func (h *Home) Channel(name string) []byte {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, raw := range h.chain {
		ev, err := DecodeEvent(raw)
		if err != nil || ev.Env.Kind != "channel.create" {
			continue
		}
		var b struct {
			Name string `cbor:"0,keyasint"`
		}
		if Unmarshal(ev.Env.Body, &b) == nil && b.Name == name {
			return ev.ID
		}
	}
	return nil
}

func (h *Home) now() uint64 {
	ts := TS(time.Now(), 0)
	if ts <= h.last {
		ts = h.last + 1
	}
	h.last = ts
	return ts
}

// StateEnvelope is the envelope of the next state event (seq, sn and prev
// filled in) without issuing it.
func (h *Home) StateEnvelope(kind string, channel []byte) Envelope {
	h.mu.Lock()
	defer h.mu.Unlock()
	env := Envelope{V: 1, Kind: kind, Guild: h.Guild, Channel: channel, Author: User{Node: h.Signer.Origin, Name: h.Owner},
		Origin: h.Signer.Origin, Seq: h.seq + 1, TS: h.now(), SN: uint64(len(h.chain)) + 1}
	if len(h.ids) > 0 {
		env.Prev = h.ids[len(h.ids)-1]
	}
	return env
}

// Issue signs the next state event, records it and publishes it.
func (h *Home) Issue(ctx context.Context, kind string, channel []byte, body any) ([]byte, error) {
	return h.issue(ctx, kind, channel, body, true)
}

func (h *Home) issue(ctx context.Context, kind string, channel []byte, body any, publish bool) ([]byte, error) {
	env := h.StateEnvelope(kind, channel)
	if kind == "guild.create" {
		env.Guild, env.Prev = nil, nil
	}
	raw, id, err := h.Signer.Sign(env, body)
	if err != nil {
		return nil, err
	}
	h.Record(env.Seq, raw, id)
	if publish {
		return raw, h.Gossip.Publish(ctx, Topic(h.Guild), raw)
	}
	return raw, nil
}

// Record adds a signed state event to the chain the home serves, without
// publishing it.
func (h *Home) Record(seq uint64, raw, id []byte) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.seq = max(h.seq, seq)
	h.chain = append(h.chain, raw)
	h.ids = append(h.ids, id)
	h.own[seq] = raw
}

// Mods returns the mod-requests received so far.
func (h *Home) Mods() []ModRequest {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]ModRequest(nil), h.mods...)
}

func (h *Home) serveJoin(remote peer.ID, frame []byte) any {
	var req JoinRequest
	if err := Unmarshal(frame, &req); err != nil {
		return JoinResponse{Status: StatusBadRequest, Error: err.Error()}
	}
	if !bytes.Equal(req.Guild, h.Guild) || req.Code != h.Code {
		return JoinResponse{Status: StatusForbidden, Error: "unknown invite"}
	}
	user := User{Node: []byte(remote), Name: req.Name}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := h.Issue(ctx, "member.join", nil, Body(0, user, 1, req.NodeName, 2, req.Addrs, 3, req.Code)); err != nil {
		return JoinResponse{Status: StatusUnavailable, Error: err.Error()}
	}
	h.mu.Lock()
	h.joins = append(h.joins, req)
	resp := JoinResponse{State: append([][]byte(nil), h.chain...)}
	h.mu.Unlock()
	if h.TamperJoin != nil {
		h.TamperJoin(&resp)
	}
	return resp
}

func (h *Home) serveSync(_ peer.ID, frame []byte) any {
	var req SyncRequest
	if err := Unmarshal(frame, &req); err != nil {
		return SyncResponse{Status: StatusBadRequest, Error: err.Error()}
	}
	if !bytes.Equal(req.Guild, h.Guild) {
		return SyncResponse{Status: StatusForbidden, Error: "not a guild of this node"}
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	switch req.Op {
	case OpHeads:
		return SyncResponse{Vector: []Head{{Origin: h.Signer.Origin, Seq: h.seq}}, StateHead: uint64(len(h.chain))}
	case OpFetch:
		var resp SyncResponse
		for _, r := range req.Ranges {
			if !bytes.Equal(r.Origin, h.Signer.Origin) {
				continue
			}
			for seq := r.From; seq <= r.To && seq <= h.seq; seq++ {
				if raw, ok := h.own[seq]; ok {
					resp.Events = append(resp.Events, raw)
				}
			}
		}
		return resp
	}
	return SyncResponse{}
}

// String describes the home for failure messages.
func (h *Home) String() string {
	return fmt.Sprintf("fake home %s (guild %s)", h.Host.ID(), IDString(h.Guild))
}
