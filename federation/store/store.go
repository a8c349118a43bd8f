// Package store keeps federation events, their indexes and per-guild version
// vectors in the node's Badger database, under the key prefix "f/" so the
// node keeps one database. It stores the exact signed bytes [EVT-004] and
// trusts what it is given: callers store only verified, valid events.
package store

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/dgraph-io/badger/v4"
	"github.com/hearth-chat/hearth/federation/event"
)

// Key layout (all under "f/"):
//
//	f/e/<id>                               signed event bytes
//	f/o/<guild><olen><origin><seq:8>       event ID, per-origin sequence index
//	f/c/<guild><channel><ts:8><id>         empty, channel history index
//	f/s/<guild><sn:8>                      event ID, state chain index
//	f/v/<guild><olen><origin>              seq:8, version vector entry
//	f/g/<guild>                            empty, the guilds this node takes part in
//	f/h/<guild>                            CBOR [* multiaddr bstr], the home node's last known addresses
//	f/n/<guild>                            the state snapshot the node joined from, if any
const (
	pEvent   = "f/e/"
	pOrigin  = "f/o/"
	pChannel = "f/c/"
	pState   = "f/s/"
	pVector  = "f/v/"
	pGuild   = "f/g/"
	pHome    = "f/h/"
	pSnap    = "f/n/"
)

// ErrNotFound means the event is not stored.
var ErrNotFound = errors.New("store: not found")

// Store is the federation's view of the node database. Writes for one guild
// must be serialised by the caller (the federation service holds a per-guild
// lock); reads may run concurrently.
type Store struct {
	db    *badger.DB
	sync  func() error
	space func() error
}

// New wraps db. The node owns db and closes it after the federation service
// has stopped. Every write must survive kill -9 once it returns: either db
// is opened with SyncWrites and sync is nil, or sync makes everything
// committed before the call durable (for a node that batches fsyncs itself,
// as the Hearth node does). space, when not nil, is asked before each write,
// and its error refuses the write (the node's free-space reserve).
func New(db *badger.DB, sync, space func() error) *Store {
	return &Store{db: db, sync: sync, space: space}
}

// Sync returns once everything committed before the call is durable.
func (s *Store) Sync() error {
	if s.sync == nil {
		return nil
	}
	if err := s.sync(); err != nil {
		return fmt.Errorf("store: sync: %w", err)
	}
	return nil
}

// update runs fn in a read-write transaction and returns once the commit is
// durable.
func (s *Store) update(fn func(txn *badger.Txn) error) error {
	return s.updateThen(nil, fn)
}

// updateThen is update that calls committed, when not nil, between the commit
// and the sync.
func (s *Store) updateThen(committed func(), fn func(txn *badger.Txn) error) error {
	if s.space != nil {
		if err := s.space(); err != nil {
			return err
		}
	}
	if err := s.db.Update(fn); err != nil {
		return err
	}
	if committed != nil {
		committed()
	}
	return s.Sync()
}

func originKey(prefix string, guild event.ID, origin event.Node) []byte {
	k := make([]byte, 0, len(prefix)+len(guild)+1+len(origin)+8)
	k = append(k, prefix...)
	k = append(k, guild...)
	k = append(k, byte(len(origin)))
	return append(k, origin...)
}

func seqKey(guild event.ID, origin event.Node, seq uint64) []byte {
	return binary.BigEndian.AppendUint64(originKey(pOrigin, guild, origin), seq)
}

func chanKey(guild, channel event.ID, ts event.HLC, id event.ID) []byte {
	k := make([]byte, 0, len(pChannel)+3*event.IDLen+8)
	k = append(append(append(k, pChannel...), guild...), channel...)
	k = binary.BigEndian.AppendUint64(k, uint64(ts))
	return append(k, id...)
}

func stateKey(guild event.ID, sn uint64) []byte {
	return binary.BigEndian.AppendUint64(append([]byte(pState), guild...), sn)
}

// Put stores events that the caller has validated and reports for each
// whether it was new. Indexes and the version vector [FED-030] are updated in
// the same transaction, so the vector never claims an event that is not
// stored. Events must all belong to guilds whose writes the caller holds.
func (s *Store) Put(evs ...*event.Event) ([]bool, error) {
	return s.PutThen(nil, evs...)
}

