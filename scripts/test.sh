#!/usr/bin/env bash
# Install Saksi with its server and dev extras into .venv, then run every check:
# formatting, lint, types, and the whole test suite (SQLite and a throwaway
# PostgreSQL cluster that the tests start themselves).
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
.venv/bin/pip install --quiet --upgrade pip >/dev/null 2>&1 || true
.venv/bin/pip install --quiet -e '.[server,dev]'
.venv/bin/ruff format --check .
.venv/bin/ruff check .
.venv/bin/mypy verifier ledger keys api saksi_client domains results cli
.venv/bin/python -m pytest "$@"
