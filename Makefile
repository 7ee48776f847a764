# enpire: `make run` runs a real session, `make test` checks everything. `make help` lists targets.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
export MUJOCO_GL ?= egl
export PYOPENGL_PLATFORM ?= egl
export MLFLOW_SERVER_ENABLE_JOB_EXECUTION ?= false

.DEFAULT_GOAL := help
.PHONY: help install run test test-slow test-full validate lint bench ui clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip setuptools wheel
	$(PY) -m pip install --quiet -c constraints.txt -e '.[dev,all]'
	touch $(STAMP)

install: $(STAMP) ## create .venv from nothing and install enpire with its pinned dependencies

run: $(STAMP) ## a real session on the embedded defaults: drawer, four stations, offline agent
	$(PY) -m enpire task=drawer fleet=4

test: $(STAMP) ## ruff, every config against specs/, and the fast tests (slow ones excluded)
	$(PY) -m ruff check enpire tests
	$(PY) -m enpire.validate
	$(PY) -m pytest -m "not slow" -q

test-slow: $(STAMP) ## only the slow tests (sessions, training, Ray, reliability, the wheel install); CI runs them after `test`
	$(PY) -m pytest -m slow -q --timeout 1800

test-full: $(STAMP) ## every test, slow and reliability ones included
	$(PY) -m ruff check enpire tests
	$(PY) -m enpire.validate
	$(PY) -m pytest -q

validate: $(STAMP) ## check every shipped config and combination against specs/
	$(PY) -m enpire.validate

lint: $(STAMP) ## ruff check and format check
	$(PY) -m ruff check enpire tests
	$(PY) -m ruff format --check enpire tests

bench: $(STAMP) ## the performance benchmarks (quick versions)
	$(PY) -m enpire.bench --quick

ui: $(STAMP) ## MLflow UI on the local store, http://127.0.0.1:5000
	$(VENV)/bin/mlflow ui --backend-store-uri sqlite:///outputs/mlflow.db --host 127.0.0.1 --port 5000 --workers 1

clean: ## remove outputs (runs, MLflow store) and caches; keeps .venv
	rm -rf outputs/* multirun .pytest_cache .ruff_cache .hypothesis
	find . -name __pycache__ -not -path './.venv/*' -prune -exec rm -rf {} +
