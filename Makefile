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

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

install: $(BIN)/python
	$(BIN)/pip install -q .

install-test: $(BIN)/python
	$(BIN)/pip install -q ".[test]"

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
	# mypy checks the installed packages (the exo namespace maps to top-level folders);
	# from inside the venv folder so the source tree cannot shadow them.
	cd $(VENV) && bin/mypy --config-file ../pyproject.toml -p exo.compiler -p exo.backends -p exo.stdlib -p exo.worker

clean:
	rm -rf $(VENV) build *.egg-info
