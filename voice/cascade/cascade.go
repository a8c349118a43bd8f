// Package cascade relays voice between the SFUs of nodes whose members share
// a voice channel of a federated guild (spec/voice.md section 5, protocol
// /hearth/voice/cascade/1.0.0).
//
// Each node tells every other node of a guild which of its members are in
// voice there (state frames: channel, mute and deafen, speaking, published
// tracks), and the receiving node puts them in its SFU as remote members, so
// that they appear in VOICE_STATE_UPDATE like its own. When a local member
// subscribes to a remote member's track, the node subscribes to that track
// once, however many of its members listen, and the publishing node
// forwards the track's packets on its link. A link silent for Config.Timeout,
// or closed, takes the other node's members out of voice.
//
// Create a Cascade with New once the SFU and the libp2p host run; Close it
// before either stops.
package cascade

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"

	"github.com/hearth-chat/hearth/voice/sfu"
)

// Protocol is the cascade's libp2p protocol ID.
const Protocol protocol.ID = "/hearth/voice/cascade/1.0.0"

// Directory is what the cascade needs from the node: the mapping between
// the SFU's node-local IDs and federation IDs, and which nodes take part in
// a guild. Its methods are called from the cascade's goroutines, never under
// the SFU's lock.
type Directory interface {
	// FedGuild returns the federation ID of a local guild; false if the
	// guild is not federated.
	FedGuild(guildID string) (string, bool)
	// FedChannel returns the federation ID of a local channel; false if it
	// has none.
	FedChannel(channelID string) (string, bool)
	// LocalGuild returns the local ID of a federated guild this node shows.
	LocalGuild(fedGuild string) (string, bool)
	// LocalChannel returns the local ID of a voice channel of a federated
	// guild.
	LocalChannel(fedGuild, fedChannel string) (string, bool)
	// UserName returns a local member's name as federation knows it; false
	// for users of other nodes.
	UserName(userID string) (string, bool)
	// RemoteUser returns the local ID of the member name of node p in a
	// federated guild; false if this node does not know them (yet).
	RemoteUser(fedGuild string, p peer.ID, name string) (string, bool)
	// Nodes lists the other nodes taking part in a federated guild.
	Nodes(fedGuild string) []peer.ID
	// Home returns the home node of a federated guild.
	Home(fedGuild string) peer.ID
	// LocalUser returns the ID of this node's user called name.
	LocalUser(name string) (string, bool)
}

// Moderation is a moderator's voice change to one member: server mute or
// deafen (nil: unchanged), a move (ChannelID, a local channel) or a
// disconnect.
type Moderation struct {
	Mute, Deaf *bool
	ChannelID  string
	Disconnect bool
}

// Config configures a Cascade. Host, SFU and Dir are required.
type Config struct {
	Host host.Host
	SFU  *sfu.SFU
	Dir  Directory
	// Heartbeat is how often a link carries a frame at least (a ping when
	// idle); 0 means 1 s.
	Heartbeat time.Duration
	// Timeout is how long a link may stay silent before the other node is
	// taken for gone, and bounds opening and writing a link; 0 means 5 s
	// [VOICE-138].
	Timeout time.Duration
	// Refresh is how often the full states are sent again; 0 means 2 s
	// [VOICE-136].
	Refresh time.Duration
	// MaxQueue is how many bytes a link may have queued before media is
	// dropped; 0 means 256 KiB.
	MaxQueue int
	// OnModerate carries out, on this node, a moderation that the guild's
	// home node sent for one of this node's members (local IDs). It must
	// not block. Nil ignores such requests.
	OnModerate func(guildID, userID string, m Moderation)
	// Logger receives diagnostics; nil means slog.Default().
	Logger *slog.Logger
}

// Cascade runs the cascade of one node. Create with New, stop with Close.
type Cascade struct {
	cfg    Config
	log    *slog.Logger
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	wake   chan struct{}

	dmu   sync.Mutex // guards dirty; taken under the SFU's lock
	dirty map[string]bool

	mu     sync.Mutex // guards the fields below; never held while calling the SFU
	active map[string]bool
	peers  map[peer.ID]*peerState
	closed bool
}

// peerState is what this node knows of one other node.
type peerState struct {
	id      peer.ID
	out     atomic.Pointer[link] // this node's link to the peer; nil when none
	retryAt time.Time            // no new link before (after a failure)
	idle    time.Time            // since when the link has not been needed
	in      network.Stream       // the peer's link to this node
	applyMu sync.Mutex           // serialises the peer's state frames

	members map[string]string   // local user ID → federation guild, as the peer announced
	names   map[string]string   // local user ID → name on the peer
	tracks  map[uint64]*inTrack // the peer's tracks, by the peer's track ID
	taps    map[uint64]*sfu.Tap // this node's tracks the peer subscribed to
}

// inTrack is one track of another node's member.
type inTrack struct {
	guild      string
	rt         *sfu.RemoteTrack
	want       atomic.Int32 // highest layer local members want, -1: none (set under the SFU lock)
	key        atomic.Bool  // a key frame was asked for
	subscribed bool         // a subscribe frame went out on the current link
	layer      int32        // the layer it asked for
}

// New starts the cascade: it serves Protocol on the host and watches the
// SFU's local members.
func New(cfg Config) (*Cascade, error) {
	if cfg.Host == nil || cfg.SFU == nil || cfg.Dir == nil {
		return nil, errors.New("cascade: Host, SFU and Dir are required")
	}
	if cfg.Heartbeat == 0 {
		cfg.Heartbeat = time.Second
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 5 * time.Second
	}
	if cfg.Refresh == 0 {
		cfg.Refresh = 2 * time.Second
	}
	if cfg.MaxQueue == 0 {
		cfg.MaxQueue = 256 << 10
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	c := &Cascade{cfg: cfg, log: cfg.Logger, wake: make(chan struct{}, 1),
		dirty: map[string]bool{}, active: map[string]bool{}, peers: map[peer.ID]*peerState{}}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	cfg.Host.SetStreamHandler(Protocol, c.serve)
	cfg.SFU.SetObserver(c.changed)
	c.wg.Add(1)
	go c.run()
	return c, nil
}

// Close stops the cascade: links close, the other nodes' members leave
// voice here, and every goroutine ends.
func (c *Cascade) Close() error {
	c.cfg.SFU.SetObserver(nil)
	c.cfg.Host.RemoveStreamHandler(Protocol)
	c.mu.Lock()
	c.closed = true
	var ins []network.Stream
	for _, ps := range c.peers {
		if ps.in != nil {
			ins = append(ins, ps.in)
		}
	}
	c.mu.Unlock()
	c.cancel()
	for _, s := range ins {
		_ = s.Reset()
	}
	c.wg.Wait()
	return nil
}

// Stats are the cascade's counters.
type Stats struct {
	// Upstream is the number of other nodes' tracks this node subscribes to.
	Upstream int
	// Downstream is the number of this node's tracks forwarded to other
	// nodes, counted once per node.
	Downstream int
	// RemoteMembers is the number of other nodes' members shown here.
	RemoteMembers int
	// Dropped counts media packets dropped because a link was behind.
	Dropped uint64
}

// Stats returns the current counters.
func (c *Cascade) Stats() Stats {
	c.mu.Lock()
	defer c.mu.Unlock()
	var st Stats
	for _, ps := range c.peers {
		for _, it := range ps.tracks {
			if it.subscribed {
				st.Upstream++
			}
		}
		st.Downstream += len(ps.taps)
		st.RemoteMembers += len(ps.members)
		if l := ps.out.Load(); l != nil {
			st.Dropped += l.dropped.Load()
		}
	}
	return st
}

// changed is the SFU observer: it runs under the SFU's lock.
func (c *Cascade) changed(guildID string) {
	c.dmu.Lock()
	c.dirty[guildID] = true
	c.dmu.Unlock()
	c.kick()
}

func (c *Cascade) kick() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

func (c *Cascade) peerLocked(p peer.ID) *peerState {
	ps := c.peers[p]
	if ps == nil {
		ps = &peerState{id: p, members: map[string]string{}, names: map[string]string{}, tracks: map[uint64]*inTrack{}, taps: map[uint64]*sfu.Tap{}}
		c.peers[p] = ps
	}
	return ps
}

// outLocked returns the link to p, opening one unless a recent attempt
// failed.
func (c *Cascade) outLocked(ps *peerState, now time.Time) *link {
	if l := ps.out.Load(); l != nil || c.closed || now.Before(ps.retryAt) {
		return l
	}
	l := newLink(c, ps.id)
	ps.out.Store(l)
	ps.idle = time.Time{}
	// A new link starts from nothing: subscriptions and states go again.
	for _, it := range ps.tracks {
		it.subscribed = false
	}
	c.dmu.Lock()
	for g := range c.active {
		c.dirty[g] = true
	}
	c.dmu.Unlock()
	c.wg.Add(1)
	go func() { defer c.wg.Done(); l.run() }()
	c.kick()
	return l
}

// linkEnded forgets a link that closed or failed.
func (c *Cascade) linkEnded(l *link) {
	c.mu.Lock()
	defer c.mu.Unlock()
	ps := c.peers[l.peer]
	if ps != nil && ps.out.CompareAndSwap(l, nil) {
		ps.retryAt = time.Now().Add(c.cfg.Heartbeat)
		c.kick()
	}
}

// run is the cascade's loop: it sends states, subscriptions, key-frame
// requests and heartbeats.
func (c *Cascade) run() {
	defer c.wg.Done()
	t := time.NewTicker(c.cfg.Heartbeat / 2)
	defer t.Stop()
	lastRefresh := time.Now()
	for {
		var now time.Time
		select {
		case <-c.ctx.Done():
			c.shutdown()
			return
		case <-c.wake:
			now = time.Now()
		case now = <-t.C:
		}
		c.dmu.Lock()
		dirty := c.dirty
		c.dirty = map[string]bool{}
		c.dmu.Unlock()
		if now.Sub(lastRefresh) >= c.cfg.Refresh {
			lastRefresh = now
			c.mu.Lock()
			for g := range c.active {
				dirty[g] = true
			}
			c.mu.Unlock()
		}
		for g := range dirty {
			c.sendState(g, now)
		}
		c.syncTracks(now)
		c.heartbeat(now)
	}
}

// sendState tells every other node of a guild which members this node has
// in voice there [VOICE-136].
func (c *Cascade) sendState(guildID string, now time.Time) {
	fg, ok := c.cfg.Dir.FedGuild(guildID)
	if !ok {
		return
	}
	body := stateBody{Guild: fg, Members: []memberWire{}}
	for _, m := range c.cfg.SFU.LocalMembers(guildID) {
		name, ok1 := c.cfg.Dir.UserName(m.State.UserID)
		fc, ok2 := c.cfg.Dir.FedChannel(m.State.ChannelID)
		if !ok1 || !ok2 {
			continue
		}
		mw := memberWire{Name: name, Channel: fc, Session: m.State.SessionID, Flags: flags(m)}
		for _, t := range m.Tracks {
			mw.Tracks = append(mw.Tracks, trackWire{ID: t.ID, Source: string(t.Source), Mime: t.Codec.MimeType,
				Clock: t.Codec.ClockRate, Channels: t.Codec.Channels, Fmtp: t.Codec.SDPFmtpLine})
		}
		body.Members = append(body.Members, mw)
	}
	nodes := c.cfg.Dir.Nodes(fg)
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(body.Members) == 0 {
		if !c.active[guildID] {
			return
		}
		delete(c.active, guildID)
	} else {
		c.active[guildID] = true
	}
	for _, p := range nodes {
		if l := c.outLocked(c.peerLocked(p), now); l != nil {
			l.control(typeState, &body)
		}
	}
}

func flags(m sfu.LocalMember) uint32 {
	var f uint32
	for _, x := range []struct {
		on  bool
		bit uint32
	}{{m.State.SelfMute, flagSelfMute}, {m.State.SelfDeaf, flagSelfDeaf}, {m.State.Mute, flagMute},
		{m.State.Deaf, flagDeaf}, {m.State.SelfVideo, flagVideo}, {m.State.SelfStream, flagStream}, {m.Speaking, flagSpeaking}} {
		if x.on {
			f |= x.bit
		}
	}
	return f
}

// syncTracks sends subscribe and unsubscribe frames where local demand
// changed (a subscribe again when the layer wanted changed), and key-frame
// requests [VOICE-131] [VOICE-132] [VOICE-134].
func (c *Cascade) syncTracks(now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, ps := range c.peers {
		for id, it := range ps.tracks {
			want := it.want.Load()
			change := (want >= 0) != it.subscribed || (want >= 0 && want != it.layer)
			if !change && !(it.subscribed && it.key.Load()) {
				continue
			}
			l := c.outLocked(ps, now)
			if l == nil {
				continue
			}
			switch {
			case want >= 0 && change:
				l.control(typeSubscribe, &trackBody{Guild: it.guild, Track: id, Layer: uint8(want)})
				it.subscribed, it.layer = true, want
				it.key.Store(false) // a new subscription starts with a key frame
			case want < 0 && it.subscribed:
				l.control(typeUnsubscribe, &trackBody{Guild: it.guild, Track: id})
				it.subscribed = false
			}
			if it.subscribed && it.key.Swap(false) {
				l.control(typeKeyframe, &trackBody{Guild: it.guild, Track: id})
			}
		}
	}
}

// heartbeat pings idle links and closes links that nothing needs any more.
func (c *Cascade) heartbeat(now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	needed := map[peer.ID]bool{}
	for g := range c.active {
		if fg, ok := c.cfg.Dir.FedGuild(g); ok {
			for _, p := range c.cfg.Dir.Nodes(fg) {
				needed[p] = true
			}
		}
	}
	for _, ps := range c.peers {
		l := ps.out.Load()
		if l == nil {
			continue
		}
		busy := needed[ps.id] || len(ps.taps) > 0
		for _, it := range ps.tracks {
			busy = busy || it.subscribed
		}
		switch {
		case busy:
			ps.idle = time.Time{}
		case ps.idle.IsZero():
			ps.idle = now
		case now.Sub(ps.idle) > 2*c.cfg.Timeout:
			l.close()
			continue
		}
		if now.UnixNano()-l.sent.Load() >= int64(c.cfg.Heartbeat) {
			l.control(typePing, nil)
		}
	}
}

// shutdown closes every link and takes the other nodes' members out of
// voice. It runs on the loop goroutine once the context ends.
func (c *Cascade) shutdown() {
	c.mu.Lock()
	var users []string
	var taps []*sfu.Tap
	for _, ps := range c.peers {
		if l := ps.out.Load(); l != nil {
			l.close()
		}
		for u := range ps.members {
			users = append(users, u)
		}
		for _, t := range ps.taps {
			taps = append(taps, t)
		}
		ps.members, ps.taps, ps.tracks = map[string]string{}, map[uint64]*sfu.Tap{}, map[uint64]*inTrack{}
	}
	c.mu.Unlock()
	for _, t := range taps {
		t.Close()
	}
	for _, u := range users {
		c.cfg.SFU.RemoveRemote(u)
	}
}

// serve reads another node's link until it ends or stays silent too long.
func (c *Cascade) serve(s network.Stream) {
	p := s.Conn().RemotePeer()
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		_ = s.Reset()
		return
	}
	c.wg.Add(1)
	defer c.wg.Done()
	ps := c.peerLocked(p)
	old := ps.in
	ps.in = s
	c.mu.Unlock()
	if old != nil {
		_ = old.Reset() // the peer opened a new link; its reader ends without cleanup
	}
	defer func() {
		_ = s.Reset()
		c.mu.Lock()
		current := ps.in == s
		if current {
			ps.in = nil
		}
		c.mu.Unlock()
		if current {
			c.dropPeer(ps)
		}
	}()
	r := bufio.NewReaderSize(s, 32<<10)
	var buf []byte
	for {
		_ = s.SetReadDeadline(time.Now().Add(c.cfg.Timeout))
		typ, body, b, err := readFrame(r, buf)
		buf = b
		if err != nil {
			if !errors.Is(err, context.Canceled) {
				c.log.Debug("cascade: link from peer ended", "peer", p, "err", err)
			}
			return
		}
		if err := c.handle(ps, typ, body); err != nil {
			c.log.Info("cascade: bad frame, dropping the link", "peer", p, "type", typ, "err", err)
			return
		}
	}
}

// handle processes one frame of a peer's link.
func (c *Cascade) handle(ps *peerState, typ byte, body []byte) error {
	switch typ {
	case typeRTP:
		id, n := binary.Uvarint(body)
		if n <= 0 || n >= len(body) {
			return errFrame
		}
		c.mu.Lock()
		var rt *sfu.RemoteTrack
		if it := ps.tracks[id]; it != nil {
			rt = it.rt
		}
		c.mu.Unlock()
		if rt != nil {
			rt.WriteRTP(body[n:])
		}
		return nil
	case typePing:
		return nil
	case typeState:
		var st stateBody
		if err := decMode.Unmarshal(body, &st); err != nil {
			return err
		}
		c.applyState(ps, &st)
		return nil
	case typeModerate:
		var mb moderateBody
		if err := decMode.Unmarshal(body, &mb); err != nil {
			return err
		}
		c.moderated(ps, &mb)
		return nil
	case typeSubscribe, typeUnsubscribe, typeKeyframe:
		var tb trackBody
		if err := decMode.Unmarshal(body, &tb); err != nil {
			return err
		}
		c.trackRequest(ps, typ, &tb)
		return nil
	}
	return nil // unknown types are ignored, for later versions
}

// member reports whether p takes part in a federated guild.
func (c *Cascade) member(fg string, p peer.ID) bool {
	for _, n := range c.cfg.Dir.Nodes(fg) {
		if n == p {
			return true
		}
	}
	return false
}

