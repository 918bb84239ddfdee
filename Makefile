# Two commands on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
WORKERS ?= 2
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
TEMPLATE := examples/connector-template

.PHONY: demo test bench stress install clean

$(STAMP): pyproject.toml $(TEMPLATE)/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	$(BIN)/pip install --quiet -e $(TEMPLATE)
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/retsync demo

# The connector template is a package of its own, tested from its own folder as a connector written outside
# this repository would be; exit 5 (a PYTEST_ARGS filter that selects none of its tests) is no failure.
test: $(STAMP)
	$(BIN)/python -m pytest -q -n $(WORKERS) $(PYTEST_ARGS)
	cd $(TEMPLATE) && ../../$(BIN)/python -m pytest -q -n $(WORKERS) $(PYTEST_ARGS); \
		status=$$?; [ $$status -eq 0 ] || [ $$status -eq 5 ]

# The figures, then the README's Performance table written from them (bench/results.json).
bench: $(STAMP)
	$(BIN)/python -m bench $(BENCH_ARGS)
	$(BIN)/python -m bench.readme

stress: $(STAMP)
	RETSYNC_STRESS=1 $(BIN)/python -m pytest -q -m crash $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache bench/results.json
