# The ViT course: `make lab` to learn, `make test` to check everything.
# Set-up is idempotent: the environment is (re)installed only when requirements.txt or
# pyproject.toml change, and the data is fetched only when it is missing.

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
NOTEBOOKS := $(sort $(wildcard notebooks/[0-9]*.ipynb))
# JupyterLab refuses to run as root unless told; classrooms in containers often are root.
ROOT_FLAG := $(shell [ "$$(id -u)" = 0 ] && echo --allow-root)
LAB_ARGS ?=
export TF_CPP_MIN_LOG_LEVEL ?= 2

.PHONY: help env data lab test test-vitlib test-notebooks lint notebooks student clean bench

help:
	@echo "make lab    - set up .venv and the data, then start JupyterLab on the course"
	@echo "make test   - set up, then run every test (lint, vitlib on TensorFlow and JAX, notebooks)"
	@echo "make data   - make Fashion-MNIST available offline (checks first, fetches only if missing)"
	@echo "make lint   - ruff on vitlib, tests, tools and notebooks"
	@echo "make notebooks - re-execute every notebook in place, from a clean kernel (authors)"
	@echo "make bench  - attention speed and notebook times/memory (not part of make test)"
	@echo "make clean  - remove .venv, build/ and caches (never notebooks or data/)"

env: $(STAMP)

$(STAMP): requirements.txt pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps -e .
	@touch $(STAMP)

data: $(STAMP)
	@$(PY) -m vitlib.data check 2>/dev/null || $(MAKE) --no-print-directory fetch-data

.PHONY: fetch-data
fetch-data:
	@if [ -f /etc/debian_version ] && [ "$$(id -u)" = 0 ]; then \
	  echo "Installing Debian's dataset-fashion-mnist (works offline with a package mirror)"; \
	  apt-get install -y -q dataset-fashion-mnist >/dev/null 2>&1 \
	  || { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q dataset-fashion-mnist >/dev/null 2>&1; } \
	  || $(PY) -m vitlib.data download; \
	else \
	  $(PY) -m vitlib.data download; \
	fi
	@$(PY) -m vitlib.data check

lab: data
	$(VENV)/bin/jupyter lab --ServerApp.root_dir=notebooks $(ROOT_FLAG) $(LAB_ARGS)

test: data lint test-vitlib test-notebooks

test-vitlib: $(STAMP)
	KERAS_BACKEND=tensorflow $(PY) -m pytest -q tests
	KERAS_BACKEND=jax $(PY) -m pytest -q tests -m "not single_backend"

test-notebooks: data
	KERAS_BACKEND=tensorflow $(PY) -m pytest -q --nbval-lax --nbval-current-env \
	  --nbval-cell-timeout=120 -p no:cacheprovider $(NOTEBOOKS)

lint: $(STAMP)
	$(VENV)/bin/ruff check vitlib tests tools notebooks

notebooks: data
	$(PY) tools/execute_notebooks.py $(NOTEBOOKS)

clean:
	rm -rf $(VENV) build .pytest_cache .ruff_cache
	find . -name __pycache__ -type d -prune -exec rm -rf {} +

student: $(STAMP)
	$(PY) tools/make_editions.py build $(NOTEBOOKS)
	@echo "Student editions in build/student/, teacher editions in build/teacher/"

bench: data
	$(PY) benchmarks/attention.py
	$(PY) benchmarks/notebook_times.py $(NOTEBOOKS)
