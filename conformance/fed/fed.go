// Package fed holds the federation conformance tests (prefix FED): a fake remote
// node (conformance/fedpeer) dials the node under test over libp2p and checks its
// transports, identity and stream protocols. They need the node's libp2p address
// (--peer, or --node-args with {p2p_port}); without it they are skipped.
package fed

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/hearth-chat/hearth/conformance/fedpeer"
	"github.com/hearth-chat/hearth/conformance/harness"
)

// T is the test context.
type T = harness.T

var p2p = harness.Needs{P2P: true}

// ownP2P is for tests that wait on the node's sync: on a node shared with the
// rest of the run, sync work for other guilds may queue ahead of theirs.
var ownP2P = harness.Needs{P2P: true, OwnNode: true}

// Tests are the federation tests, in a stable order.
var Tests = []harness.Test{
	{IDs: []string{"FED-001"}, Name: "fed/ed25519-identity", Needs: p2p, Run: identity},
	{IDs: []string{"FED-001"}, Name: "fed/identity-persists", Needs: harness.Needs{P2P: true, OwnNode: true, Managed: true}, Run: identityPersists},
	{IDs: []string{"FED-002"}, Name: "fed/transports", Needs: p2p, Run: transports},
	{IDs: []string{"FED-020"}, Name: "fed/oversize-request-reset", Needs: p2p, Run: oversize},
	{IDs: []string{"FED-021", "FED-034"}, Name: "fed/sync-refused-to-strangers", Needs: p2p, Run: syncStranger},
	{IDs: []string{"FED-051"}, Name: "fed/join-unknown-code", Needs: p2p, Run: joinUnknown},
	{IDs: []string{"EVT-001", "EVT-013", "EVT-021", "EVT-022", "EVT-025", "EVT-041", "FED-050", "FED-052", "FED-053"}, Name: "fed/join-response", Needs: p2p, Run: joinResponse},
	{IDs: []string{"EVT-002"}, Name: "fed/non-canonical-refused", Needs: p2p, Run: nonCanonical},
	{IDs: []string{"EVT-003"}, Name: "fed/oversize-event-refused", Needs: p2p, Run: oversizeEvent},
	{IDs: []string{"EVT-004", "EVT-024", "FED-032"}, Name: "fed/exact-bytes-stored", Needs: p2p, Run: exactBytes},
	{IDs: []string{"EVT-005"}, Name: "fed/spelled-out-optional-refused", Needs: p2p, Run: spelledOut},
	{IDs: []string{"EVT-010", "EVT-011", "EVT-012", "EVT-015", "EVT-016", "EVT-050", "EVT-051", "EVT-052"}, Name: "fed/bad-envelopes-refused", Needs: p2p, Run: badEnvelopes},
	{IDs: []string{"EVT-022", "EVT-023"}, Name: "fed/bad-signatures-refused", Needs: p2p, Run: badSignatures},
	{IDs: []string{"EVT-030", "EVT-031", "EVT-032"}, Name: "fed/clock-window", Needs: p2p, Run: clockWindow},
	{IDs: []string{"EVT-014"}, Name: "fed/equivocation-refused", Needs: p2p, Run: equivocation},
	{IDs: []string{"EVT-040", "EVT-043"}, Name: "fed/state-from-member-refused", Needs: p2p, Run: stateFromMember},
	{IDs: []string{"EVT-072", "EVT-020", "EVT-074", "FED-010", "FED-011", "FED-003"}, Name: "fed/node-events-and-foreign-edit", Needs: p2p, Run: editOthers},
	{IDs: []string{"EVT-075", "EVT-070", "EVT-073", "FED-013"}, Name: "fed/reject-or-ignore", Needs: p2p, Run: rejectOrIgnore},
	{IDs: []string{"FED-014"}, Name: "fed/graylist", Needs: p2p, Run: graylist},
	{IDs: []string{"FED-012"}, Name: "fed/message-id-is-event-id", Needs: p2p, Run: messageIDIsEventID},
	{IDs: []string{"EVT-070"}, Name: "fed/banned-author-refused", Needs: p2p, Run: bannedAuthor},
	{IDs: []string{"FED-036", "FED-037", "FED-016"}, Name: "fed/gap-fetched-from-deliverer", Needs: ownP2P, Run: gapFetch},
	{IDs: []string{"FED-024"}, Name: "fed/bad-sync-response-penalised", Needs: ownP2P, Run: badSyncPenalised},
	{IDs: []string{"FED-030", "FED-031", "FED-032", "EVT-080"}, Name: "fed/heads-and-fetch", Needs: p2p, Run: heads},
	{IDs: []string{"FED-033", "EVT-033"}, Name: "fed/history", Needs: p2p, Run: history},
	{IDs: []string{"FED-039", "FED-041", "FED-042", "FED-043", "EVT-076"}, Name: "fed/leave-and-after", Needs: p2p, Run: leaveAndAfter},
	{IDs: []string{"FED-041", "FED-042", "FED-044"}, Name: "fed/mod-request-checks", Needs: p2p, Run: modChecks},
	{IDs: []string{"FED-051", "EVT-061"}, Name: "fed/banned-user-join-refused", Needs: p2p, Run: bannedJoin},
	{IDs: []string{"FED-082", "FED-051"}, Name: "fed/revoked-invite-refused", Needs: p2p, Run: revokedInvite},
	{IDs: []string{"FED-053", "FED-068"}, Name: "fed/join-tail", Needs: p2p, Run: joinTail},
	{IDs: []string{"FED-100", "FED-101", "FED-102"}, Name: "fed/snapshot-join", Needs: p2p, Run: snapshotJoin},
	{IDs: []string{"FED-103"}, Name: "fed/snapshot-joiner", Needs: p2p, Run: snapshotJoiner},
	{IDs: []string{"FED-104"}, Name: "fed/snapshot-history", Needs: ownP2P, Run: snapshotHistory},
	{IDs: []string{"FED-018"}, Name: "fed/author-rate-limit", Needs: p2p, Run: authorRate},
	{IDs: []string{"FED-022"}, Name: "fed/stream-deadline", Needs: p2p, Run: streamDeadline},
	{IDs: []string{"FED-060", "FED-061", "EVT-015", "EVT-085"}, Name: "fed/node-presence-and-typing", Needs: p2p, Run: nodePresence},
	{IDs: []string{"EVT-082"}, Name: "fed/presence-expires", Needs: p2p, Run: presenceExpires},
	{IDs: []string{"EVT-081", "EVT-084", "FED-062"}, Name: "fed/ephemeral-refused", Needs: p2p, Run: ephemeralRefused},
	{IDs: []string{"FED-019"}, Name: "fed/durable-before-forward", Needs: harness.Needs{P2P: true, OwnNode: true, Managed: true}, Run: durableBeforeForward},
	{IDs: []string{"FED-070"}, Name: "fed/oversize-pubsub-dropped", Needs: p2p, Run: oversizePubsub},
	{IDs: []string{"FED-054"}, Name: "fed/tampered-join-response", Needs: p2p, Run: tamperedJoin},
	{IDs: []string{"EVT-042", "FED-017"}, Name: "fed/state-order", Needs: p2p, Run: stateOrder},
	{IDs: []string{"FED-040", "EVT-013"}, Name: "fed/member-asks-home", Needs: p2p, Run: memberAsksHome},
	{IDs: []string{"FED-080", "FED-081"}, Name: "fed/member-change-through-home", Needs: p2p, Run: memberChangeThroughHome},
	{IDs: []string{"EVT-063"}, Name: "fed/categories", Needs: p2p, Run: categories},
	{IDs: []string{"EVT-071", "FED-058"}, Name: "fed/no-send-permission-refused", Needs: p2p, Run: noSendPermission},
	{IDs: []string{"FED-015", "FED-016"}, Name: "fed/replay-dropped", Needs: p2p, Run: replay},
	{IDs: []string{"FED-071"}, Name: "fed/stream-limit", Needs: p2p, Run: streamLimit},
	{IDs: []string{"MEDIA-070", "MEDIA-071"}, Name: "fed/remote-attachment", Needs: p2p, Run: remoteAttachment},
	{IDs: []string{"MEDIA-073"}, Name: "fed/remote-attachment-overlong", Needs: p2p, Run: remoteAttachmentOverlong},
	{IDs: []string{"MEDIA-072"}, Name: "fed/remote-attachment-mismatch", Needs: p2p, Run: remoteAttachmentWrong},
	{IDs: []string{"MEDIA-080"}, Name: "fed/blob-to-member-nodes-only", Needs: p2p, Run: blobToMembersOnly},
	{IDs: []string{"FED-059"}, Name: "fed/profiles-cross-nodes", Needs: harness.Needs{P2P: true, Nodes: 2}, Run: profiles},
	{IDs: []string{"FED-063", "FED-065"}, Name: "fed/direct-messages-cross-nodes", Needs: harness.Needs{P2P: true, Nodes: 2}, Run: directMessages},
	{IDs: []string{"EVT-062"}, Name: "fed/guild-deleted", Needs: p2p, Run: guildDeleted},
	{IDs: []string{"EVT-060"}, Name: "fed/unknown-channel-state-refused", Needs: p2p, Run: unknownChannelState},
	{IDs: []string{"FED-064"}, Name: "fed/dm-foreign-home-refused", Needs: p2p, Run: dmForeignHome},
	{IDs: []string{"CAPI-033", "FED-090"}, Name: "fed/dm-by-name", Needs: harness.Needs{P2P: true, Nodes: 2}, Run: dmByName},
	{IDs: []string{"FED-091"}, Name: "fed/dm-stranger-limit", Needs: p2p, Run: dmStrangerLimit},
	{IDs: []string{"MEDIA-074"}, Name: "fed/media-from-another-member", Needs: harness.Needs{P2P: true, Nodes: 3, OwnNode: true, Managed: true}, Run: mediaFromAnotherMember},
	{IDs: []string{"FED-056", "FED-016", "FED-066"}, Name: "fed/nodes-converse", Needs: harness.Needs{P2P: true, Nodes: 2}, Run: threeNodes},
	{IDs: []string{"FED-035", "FED-016"}, Name: "fed/partition-heal", Needs: harness.Needs{P2P: true, Nodes: 2, Proxy: true}, Run: partitionHeal},
	{IDs: []string{"FED-055"}, Name: "fed/home-node-down", Needs: harness.Needs{P2P: true, Nodes: 3, OwnNode: true, Managed: true}, Run: homeDown},
	{IDs: []string{"FED-057", "FED-038"}, Name: "fed/restart-catch-up", Needs: harness.Needs{P2P: true, Nodes: 2, OwnNode: true, Managed: true}, Run: restartCatchUp},
}

