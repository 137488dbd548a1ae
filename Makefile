# Everything a new machine needs is installed by these targets: uv (in .tools/),
# the locked Python environment (.venv/), and the control-plane binaries built
# with Go into a cache (see tests/controlplane/binaries.py).
SHELL := /bin/bash
PYTHON ?= python3
UV_VERSION := 0.13.8
UV := .tools/bin/uv
PY := .venv/bin/python

.PHONY: help setup system-deps binaries test check lint format typecheck unit demo bench bench-quick lock build bundle clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(UV):
	$(PYTHON) -m venv .tools
	.tools/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

.venv/.synced: pyproject.toml uv.lock | $(UV)
	$(UV) sync --frozen --python $(PYTHON)
	@touch $@

setup: .venv/.synced binaries system-deps ## install everything the tests need

system-deps: ## Debian's prometheus package (real Prometheus + promtool), if missing
	scripts/system-deps.sh

binaries: .venv/.synced ## build (or reuse) kube-apiserver, etcd, kubectl, helm, kube-controller-manager, kube-scheduler, kwok, kube-score
	$(PY) -m tests.controlplane build --all

lint: .venv/.synced ## ruff lint + format check
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .

format: .venv/.synced ## apply ruff fixes and formatting
	.venv/bin/ruff check --fix .
	.venv/bin/ruff format .

typecheck: .venv/.synced ## mypy (strict) on the package
	.venv/bin/mypy

check: lint typecheck ## lint and types, no tests

unit: .venv/.synced ## fast tests without a control plane
	$(PY) -m pytest -m "not controlplane"

test: setup check ## everything: set-up, lint, types, unit and control-plane tests
	scripts/run-tests

demo: .venv/.synced binaries ## the operator working on an embedded local control plane
	$(PY) -m tests.controlplane demo

bench: setup ## benchmark at the standard size; writes bench/results/ and docs/benchmarks.md
	$(PY) -m bench

bench-quick: setup ## the benchmark's correctness check at the CI size (no timings asserted)
	$(PY) -m bench --quick

lock: $(UV) ## re-resolve dependencies: uv.lock and the image's requirements.lock
	$(UV) lock
	$(UV) export --frozen --no-dev --no-emit-project --format requirements-txt -o requirements.lock

build: $(UV) ## build the wheel and sdist into dist/
	$(UV) build

bundle: .venv/.synced ## render the OLM bundle and catalog (bundle/, catalog/) from manifests/
	$(PY) scripts/bundle.py

clean: ## remove the environments and caches (keeps the Go build cache)
	rm -rf .venv .tools .cache dist .mypy_cache .ruff_cache .pytest_cache