// PutThen is Put that calls committed (when not nil) once the transaction is
// committed and before the sync that makes it durable returns: what it does
// then survives a crash of the process (the database holds the write), and
// overlaps the sync.
func (s *Store) PutThen(committed func(fresh []bool), evs ...*event.Event) ([]bool, error) {
	fresh := make([]bool, len(evs))
	err := s.updateThen(func() {
		if committed != nil {
			committed(fresh)
		}
	}, func(txn *badger.Txn) error {
		for i, ev := range evs {
			if ev.Kind.Class() == event.ClassEphemeral {
				return fmt.Errorf("store: put: ephemeral %s", ev.Kind) // [EVT-080]
			}
			ek := append([]byte(pEvent), ev.ID...)
			if _, err := txn.Get(ek); err == nil {
				continue
			} else if !errors.Is(err, badger.ErrKeyNotFound) {
				return err
			}
			fresh[i] = true
			g := ev.GuildID()
			if err := txn.Set(ek, ev.Raw); err != nil {
				return err
			}
			if err := txn.Set(seqKey(g, ev.Origin, ev.Seq), []byte(ev.ID)); err != nil {
				return err
			}
			if ev.Channel != "" && ev.Kind.Class() == event.ClassMessage {
				if err := txn.Set(chanKey(g, ev.Channel, ev.TS, ev.ID), nil); err != nil {
					return err
				}
			}
			if ev.Kind.Class() == event.ClassState {
				if err := txn.Set(stateKey(g, ev.SN), []byte(ev.ID)); err != nil {
					return err
				}
			}
			if err := advance(txn, g, ev.Origin); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store: put: %w", err)
	}
	return fresh, nil
}

// advance moves the (guild, origin) vector entry over every contiguous
// stored sequence number.
func advance(txn *badger.Txn, guild event.ID, origin event.Node) error {
	vk := originKey(pVector, guild, origin)
	cur, err := getUint(txn, vk)
	if err != nil {
		return err
	}
	next := cur
	for {
		_, err := txn.Get(seqKey(guild, origin, next+1))
		if errors.Is(err, badger.ErrKeyNotFound) {
			break
		}
		if err != nil {
			return err
		}
		next++
	}
	if next == cur {
		return nil
	}
	return txn.Set(vk, binary.BigEndian.AppendUint64(nil, next))
}

func getUint(txn *badger.Txn, k []byte) (uint64, error) {
	item, err := txn.Get(k)
	if errors.Is(err, badger.ErrKeyNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	var v uint64
	err = item.Value(func(b []byte) error {
		if len(b) != 8 {
			return fmt.Errorf("store: corrupt counter at %q", k)
		}
		v = binary.BigEndian.Uint64(b)
		return nil
	})
	return v, err
}

// Has reports whether the event is stored.
func (s *Store) Has(id event.ID) (bool, error) {
	err := s.db.View(func(txn *badger.Txn) error {
		_, err := txn.Get(append([]byte(pEvent), id...))
		return err
	})
	if errors.Is(err, badger.ErrKeyNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("store: has: %w", err)
	}
	return true, nil
}

// Raw returns the stored bytes of an event, or ErrNotFound.
func (s *Store) Raw(id event.ID) ([]byte, error) {
	var raw []byte
	err := s.db.View(func(txn *badger.Txn) error {
		item, err := txn.Get(append([]byte(pEvent), id...))
		if err != nil {
			return err
		}
		raw, err = item.ValueCopy(nil)
		return err
	})
	if errors.Is(err, badger.ErrKeyNotFound) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("store: raw: %w", err)
	}
	return raw, nil
}

// Get returns a stored event, decoded. Stored events were verified before
// they were stored, so Get does not verify signatures again.
func (s *Store) Get(id event.ID) (*event.Event, error) {
	raw, err := s.Raw(id)
	if err != nil {
		return nil, err
	}
	ev, err := event.Decode(raw)
	if err != nil {
		return nil, fmt.Errorf("store: get %s: %w", id, err)
	}
	return ev, nil
}

// BySeq returns the ID stored for (guild, origin, seq), or "" if none; it
// is how equivocation is detected [EVT-014].
func (s *Store) BySeq(guild event.ID, origin event.Node, seq uint64) (event.ID, error) {
	var id event.ID
	err := s.db.View(func(txn *badger.Txn) error {
		item, err := txn.Get(seqKey(guild, origin, seq))
		if err != nil {
			return err
		}
		return item.Value(func(b []byte) error { id = event.ID(b); return nil })
	})
	if err != nil && !errors.Is(err, badger.ErrKeyNotFound) {
		return "", fmt.Errorf("store: by seq: %w", err)
	}
	return id, nil
}

// MaxSeq returns the highest sequence number stored for (guild, origin),
// contiguous or not. A node uses it for its own origin to pick the next seq.
func (s *Store) MaxSeq(guild event.ID, origin event.Node) (uint64, error) {
	var max uint64
	err := s.db.View(func(txn *badger.Txn) error {
		prefix := originKey(pOrigin, guild, origin)
		it := txn.NewIterator(badger.IteratorOptions{Prefix: prefix, Reverse: true})
		defer it.Close()
		it.Seek(append(prefix, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff))
		if it.ValidForPrefix(prefix) {
			max = binary.BigEndian.Uint64(it.Item().Key()[len(prefix):])
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("store: max seq: %w", err)
	}
	return max, nil
}

// VectorEntry returns the highest contiguous seq held from origin in guild.
func (s *Store) VectorEntry(guild event.ID, origin event.Node) (uint64, error) {
	var v uint64
	err := s.db.View(func(txn *badger.Txn) error {
		var err error
		v, err = getUint(txn, originKey(pVector, guild, origin))
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("store: vector entry: %w", err)
	}
	return v, nil
}

// Each calls fn with every stored event of guild, per origin in seq order,
// stopping at the first error fn returns.
func (s *Store) Each(guild event.ID, fn func(raw []byte) error) error {
	prefix := append([]byte(pOrigin), guild...)
	err := s.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: prefix, PrefetchValues: true, PrefetchSize: 100})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			raw, err := s.rawIn(txn, it.Item())
			if err != nil {
				return err
			}
			if err := fn(raw); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("store: each: %w", err)
	}
	return nil
}

// Vector returns the guild's version vector: origin to highest contiguous seq.
func (s *Store) Vector(guild event.ID) (map[event.Node]uint64, error) {
	v := map[event.Node]uint64{}
	prefix := append([]byte(pVector), guild...)
	err := s.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: prefix, PrefetchValues: true, PrefetchSize: 64})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			k := it.Item().Key()[len(prefix):]
			if len(k) < 1 || int(k[0]) != len(k)-1 {
				return fmt.Errorf("corrupt vector key")
			}
			origin := event.Node(k[1:])
			if err := it.Item().Value(func(b []byte) error {
				v[origin] = binary.BigEndian.Uint64(b)
				return nil
			}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store: vector: %w", err)
	}
	return v, nil
}