// dial starts a fake peer, connects it to the node and registers its Close.
func dial(t *T) (*fedpeer.Peer, peer.ID) {
	p, err := fedpeer.New()
	if err != nil {
		t.Fatalf("%v", err)
	}
	t.Cleanup(func() { _ = p.Close() })
	ctx, cancel := context.WithTimeout(t.Ctx, t.Timeout())
	defer cancel()
	id, err := p.Connect(ctx, t.Node.P2P)
	if err != nil {
		t.Fatalf("%v", err)
	}
	return p, id
}

func ctx(t *T) (context.Context, context.CancelFunc) { return context.WithTimeout(t.Ctx, t.Timeout()) }

// randomGuild is a guild ID no node holds: a sha2-256 multihash of random bytes.
func randomGuild() []byte {
	id := make([]byte, 34)
	id[0], id[1] = 0x12, 0x20
	_, _ = rand.Read(id[2:])
	return id
}

// FED-001: "A node's identity MUST be an Ed25519 libp2p key, and its peer ID MUST be
// derived from it; the key MUST persist across restarts."
func identity(t *T) {
	p, id := dial(t)
	key := p.Host.Peerstore().PubKey(id)
	if key == nil {
		t.Fatalf("no public key learned for %s", id)
	}
	if key.Type() != crypto.Ed25519 {
		t.Errorf("node key type %v, expected Ed25519", key.Type())
	}
	if derived, err := peer.IDFromPublicKey(key); err != nil || derived != id {
		t.Errorf("peer ID %s is not derived from the node's key (%s, %v)", id, derived, err)
	}
}

