# Two commands that work on a fresh machine with Python 3.11 and pip.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
CORES ?= all
CONFIG ?= config.yaml

.PHONY: run test lint format clean browser

# Reinstall only when the dependency pins change.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# torch first and exact: a looser pin would pull the CUDA build.
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

RUN_NAME = $(shell $(PYTHON) -c "import re,sys; m = re.search(r'^run: *([^\s#]+)', open('$(CONFIG)').read(), re.M); print(m.group(1) if m else 'demo')")

run: $(STAMP)
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/snakemake --cores $(CORES) --configfile $(CONFIG)
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/snakemake --configfile $(CONFIG) \
		--report results/$(RUN_NAME)/report.html
	@echo "report: results/$(RUN_NAME)/report.html (open it in a browser)"

# The report's browser test needs Debian's chromium; install it when apt can (best
# effort: without it that one test says it skipped and why).
browser:
	@command -v chromium >/dev/null || ( [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null \
		&& (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) \
		>/dev/null 2>&1 ) || echo "chromium not installed: the report's browser test will skip"

test: $(STAMP) browser
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/snakefmt --check Snakefile workflow/rules
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/snakemake --lint

format: $(STAMP)
	$(BIN)/ruff format src tests benchmarks
	$(BIN)/ruff check --fix src tests benchmarks
	$(BIN)/snakefmt Snakefile workflow/rules

clean:
	rm -rf results .snakemake