// Range returns up to limit stored events of origin in guild with from <= seq
// <= to, in seq order, and whether it stopped at the limit [FED-032].
func (s *Store) Range(guild event.ID, origin event.Node, from, to uint64, limit int) ([][]byte, bool, error) {
	var out [][]byte
	more := false
	prefix := originKey(pOrigin, guild, origin)
	err := s.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: prefix, PrefetchValues: true, PrefetchSize: 100})
		defer it.Close()
		for it.Seek(binary.BigEndian.AppendUint64(prefix, from)); it.Valid(); it.Next() {
			seq := binary.BigEndian.Uint64(it.Item().Key()[len(prefix):])
			if seq > to {
				break
			}
			if len(out) == limit {
				more = true
				break
			}
			raw, err := s.rawIn(txn, it.Item())
			if err != nil {
				return err
			}
			out = append(out, raw)
		}
		return nil
	})
	if err != nil {
		return nil, false, fmt.Errorf("store: range: %w", err)
	}
	return out, more, nil
}

func (s *Store) rawIn(txn *badger.Txn, idItem *badger.Item) ([]byte, error) {
	var id []byte
	if err := idItem.Value(func(b []byte) error { id = append(id, b...); return nil }); err != nil {
		return nil, err
	}
	item, err := txn.Get(append([]byte(pEvent), id...))
	if err != nil {
		return nil, err
	}
	return item.ValueCopy(nil)
}

