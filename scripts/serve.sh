#!/usr/bin/env bash
# Set up, index the sample corpus in data/articles (incrementally), and serve the API and the
# chat widget on http://127.0.0.1:8000 (override with QA_HOST / QA_PORT).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/qa-ingest data/articles --index data/index
exec .venv/bin/qa-serve --index data/index --articles data/articles
