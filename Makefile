# rmc developer commands. Each target creates .venv (once) and installs rmc
# into it, so `make test` works on a machine with nothing but Python 3.11+.
#   make test      the fast tier: every test not marked slow (3 minutes on
#                  2 cores; under 2 when .venv holds the compilation cache)
#   make test-all  every test, the slow end-to-end checks too (what CI runs)
#   make lint      ruff, pyink and mypy over rmc/, experiments/, benchmarks/, examples/

PYTHON ?= python3
VENV ?= .venv
VENV_PYTHON := $(VENV)/bin/python
# Rebuilt whenever the dependency lists change; otherwise installing is a no-op.
INSTALLED := $(VENV)/.installed
LINT_INSTALLED := $(VENV)/.lint-installed
LINTED := rmc experiments benchmarks examples
# pytest arguments; e.g. `make test PYTEST_ARGS="-k initial_state"`.
PYTEST_ARGS ?=

# Extra flags for the demo, e.g. `make demo DEMO_ARGS="--seed=3"`.
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

# The fast tier compiles with XLA's backend optimisation off: the same
# programs, compiled in about 60% of the CPU time (docs/testing.md);
# make test-all (CI) compiles them as a user's run does.
test: $(INSTALLED)
	XLA_FLAGS="--xla_backend_optimization_level=0 $$XLA_FLAGS" \
	  $(VENV_PYTHON) -m pytest -n auto -m 'not slow' tests $(PYTEST_ARGS)

test-all: $(INSTALLED)
	$(VENV_PYTHON) -m pytest -n auto tests $(PYTEST_ARGS)

lint: $(LINT_INSTALLED)
	$(VENV)/bin/ruff check $(LINTED)
	$(VENV)/bin/pyink --check --diff $(LINTED)
	$(VENV)/bin/mypy

# Nth Farthest's RMC and LSTM trained side by side, one per core, for 270 s
# each on the `demo` preset, in a fresh work directory; e.g.
# `make demo DEMO_ARGS=--seed=3`. See experiments/nth_farthest_demo.py.
demo: $(INSTALLED)
	@workdir=$$(mktemp -d -t rmc_nth_farthest_demo.XXXXXX) && \
	$(VENV_PYTHON) -m experiments.nth_farthest_demo --workdir=$$workdir \
	    $(DEMO_ARGS)

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache
