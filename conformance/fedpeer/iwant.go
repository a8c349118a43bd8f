package fedpeer

import (
	"bufio"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"sync"

	pb "github.com/libp2p/go-libp2p-pubsub/pb"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	"google.golang.org/protobuf/proto"
)

// gossipsubProtocols are the gossipsub versions the raw peer speaks.
var gossipsubProtocols = []protocol.ID{"/meshsub/1.2.0", "/meshsub/1.1.0"}

// RawGossip speaks gossipsub's wire format by hand, without a router: it reads
// every RPC the node sends and writes the control messages a test chooses, such
// as an IWANT naming a message ID, which a router only sends after an IHAVE.
// Start it with StartRawGossip before the peer connects to the node.
type RawGossip struct {
	p *Peer

	mu     sync.Mutex
	out    network.Stream
	got    []*pb.Message
	hello  chan struct{} // closed when the node's first RPC arrives
	closed bool
}

// StartRawGossip registers the gossipsub protocols on the peer. The node opens
// its gossipsub stream to the peer once they are connected.
func (p *Peer) StartRawGossip() *RawGossip {
	g := &RawGossip{p: p, hello: make(chan struct{})}
	for _, proto := range gossipsubProtocols {
		p.Host.SetStreamHandler(proto, g.read)
	}
	return g
}

// read records the messages of every RPC on an inbound stream until it ends.
func (g *RawGossip) read(s network.Stream) {
	defer s.Close()
	r := bufio.NewReader(s)
	for {
		n, err := binary.ReadUvarint(r)
		if err != nil || n > 4*MaxPubsub {
			return
		}
		buf := make([]byte, n)
		if _, err := io.ReadFull(r, buf); err != nil {
			return
		}
		var rpc pb.RPC
		if err := proto.Unmarshal(buf, &rpc); err != nil {
			return
		}
		g.mu.Lock()
		g.got = append(g.got, rpc.GetPublish()...)
		if !g.closed {
			g.closed = true
			close(g.hello)
		}
		g.mu.Unlock()
	}
}

// Hello is closed once the node has sent its first RPC (its subscriptions), so
// it knows the peer as a gossipsub peer and can answer it.
func (g *RawGossip) Hello() <-chan struct{} { return g.hello }

// Want sends the node an IWANT for ids over the peer's own gossipsub stream.
func (g *RawGossip) Want(ctx context.Context, to peer.ID, ids ...[]byte) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.out == nil {
		s, err := g.p.Host.NewStream(ctx, to, gossipsubProtocols...)
		if err != nil {
			return fmt.Errorf("fedpeer: gossipsub stream: %w", err)
		}
		g.out = s
	}
	want := &pb.ControlIWant{}
	for _, id := range ids {
		want.MessageIDs = append(want.MessageIDs, string(id))
	}
	data, err := proto.Marshal(&pb.RPC{Control: &pb.ControlMessage{Iwant: []*pb.ControlIWant{want}}})
	if err != nil {
		return err
	}
	frame := binary.AppendUvarint(nil, uint64(len(data)))
	if _, err := g.out.Write(append(frame, data...)); err != nil {
		return fmt.Errorf("fedpeer: gossipsub write: %w", err)
	}
	return nil
}

// Messages returns the messages the node has sent so far.
func (g *RawGossip) Messages() []*pb.Message {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]*pb.Message(nil), g.got...)
}