// FED-001: "... the key MUST persist across restarts." The node (its own, since
// it is restarted) must log and answer with the same peer ID after a restart.
func identityPersists(t *T) {
	_, id := dial(t)
	before := t.Node.P2P
	if err := t.Node.Terminate(); err != nil {
		t.Fatalf("%v", err)
	}
	<-t.Node.Exited()
	if err := t.Node.Restart(t.Ctx, 60*time.Second); err != nil {
		t.Fatalf("%v", err)
	}
	if t.Node.P2P != before {
		t.Errorf("peer address changed across a restart: %s, then %s", before, t.Node.P2P)
	}
	_, again := dial(t)
	if again != id {
		t.Errorf("peer ID changed across a restart: %s, then %s", id, again)
	}
}

// FED-002: "A node MUST offer TCP and QUIC transports with Noise security and yamux
// multiplexing."
func transports(t *T) {
	p, id := dial(t)
	conns := p.Host.Network().ConnsToPeer(id)
	if len(conns) == 0 {
		t.Fatalf("no connection to %s", id)
	}
	st := conns[0].ConnState()
	if _, err := conns[0].RemoteMultiaddr().ValueForProtocol(ma.P_TCP); err == nil {
		if st.Security != "/noise" || st.StreamMultiplexer != "/yamux/1.0.0" {
			t.Errorf("TCP connection uses security %q and muxer %q, expected /noise and /yamux/1.0.0", st.Security, st.StreamMultiplexer)
		}
	}
	// Identify tells us the node's listen addresses; one must be QUIC.
	var quic ma.Multiaddr
	t.Eventually("node announces a QUIC address", func() error {
		for _, a := range p.Host.Peerstore().Addrs(id) {
			if _, err := a.ValueForProtocol(ma.P_QUIC_V1); err == nil {
				if ip, err := a.ValueForProtocol(ma.P_IP4); err == nil && ip == "127.0.0.1" {
					quic = a
					return nil
				}
			}
		}
		return errors.New("no /quic-v1 address on 127.0.0.1 among " + addrs(p.Host.Peerstore().Addrs(id)))
	})
	q, err := fedpeer.New()
	if err != nil {
		t.Fatalf("%v", err)
	}
	defer q.Close()
	c, cancel := ctx(t)
	defer cancel()
	if _, err := q.Connect(c, quic.String()+"/p2p/"+id.String()); err != nil {
		t.Errorf("dial over QUIC: %v", err)
	}
}

