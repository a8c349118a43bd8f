// Package host builds the node's libp2p host: a persistent Ed25519 identity
// in the data directory, TCP and QUIC with Noise and yamux, configurable
// listen and announce addresses, a connection manager and the resource
// manager [FED-001] [FED-002].
package host

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/connmgr"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	rcmgr "github.com/libp2p/go-libp2p/p2p/host/resource-manager"
	"github.com/libp2p/go-libp2p/p2p/muxer/yamux"
	cmgr "github.com/libp2p/go-libp2p/p2p/net/connmgr"
	"github.com/libp2p/go-libp2p/p2p/security/noise"
	quic "github.com/libp2p/go-libp2p/p2p/transport/quic"
	"github.com/libp2p/go-libp2p/p2p/transport/tcp"
	ma "github.com/multiformats/go-multiaddr"
	"github.com/prometheus/client_golang/prometheus"
)

// KeyFile is the identity key's file name inside Config.DataDir.
const KeyFile = "federation.key"

// Config configures the host. The zero value listens on all interfaces on
// port 4001 (TCP and QUIC) with a key in the current directory.
type Config struct {
	// DataDir holds the identity key file; empty means the current directory.
	DataDir string
	// ListenAddrs are multiaddrs to listen on; nil means
	// /ip4/0.0.0.0/tcp/4001 and /ip4/0.0.0.0/udp/4001/quic-v1.
	ListenAddrs []string
	// AnnounceAddrs, when non-empty, replace the addresses the host
	// advertises (in invites and member.join): for NAT and proxies.
	AnnounceAddrs []string
	// ConnLow and ConnHigh are the connection manager's watermarks; zero
	// means 100 and 400.
	ConnLow, ConnHigh int
	// Gater, if non-nil, vets every dial and accepted connection. Tests use
	// it to partition nodes.
	Gater connmgr.ConnectionGater
	// Registerer receives libp2p metrics; nil disables them.
	Registerer prometheus.Registerer
}

// New starts a libp2p host. The caller owns it and must Close it.
func New(cfg Config) (host.Host, crypto.PrivKey, error) {
	key, err := LoadOrCreateKey(filepath.Join(cfg.DataDir, KeyFile))
	if err != nil {
		return nil, nil, err
	}
	listen := cfg.ListenAddrs
	if listen == nil {
		listen = []string{"/ip4/0.0.0.0/tcp/4001", "/ip4/0.0.0.0/udp/4001/quic-v1"}
	}
	low, high := cfg.ConnLow, cfg.ConnHigh
	if low == 0 {
		low = 100
	}
	if high == 0 {
		high = 400
	}
	cm, err := cmgr.NewConnManager(low, high, cmgr.WithGracePeriod(time.Minute))
	if err != nil {
		return nil, nil, fmt.Errorf("host: connection manager: %w", err)
	}
	rm, err := rcmgr.NewResourceManager(rcmgr.NewFixedLimiter(rcmgr.DefaultLimits.AutoScale()))
	if err != nil {
		return nil, nil, fmt.Errorf("host: resource manager: %w", err)
	}
	opts := []libp2p.Option{
		libp2p.Identity(key),
		libp2p.ListenAddrStrings(listen...),
		libp2p.Transport(tcp.NewTCPTransport),
		libp2p.Transport(quic.NewTransport),
		libp2p.Security(noise.ID, noise.New),
		libp2p.Muxer(yamux.ID, yamux.DefaultTransport),
		libp2p.ConnectionManager(cm),
		libp2p.ResourceManager(rm),
	}
	if cfg.Registerer != nil {
		opts = append(opts, libp2p.PrometheusRegisterer(cfg.Registerer))
	} else {
		opts = append(opts, libp2p.DisableMetrics())
	}
	if cfg.Gater != nil {
		opts = append(opts, libp2p.ConnectionGater(cfg.Gater))
	}
	if len(cfg.AnnounceAddrs) > 0 {
		announce, err := parseAddrs(cfg.AnnounceAddrs)
		if err != nil {
			return nil, nil, fmt.Errorf("host: announce: %w", err)
		}
		opts = append(opts, libp2p.AddrsFactory(func([]ma.Multiaddr) []ma.Multiaddr { return announce }))
	}
	h, err := libp2p.New(opts...)
	if err != nil {
		rm.Close()
		return nil, nil, fmt.Errorf("host: %w", err)
	}
	return h, key, nil
}

func parseAddrs(ss []string) ([]ma.Multiaddr, error) {
	out := make([]ma.Multiaddr, 0, len(ss))
	for _, s := range ss {
		a, err := ma.NewMultiaddr(s)
		if err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	return out, nil
}

// LoadOrCreateKey reads the Ed25519 identity key at path, creating it (mode
// 0600, written atomically) if it does not exist, so the peer ID survives
// restarts [FED-001].
func LoadOrCreateKey(path string) (crypto.PrivKey, error) {
	data, err := os.ReadFile(path)
	if err == nil {
		key, err := crypto.UnmarshalPrivateKey(data)
		if err != nil {
			return nil, fmt.Errorf("host: key %s: %w", path, err)
		}
		if key.Type() != crypto.Ed25519 {
			return nil, fmt.Errorf("host: key %s: not Ed25519", path)
		}
		return key, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("host: key: %w", err)
	}
	key, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("host: generate key: %w", err)
	}
	data, err = crypto.MarshalPrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("host: marshal key: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("host: key dir: %w", err)
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return nil, fmt.Errorf("host: write key: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return nil, fmt.Errorf("host: write key: %w", err)
	}
	return key, nil
}

// ParseAddrInfos turns full multiaddrs (ending in /p2p/<id>) into AddrInfos,
// grouping addresses of the same peer; used for bootstrap peers.
func ParseAddrInfos(addrs []string) ([]peer.AddrInfo, error) {
	mas, err := parseAddrs(addrs)
	if err != nil {
		return nil, fmt.Errorf("host: parse: %w", err)
	}
	infos, err := peer.AddrInfosFromP2pAddrs(mas...)
	if err != nil {
		return nil, fmt.Errorf("host: parse: %w", err)
	}
	return infos, nil
}

// Connect dials every peer concurrently and returns the errors joined; a
// partial success is still useful to the caller.
func Connect(ctx context.Context, h host.Host, peers []peer.AddrInfo) error {
	errs := make(chan error, len(peers))
	for _, p := range peers {
		go func() { errs <- h.Connect(ctx, p) }()
	}
	var all []error
	for range peers {
		if err := <-errs; err != nil {
			all = append(all, err)
		}
	}
	return errors.Join(all...)
}
