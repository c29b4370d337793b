# rmc developer commands. Each target creates .venv (once) and installs rmc
# into it, so `make test` works on a machine with nothing but Python 3.11+.
#   make test      the fast tier: every test not marked slow (4.5 minutes on
#                  2 cores; 1.5 when .venv holds the compilation cache)
#   make test-all  every test, the slow end-to-end checks too (what CI runs)
#   make lint      ruff, pyink and mypy over rmc/, experiments/, benchmarks/

PYTHON ?= python3
VENV ?= .venv
VENV_PYTHON := $(VENV)/bin/python
# Rebuilt whenever the dependency lists change; otherwise installing is a no-op.
INSTALLED := $(VENV)/.installed
LINT_INSTALLED := $(VENV)/.lint-installed
LINTED := rmc experiments benchmarks
# pytest arguments; e.g. `make test PYTEST_ARGS="-k initial_state"`.
PYTEST_ARGS ?=

# Extra flags for the demo, e.g. `make demo DEMO_ARGS="--core=lstm"`.
DEMO_ARGS ?=

.PHONY: install test test-all lint demo clean

install: $(INSTALLED)

$(VENV_PYTHON):
	$(PYTHON) -m venv $(VENV)

$(INSTALLED): $(VENV_PYTHON) pyproject.toml requirements.txt
	$(VENV_PYTHON) -m pip install --quiet -e '.[test]'
	touch $(INSTALLED)

$(LINT_INSTALLED): $(INSTALLED)
	$(VENV_PYTHON) -m pip install --quiet -e '.[test,lint]'
	touch $(LINT_INSTALLED)

test: $(INSTALLED)
	$(VENV_PYTHON) -m pytest -n auto -m 'not slow' tests $(PYTEST_ARGS)

test-all: $(INSTALLED)
	$(VENV_PYTHON) -m pytest -n auto tests $(PYTEST_ARGS)

lint: $(LINT_INSTALLED)
	$(VENV)/bin/ruff check $(LINTED)
	$(VENV)/bin/pyink --check --diff $(LINTED)
	$(VENV)/bin/mypy

# The Nth Farthest main job on its `demo` preset, in a fresh work directory.
demo: $(INSTALLED)
	@workdir=$$(mktemp -d -t rmc_nth_farthest_demo.XXXXXX) && \
	echo "Nth Farthest demo: checkpoints and metrics.jsonl in $$workdir" && \
	$(VENV_PYTHON) -m experiments.nth_farthest --preset=demo \
	    --workdir=$$workdir $(DEMO_ARGS) && \
	echo "The demo is the first 100,000 steps of --preset=cpu_k3 (3" \
	    "objects). Whether it leaves the plateau within them depends on" \
	    "the machine's floating-point rounding: seed 0 left it at 85,000" \
	    "steps on one VM and at 255,000 on another. To train on: make demo" \
	    "DEMO_ARGS=--preset=cpu_k3 (900,000 steps, 30 minutes on one core);" \
	    "the study's 4-object preset, DEMO_ARGS=--preset=cpu, leaves it after" \
	    "10-12 minutes. See docs/nth_farthest.md." && \
	echo "What the trained model answers: $(VENV_PYTHON) -m" \
	    "experiments.nth_farthest --mode=predict --workdir=$$workdir"

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache
