#!/usr/bin/env bash
# One command: install everything, start a local sandbox, open the console on it.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
exec .venv/bin/dbops-console --demo "$@"
