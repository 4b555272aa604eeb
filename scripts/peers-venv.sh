#!/usr/bin/env bash
# The NIR peer test tier's environment (docs/testing.md): CPU torch, snnTorch, Norse,
# Rockpool and Sinabs in their own virtual environment, never in the project's.
# Sinabs is installed without its dependencies because one of them, samna, installs
# itself from another index when imported; the script fails if samna got in.
set -euo pipefail
VENV=${1:-/tmp/peers}
python -m venv --system-site-packages "$VENV"   # sees the project's nengo, nir and nhw
"$VENV/bin/pip" install --index-url https://download.pytorch.org/whl/cpu torch==2.13.0 \
  || "$VENV/bin/pip" install torch==2.13.0     # where only PyPI is reachable
"$VENV/bin/pip" install snntorch norse rockpool pbr
"$VENV/bin/pip" install --no-deps sinabs
if "$VENV/bin/pip" list 2>/dev/null | grep -qi '^samna '; then
  echo "samna is installed in $VENV: remove it (pip uninstall samna)" >&2
  exit 1
fi
echo "peer tier: $VENV/bin/python -m pytest -q -p no:randomly tests/peers"
