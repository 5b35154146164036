# Stratus — every target sets up what it needs; a fresh machine needs only Python 3.11+.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20
export PATH := $(CURDIR)/$(BIN):$(PATH)

.PHONY: setup dev test test-unit test-integration test-infra test-e2e lint synth layers bench invoke deploy clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[local,infra,dev,llm,embed,parse,search,tools]'
	touch $(STAMP)

## Run the whole platform locally on embedded defaults (http://127.0.0.1:8000).
dev: $(STAMP)
	$(BIN)/python -m infra.local

## Every suite: lint, unit, integration (real PostgreSQL, Redis in cluster mode, moto), infra (CDK synth), e2e.
test: $(STAMP) lint layers
	$(BIN)/python -m pytest tests -q

test-unit: $(STAMP)
	$(BIN)/python -m pytest tests/unit -q

test-integration: $(STAMP)
	$(BIN)/python -m pytest tests/integration -q

test-infra: $(STAMP) layers
	$(BIN)/python -m pytest tests/infra -q

test-e2e: $(STAMP)
	$(BIN)/python -m pytest tests/e2e -q

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy shared functions infra app.py layers

## Third-party dependency layers, built for Lambda (arm64, manylinux wheels, no Docker).
layers: $(STAMP)
	$(BIN)/python -m layers.build

synth: $(STAMP) layers
	$(BIN)/python app.py

bench: $(STAMP)
	$(BIN)/python -m benchmarks

## make invoke FN=<catalog function name> EVENT=events/<file>.json
invoke: $(STAMP)
	@test -n "$(FN)" || (echo "usage: make invoke FN=<function> EVENT=events/<file>.json" >&2; exit 2)
	$(BIN)/python -m infra.local.invoke $(FN) $(EVENT)

## Deploy with the pinned CDK CLI (needs AWS credentials): make deploy STAGE=dev
deploy: $(STAMP) layers
	$(BIN)/npx --yes aws-cdk@2.1148.0 deploy --all --app "$(BIN)/python app.py" -c stage=$(or $(STAGE),dev)

clean:
	rm -rf .build cdk.out .pytest_cache .mypy_cache .ruff_cache
