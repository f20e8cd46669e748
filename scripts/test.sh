#!/usr/bin/env bash
# Set up (Python packages and, as root on Debian, Chromium and docker-compose) and run the tests.
#   bash scripts/test.sh            everything (what CI runs)
#   bash scripts/test.sh --fast     the fast tier: every module's logic on the sample, in about two
#                                   minutes; no subprocess servers, browser, nginx or Ray (-m "not slow")
# Other arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
fast=()
if [[ "${1:-}" == "--fast" ]]; then
  shift
  fast=(-m "not slow and not browser")
fi
if [[ -z "${fast[*]}" || ! -x .venv/bin/python ]]; then  # the fast tier reuses a set-up venv as it is
  bash scripts/system-packages.sh
  bash scripts/setup.sh
fi
exec .venv/bin/python -m pytest "${fast[@]}" "$@"
