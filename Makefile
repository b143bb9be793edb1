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

.PHONY: requirements help env data lab test test-vitlib test-notebooks lint notebooks student clean bench variants \
        compat slides html browser site-assets serve

help:
	@echo "make lab    - set up .venv and the data, then start JupyterLab on the course"
	@echo "make test   - set up, then run every test (lint, vitlib on TensorFlow and JAX, notebooks)"
	@echo "make data   - make Fashion-MNIST available offline (checks first, fetches only if missing)"
	@echo "make lint   - ruff on vitlib, experiments, tests, tools and notebooks"
	@echo "make requirements - re-pin requirements.txt from requirements.in (uv pip compile)"
	@echo "make notebooks - re-execute every notebook in place, from a clean kernel (authors)"
	@echo "make student - student editions (solutions stubbed) and teacher editions in build/"
	@echo "make slides - reveal.js decks of every notebook in build/slides/ (work offline)"
	@echo "make html   - a static site of the executed notebooks in build/html/ (index = course map)"
	@echo "make compat - the vitlib unit tests on the OLDEST supported Keras/TensorFlow (.venv-min)"
	@echo "make variants - the notebook suite under 4 numeric set-ups: default, oneDNN off, 1 core, JAX (~25 min)"
	@echo "make bench  - notebook times/memory, attention speed/memory, training recipes (~35 min; not in make test)"
	@echo "make clean  - remove .venv, build/ and caches (never notebooks or data/)"

env: $(STAMP)

# requirements.in (direct dependencies) -> requirements.txt (everything pinned, every platform).
# Prefers the versions already pinned; `UPGRADE=1 make requirements` moves to the newest.
requirements: $(STAMP)
	$(PY) -m pip install --quiet --disable-pip-version-check "uv==0.13.8"
	cp requirements.txt requirements.compiled.tmp
	$(VENV)/bin/uv pip compile requirements.in --universal --python-version 3.11 --no-header \
	  $(if $(UPGRADE),--upgrade) -o requirements.compiled.tmp \
	  && { sed '/^[^#]/,$$d' requirements.txt; cat requirements.compiled.tmp; } > requirements.new.tmp \
	  && mv requirements.new.tmp requirements.txt && rm -f requirements.compiled.tmp

$(STAMP): requirements.txt requirements-hub.txt pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	@# keras-hub without tensorflow-text (it would pull the full tensorflow): see requirements-hub.txt.
	@# Python 3.10 has no keras-hub: its markers skip every line there.
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps -r requirements-hub.txt
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

test: data lint browser slides html test-vitlib test-notebooks

test-vitlib: $(STAMP)
	KERAS_BACKEND=tensorflow $(PY) -m pytest -q tests
	KERAS_BACKEND=jax $(PY) -m pytest -q tests -m "not single_backend"

test-notebooks: data
	KERAS_BACKEND=tensorflow $(PY) -m pytest -q --nbval-lax --nbval-current-env \
	  --nbval-cell-timeout=120 -p no:cacheprovider $(NOTEBOOKS)

# Checked outputs must hold on every machine: the same nbval suite under the default, oneDNN off,
# one CPU core and the JAX backend (tools/run_variants.py; not part of `make test`).
variants: data
	$(PY) tools/run_variants.py

lint: $(STAMP)
	$(VENV)/bin/ruff check vitlib experiments tests tools notebooks benchmarks

notebooks: data
	$(PY) tools/execute_notebooks.py $(NOTEBOOKS)

clean:
	rm -rf $(VENV) $(VENV_MIN) build .pytest_cache .ruff_cache
	find . -name __pycache__ -type d -prune -exec rm -rf {} +

student: $(STAMP)
	$(PY) tools/make_editions.py build $(NOTEBOOKS)
	@echo "Student editions in build/student/, teacher editions in build/teacher/"

