#!/usr/bin/env bash
# Set up (Python packages and, as root on Debian, Chromium and docker-compose) and run the tests.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/system-packages.sh
bash scripts/setup.sh
exec .venv/bin/python -m pytest "$@"
