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

# Both install editable (strict mode: links under build/) and only when
# pyproject.toml, setup.py or the list of package files changed since the last
# install (a stamp in $(VENV)); a second `make plan` goes straight to exoc.
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
	# mypy checks the packages as installed (the exo namespace maps to top-level
	# folders; the editable install links them under build/), from inside the venv
	# folder so the source tree cannot shadow them. The package list is pyproject's.
	cd $(VENV) && bin/mypy --config-file ../pyproject.toml $(shell $(PYTHON) scripts/install.py --mypy-packages)

clean:
	rm -rf $(VENV) build *.egg-info
