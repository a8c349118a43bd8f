package fedpeer

import (
	"context"
	"fmt"
	"sync"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	pb "github.com/libp2p/go-libp2p-pubsub/pb"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
)

// Topic is the persistent event topic of a guild [FED-010].
func Topic(guild []byte) string { return "/hearth/guild/" + IDString(guild) + "/1" }

// EphemeralTopic is the presence and typing topic of a guild.
func EphemeralTopic(guild []byte) string { return "/hearth/guild/" + IDString(guild) + "/eph/1" }

// Received is one pubsub message the fake got from the node.
type Received struct {
	Topic string
	From  peer.ID // the forwarding peer
	Msg   *pb.Message
}

// Gossip is the fake's gossipsub router. It validates nothing, so a test can
// publish anything, and records every message it receives. Start with
// StartGossip; it stops with the peer's host.
type Gossip struct {
	PS *pubsub.PubSub

	self peer.ID
	tr   *tracer

	mu     sync.Mutex
	topics map[string]*pubsub.Topic
	subs   []*pubsub.Subscription
	got    []Received
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// messageID is the event ID of a signed event, or the hash of data that is not
// one, so that the fake and the node agree on IDs [FED-012].
func messageID(m *pb.Message) string {
	var s Signed
	if err := Unmarshal(m.Data, &s); err == nil && s.Payload != nil {
		return string(HashID(s.Payload))
	}
	return string(HashID(m.Data))
}

// StartGossip starts gossipsub on the peer with the spec's message policy
// (StrictNoSign, message ID = event ID) and a message limit well above the
// spec's, so that oversize messages can be sent [FED-070].
func (p *Peer) StartGossip() (*Gossip, error) {
	ctx, cancel := context.WithCancel(context.Background())
	tr := &tracer{recv: map[string]int{}, sent: map[string]int{}, mesh: map[string]map[peer.ID]bool{}}
	ps, err := pubsub.NewGossipSub(ctx, p.Host,
		pubsub.WithRawTracer(tr),
		pubsub.WithMessageSignaturePolicy(pubsub.StrictNoSign),
		pubsub.WithNoAuthor(),
		pubsub.WithMessageIdFn(messageID),
		pubsub.WithMaxMessageSize(4*MaxPubsub),
		pubsub.WithPeerExchange(false),
		pubsub.WithFloodPublish(true),
	)
	if err != nil {
		cancel()
		return nil, fmt.Errorf("fedpeer: gossipsub: %w", err)
	}
	g := &Gossip{PS: ps, self: p.Host.ID(), tr: tr, topics: map[string]*pubsub.Topic{}, cancel: cancel}
	p.mu.Lock()
	p.closers = append(p.closers, g.close)
	p.mu.Unlock()
	return g, nil
}

// Join subscribes to a topic and records what arrives on it.
func (g *Gossip) Join(name string) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if _, ok := g.topics[name]; ok {
		return nil
	}
	t, err := g.PS.Join(name)
	if err != nil {
		return fmt.Errorf("fedpeer: join %s: %w", name, err)
	}
	sub, err := t.Subscribe()
	if err != nil {
		return fmt.Errorf("fedpeer: subscribe %s: %w", name, err)
	}
	g.topics[name] = t
	g.subs = append(g.subs, sub)
	g.wg.Add(1)
	go func() { // owned by g: ends when close cancels the subscription
		defer g.wg.Done()
		for {
			m, err := sub.Next(context.Background())
			if err != nil {
				return
			}
			if m.ReceivedFrom == g.self {
				continue
			}
			g.mu.Lock()
			g.got = append(g.got, Received{Topic: name, From: m.ReceivedFrom, Msg: m.Message})
			g.mu.Unlock()
		}
	}()
	return nil
}

// Peers lists the peers subscribed to a joined topic.
func (g *Gossip) Peers(name string) []peer.ID {
	g.mu.Lock()
	t := g.topics[name]
	g.mu.Unlock()
	if t == nil {
		return nil
	}
	return t.ListPeers()
}

