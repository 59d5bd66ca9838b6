# Two commands for a newcomer: `make demo` and `make test`. Both bootstrap everything they need.
SHELL := /bin/bash
# Lambda's Python (3.12) where this machine has one (on PATH or under pyenv), else python3 (3.11 or later): the
# runtime and the tests run on both. A .venv made by another Python stays until `make clean`.
PYTHON ?= $(shell for p in python3.12 $(HOME)/.pyenv/versions/3.12*/bin/python3.12; do \
	$$p -c 'import sys; sys.exit(sys.version_info[:2] != (3, 12))' >/dev/null 2>&1 && { command -v $$p; exit 0; }; done; echo python3)
VENV := .venv
BIN := $(VENV)/bin
STAGE ?= dev
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20
# Bytecode is written on first import (nothing is compiled at install: see bootstrap), even where the environment
# says otherwise: without it every test process and benchmark child would compile boto3, moto and the CDK again.
unexport PYTHONDONTWRITEBYTECODE

.PHONY: help bootstrap lock demo test gate unit integration infra-tests bench sim mutants synth lint diff deploy destroy clean adoption-templates rehearse-cutover
SEEDS ?= 10000

help:
	@echo "make demo                 run the reconciler end to end on an embedded local AWS stack"
	@echo "make test                 the lint and type gate, then every test (unit, integration, infrastructure, cdk-nag, cfn-lint), with coverage"
	@echo "make bootstrap [BOOTSTRAP_WITH_PIP=1]   .venv (uv, or pip) and node_modules from the lock files"
	@echo "make gate                 the lint and type gate alone: ruff check, ruff format --check, mypy, lint-imports"
	@echo "make unit|integration|infra-tests   one tier of the tests, for quick local runs"
	@echo "make bench [SCALE=100 [SCALE_ONLY=scan,audit]]  benchmarks; rewrites docs/benchmarks.md and docs/capacity.md (SCALE adds that size)"
	@echo "make sim [SEEDS=N|SEED=S] the money-path simulator: 10,000 seeded runs, or replay one seed"
	@echo "make mutants [SEEDS=N]    realistic bugs, each in a copy of the source, against the simulator's seeds; rewrites docs/mutants.md"
	@echo "make synth STAGE=prod     synthesize CloudFormation for a stage (no credentials needed)"
	@echo "make diff|deploy|destroy STAGE=NAME   the same against an AWS account (deploy: FIRST_DEPLOY=1 for a stage's first create)"
	@echo "make adoption-templates STAGE=prod   the data stack's templates for taking over v1's resources (docs/migration.md)"
	@echo "make rehearse-cutover     the takeover from v1 rehearsed on the local stack, with its counts"
	@echo "make lock [UPGRADE=1]     regenerate the hash-locked requirements*.txt from pyproject.toml"

# Every package comes from the hash-locked requirements-dev.txt. Our own package, editable, can carry no hash:
# it is built with the locked setuptools and fetches nothing (no dependencies, no build backend, no index).
# uv installs it all in seconds; pip, as before, where uv cannot (no pip beside $(PYTHON) to fetch uv with, or a
# failure). uv itself comes hash-checked from its own lines of the same lock. uv reads no pip configuration, so
# pip's configured indexes and find-links are handed to it (none on a plain machine); hashes are checked whatever
# index a file comes from, so uv may take each package from any of them (a mirror may hold one Python's wheels).
# No bytecode is compiled at install (most of aws-cdk-lib's 180 MB would never be imported): Python writes it on
# first import, into the venv's and the repository's __pycache__ (ignored by git and by the Lambda asset).
PIP := $(BIN)/python -m pip install --quiet --disable-pip-version-check
UV_HOME = build/uv/$(shell sed -n 's/^uv==\([^ ]*\).*/\1/p' requirements-dev.txt)
UV = $(UV_HOME)/bin/uv
PIP_SOURCES = $(foreach u,$(shell $(PYTHON) -m pip config get global.extra-index-url 2>/dev/null),--extra-index-url $(u)) \
	$(foreach d,$(shell $(PYTHON) -m pip config get global.find-links 2>/dev/null),--find-links $(d))
UV_BOOTSTRAP = mkdir -p $(UV_HOME) && awk '/^uv==/{p=1} p{print} p&&!/\\$$/{exit}' requirements-dev.txt > $(UV_HOME)/requirements.txt \
	&& { test -x $(UV) || $(PYTHON) -m pip install --quiet --disable-pip-version-check --require-hashes --target $(UV_HOME) \
	  -r $(UV_HOME)/requirements.txt; } \
	&& { test -x $(BIN)/python || $(UV) venv --quiet --seed --python $(PYTHON) $(VENV); } \
	&& $(UV) pip install --quiet --python $(BIN)/python --require-hashes --index-strategy unsafe-best-match $(PIP_SOURCES) \
	  -r requirements-dev.txt \
	&& $(UV) pip install --quiet --python $(BIN)/python --no-deps --no-build-isolation --no-index -e .