// applyState shows a peer's members of one guild in the SFU [VOICE-137].
func (c *Cascade) applyState(ps *peerState, st *stateBody) {
	if !c.member(st.Guild, ps.id) {
		c.log.Debug("cascade: state for a guild the peer is not in", "peer", ps.id, "guild", st.Guild)
		return
	}
	lg, ok := c.cfg.Dir.LocalGuild(st.Guild)
	if !ok {
		return
	}
	ps.applyMu.Lock()
	defer ps.applyMu.Unlock()
	seen := map[string]bool{}
	liveTracks := map[uint64]bool{}
	for _, m := range st.Members {
		uid, ok1 := c.cfg.Dir.RemoteUser(st.Guild, ps.id, m.Name)
		ch, ok2 := c.cfg.Dir.LocalChannel(st.Guild, m.Channel)
		if !ok1 || !ok2 {
			continue
		}
		rm := sfu.RemoteMember{
			State: sfu.State{GuildID: lg, ChannelID: ch, UserID: uid, SessionID: m.Session,
				SelfMute: m.Flags&flagSelfMute != 0, SelfDeaf: m.Flags&flagSelfDeaf != 0, Mute: m.Flags&flagMute != 0,
				Deaf: m.Flags&flagDeaf != 0, SelfVideo: m.Flags&flagVideo != 0, SelfStream: m.Flags&flagStream != 0},
			Speaking: m.Flags&flagSpeaking != 0,
		}
		c.mu.Lock()
		for _, t := range m.Tracks {
			src := sfu.Source(t.Source)
			switch src {
			case sfu.SourceMicrophone, sfu.SourceCamera, sfu.SourceScreen, sfu.SourceScreenAudio:
			default:
				continue
			}
			it := ps.tracks[t.ID]
			if it == nil {
				it = &inTrack{guild: st.Guild}
				it.want.Store(-1)
				ps.tracks[t.ID] = it
			}
			liveTracks[t.ID] = true
			rm.Tracks = append(rm.Tracks, sfu.RemoteTrackSpec{ID: t.ID, Source: src,
				Codec:  webrtc.RTPCodecCapability{MimeType: t.Mime, ClockRate: t.Clock, Channels: t.Channels, SDPFmtpLine: t.Fmtp},
				Demand: func(l int) { it.want.Store(int32(l)); c.kick() }, Keyframe: func() { it.key.Store(true); c.kick() }})
		}
		c.mu.Unlock()
		tracks, err := c.cfg.SFU.SetRemote(rm)
		if err != nil {
			c.log.Debug("cascade: remote member", "peer", ps.id, "user", uid, "err", err)
			continue
		}
		seen[uid] = true
		c.mu.Lock()
		for id, rt := range tracks {
			if it := ps.tracks[id]; it != nil {
				it.rt = rt
			}
		}
		ps.members[uid] = st.Guild
		ps.names[uid] = m.Name
		c.mu.Unlock()
	}
	var gone []string
	c.mu.Lock()
	for uid, g := range ps.members {
		if g == st.Guild && !seen[uid] {
			gone = append(gone, uid)
			delete(ps.members, uid)
			delete(ps.names, uid)
		}
	}
	for id, it := range ps.tracks {
		if it.guild == st.Guild && !liveTracks[id] {
			delete(ps.tracks, id)
		}
	}
	c.mu.Unlock()
	for _, uid := range gone {
		c.cfg.SFU.RemoveRemote(uid)
	}
}