# Benchmarks, on demand, never in `make test`; benchmarks/RESULTS.md is regenerated from the JSON
# records in benchmarks/results/ (each script refuses to replace its record without --overwrite;
# `make bench` re-measures on purpose). BENCH_BUDGETS: seconds of training per contender and run,
# 3 contenders each: the default (1 and 3 min) takes about 30 min in all; the longer
# comparison is `make bench BENCH_BUDGETS="300 900"` (about 75 min).
BENCH_BUDGETS ?= 60 180
bench: data
	$(PY) benchmarks/notebook_times.py --overwrite $(NOTEBOOKS)
	$(PY) benchmarks/attention.py --overwrite
	$(PY) benchmarks/recipes.py --overwrite --budgets $(BENCH_BUDGETS)
	$(PY) benchmarks/distribution.py --overwrite
	$(PY) benchmarks/report.py --overwrite

# --- Compatibility: the oldest Keras/TensorFlow/NumPy that pyproject.toml declares ------------
# tools/min_stack.py turns pyproject's lower bounds into "==X.Y.*" pins; .venv-min is rebuilt
# only when pyproject.toml changes. Runs the vitlib unit tests (TensorFlow backend); the tests
# of the notebooks, tools and decks need the course environment and are left out.
VENV_MIN  := .venv-min
STAMP_MIN := $(VENV_MIN)/.installed
COMPAT_IGNORE := --ignore=tests/test_notebooks.py --ignore=tests/test_tools.py \
                 --ignore=tests/test_slides.py --ignore=tests/test_colab.py

$(STAMP_MIN): pyproject.toml tools/min_stack.py
	@test -x $(VENV_MIN)/bin/python || $(PYTHON) -m venv $(VENV_MIN)
	$(PYTHON) tools/min_stack.py > $(VENV_MIN)/requirements-min.txt
	$(VENV_MIN)/bin/python -m pip install --quiet --disable-pip-version-check \
	  -r $(VENV_MIN)/requirements-min.txt pytest
	$(VENV_MIN)/bin/python -m pip install --quiet --disable-pip-version-check --no-deps -e .
	@touch $(STAMP_MIN)

compat: $(STAMP_MIN) data
	@$(VENV_MIN)/bin/python -c "import keras, numpy, tensorflow as tf; \
	  print(f'minimum stack: keras {keras.__version__}, tensorflow {tf.__version__}, numpy {numpy.__version__}')"
	KERAS_BACKEND=tensorflow $(VENV_MIN)/bin/python -m pytest -q -p no:cacheprovider tests \
	  $(COMPAT_IGNORE)

# --- Slides and the static site (offline: reveal.js, MathJax, ... copied into build/lib) ------
SITE  := $(PY) tools/build_site.py
DECKS := $(patsubst notebooks/%.ipynb,build/slides/%.slides.html,$(NOTEBOOKS))
SITE_DEPS := tools/build_site.py tools/templates/course_reveal/index.html.j2

site-assets: $(STAMP)
	@$(SITE) vendor

slides: site-assets $(DECKS)
	@echo "Decks in build/slides/ (open through a web server: make serve, or any static server)"

build/slides/%.slides.html: notebooks/%.ipynb $(SITE_DEPS) GLOSSARY.md | site-assets
	$(SITE) slides $<

html: site-assets build/html/index.html
	@echo "Site in build/html/index.html"

build/html/index.html: $(NOTEBOOKS) $(SITE_DEPS) README.md GLOSSARY.md | site-assets
	$(SITE) html $(NOTEBOOKS)

# Headless Chromium for the deck test (tests/test_slides.py): on Debian/Ubuntu as root it is
# installed from the package mirror, with a small Japanese font for the screenshots.
browser:
	@if [ -n "$$CHROMIUM" ] || command -v chromium >/dev/null || command -v chromium-browser >/dev/null \
	  || command -v google-chrome >/dev/null; then :; \
	elif [ -f /etc/debian_version ] && [ "$$(id -u)" = 0 ]; then \
	  echo "Installing Debian's chromium (headless browser for the slide test)"; \
	  { apt-get install -y -q chromium fonts-ipafont-gothic >/dev/null 2>&1 \
	    || { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q chromium fonts-ipafont-gothic >/dev/null 2>&1; }; } \
	  || echo "Could not install chromium: the slide test will say how to get it"; \
	else \
	  echo "No Chromium found: install Chromium or Chrome (or set CHROMIUM=/path), see tests/test_slides.py"; \
	fi

serve: slides html
	@echo "Open http://127.0.0.1:8000/html/index.html (Ctrl-C to stop)"
	$(PY) -m http.server 8000 --bind 127.0.0.1 --directory build
