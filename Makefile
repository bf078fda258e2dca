# Nova Streaming: the two commands are `make dev` (or `make up` / `make down`) and `make test`.
SHELL := /bin/bash
CARGO ?= cargo
STACK := target/debug/nova-stack
TOOLS := .nova/tools
export PATH := $(CURDIR)/$(TOOLS)/venv/bin:$(CURDIR)/$(TOOLS)/node_modules/.bin:$(PATH)

.PHONY: deps build dev up down test lint bench containers-test

## deps: install system packages and tools (apt-get, pip, npm) that are missing
deps:
	@bash scripts/install-deps.sh

## build: build every binary of the workspace
build:
	$(CARGO) build --workspace --bins

## dev: bring the whole stack up in the foreground; Ctrl-C stops it
dev: deps build
	@$(STACK) dev

## up: bring the whole stack up in the background; addresses go to .nova/stack.env
up: deps build
	@$(STACK) up

## down: stop everything `make up` / `make dev` started
down:
	@if [ -x $(STACK) ]; then $(STACK) down; else echo "nothing to stop"; fi

## lint: proto lint, OpenAPI and deployment validation, formatting, clippy -D warnings, layering
lint: deps
	buf lint
	openapi-spec-validator docs/openapi.yaml
	bash scripts/validate-deploy.sh
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	bash scripts/check-layers.sh

## test: everything CI checks: lint, then unit and integration tests on real engines
test: lint build
	$(STACK) test-env -- $(CARGO) nextest run --workspace --no-fail-fast

## containers-test: build the images with podman, run compose and deploy/k8s (podman kube play) and go
## live through both (minutes; not part of test; docs/containers.md)
containers-test: deps
	@bash scripts/containers-test.sh

## bench: the release-build benchmark suite on real engines; prints one table (figure,
## same-run baseline, goal) and writes target/bench/results.json (NOVA_BENCH_* raise sizes)
bench: deps build
	$(CARGO) build --release --workspace --bins
	$(STACK) test-env -- $(CARGO) bench -p nova-tests --bench suite
