#!/usr/bin/env bash
# test.sh is the web client's whole test: install npm packages and Chromium if missing, check
# that the committed build in dist/ matches the sources, typecheck, run the unit tests, then the
# end-to-end tests against real nodes built from this repository (node/cmd/hearth).
set -euo pipefail
cd "$(dirname "$0")"

npm ci --no-audit --no-fund --loglevel=error
if ! command -v chromium >/dev/null 2>&1 && [ -z "${HEARTH_CHROMIUM:-}" ]; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi
# Emoji in messages and reactions render with this font (screenshots, and a real user's view).
if [ ! -e /usr/share/fonts/truetype/noto/NotoColorEmoji.ttf ] && command -v apt-get >/dev/null 2>&1; then
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq fonts-noto-color-emoji; } >/dev/null 2>&1 || true
fi

node build.mjs --check
npx tsc --noEmit -p .
node --test test/unit/
node --test --test-concurrency=1 test/e2e/
