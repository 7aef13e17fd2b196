# Tzurot: `make run` starts the whole mesh locally, `make test` runs the full suite.
# Both install what they need: uv (into .tools/), the Python environment (.venv/, from uv.lock;
# then memory's embedding model exported to ONNX from the weights a wheel ships, once)
# and the Node tools (node_modules/, from package-lock.json: buf, protoc-gen-es, TypeScript and the
# TypeScript client's dependencies).

SHELL := /bin/bash
.DEFAULT_GOAL := help

UV_VERSION := 0.13.9
UV := $(shell command -v uv 2>/dev/null || echo $(CURDIR)/.tools/bin/uv)
export UV
BUF := node_modules/.bin/buf
PYTEST := $(UV) run --frozen pytest
export UV_LINK_MODE ?= copy
# pip here may be configured with a local wheel folder (the CPU build of torch); uv is told too.
FIND_LINKS := $(shell pip config get global.find-links 2>/dev/null)
ifneq ($(FIND_LINKS),)
export UV_FIND_LINKS ?= $(FIND_LINKS)
endif

.PHONY: help setup ts conformance kubectl-plugin run test test-unit test-component test-contract test-e2e lint fmt proto proto-check k8s-check bench bench-quick clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-16s %s\n", $$1, $$2}'

$(CURDIR)/.tools/bin/uv:
	python3 -m venv .tools
	.tools/bin/pip install --quiet uv==$(UV_VERSION)

# Installed as bytecode (as the images do: UV_COMPILE_BYTECODE), so a process loads each module
# instead of compiling it from source: with PYTHONDONTWRITEBYTECODE set (this machine, the
# images), nothing compiled at run time is kept, and every start would compile it all again.
.venv/.synced: uv.lock pyproject.toml $(wildcard libs/*/pyproject.toml services/*/pyproject.toml cli/pyproject.toml) | $(UV)
	$(UV) sync --frozen --compile-bytecode
	@touch $@

# The MiniLM ONNX model memory runs (made from the wheel's weights; again when the export changes).
.venv/.minilm: .venv/.synced services/memory/src/tzurot/memory/minilm_export.py
	$(UV) run --frozen python -m tzurot.memory.minilm_export
	@touch $@

# The project's own modules are installed editable, which uv does not compile: compiled here
# whenever one changes (a stale .pyc is never used: Python checks each source's mtime).
PY_SOURCES := $(shell find cli libs services -name '*.py' -not -path '*/node_modules/*' 2>/dev/null)
.venv/.bytecode: .venv/.minilm $(PY_SOURCES)
	.venv/bin/python -m compileall -q -j 0 cli libs services
	@touch $@

$(BUF): package.json package-lock.json clients/ts/package.json
	npm ci --no-audit --no-fund --loglevel=error
	@touch $@

setup: .venv/.bytecode $(BUF)  ## install uv, the Python environment (with .venv/bin/kubectl-tzurot) and the Node tools

TS_BUILT := clients/ts/dist/.built
ts: $(TS_BUILT)  ## the TypeScript client (clients/ts): generated from proto/ with buf, compiled with tsc

$(TS_BUILT): $(BUF) buf.gen.yaml clients/ts/tsconfig.json $(wildcard proto/tzurot/v1/*.proto clients/ts/src/*.ts)
	$(BUF) generate
	node_modules/.bin/tsc -p clients/ts
	@touch $@

run: .venv/.bytecode  ## start the whole mesh on an embedded Postgres (Ctrl-C stops it; ARGS=--demo)
	$(UV) run --frozen tzurot up $(ARGS)

chat: .venv/.bytecode  ## talk to a personality of the running mesh (ARGS="sage -m hi"; default lilith)
	.venv/bin/tzurot chat $(or $(ARGS),lilith)

proto: .venv/.synced  ## regenerate the Python stubs from proto/
	scripts/gen_proto.sh

proto-check: setup  ## buf lint, buf breaking against main, and fail if generated stubs are stale
	$(BUF) lint
	scripts/check_proto.sh

lint: .venv/.synced  ## ruff and mypy
	$(UV) run --frozen ruff check .
	$(UV) run --frozen ruff format --check .
	$(UV) run --frozen mypy

fmt: .venv/.synced  ## format and autofix
	$(UV) run --frozen ruff format .
	$(UV) run --frozen ruff check --fix .

test: setup ts proto-check lint k8s-check  ## the whole suite: lint, contracts, manifests, unit, component, contract, e2e
	$(PYTEST) -q --ignore=tests/k8s

k8s-check: .venv/.synced  ## render every Kubernetes overlay, validate it offline, test its isolation rules
	scripts/k8s_check.sh

conformance: .venv/.synced  ## contract tests of SERVICE against any implementation at ADDR (PKI: its certs folder); no ADDR: the Python services
	TZUROT_CONFORMANCE_SERVICE=$(SERVICE) TZUROT_CONFORMANCE_ADDR=$(ADDR) \
	TZUROT_CONFORMANCE_PKI=$(or $(PKI),$(if $(ADDR),.data/certs)) $(PYTEST) -q tests/conformance

BINDIR ?= $(HOME)/.local/bin
kubectl-plugin: .venv/.synced  ## install `kubectl tzurot` (kubectl-tzurot) into BINDIR (default ~/.local/bin)
	mkdir -p $(BINDIR)
	printf '#!/bin/sh\nexec %s "$$@"\n' "$(CURDIR)/.venv/bin/kubectl-tzurot" > $(BINDIR)/kubectl-tzurot
	chmod 0755 $(BINDIR)/kubectl-tzurot
	@echo "installed $(BINDIR)/kubectl-tzurot: try 'kubectl tzurot --help' (kubectl plugin list shows it when $(BINDIR) is on the PATH)"

test-unit: .venv/.bytecode  ## unit tests only
	$(PYTEST) -q tests/unit

test-component: .venv/.bytecode  ## component tests (real Postgres)
	$(PYTEST) -q -m component

test-contract: .venv/.bytecode  ## contract tests (real gRPC)
	$(PYTEST) -q -m contract

test-e2e: .venv/.bytecode  ## end-to-end tests (the whole mesh on loopback)
	$(PYTEST) -q -m e2e

bench: .venv/.bytecode  ## benchmarks (JSON figures under bench/results/)
	$(UV) run --frozen python -m bench

bench-quick: .venv/.bytecode  ## a quick pass of the benchmarks
	$(UV) run --frozen python -m bench --quick

clean:  ## remove local state (.data/) and caches, keep the environments
	rm -rf .data .mypy_cache .ruff_cache .pytest_cache
