#!/usr/bin/env bash
# Install Saksi into .venv and run the main job: a fresh log on the embedded SQLite
# default (entry 0: the genesis record), the service on 127.0.0.1, a demo that
# writes signed records for real 2024 polling stations and districts through HTTP
# and verifies every receipt, a witness that cosigns every checkpoint, an observer
# who checks the witnessed checkpoint and audits the whole log over HTTP, then a
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

WITNESS_PORT="$(.venv/bin/python -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"

.venv/bin/saksi init --origin demo.saksi.example/pemilu2024 --dir "$DIR"
# An independent witness (here on the same machine): it cosigns a checkpoint only
# if it extends the last one it cosigned.
WITNESS_VKEY="$(.venv/bin/saksi-verify witness-key --name witness.demo.example \
  --out "$DIR/witness.key" --json | .venv/bin/python -c 'import json, sys; print(json.load(sys.stdin)["vkey"])')"
echo "$WITNESS_VKEY" > "$DIR/witness.vkey"
.venv/bin/saksi-verify witness --log-key "$DIR/log.vkey" --key-file "$DIR/witness.key" \
  --listen "127.0.0.1:$WITNESS_PORT" --state "$DIR/witness-state" &
WITNESS=$!
.venv/bin/saksi serve --dir "$DIR" --listen "127.0.0.1:$PORT" \
  --access-log "$DIR/access.log" --security-log "$DIR/security.log" \
  --witness "http://127.0.0.1:$WITNESS_PORT" "$WITNESS_VKEY" &
SERVER=$!
trap 'kill "$SERVER" "$WITNESS" 2>/dev/null || true; wait "$SERVER" "$WITNESS" 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do
  if .venv/bin/python -c "import urllib.request; urllib.request.urlopen('$URL/healthz', timeout=1)" 2>/dev/null; then
    break
  fi
  kill -0 "$SERVER" 2>/dev/null || { echo "saksi serve exited" >&2; exit 1; }
  sleep 0.2
done
echo "serving $DIR on $URL"
.venv/bin/saksi demo --url "$URL" --dir "$DIR"
# What an observer runs, pinned to the log's key and the witness's: the witnessed
# checkpoint (kept as the one this observer trusts), then the whole log through
# the tiles API, every entry replayed.
sleep 1  # the last checkpoint's witnessing round
.venv/bin/saksi-verify checkpoint --log "$URL" --key "$DIR/log.vkey" \
  --witness "$DIR/witness.vkey" --min-witnesses 1 --state "$DIR/observer"
.venv/bin/saksi-verify audit --log "$URL" --key "$DIR/log.vkey" --state "$DIR/observer"
kill "$SERVER" "$WITNESS"
wait "$SERVER" || true
wait "$WITNESS" || true
trap - EXIT
.venv/bin/saksi check --dir "$DIR"
