# Two commands do all set-up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

export FORGE_HOME ?= $(CURDIR)/.forge

.PHONY: demo test soak chaos lint dev bench install clean

# (Re)install whenever the project metadata changes; the venv is created when missing.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

# Azurite (npm) for the Azure lake test, in .tools/ where npm exists; without it that one test is skipped.
AZURITE := .tools/node_modules/.bin/azurite-blob
$(AZURITE):
	@if command -v npm >/dev/null 2>&1; then npm install --silent --no-audit --no-fund --prefix .tools azurite@3.35.0 \
	|| echo "npm could not install Azurite: the Azure lake test will be skipped"; \
	else echo "npm not found: the Azure lake test will be skipped"; fi

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/forge-assets demo

test: $(STAMP) $(AZURITE)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# Minutes of archiving under a continuous insert stream (SOAK_SECONDS, default 180).
soak: $(STAMP)
	$(BIN)/python -m pytest -m soak -s $(PYTEST_ARGS)

# Cycles of kill -9, PostgreSQL restarts, concurrent archives and restores; every row checked after
# (CHAOS_CYCLES, default 40; CHAOS_SEED).
chaos: $(STAMP)
	$(BIN)/python -m pytest -m chaos -s $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .

dev: $(STAMP)
	$(BIN)/forge-assets dev

# Every benchmark in one run, one results file: bench/results/<date>-bench.{md,json,png} (15-30 min here).
# Bigger runs: BENCH_ARGS='--archive "--rows 5000000 --days 1 --repeat 1" --checks "--rows 2000000 10000000"'
bench: $(STAMP)
	$(BIN)/python -m bench all $(BENCH_ARGS)

clean:
	-$(BIN)/forge-assets server stop
	rm -rf $(FORGE_HOME)
