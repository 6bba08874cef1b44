# Two commands on a fresh machine: `make run` starts the hub, `make test` runs every test (both set up .venv first).
# `make help` lists every target.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
PIP    := $(BIN)/python -m pip --disable-pip-version-check

# bash with pipefail: pip's output goes through sed, and pip's failure must still fail make.
SHELL       := bash
.SHELLFLAGS := -eo pipefail -c

# pip's progress as one line per package ("  lxml>=5.2"); its whole output goes to $(PIP_LOG), shown when it fails.
PIP_LOG      := $(VENV)/pip-install.log
PIP_PACKAGES := s/^Collecting ([^ ]+).*/  \1/p; s/^Processing .*\/([^/-]+)-([^/-]+)-[^/]*\.whl.*/  \1==\2/p; s/^Installing collected packages.*/  installing them.../p
define pip_install
	PYTHONUNBUFFERED=1 $(PIP) install --progress-bar off $(1) 2>&1 | tee -a $(PIP_LOG) | sed -unE '$(PIP_PACKAGES)' \
	  || { echo "pip failed; the end of its output (all of it: $(PIP_LOG)):"; tail -n 25 $(PIP_LOG); exit 1; }
endef

.DEFAULT_GOAL := help
.PHONY: help run test tools bench codelists clean clean-certs

help: ## list the targets
	@echo "make TARGET, where TARGET is one of:"
	@awk -F ':.*## ' '/^[a-z][a-z-]*:.*## / { printf "  %-12s %s\n", $$1, $$2 }' $(MAKEFILE_LIST)

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || { echo "==> creating $(VENV) with $$($(PYTHON) --version)"; $(PYTHON) -m venv $(VENV); }
	@rm -f $(PIP_LOG)
	@echo "==> upgrading pip"
	@$(call pip_install,--upgrade pip)
	@echo "==> installing the hub and its dependencies, test tools included (first run: about a minute)"
	@$(call pip_install,-e '.[test]')
	@touch $(STAMP)
	@echo "==> $(VENV) is ready"

run: $(STAMP) ## set up .venv, make the development PKI (certs/dev) if missing, run the hub: API, worker, sandboxes
	@echo "==> development PKI in certs/dev (kept when complete)"
	@$(BIN)/hub certs init --if-missing
	@echo "==> starting the hub (Ctrl-C stops it)"
	@$(BIN)/hub serve

test: $(STAMP) tools ## set up .venv and run every test (SQLite and an embedded PostgreSQL): what CI runs
	$(BIN)/python -m pytest

# The documented journeys are shell commands that read JSON with jq, and the pages are tested in Debian's Chromium
# (driven by Playwright; pdftoppm from poppler-utils renders the facsimile): the tests need them, so they are installed.
tools:
	@missing=""; command -v jq >/dev/null || missing="$$missing jq"; \
	  command -v chromium >/dev/null || missing="$$missing chromium"; \
	  command -v pdftoppm >/dev/null || missing="$$missing poppler-utils"; \
	  test -f /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf || missing="$$missing fonts-dejavu-core"; \
	  if [ -n "$$missing" ]; then echo "==> installing$$missing (journeys, browser tests)"; \
	    if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	    else echo "missing:$$missing: install them (apt-get install$$missing) or the tests that need them are skipped"; fi; fi

# Each benchmark prints its figures beside a baseline of the same run and the targets of issue 14, met or not.
# One alone: make bench BENCH=broker BENCH_ARGS="--scenario sqlite-serve,paced" (each takes --scenario, see --help).
BENCH ?= core broker customs flat as4
bench: $(STAMP) ## run the benchmarks (core, broker, customs, flat, as4) and print their figures against the targets
	@for name in $(BENCH); do echo "==> bench/$$name.py $(BENCH_ARGS)"; $(BIN)/python bench/$$name.py $(BENCH_ARGS) || exit 1; done

.PHONY: load
load: $(STAMP) ## load test: 10,000 mixed documents, 5% faults, SQLite and PostgreSQL (2 workers); var/bench/load.md
	$(BIN)/python bench/load.py $(LOAD_ARGS)

codelists: $(STAMP) ## regenerate the code lists under un_cefact/ (scripts/build_codelists.py)
	$(BIN)/python scripts/build_codelists.py

# certs/dev stays: it is key material, not build output. Documents signed with it, client certificates loaded into a
# browser or a curl command, and `hub sandbox` processes started by hand keep trusting its CA; `hub certs init
# --if-missing` reuses it. `make clean-certs` removes it on purpose.
clean: ## remove .venv, var/ (the SQLite store var/hub.db and the development API key) and .pytest_cache; keeps certs/dev
	rm -rf $(VENV) var .pytest_cache

clean-certs: ## remove the development PKI certs/dev (the next `make run` makes a new CA and keys)
	rm -rf certs/dev