// History returns up to limit message events of a channel with ts < before
// (0 means no bound), newest first [FED-033].
func (s *Store) History(guild, channel event.ID, before event.HLC, limit int) ([][]byte, error) {
	var out [][]byte
	prefix := make([]byte, 0, len(pChannel)+2*event.IDLen)
	prefix = append(append(append(prefix, pChannel...), guild...), channel...)
	err := s.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: prefix, Reverse: true})
		defer it.Close()
		start := append(prefix[:len(prefix):len(prefix)], 0xff)
		if before != 0 {
			start = binary.BigEndian.AppendUint64(prefix[:len(prefix):len(prefix)], uint64(before))
		}
		for it.Seek(start); it.ValidForPrefix(prefix) && len(out) < limit; it.Next() {
			k := it.Item().Key()
			if len(k) != len(prefix)+8+event.IDLen {
				return fmt.Errorf("corrupt history key")
			}
			if before != 0 && binary.BigEndian.Uint64(k[len(prefix):]) >= uint64(before) {
				continue
			}
			item, err := txn.Get(append([]byte(pEvent), k[len(prefix)+8:]...))
			if err != nil {
				return err
			}
			raw, err := item.ValueCopy(nil)
			if err != nil {
				return err
			}
			out = append(out, raw)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store: history: %w", err)
	}
	return out, nil
}

// StateChain returns the stored state events of guild with sn >= from, in
// order, stopping at the first gap.
func (s *Store) StateChain(guild event.ID, from uint64) ([][]byte, error) {
	var out [][]byte
	prefix := append([]byte(pState), guild...)
	err := s.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: prefix})
		defer it.Close()
		want := from
		for it.Seek(binary.BigEndian.AppendUint64(prefix[:len(prefix):len(prefix)], from)); it.ValidForPrefix(prefix); it.Next() {
			if binary.BigEndian.Uint64(it.Item().Key()[len(prefix):]) != want {
				break
			}
			raw, err := s.rawIn(txn, it.Item())
			if err != nil {
				return err
			}
			out = append(out, raw)
			want++
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store: state chain: %w", err)
	}
	return out, nil
}

// AddGuild records that this node takes part in guild.
func (s *Store) AddGuild(guild event.ID) error {
	if err := s.update(func(txn *badger.Txn) error {
		return txn.Set(append([]byte(pGuild), guild...), nil)
	}); err != nil {
		return fmt.Errorf("store: add guild: %w", err)
	}
	return nil
}

// SetHomeAddrs records the addresses at which the home node of a guild was last reached (an
// invite's), so that the node can find it again after a restart: the guild state does not
// carry the home node's addresses.
func (s *Store) SetHomeAddrs(guild event.ID, addrs [][]byte) error {
	b, err := event.Marshal(addrs)
	if err != nil {
		return fmt.Errorf("store: home addrs: %w", err)
	}
	if err := s.update(func(txn *badger.Txn) error { return txn.Set(append([]byte(pHome), guild...), b) }); err != nil {
		return fmt.Errorf("store: home addrs: %w", err)
	}
	return nil
}

// HomeAddrs returns what SetHomeAddrs recorded for guild; none is not an error.
func (s *Store) HomeAddrs(guild event.ID) ([][]byte, error) {
	var out [][]byte
	err := s.db.View(func(txn *badger.Txn) error {
		it, err := txn.Get(append([]byte(pHome), guild...))
		if errors.Is(err, badger.ErrKeyNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		return it.Value(func(v []byte) error { return event.Unmarshal(v, &out) })
	})
	if err != nil {
		return nil, fmt.Errorf("store: home addrs: %w", err)
	}
	return out, nil
}

// SetSnapshot keeps the verified state snapshot a guild was joined from, which
// stands for the state events below its head (spec/federation.md §6.2).
func (s *Store) SetSnapshot(guild event.ID, snap []byte) error {
	if err := s.update(func(txn *badger.Txn) error { return txn.Set(append([]byte(pSnap), guild...), snap) }); err != nil {
		return fmt.Errorf("store: snapshot: %w", err)
	}
	return nil
}

// Snapshot returns what SetSnapshot kept for guild; nil when the guild was
// joined from its whole state chain.
func (s *Store) Snapshot(guild event.ID) ([]byte, error) {
	var out []byte
	err := s.db.View(func(txn *badger.Txn) error {
		it, err := txn.Get(append([]byte(pSnap), guild...))
		if errors.Is(err, badger.ErrKeyNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		out, err = it.ValueCopy(nil)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("store: snapshot: %w", err)
	}
	return out, nil
}

// Guilds lists the guilds this node takes part in.
func (s *Store) Guilds() ([]event.ID, error) {
	var out []event.ID
	err := s.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte(pGuild)})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			out = append(out, event.ID(it.Item().KeyCopy(nil)[len(pGuild):]))
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store: guilds: %w", err)
	}
	return out, nil
}
