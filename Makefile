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

.PHONY: setup data repro test golden pipeline bench browser slurm lab hooks clean

$(STAMP): requirements.txt requirements-nodeps.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check -r requirements.txt
	$(BIN)/python -m pip install -q --disable-pip-version-check --no-deps -r requirements-nodeps.txt
	$(BIN)/python -m pip install -q --disable-pip-version-check --no-deps --no-build-isolation -e .
	$(BIN)/python -m ipykernel install --sys-prefix --name papersuite --display-name "Python 3 (papersuite)" >/dev/null
	touch $@

setup: $(STAMP) data

# materialize data/ if it differs from data.dvc's hash (it fails if a fresh one differs too),
# then put it in DVC's cache so that `dvc status` and `dvc checkout` know it
data: $(STAMP)
	@$(BIN)/python -m shared.data --check 2>/dev/null || $(BIN)/python -m shared.data
	@$(BIN)/dvc commit -q -f data.dvc

repro: setup
	$(BIN)/dvc repro
	$(BIN)/python -m shared.report --readme

test: setup browser slurm
	$(BIN)/python -m pytest --numprocesses=$(TEST_JOBS)

golden: setup
	$(BIN)/python -m shared.golden

pipeline: $(STAMP)
	$(BIN)/python -m shared.pipeline

# Timings of the suite's costs (papers at smoke, notebook start, toolkit vs bare loops, dvc status):
# a table on stdout, raw runs in results/bench/. Options: make bench BENCH_ARGS="--quick --busy".
bench: setup
	$(BIN)/python benchmarks/bench.py $(BENCH_ARGS)

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
	$(BIN)/jupyter lab --notebook-dir=$(CURDIR)

# Notebook hygiene: strip outputs on every commit (see .pre-commit-config.yaml).
hooks: $(STAMP)
	$(BIN)/pre-commit install

clean:
	rm -rf results .cache