// trackRequest serves a peer's subscribe, unsubscribe or key-frame request
// for one of this node's tracks [VOICE-139].
func (c *Cascade) trackRequest(ps *peerState, typ byte, tb *trackBody) {
	c.mu.Lock()
	old := ps.taps[tb.Track]
	if typ == typeKeyframe {
		c.mu.Unlock()
		if old != nil {
			old.RequestKeyframe()
		}
		return
	}
	delete(ps.taps, tb.Track)
	c.mu.Unlock()
	if old != nil {
		old.Close()
	}
	if typ != typeSubscribe || !c.member(tb.Guild, ps.id) {
		return
	}
	lg, ok := c.cfg.Dir.LocalGuild(tb.Guild)
	if !ok {
		return
	}
	tap, err := c.cfg.SFU.Tap(lg, tb.Track, int(tb.Layer), uint32(tb.Track)|1, tapWriter{ps: ps, id: tb.Track})
	if err != nil {
		c.log.Debug("cascade: subscribe", "peer", ps.id, "track", tb.Track, "err", err)
		return
	}
	c.mu.Lock()
	if c.closed || c.peers[ps.id] != ps {
		c.mu.Unlock()
		tap.Close()
		return
	}
	if prev := ps.taps[tb.Track]; prev != nil {
		defer prev.Close()
	}
	ps.taps[tb.Track] = tap
	c.outLocked(ps, time.Now()) // the media goes on this node's link
	c.mu.Unlock()
}

