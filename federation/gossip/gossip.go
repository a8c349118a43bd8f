// Package gossip runs gossipsub for guild events: one persistent and one
// ephemeral topic per guild, StrictNoSign, message ID = event ID, topic
// validators that call back into the federation service, and peer scoring
// that graylists peers which deliver invalid events [FED-010]..[FED-015].
package gossip

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"sync"
	"time"

	"github.com/hearth-chat/hearth/federation/event"
	pubsub "github.com/libp2p/go-libp2p-pubsub"
	pb "github.com/libp2p/go-libp2p-pubsub/pb"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
)

// Verdict is a validator's decision on one message.
type Verdict int

const (
	// Accept delivers and forwards the message.
	Accept Verdict = iota
	// Ignore drops it without penalty: undecidable yet, or already held.
	Ignore
	// Reject drops it and penalises the peer that delivered it.
	Reject
)

// Handler validates (and, on Accept, has already applied) one gossiped
// event. from is the peer that delivered it; it is this host's own ID for
// local publications. The gossip package calls it concurrently.
type Handler func(ctx context.Context, guild event.ID, from peer.ID, raw []byte, ephemeral bool) Verdict

// Topic names [FED-010].
func Topic(guild event.ID) string { return "/hearth/guild/" + guild.String() + "/1" }

// EphemeralTopic is the presence and typing topic of a guild.
func EphemeralTopic(guild event.ID) string { return "/hearth/guild/" + guild.String() + "/eph/1" }

// MaxMessageSize bounds pubsub messages [FED-070].
const MaxMessageSize = 131072

// QueueSize bounds the messages queued for each peer and those waiting for validation.
const QueueSize = 1024

// ValidateWorkers is how many gossiped messages are validated at once. Validators run
// inline in these long-lived workers: pubsub's default starts a goroutine per message,
// whose small stack then grows (copied each time) through decoding, the signature check
// and the store, which took 7% of a receiving node's CPU, and each start is one more
// hand-off on the delivery path. A worker blocks while its event is made durable
// [FED-019], so there are many; a full queue drops messages (QueueSize), which catch-up
// fetches later.
const ValidateWorkers = 64

// SeenTTL outlives the live clock window of [EVT-032] [FED-015].
const SeenTTL = 11 * time.Minute

// Score thresholds. One rejected message costs InvalidWeight·1², two cost
// 4·InvalidWeight: a peer that delivers two invalid events is graylisted.
const (
	GossipThreshold   = -100
	PublishThreshold  = -200
	GraylistThreshold = -300
	invalidWeight     = -100
)

// Gossip owns the pubsub router and the guild topics. Create with New,
// stop with Close.
type Gossip struct {
	h      host.Host
	ps     *pubsub.PubSub
	log    *slog.Logger
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu     sync.Mutex // guards guilds; held across pubsub calls
	guilds map[event.ID]*guildTopics

	// scoreMu guards scores and penalties. It is separate from mu because
	// pubsub's event loop calls appScore while Join holds mu and waits for
	// that loop.
	scoreMu sync.Mutex
	scores  map[peer.ID]float64
	// penalties are application penalties (sync misbehaviour) with the time
	// they were last raised; they halve every minute.
	penalties map[peer.ID]penalty
}

type penalty struct {
	points float64
	at     time.Time
}

type guildTopics struct {
	topics [2]*pubsub.Topic
	subs   [2]*pubsub.Subscription
	cancel context.CancelFunc
}