// Publish sends data on a joined topic as it is.
func (g *Gossip) Publish(ctx context.Context, name string, data []byte) error {
	g.mu.Lock()
	t := g.topics[name]
	g.mu.Unlock()
	if t == nil {
		return fmt.Errorf("fedpeer: publish: topic %s not joined", name)
	}
	if err := t.Publish(ctx, data); err != nil {
		return fmt.Errorf("fedpeer: publish: %w", err)
	}
	return nil
}

// InMesh reports whether the fake and pid are mesh peers on a topic: one of
// them grafted the other and neither pruned since. Only mesh peers are sent
// the events a node forwards; a subscriber outside the mesh learns of them
// from the gossip of a later heartbeat, if at all.
func (g *Gossip) InMesh(topic string, pid peer.ID) bool {
	g.tr.mu.Lock()
	defer g.tr.mu.Unlock()
	return g.tr.mesh[topic][pid]
}

// Received returns what has arrived so far.
func (g *Gossip) Received() []Received {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]Received(nil), g.got...)
}

func (g *Gossip) close() {
	g.mu.Lock()
	for _, s := range g.subs {
		s.Cancel()
	}
	for _, t := range g.topics {
		_ = t.Close()
	}
	g.mu.Unlock()
	g.cancel()
	g.wg.Wait()
}

// tracer counts the gossipsub control messages the fake receives and sends, for
// failure messages (whether the node grafted or pruned the fake, say).
type tracer struct {
	mu   sync.Mutex
	recv map[string]int
	sent map[string]int
	mesh map[string]map[peer.ID]bool // topic → the fake's mesh peers
}

func (tr *tracer) setMesh(p peer.ID, topic string, in bool) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	if tr.mesh[topic] == nil {
		tr.mesh[topic] = map[peer.ID]bool{}
	}
	tr.mesh[topic][p] = in
}

func (tr *tracer) count(m map[string]int, rpc *pubsub.RPC) {
	if rpc == nil || rpc.Control == nil {
		return
	}
	c := rpc.Control
	tr.mu.Lock()
	defer tr.mu.Unlock()
	m["graft"] += len(c.Graft)
	m["prune"] += len(c.Prune)
	m["ihave"] += len(c.Ihave)
	m["iwant"] += len(c.Iwant)
	m["idontwant"] += len(c.Idontwant)
}

func (tr *tracer) OnNewOutboundStream(peer.ID, protocol.ID)             {}
func (tr *tracer) OnClosedOutboundStream(peer.ID)                       {}
func (tr *tracer) Join(string)                                          {}
func (tr *tracer) Leave(string)                                         {}
func (tr *tracer) Graft(p peer.ID, topic string)                        { tr.setMesh(p, topic, true) }
func (tr *tracer) Prune(p peer.ID, topic string)                        { tr.setMesh(p, topic, false) }
func (tr *tracer) ValidateMessage(*pubsub.Message)                      {}
func (tr *tracer) DeliverMessage(*pubsub.Message)                       {}
func (tr *tracer) RejectMessage(*pubsub.Message, string)                {}
func (tr *tracer) DuplicateMessage(*pubsub.Message)                     {}
func (tr *tracer) ThrottlePeer(peer.ID)                                 {}
func (tr *tracer) RecvRPC(rpc *pubsub.RPC)                              { tr.count(tr.recv, rpc) }
func (tr *tracer) SendRPC(rpc *pubsub.RPC, _ peer.ID)                   { tr.count(tr.sent, rpc) }
func (tr *tracer) SendRPCCompleted(*pubsub.RPC, peer.ID, time.Duration) {}
func (tr *tracer) DropRPC(*pubsub.RPC, peer.ID)                         {}
func (tr *tracer) UndeliverableMessage(*pubsub.Message)                 {}

// Control summarises the gossipsub control messages received and sent.
func (g *Gossip) Control() string {
	g.tr.mu.Lock()
	defer g.tr.mu.Unlock()
	return fmt.Sprintf("received %v, sent %v", g.tr.recv, g.tr.sent)
}
