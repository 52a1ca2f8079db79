#!/usr/bin/env bash
# Install Saksi into .venv and run the main job: a fresh log on the embedded SQLite
# default (entry 0: the genesis record), then a demo that logs signed records for
# real 2024 polling stations and verifies every receipt, then a full check.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
.venv/bin/pip install --quiet --upgrade pip >/dev/null 2>&1 || true
.venv/bin/pip install --quiet -e '.[server]'
export SAKSI_KEY_PASSPHRASE="${SAKSI_KEY_PASSPHRASE:-demo-only-passphrase}"
DIR="${SAKSI_DEMO_DIR:-demo-data/$(date +%Y%m%d-%H%M%S)}"
.venv/bin/saksi init --origin demo.saksi.example/pemilu2024 --dir "$DIR"
.venv/bin/saksi demo --dir "$DIR"
.venv/bin/saksi check --dir "$DIR"
