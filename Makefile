# Two commands for a newcomer: `make demo` and `make test`. Both bootstrap everything they need.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAGE ?= dev
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20
export PYTHONDONTWRITEBYTECODE := 1

.PHONY: help bootstrap lock demo test gate unit integration infra-tests bench sim synth lint diff deploy destroy clean
SEEDS ?= 10000

help:
	@echo "make demo                 run the reconciler end to end on an embedded local AWS stack"
	@echo "make test                 the lint and type gate, then every test (unit, integration, infrastructure, cdk-nag, cfn-lint)"
	@echo "make gate                 the lint and type gate alone: ruff check, ruff format --check, mypy, lint-imports"
	@echo "make unit|integration|infra-tests   one tier of the tests, for quick local runs"
	@echo "make bench [SCALE=100 [SCALE_ONLY=scan,audit]]  benchmarks; rewrites docs/benchmarks.md and docs/capacity.md (SCALE adds that size)"
	@echo "make sim [SEEDS=N|SEED=S] the money-path simulator: 10,000 seeded runs, or replay one seed"
	@echo "make synth STAGE=prod     synthesize CloudFormation for a stage (no credentials needed)"
	@echo "make diff|deploy|destroy STAGE=NAME   the same against an AWS account"
	@echo "make lock [UPGRADE=1]     regenerate the hash-locked requirements*.txt from pyproject.toml"

# Every package comes from the hash-locked requirements-dev.txt. Our own package, editable, can carry no hash:
# it is built with the locked setuptools and fetches nothing (no dependencies, no build backend, no index).
PIP := $(BIN)/python -m pip install --quiet --disable-pip-version-check
$(BIN)/.installed: requirements.txt requirements-dev.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(PIP) --require-hashes -r requirements-dev.txt
	$(PIP) --no-deps --no-build-isolation --no-index -e .
	touch $@

# Regenerate both lock files from pyproject.toml for Python 3.11+ on any platform, keeping each locked version
# that still fits; UPGRADE=1 moves everything to the newest versions the ranges allow.
LOCK := $(BIN)/uv pip compile pyproject.toml --quiet --universal --python-version 3.11 --generate-hashes \
	--custom-compile-command "make lock" $(if $(UPGRADE),--upgrade)
lock: $(BIN)/.installed
	$(LOCK) --extra local --extra dev -o requirements-dev.txt
	$(LOCK) --extra local -c requirements-dev.txt -o requirements.txt

node_modules/.installed: package.json package-lock.json
	npm ci --silent --no-audit --no-fund
	touch $@

bootstrap: $(BIN)/.installed node_modules/.installed

demo: bootstrap
	$(BIN)/python -m reconciler.local.demo

PYTEST := $(BIN)/python -m pytest -p no:cacheprovider

test: bootstrap gate
	$(PYTEST) -n 2 --dist worksteal

# The lint and type gate (ruff.toml, mypy.ini, .importlinter); .pre-commit-config.yaml runs the same commands.
# Every step runs, so one run lists every finding; the gate fails if any step did.
GATE_STEPS := "ruff check ." "ruff format --check --output-format concise ." "mypy" "lint-imports"
gate: bootstrap
	@failed=""; for step in $(GATE_STEPS); do echo "gate: $$step"; $(BIN)/$$step || failed="$$failed [$$step]"; done; \
	  if [ -n "$$failed" ]; then echo "gate failed:$$failed"; exit 1; fi

# Tiers for quick local runs (tests/tiers.py assigns each test to one; `make test` runs them all, and only a full
# run checks the IAM policies against the suite's AWS calls). unit takes seconds, so it skips xdist's start-up.
unit: bootstrap
	$(PYTEST) -m unit
integration: bootstrap
	$(PYTEST) -n 2 -m integration
infra-tests: bootstrap
	$(PYTEST) -n 2 -m infra

# Seeds split over both cores; SEED=S replays one run with its tasks printed.
sim: bootstrap
	@if [ -n "$(SEED)" ]; then $(BIN)/python -m simulator.sim --seed $(SEED) -v; \
	else half=$$(( $(SEEDS) / 2 )); \
	  $(BIN)/python -m simulator.sim --first 0 --seeds $$half & first=$$!; \
	  $(BIN)/python -m simulator.sim --first $$half --seeds $$(( $(SEEDS) - half )); second=$$?; \
	  wait $$first; first=$$?; [ $$first -eq 0 ] && [ $$second -eq 0 ]; fi

# The timer scan, the audit and the DLQ replay run at 0.1x and 1x today's sizes; SCALE=N adds N x (to those SCALE_ONLY names).
bench: bootstrap
	$(BIN)/python -m benchmarks.run $(if $(SCALE),--scale $(SCALE)) $(if $(SCALE_ONLY),--scale-only $(SCALE_ONLY))

synth: bootstrap
	npx cdk synth --quiet --context stage=$(STAGE)

lint: bootstrap
	npx cdk synth --quiet --context stage=$(STAGE) --output cdk.out/$(STAGE)
	$(BIN)/cfn-lint -i W3005 -- cdk.out/$(STAGE)/*.template.json

diff: bootstrap
	npx cdk diff --context stage=$(STAGE) --all

deploy: bootstrap
	npx cdk deploy --context stage=$(STAGE) --all --require-approval broadening

destroy: bootstrap
	npx cdk destroy --context stage=$(STAGE) --all

clean:
	rm -rf $(VENV) node_modules cdk.out .pytest_cache
