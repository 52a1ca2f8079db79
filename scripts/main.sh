#!/usr/bin/env bash
# Install Saksi into .venv and run the main job: a fresh log on the embedded SQLite
# default (entry 0: the genesis record), the service on 127.0.0.1, a demo that
# writes signed records for real 2024 polling stations and districts through HTTP
# and verifies every receipt, an observer's audit of the whole log over HTTP, then a
# full check of the stored log.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
.venv/bin/pip install --quiet --upgrade pip >/dev/null 2>&1 || true
.venv/bin/pip install --quiet -e '.[server]'
export SAKSI_KEY_PASSPHRASE="${SAKSI_KEY_PASSPHRASE:-demo-only-passphrase}"
DIR="${SAKSI_DEMO_DIR:-demo-data/$(date +%Y%m%d-%H%M%S)}"
PORT="${SAKSI_DEMO_PORT:-$(.venv/bin/python -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')}"
URL="http://127.0.0.1:$PORT"

.venv/bin/saksi init --origin demo.saksi.example/pemilu2024 --dir "$DIR"
.venv/bin/saksi serve --dir "$DIR" --listen "127.0.0.1:$PORT" &
SERVER=$!
trap 'kill "$SERVER" 2>/dev/null || true; wait "$SERVER" 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do
  if .venv/bin/python -c "import urllib.request; urllib.request.urlopen('$URL/healthz', timeout=1)" 2>/dev/null; then
    break
  fi
  kill -0 "$SERVER" 2>/dev/null || { echo "saksi serve exited" >&2; exit 1; }
  sleep 0.2
done
echo "serving $DIR on $URL"
.venv/bin/saksi demo --url "$URL" --dir "$DIR"
# What an observer runs: the whole log through the tiles API, pinned to its key.
.venv/bin/saksi-verify audit --log "$URL" --key "$DIR/log.vkey"
kill "$SERVER"
wait "$SERVER" || true
trap - EXIT
.venv/bin/saksi check --dir "$DIR"
