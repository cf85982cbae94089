# The two commands of the README: `make demo` (the main job) and `make test`.
# torch is installed first and pinned: a bare `torch` would pull a multi-GB CUDA build.

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
TORCH ?= torch==2.13.0
DISTS := $(patsubst %/pyproject.toml,%,$(wildcard plugins/*/pyproject.toml contrib_models/*/pyproject.toml))
STAMP := $(VENV)/.installed

.PHONY: install demo demo-quick test test-slow lint clean

install: $(STAMP)

$(STAMP): pyproject.toml $(addsuffix /pyproject.toml,$(DISTS)) Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q $(TORCH)
	$(PIP) install -q -e ".[dev]" $(addprefix -e ,$(DISTS))
	touch $@

demo: install
	$(VENV)/bin/unisandbox demo --out runs/demo

demo-quick: install
	$(VENV)/bin/unisandbox demo --quick --out runs/demo-quick

test: install
	$(VENV)/bin/pytest -q

test-slow: install
	$(VENV)/bin/pytest -q -m slow

lint: install
	$(VENV)/bin/ruff check core plugins contrib_models tests bench

clean:
	rm -rf $(VENV) build *.egg-info
