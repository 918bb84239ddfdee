# Two commands on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
WORKERS ?= 2
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test bench stress install clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/retsync demo

test: $(STAMP)
	$(BIN)/python -m pytest -q -n $(WORKERS) $(PYTEST_ARGS)

bench: $(STAMP)
	$(BIN)/python -m bench

stress: $(STAMP)
	RETSYNC_STRESS=1 $(BIN)/python -m pytest -q -m crash $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache bench/results.json
