#!/bin/sh
# build-server.sh OUT: builds livekit-server (the version this module
# requires) from the Go module proxy into OUT, for lkbench.
#
# LiveKit's go.mod replaces pion/webrtc, pion/ice and pion/dtls with its own
# forks (github.com/livekit/webrtc-pion/v4 v4.2.18-warp.7,
# github.com/livekit/ice/v4 v4.4.0-warp.3, github.com/livekit/dtls/v3
# v3.1.5-warp.3), which the Go module proxy does not serve (403, "not
# available"). So the source is copied to a temporary directory, the
# replaces are dropped (upstream pion is used), and the one call into the
# forks' extra API goes: the "warp" option (SPED, DTLS in STUN; off by
# default) cannot be turned on. Nothing else of the media path changes.
set -eu
[ $# -eq 1 ] || { echo "usage: $0 OUT" >&2; exit 2; }
out=$(realpath -m "$1")
cd "$(dirname "$0")"
go mod download github.com/livekit/livekit-server
src=$(go list -m -f '{{.Dir}}' github.com/livekit/livekit-server)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp -r "$src/." "$work"
chmod -R u+w "$work"
cd "$work"
sed -i '/^replace github.com\/pion\//d' go.mod
sed -i '/se\.EnableSped(true)/d; /se\.EnableSctpSnap(true)/d' pkg/rtc/transport.go
if grep -q 'EnableSped\|EnableSctpSnap' pkg/rtc/transport.go; then
	echo "build-server.sh: the warp patch no longer applies" >&2
	exit 1
fi
GOFLAGS=-mod=mod go build -o "$out" ./cmd/server
echo "built $out"
