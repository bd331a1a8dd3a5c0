#!/usr/bin/env bash
# make gpu-check OUT=DIR: on a bare CUDA machine, install CuPy for the driver's CUDA version into .venv (pip; a
# local wheel folder works through PIP_FIND_LINKS when the machine has no network), then run
# scripts/gpu_check.py, which writes DIR/*.json and DIR/summary.md; install and steps together take at most
# 450 s (+25 s of grace), under the 8 minutes a lent device allows.
set -u
start=$(date +%s)
OUT=${1:?usage: scripts/gpu-check.sh OUT_DIR [--emulate]}
shift
PY=${PY:-.venv/bin/python}
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
# whatever the install took comes off the steps' budget: the whole check ends within 8 minutes
budget=$((450 - ($(date +%s) - start)))
exec timeout $((budget + 25)) "$PY" scripts/gpu_check.py "$OUT" --budget "$budget" "$@"
