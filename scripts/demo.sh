#!/usr/bin/env bash
# Set up, index the sample corpus in data/articles, and ask it a question.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/qa-ingest data/articles --index data/index
.venv/bin/qa-ask "${1:-who argues against means-testing?}" --index data/index
