# Two commands on a fresh machine: `make run` starts the hub, `make test` runs every test.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: run test bench codelists clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/hub certs init --if-missing
	$(BIN)/hub serve

test: $(STAMP)
	$(BIN)/python -m pytest

bench: $(STAMP)
	$(BIN)/python bench/core.py
	$(BIN)/python bench/broker.py
	$(BIN)/python bench/customs.py

codelists: $(STAMP)
	$(BIN)/python scripts/build_codelists.py

clean:
	rm -rf $(VENV) var .pytest_cache
