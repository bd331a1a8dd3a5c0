#!/usr/bin/env bash
# make gpu-check OUT=DIR: on a CUDA machine, with an interpreter that has esprune's dependencies (.venv, or the lent
# machine's python3, which also holds CuPy; else CuPy is pip-installed, from PIP_FIND_LINKS when offline), run
# scripts/gpu_check.py, which writes DIR/*.json and DIR/summary.md; install and steps together take at most
# 450 s (+25 s of grace), under the 8 minutes a lent device allows.
set -u
start=$(date +%s)
OUT=${1:?usage: scripts/gpu-check.sh OUT_DIR [--emulate]}
shift
# The interpreter: $PY, else .venv's, else python3 (a lent machine's image holds numpy, numba, scipy, h5py,
# click, pytest and CuPy, and nothing can be installed there from the network).
if [ -z "${PY:-}" ]; then
    if [ -x .venv/bin/python ]; then PY=.venv/bin/python; else PY=python3; fi
fi
if ! "$PY" -c "import esprune" 2>/dev/null; then  # not installed into that interpreter: run from the checkout
    export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
fi
missing=$("$PY" -c "
import importlib.util as u
print(' '.join(m for m in ('numpy', 'numba', 'scipy', 'h5py', 'click', 'pytest') if u.find_spec(m) is None))")
if [ -n "$missing" ]; then
    echo "gpu-check: $PY lacks $missing; run make setup (needs the network) or set PY to an interpreter that has them" >&2
    exit 2
fi
if [ "${1:-}" != "--emulate" ] && ! "$PY" -c "import cupy" 2>/dev/null; then
    major=$(nvidia-smi 2>/dev/null | sed -n 's/.*CUDA Version: *\([0-9]*\)\..*/\1/p' | head -n1)
    if [ -z "$major" ] && command -v nvcc >/dev/null; then
        major=$(nvcc --version | sed -n 's/.*release \([0-9]*\)\..*/\1/p' | head -n1)
    fi
    case "$major" in
        11|12|13) pkg="cupy-cuda${major}x" ;;
        *) echo "gpu-check: cannot tell the CUDA version (nvidia-smi, nvcc); install cupy by hand" >&2; exit 2 ;;
    esac
    echo "gpu-check: installing $pkg for CUDA $major"
    timeout 240 "$PY" -m pip install --quiet "$pkg" || { echo "gpu-check: pip install $pkg failed" >&2; exit 2; }
fi
# W3 on MuJoCo Warp and its tests need the mujoco and gpu-physics extras; without them those parts are skipped
if [ "${1:-}" != "--emulate" ] && ! "$PY" -c "import mujoco, gymnasium, mujoco_warp" 2>/dev/null; then
    echo "gpu-check: installing the mujoco and gpu-physics extras"
    timeout 120 "$PY" -m pip install --quiet --retries 0 --timeout 10 "mujoco==4.0.0" "gymnasium[mujoco]>=1.4" \
        "mujoco-warp==4.0.0" "warp-lang>=1.19" \
        || echo "gpu-check: could not install them: W3 on MuJoCo Warp and its tests will be skipped" >&2
fi
# whatever the install took comes off the steps' budget: the whole check ends within 8 minutes
budget=$((450 - ($(date +%s) - start)))
exec timeout $((budget + 25)) "$PY" scripts/gpu_check.py "$OUT" --budget "$budget" "$@"