PIP_BOOTSTRAP = { test -x $(BIN)/python || $(PYTHON) -m venv $(VENV); } && $(PIP) --require-hashes -r requirements-dev.txt \
	&& $(PIP) --no-deps --no-build-isolation --no-index -e .
$(BIN)/.installed: requirements.txt requirements-dev.txt pyproject.toml
	@if [ -z "$(BOOTSTRAP_WITH_PIP)" ] && $(UV_BOOTSTRAP); then echo "bootstrap: installed with uv"; \
	else echo "bootstrap: installing with pip"; $(PIP_BOOTSTRAP); fi
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
	$(BIN)/python scripts/demo.py

PYTEST := $(BIN)/python -m pytest -p no:cacheprovider

# With a coverage report of the runtime (pyproject.toml, [tool.coverage]); on 3.12, coverage's sys.monitoring core
# (a fraction of the tracer's overhead).
test: bootstrap gate
	COVERAGE_CORE=$$($(BIN)/python -c 'import sys; print("sysmon" if sys.version_info >= (3, 12) else "")') \
	  $(PYTEST) -n 2 --dist worksteal --cov --cov-report=term

# The lint and type gate (ruff.toml, mypy.ini, .importlinter); .pre-commit-config.yaml runs the same commands.
# Every step runs, so one run lists every finding; the gate fails if any step did.
GATE_STEPS := "ruff check ." "ruff format --check --output-format concise ." "mypy" "lint-imports"
gate: bootstrap
	@failed=""; for step in $(GATE_STEPS); do echo "gate: $$step"; $(BIN)/$$step || failed="$$failed [$$step]"; done; \
	  if [ -n "$$failed" ]; then echo "gate failed:$$failed"; exit 1; fi

# Tiers for quick local runs: a test's folder is its tier (tests/unit, tests/integration, tests/infra; see
# tests/unit/test_tiers.py). `make test` runs them all, and only a full run checks the IAM policies against the suite's
# AWS calls. unit takes seconds, so it skips xdist's start-up.
unit: bootstrap
	$(PYTEST) tests/unit
integration: bootstrap
	$(PYTEST) -n 2 tests/integration
infra-tests: bootstrap
	$(PYTEST) -n 2 tests/infra

# Seeds split over both cores; SEED=S replays one run with its tasks printed.
sim: bootstrap
	@if [ -n "$(SEED)" ]; then $(BIN)/python -m simulator.sim --seed $(SEED) -v; \
	else half=$$(( $(SEEDS) / 2 )); \
	  $(BIN)/python -m simulator.sim --first 0 --seeds $$half & first=$$!; \
	  $(BIN)/python -m simulator.sim --first $$half --seeds $$(( $(SEEDS) - half )); second=$$?; \
	  wait $$first; first=$$?; [ $$first -eq 0 ] && [ $$second -eq 0 ]; fi

# Realistic one-line bugs, each applied to a copy of the source and run against the simulator's seeds (SEEDS per
# mutant, stopped at the first failing one), two at a time; the tests of its module for a mutant the simulator missed.
mutants: bootstrap
	$(BIN)/python -m simulator.mutants --seeds $(SEEDS)

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

# The pre-deploy check first (infra/predeploy.py; it refuses a paused stage); FIRST_DEPLOY=1 for a stage's first create: no protection until
# it has succeeded once, so a failed create can be retried (docs/migration.md). Then deploy again without it.
deploy: bootstrap
	$(BIN)/python -m infra.predeploy $(STAGE) $(if $(FIRST_DEPLOY),--first-deploy)
	npx cdk deploy --context stage=$(STAGE) $(if $(FIRST_DEPLOY),--context first_deploy=true) --all --require-approval broadening

# The takeover rehearsed on the local stack against a v1 stand-in (scripts/rehearse_cutover.py, docs/migration.md).
rehearse-cutover: bootstrap
	$(BIN)/python scripts/rehearse_cutover.py

# The data stack's templates for adopting v1's resources, one a step (infra/adoption.py, docs/migration.md).
adoption-templates: bootstrap
	$(BIN)/python -m infra.adoption $(STAGE) --out cdk.out/adoption/$(STAGE)

destroy: bootstrap
	npx cdk destroy --context stage=$(STAGE) --all

clean:
	rm -rf $(VENV) node_modules cdk.out .pytest_cache build
