# The front door: `make demo` and `make test` work on a fresh machine.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP_DEMO := $(VENV)/.demo-installed
STAMP_TEST := $(VENV)/.test-installed
STAMP_DOCS := $(VENV)/.docs-installed

.PHONY: demo test test-ft docs bench bench-ft lint clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

$(STAMP_DEMO): $(PY) pyproject.toml
	$(PY) -m pip install --quiet -e ".[demo]"
	touch $@

$(STAMP_TEST): $(PY) pyproject.toml
	$(PY) -m pip install --quiet -e ".[test]"
	touch $@

$(STAMP_DOCS): $(PY) pyproject.toml
	$(PY) -m pip install --quiet -e ".[docs,sklearn]"
	touch $@

demo: $(STAMP_DEMO)
	$(PY) examples/digits.py

test: $(STAMP_TEST)
	$(PY) -m pytest -q

# the suite on free-threaded CPython 3.13t with the GIL off (builds the interpreter once, into ~/.cache/loomnet)
test-ft:
	bash tools/test-freethreaded.sh

docs: $(STAMP_DOCS)
	$(VENV)/bin/mkdocs build --strict

bench: $(STAMP_TEST)
	$(PY) -m benchmarks --write docs/results/performance.md

# thread speed-ups on both interpreters in one run (.venv-ft is made by the test-ft script's setup)
bench-ft: $(STAMP_TEST)
	bash tools/test-freethreaded.sh --setup-only
	$(PY) -m benchmarks.freethreaded --write docs/results/freethreaded.md

lint: $(STAMP_TEST)
	$(VENV)/bin/ruff check src tests examples benchmarks

clean:
	rm -rf $(VENV) .venv-ft build *.egg-info src/*.egg-info