// dropPeer forgets what a peer said on a link that ended: its members leave
// voice here and its subscriptions end [VOICE-138].
func (c *Cascade) dropPeer(ps *peerState) {
	ps.applyMu.Lock()
	defer ps.applyMu.Unlock()
	c.mu.Lock()
	users := make([]string, 0, len(ps.members))
	for u := range ps.members {
		users = append(users, u)
	}
	taps := make([]*sfu.Tap, 0, len(ps.taps))
	for _, t := range ps.taps {
		taps = append(taps, t)
	}
	ps.members, ps.tracks, ps.taps = map[string]string{}, map[uint64]*inTrack{}, map[uint64]*sfu.Tap{}
	ps.names = map[string]string{}
	c.mu.Unlock()
	for _, t := range taps {
		t.Close()
	}
	for _, u := range users {
		c.cfg.SFU.RemoveRemote(u)
	}
	if len(users) > 0 {
		c.log.Info("cascade: a node left voice", "peer", ps.id, "members", len(users))
	}
}

// Moderate sends a moderator's voice change for a member of another node
// (guildID and userID are local IDs) to that member's node, which carries it
// out [VOICE-135]; only the guild's home node is listened to. It reports
// false when userID is not another node's member in voice here.
func (c *Cascade) Moderate(guildID, userID string, m Moderation) bool {
	fg, ok := c.cfg.Dir.FedGuild(guildID)
	if !ok {
		return false
	}
	mb := moderateBody{Guild: fg, Mute: m.Mute, Deaf: m.Deaf, Disconnect: m.Disconnect}
	if m.ChannelID != "" {
		if mb.Channel, ok = c.cfg.Dir.FedChannel(m.ChannelID); !ok {
			return false
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, ps := range c.peers {
		if ps.members[userID] != fg {
			continue
		}
		mb.Name = ps.names[userID]
		if l := c.outLocked(ps, time.Now()); l != nil {
			l.control(typeModerate, &mb)
		}
		return true
	}
	return false
}

// moderated carries out a moderation from the guild's home node.
func (c *Cascade) moderated(ps *peerState, mb *moderateBody) {
	if c.cfg.OnModerate == nil || c.cfg.Dir.Home(mb.Guild) != ps.id {
		c.log.Debug("cascade: moderation not from the home node", "peer", ps.id, "guild", mb.Guild)
		return
	}
	lg, ok1 := c.cfg.Dir.LocalGuild(mb.Guild)
	uid, ok2 := c.cfg.Dir.LocalUser(mb.Name)
	if !ok1 || !ok2 {
		return
	}
	m := Moderation{Mute: mb.Mute, Deaf: mb.Deaf, Disconnect: mb.Disconnect}
	if mb.Channel != "" {
		ch, ok := c.cfg.Dir.LocalChannel(mb.Guild, mb.Channel)
		if !ok {
			return
		}
		m.ChannelID = ch
	}
	c.cfg.OnModerate(lg, uid, m)
}

// tapWriter sends a tapped track's packets on the current link to a peer.
type tapWriter struct {
	ps *peerState
	id uint64
}

// WriteRTP implements sfu.PacketWriter.
func (w tapWriter) WriteRTP(h *rtp.Header, payload []byte) (int, error) {
	if l := w.ps.out.Load(); l != nil {
		l.rtp(w.id, h, payload)
	}
	return len(payload), nil
}
