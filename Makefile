# papersuite: `make repro` sets up and reproduces every paper at the default (cpu) scale;
# `make test` sets up and runs the whole test suite. Both are safe to run again.
PYTHON ?= python3
VENV   := .venv
BIN    := $(abspath $(VENV))/bin
STAMP  := $(VENV)/.installed

export PATH := $(BIN):$(PATH)
export HF_HUB_OFFLINE := 1
export DVC_NO_ANALYTICS := 1
export MPLCONFIGDIR := $(abspath .cache/matplotlib)
# idle OpenMP threads sleep instead of spinning (shared/runtime.py says why); the runner sets it too
export OMP_WAIT_POLICY ?= PASSIVE
# test processes: pytest-xdist workers, one notebook or test file per worker (PAPERSUITE_THREADS=1 each)
TEST_JOBS ?= auto

.PHONY: setup data repro test golden pipeline bench browser slurm lab hooks clean lock

# requirements.lock: every package of the environment, transitively, with its hashes (`make lock`)
LOCKS  := requirements.lock requirements-nodeps.lock
UV     := uv==0.13.8
# where `make lock` finds torch's CPU build: pip's own find-links where this machine has them, else
# PyTorch's CPU index (the same files, the same hashes)
PIP_FIND_LINKS := $(shell $(PYTHON) -m pip config get global.find-links 2>/dev/null)
TORCH_SOURCE ?= $(if $(PIP_FIND_LINKS),--find-links $(PIP_FIND_LINKS),--index https://download.pytorch.org/whl/cpu --index-strategy unsafe-best-match)

$(STAMP): $(LOCKS) pyproject.toml
	test -x "$(BIN)/python" || $(PYTHON) -m venv "$(VENV)"
	"$(BIN)/python" -m pip install -q --disable-pip-version-check --require-hashes -r requirements.lock
	"$(BIN)/python" -m pip install -q --disable-pip-version-check --require-hashes --no-deps -r requirements-nodeps.lock
	"$(BIN)/python" -m pip install -q --disable-pip-version-check --no-deps --no-build-isolation -e .
	"$(BIN)/python" -m shared.jupyter_kernel install >/dev/null
	touch $@

setup: $(STAMP) data

# materialize data/ if it differs from data.dvc's hash (it fails if a fresh one differs too),
# then put it in DVC's cache so that `dvc status` and `dvc checkout` know it
data: $(STAMP)
	@"$(BIN)/python" -m shared.data --check 2>/dev/null || "$(BIN)/python" -m shared.data
	@"$(BIN)/dvc" commit -q -f data.dvc

repro: setup
	"$(BIN)/dvc" repro
	"$(BIN)/python" -m shared.report --readme
	@"$(BIN)/python" -m shared.reproduction

# Re-resolve the locks from requirements.txt and requirements-nodeps.txt (Linux x86-64, Python 3.11).
lock:
	test -x "$(BIN)/python" || $(PYTHON) -m venv "$(VENV)"
	"$(BIN)/python" -m pip install -q --disable-pip-version-check $(UV)
	"$(BIN)/uv" pip compile requirements.txt --override requirements-lock-overrides.txt $(TORCH_SOURCE) \
	  --generate-hashes --python-version 3.11 --python-platform x86_64-manylinux_2_28 \
	  --custom-compile-command "make lock" -q -o requirements.lock
	"$(BIN)/uv" pip compile requirements-nodeps.txt --no-deps --generate-hashes --python-version 3.11 \
	  --python-platform x86_64-manylinux_2_28 --custom-compile-command "make lock" -q -o requirements-nodeps.lock

test: setup browser slurm
	"$(BIN)/python" -m pytest --numprocesses=$(TEST_JOBS)

golden: setup
	"$(BIN)/python" -m shared.golden

pipeline: $(STAMP)
	"$(BIN)/python" -m shared.pipeline

# Timings of the suite's costs (papers at smoke, notebook start, toolkit vs bare loops, dvc status):
# a table on stdout, raw runs in results/bench/. Options: make bench BENCH_ARGS="--quick --busy".
bench: setup
	"$(BIN)/python" benchmarks/bench.py $(BENCH_ARGS)

# Debian's chromium and chromedriver for the browser tests (skipped where they cannot be installed).
browser:
	@{ command -v chromium >/dev/null && command -v chromedriver >/dev/null; } || \
	  { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null) || \
	  echo "chromium/chromedriver not installed: the browser tests will be skipped"; }

# Debian's SLURM and munge for the cluster tests (a single-node cluster the tests start and stop).
slurm:
	@{ command -v slurmctld >/dev/null && command -v munged >/dev/null; } || \
	  { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq slurm-wlm munge >/dev/null) || \
	  echo "slurm-wlm/munge not installed: the cluster tests will be skipped"; }

# JupyterLab at the repository root, with the project's kernel ("Python 3 (papersuite)").
lab: setup
	"$(BIN)/jupyter" lab --notebook-dir="$(CURDIR)"

# Notebook hygiene: strip outputs on every commit (see .pre-commit-config.yaml).
hooks: $(STAMP)
	"$(BIN)/pre-commit" install

clean:
	rm -rf results .cache