func addrs(as []ma.Multiaddr) string {
	var b bytes.Buffer
	for i, a := range as {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(a.String())
	}
	return "[" + b.String() + "]"
}

// FED-020: "A request frame MUST NOT exceed 65,536 bytes ...; a receiver MUST reset a
// stream whose frame exceeds the limit."
func oversize(t *T) {
	p, id := dial(t)
	c, cancel := ctx(t)
	defer cancel()
	for _, proto := range []protocol.ID{fedpeer.ProtoSync, fedpeer.ProtoJoin, fedpeer.ProtoMod} {
		_, err := p.RequestRaw(c, id, proto, func(w io.Writer) error {
			return fedpeer.WriteFrame(w, make([]byte, fedpeer.MaxRequest+1))
		})
		if !errors.Is(err, fedpeer.ErrReset) {
			t.Errorf("%s: a %d-byte request frame got an answer (err %v), expected a reset", proto, fedpeer.MaxRequest+1, err)
		}
	}
}

// syncRequest is {0: op, 1: guild id}.
type syncRequest struct {
	Op    uint64 `cbor:"0,keyasint"`
	Guild []byte `cbor:"1,keyasint"`
}

// FED-021: responses have the common form {0: status uint (0..4), 1: error tstr, ...}.
// FED-034: "A node MUST serve sync only for guilds it holds and only to peers that are
// the home node or the origin of a member of that guild; others get status 2."
func syncStranger(t *T) {
	p, id := dial(t)
	c, cancel := ctx(t)
	defer cancel()
	for _, op := range []uint64{1, 2, 3} {
		frame, err := p.Request(c, id, fedpeer.ProtoSync, syncRequest{Op: op, Guild: randomGuild()})
		if err != nil {
			t.Errorf("sync op %d: %v", op, err)
			continue
		}
		r, m, err := fedpeer.DecodeResponse(frame)
		if err != nil {
			t.Errorf("sync op %d: response is not the common form: %v", op, err)
			continue
		}
		if _, ok := m[1]; !ok || r.Status > fedpeer.StatusUnavailable {
			t.Errorf("sync op %d: response %v lacks a status 0..4 or an error text", op, m)
		}
		if r.Status != fedpeer.StatusForbidden {
			t.Errorf("sync op %d for a guild the node does not hold, from a stranger: status %d, expected 2", op, r.Status)
		}
	}
}

// joinRequest is {0: guild id, 1: code, 2: name, 3: node-name, 4: [addrs]}.
type joinRequest struct {
	Guild []byte   `cbor:"0,keyasint"`
	Code  string   `cbor:"1,keyasint"`
	Name  string   `cbor:"2,keyasint"`
	Node  string   `cbor:"3,keyasint"`
	Addrs [][]byte `cbor:"4,keyasint"`
}

// FED-051: "The home node MUST refuse a join with an unknown, revoked, expired or
// used-up code, or for a banned user, with status 2." (Unknown code checked here.)
func joinUnknown(t *T) {
	p, id := dial(t)
	c, cancel := ctx(t)
	defer cancel()
	frame, err := p.Request(c, id, fedpeer.ProtoJoin, joinRequest{
		Guild: randomGuild(), Code: "nosuchcode" + harness.RandName()[3:], Name: "mallory", Node: "fake",
		Addrs: [][]byte{p.Addr().Bytes()},
	})
	if err != nil {
		t.Fatalf("join: %v", err)
	}
	r, _, err := fedpeer.DecodeResponse(frame)
	if err != nil {
		t.Fatalf("join response: %v", err)
	}
	if r.Status != fedpeer.StatusForbidden {
		t.Errorf("join with an unknown code: status %d (%q), expected 2", r.Status, r.Error)
	}
}
