package fed

import (
	"errors"
	"fmt"

	"github.com/hearth-chat/hearth/federation/event"
	"github.com/hearth-chat/hearth/federation/guild"
	"github.com/hearth-chat/hearth/federation/proto"
)

// SnapshotContext is the Ed25519ctx context of the home node's signature over a
// state snapshot [FED-101]; it keeps such signatures apart from event ones.
const SnapshotContext = "hearth-snapshot-v1"

// SnapshotAbove is the state chain length above which the home node answers the
// join of a node new to the guild with a snapshot instead of the chain [FED-102].
const SnapshotAbove = 64

// snapshotAbove is the threshold in use: SnapshotAbove, except in benchmarks that
// compare joins with and without snapshots.
var snapshotAbove uint64 = SnapshotAbove

// signedSnapshot encodes and signs the guild's state at its current head.
func (s *Service) signedSnapshot(rt *guildRT) (*proto.SignedSnapshot, error) {
	b, err := rt.st.Snapshot()
	if err != nil {
		return nil, err
	}
	return &proto.SignedSnapshot{State: b, Sig: s.signer.SignDetached(SnapshotContext, b)}, nil
}

// startGuild starts holding a guild from its genesis event, as sent by its
// home node, and from snap when the join was answered with a snapshot
// [FED-054] [FED-103]. Everything is verified first; the guild is then
// recorded, with the snapshot, so that a restart starts from it again.
func (s *Service) startGuild(guildID event.ID, home event.Node, genesis []byte, snap *proto.SignedSnapshot) error {
	gen, err := event.Decode(genesis)
	if err == nil {
		err = gen.Verify()
	}
	if err != nil {
		return fmt.Errorf("fed: join: genesis: %w", err)
	}
	if gen.ID != guildID || gen.Origin != home {
		return errors.New("fed: join: genesis does not match the invite") // [FED-054]
	}
	var st *guild.Guild
	if snap == nil {
		st, err = guild.New(gen)
	} else if err = event.VerifyDetached(home, SnapshotContext, snap.State, snap.Sig); err == nil {
		st, err = guild.FromSnapshot(gen, snap.State)
	}
	if err != nil {
		return fmt.Errorf("fed: join: %w", err)
	}
	if _, err := s.store.Put(gen); err != nil {
		return fmt.Errorf("fed: join: %w", err)
	}
	if s.cfg.OnEvent != nil {
		s.cfg.OnEvent(gen)
	}
	if snap != nil {
		if err := s.store.SetSnapshot(guildID, snap.State); err != nil {
			return fmt.Errorf("fed: join: %w", err)
		}
	}
	return s.addGuild(st)
}

// loadState rebuilds a stored guild's state: from the snapshot it was joined
// from, if any, and the state events above it; else from its whole chain
// [FED-104].
func (s *Service) loadState(id event.ID) (*guild.Guild, error) {
	snap, err := s.store.Snapshot(id)
	if err != nil {
		return nil, err
	}
	chain, err := s.store.StateChain(id, 1)
	if err != nil {
		return nil, err
	}
	if len(chain) == 0 {
		return nil, errors.New("no genesis")
	}
	gen, err := event.Decode(chain[0])
	if err != nil {
		return nil, err
	}
	var st *guild.Guild
	if snap == nil {
		st, err = guild.New(gen)
		chain = chain[1:]
	} else if st, err = guild.FromSnapshot(gen, snap); err == nil {
		chain, err = s.store.StateChain(id, st.Info().SN+1)
	}
	if err != nil {
		return nil, err
	}
	s.clock.Observe(gen.TS)
	for _, raw := range chain {
		ev, err := event.Decode(raw)
		if err != nil {
			return nil, err
		}
		s.clock.Observe(ev.TS)
		if err := st.Apply(ev); err != nil {
			return nil, fmt.Errorf("at sn %d: %w", ev.SN, err)
		}
	}
	return st, nil
}
