# Everything a fresh machine needs, in two commands:
#   make plan    install exo into .venv and plan the quick-start example
#   make test    install exo with its test extra (+ system packages when root),
#                start the local Slurm cluster, run the whole test suite
# `make lint` runs ruff and mypy --strict (CI runs it before `make test`).

PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
EXAMPLE ?= examples/quickstart.exo

.PHONY: plan test lint install install-test system-deps slurm-up slurm-down clean

# Both install editable, and only when pyproject.toml or setup.py changed since
# the last install (a stamp in $(VENV)): a second `make plan` goes straight to exoc.
install:
	$(PYTHON) scripts/install.py $(VENV)

install-test:
	$(PYTHON) scripts/install.py $(VENV) --extra test

plan: install
	$(BIN)/exoc plan $(EXAMPLE)

system-deps:
	bash scripts/system-deps.sh

slurm-up:
	bash tests/slurm/cluster.sh up || echo "make: no Slurm cluster; the Slurm tests will say why" >&2

slurm-down:
	bash tests/slurm/cluster.sh down

test: install-test system-deps slurm-up
	$(BIN)/python -m pytest -q

lint: install-test
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	# mypy checks the packages under their import names (exo.compiler, ...): through
	# a folder of links to the package folders, which pyproject.toml lists.
	mkdir -p build/typecheck
	cd build/typecheck && $(abspath $(BIN))/mypy --config-file $(abspath pyproject.toml) \
	  $$($(abspath $(BIN))/python $(abspath scripts/install.py) --typecheck-tree .)

clean:
	rm -rf $(VENV) build *.egg-info
