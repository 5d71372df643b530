# odoo-pulumi: the one front door. `make help` lists the targets.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
USERS ?= 60
STACK ?= small
OUT ?= out/$(STACK)

.DEFAULT_GOAL := help
.PHONY: help venv demo test unit e2e drill engine testhost testhost-up testhost-down \
        sizing render lint-workflows clean

help: ## List the targets
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/:.*## /\t/' | column -t -s $$'\t'

$(VENV)/.installed: requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.txt
	touch $@

venv: $(VENV)/.installed ## Create the virtualenv from requirements.txt

demo: venv ## Boot a throwaway local host and `pulumi up` the `local` stack on it
	scripts/demo

test: venv ## Every test: unit, rendering checked by real programs, mocks, policies, workflows, e2e
	scripts/run-tests all

unit: venv ## The fast tests only (no engine, no test host)
	scripts/run-tests unit

e2e: venv ## The end-to-end test alone: real engine, real systemd host
	scripts/run-tests e2e

drill: venv ## The backup/restore drill on the test host
	scripts/run-tests drill

engine: ## Build (or reuse) a Pulumi engine from Go modules (where no CLI is installed); prints its directory
	@scripts/build-engine

testhost: ## Build (or reuse) the test host root file system and local apt repository
	scripts/testhost-build

testhost-up: ## Boot a fresh test host; prints host= port= user= key=
	@scripts/testhost-up

testhost-down: ## Stop and remove the test host
	@scripts/testhost-down

sizing: venv ## Explain the sizing for USERS (default 60)
	$(PY) -m components.sizing --users $(USERS)

render: venv ## Render every server file of STACK under OUT
	$(PY) -m components.render --stack $(STACK) --out $(OUT)

lint-workflows: ## Lint the GitHub workflows with actionlint
	scripts/lint-workflows

clean: ## Remove local build output (not the caches outside the repo)
	rm -rf out .pytest_cache .hypothesis