// New starts gossipsub on h.
func New(h host.Host, log *slog.Logger) (*Gossip, error) {
	if log == nil {
		log = slog.Default()
	}
	ctx, cancel := context.WithCancel(context.Background())
	g := &Gossip{h: h, log: log, cancel: cancel, guilds: map[event.ID]*guildTopics{},
		scores: map[peer.ID]float64{}, penalties: map[peer.ID]penalty{}}
	ps, err := pubsub.NewGossipSub(ctx, h,
		pubsub.WithMessageSignaturePolicy(pubsub.StrictNoSign), // [FED-011]
		pubsub.WithNoAuthor(),
		pubsub.WithMessageIdFn(messageID), // [FED-012]
		pubsub.WithLogger(log.With("component", "pubsub")),
		pubsub.WithMaxMessageSize(MaxMessageSize),
		pubsub.WithSeenMessagesTTL(SeenTTL),
		pubsub.WithPeerExchange(false),
		pubsub.WithFloodPublish(true),
		// Room for a second of traffic at 1,000 events/s: the defaults (32) drop what a busy
		// machine does not write or validate within some 30 ms, and a dropped event then
		// comes only by sync, after the gap grace of [FED-036].
		pubsub.WithPeerOutboundQueueSize(QueueSize),
		pubsub.WithValidateQueueSize(QueueSize),
		pubsub.WithValidateWorkers(ValidateWorkers),
		pubsub.WithPeerScore(g.scoreParams(), &pubsub.PeerScoreThresholds{
			GossipThreshold: GossipThreshold, PublishThreshold: PublishThreshold, GraylistThreshold: GraylistThreshold,
			AcceptPXThreshold: 100, OpportunisticGraftThreshold: 5,
		}),
		pubsub.WithPeerScoreInspect(pubsub.ExtendedPeerScoreInspectFn(g.inspect), time.Second),
	)
	if err != nil {
		cancel()
		return nil, fmt.Errorf("gossip: %w", err)
	}
	g.ps = ps
	return g, nil
}

func messageID(m *pb.Message) string {
	if id, ok := event.PeekID(m.Data); ok {
		return string(id)
	}
	return string(event.HashID(m.Data))
}

func (g *Gossip) scoreParams() *pubsub.PeerScoreParams {
	return &pubsub.PeerScoreParams{
		Topics:            map[string]*pubsub.TopicScoreParams{},
		TopicScoreCap:     100,
		AppSpecificScore:  g.appScore,
		AppSpecificWeight: 1,
		// Self-hosted nodes often share an address (one NAT, one VPS
		// provider's IPv4); colocation is not a signal of abuse here.
		IPColocationFactorWeight:  0,
		BehaviourPenaltyWeight:    -10,
		BehaviourPenaltyThreshold: 6,
		BehaviourPenaltyDecay:     0.9,
		DecayInterval:             time.Second,
		DecayToZero:               0.01,
		RetainScore:               10 * time.Minute,
	}
}

func topicScoreParams() *pubsub.TopicScoreParams {
	return &pubsub.TopicScoreParams{
		SkipAtomicValidation:           true,
		TopicWeight:                    1,
		TimeInMeshWeight:               0.01,
		TimeInMeshQuantum:              time.Second,
		TimeInMeshCap:                  100,
		FirstMessageDeliveriesWeight:   1,
		FirstMessageDeliveriesDecay:    0.9,
		FirstMessageDeliveriesCap:      50,
		InvalidMessageDeliveriesWeight: invalidWeight,
		InvalidMessageDeliveriesDecay:  0.99,
	}
}

func (g *Gossip) appScore(p peer.ID) float64 {
	g.scoreMu.Lock()
	defer g.scoreMu.Unlock()
	pen, ok := g.penalties[p]
	if !ok {
		return 0
	}
	return -pen.points * math.Pow(0.5, time.Since(pen.at).Minutes())
}

// Penalize lowers p's score for misbehaviour outside gossip (bad sync
// responses). points are in score units; 300 graylists a neutral peer.
func (g *Gossip) Penalize(p peer.ID, points float64) {
	g.scoreMu.Lock()
	defer g.scoreMu.Unlock()
	cur := g.penalties[p]
	decayed := cur.points * math.Pow(0.5, time.Since(cur.at).Minutes())
	g.penalties[p] = penalty{points: decayed + points, at: time.Now()}
}

func (g *Gossip) inspect(m map[peer.ID]*pubsub.PeerScoreSnapshot) {
	scores := make(map[peer.ID]float64, len(m))
	for p, s := range m {
		scores[p] = s.Score
	}
	g.scoreMu.Lock()
	g.scores = scores
	g.scoreMu.Unlock()
}

