# The two commands of the quick start: `make demo` and `make test`. Everything installs into .venv.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
NVCC_ARCH := -gencode arch=compute_80,code=sm_80 -gencode arch=compute_90,code=sm_90

.PHONY: setup test test-fast kernels demo reproduce reproduce-status bench gpu-check gpu-check-emulated clean

setup: $(STAMP)

$(STAMP): setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev,plot,mpi,mujoco,gpu-physics]'
	touch $(STAMP)

# Compile every CUDA source when nvcc exists, so a kernel that does not build fails the suite.
kernels:
	@if command -v nvcc >/dev/null 2>&1; then \
		for f in kernels/*.cu; do \
			echo "nvcc $$f"; \
			nvcc -std=c++17 -Ikernels $(NVCC_ARCH) -c $$f -o /dev/null || exit 1; \
		done; \
	else echo "nvcc not found: CUDA sources not compiled"; fi

test: $(STAMP) kernels
	$(PY) -m pytest

test-fast: $(STAMP)
	$(PY) -m pytest -m "not slow and not data"

# The main job: the paper's point in one figure. The demo grid (CartPole-v1, Sep-CMA-ES): SNR, magnitude and
# random-reinit IMP runs, 2 seeds each, two at a time, then their curves in runs/demo.png. It starts afresh each time
# (a demo grid changed by an update would otherwise meet its old run files).
demo: $(STAMP)
	$(VENV)/bin/esprune info
	rm -rf runs/demo
	$(VENV)/bin/esprune sweep start --preset demo --dir runs/demo --jobs 2
	$(VENV)/bin/esprune report runs/demo -o runs/demo.png
	@echo "The figure: runs/demo.png (its table: runs/demo.csv, runs/demo.json; the runs: runs/demo/*.h5)"

# docs/REPRODUCTION.md's experiments (hours on 2 cores; resumable: the same command continues) and their figures.
# STAGES="pendulum fashion-mnist same-init gd-fashion-mnist fashion-mnist-to-gd fashion-mnist-pgpe mnist pendulum-baselines
#         fashion-mnist-400"
# (the MNIST family needs ESPRUNE_DATA), JOBS=2 runs at once; `make reproduce-status` says how far each has got.
reproduce: $(STAMP)
	scripts/reproduce.sh

reproduce-status: $(STAMP)
	@scripts/reproduce.sh --status

bench: $(STAMP)
	$(VENV)/bin/esprune bench all --out bench.json

# On a lent CUDA machine: install CuPy for its CUDA version, then pytest -m gpu, the GPU benchmarks and an IMP run
# on cupy vs numba, JSON and summary.md into $(OUT), in under 8 minutes. gpu-check-emulated runs the same script
# here on the host emulation of CuPy (small sizes), so that the device run is not its first.
OUT ?= gpu-check
# No $(STAMP) here: the lent machine has no network, so the script uses .venv when one exists and otherwise the
# machine's python3 when that already holds esprune's dependencies and CuPy (the lent image does).
gpu-check:
	scripts/gpu-check.sh $(OUT)

gpu-check-emulated: $(STAMP)
	scripts/gpu-check.sh $(OUT) --emulate

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