// Score returns p's gossipsub score as of the last inspection (every second).
func (g *Gossip) Score(p peer.ID) float64 {
	g.scoreMu.Lock()
	defer g.scoreMu.Unlock()
	return g.scores[p]
}

// Join subscribes to a guild's topics with handle as their validator. It is
// a no-op if the guild is already joined.
func (g *Gossip) Join(guild event.ID, handle Handler) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if _, ok := g.guilds[guild]; ok {
		return nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	gt := &guildTopics{cancel: cancel}
	for i, name := range []string{Topic(guild), EphemeralTopic(guild)} {
		ephemeral := i == 1
		err := g.ps.RegisterTopicValidator(name, func(ctx context.Context, from peer.ID, m *pubsub.Message) pubsub.ValidationResult {
			switch handle(ctx, guild, from, m.Data, ephemeral) {
			case Accept:
				return pubsub.ValidationAccept
			case Ignore:
				return pubsub.ValidationIgnore
			default:
				return pubsub.ValidationReject
			}
		}, pubsub.WithValidatorTimeout(10*time.Second), pubsub.WithValidatorInline(true))
		if err != nil {
			g.closeTopics(gt)
			return fmt.Errorf("gossip: validator %s: %w", name, err)
		}
		t, err := g.ps.Join(name)
		if err != nil {
			_ = g.ps.UnregisterTopicValidator(name)
			g.closeTopics(gt)
			return fmt.Errorf("gossip: join %s: %w", name, err)
		}
		gt.topics[i] = t
		if err := t.SetScoreParams(topicScoreParams()); err != nil {
			g.closeTopics(gt)
			return fmt.Errorf("gossip: score params: %w", err)
		}
		sub, err := t.Subscribe()
		if err != nil {
			g.closeTopics(gt)
			return fmt.Errorf("gossip: subscribe %s: %w", name, err)
		}
		gt.subs[i] = sub
		// Validators have applied every accepted message; the
		// subscription only keeps us in the mesh, so drain it.
		g.wg.Add(1)
		go func() {
			defer g.wg.Done()
			for {
				if _, err := sub.Next(ctx); err != nil {
					return
				}
			}
		}()
	}
	g.guilds[guild] = gt
	return nil
}

func (g *Gossip) closeTopics(gt *guildTopics) {
	gt.cancel()
	for i := range gt.topics {
		if gt.subs[i] != nil {
			gt.subs[i].Cancel()
		}
		if gt.topics[i] != nil {
			name := gt.topics[i].String()
			_ = gt.topics[i].Close()
			_ = g.ps.UnregisterTopicValidator(name)
		}
	}
}

// Leave unsubscribes from a guild's topics.
func (g *Gossip) Leave(guild event.ID) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if gt, ok := g.guilds[guild]; ok {
		g.closeTopics(gt)
		delete(g.guilds, guild)
	}
}

// ErrNotJoined is returned when publishing to a guild not joined.
var ErrNotJoined = errors.New("gossip: guild not joined")

// Publish sends a signed event on the guild's topic; ephemeral selects the
// presence and typing topic. The local validator runs first.
func (g *Gossip) Publish(ctx context.Context, guild event.ID, raw []byte, ephemeral bool) error {
	g.mu.Lock()
	gt, ok := g.guilds[guild]
	g.mu.Unlock()
	if !ok {
		return ErrNotJoined
	}
	i := 0
	if ephemeral {
		i = 1
	}
	if err := gt.topics[i].Publish(ctx, raw); err != nil {
		return fmt.Errorf("gossip: publish: %w", err)
	}
	return nil
}

// Peers lists the peers subscribed to a guild's event topic.
func (g *Gossip) Peers(guild event.ID) []peer.ID {
	g.mu.Lock()
	gt, ok := g.guilds[guild]
	g.mu.Unlock()
	if !ok {
		return nil
	}
	return gt.topics[0].ListPeers()
}

// Close leaves every topic and stops the router's goroutines.
func (g *Gossip) Close() {
	g.mu.Lock()
	for id, gt := range g.guilds {
		g.closeTopics(gt)
		delete(g.guilds, id)
	}
	g.mu.Unlock()
	g.cancel()
	g.wg.Wait()
}
