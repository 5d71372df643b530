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
        sizing render lint-workflows lint-stacks docs clean acceptance loadtest bench-preview

help: ## List the targets
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/:.*## /\t/' | column -t -s $$'\t'

$(VENV)/.installed: requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.txt
	touch $@

venv: $(VENV)/.installed ## Create the virtualenv from requirements.txt

demo: venv ## Boot a throwaway local host and `pulumi up` the `local` stack on it
	testbed/scripts/demo

test: venv ## Every test: unit, rendering checked by real programs, mocks, policies, workflows, e2e
	scripts/run-tests all

unit: venv ## The fast tests only (no engine, no test host)
	scripts/run-tests unit

e2e: venv ## The end-to-end test alone: real engine, real systemd host
	scripts/run-tests e2e

drill: venv ## The backup/restore drill on the test host
	scripts/run-tests drill

engine: ## Build (or reuse) a Pulumi engine from Go modules (where no CLI is installed); prints its directory
	@testbed/scripts/build-engine

testhost: ## Build (or reuse) the test host root file system and local apt repository
	testbed/scripts/testhost-build

testhost-up: ## Boot a fresh test host; prints host= port= user= key=
	@testbed/scripts/testhost-up

testhost-down: ## Stop and remove the test host
	@testbed/scripts/testhost-down

acceptance: ## Check a deployed server: URL=https://... [SSH=user@host SSH_KEY=... SSH_PORT=22] [PASSWORD_FILE=... | PASSWORD_STACK=<stack>] [DB=odoo LOGIN=admin]
	scripts/acceptance --url "$(URL)" $(if $(SSH),--ssh "$(SSH)") $(if $(SSH_KEY),--ssh-key "$(SSH_KEY)") \
	  $(if $(SSH_PORT),--ssh-port "$(SSH_PORT)") $(if $(DB),--db "$(DB)") $(if $(LOGIN),--login "$(LOGIN)") \
	  $(if $(PASSWORD_FILE),--password-file "$(PASSWORD_FILE)") $(if $(PASSWORD_STACK),--stack "$(PASSWORD_STACK)") \
	  $(foreach o,$(SSH_OPTIONS),--ssh-option "$(o)")

sizing: venv ## Explain the sizing for USERS (default 60)
	$(PY) -m odoo_pulumi.cli sizing --users $(USERS)

loadtest: venv ## Load test URL with USERS simulated office users (4,8,16 steps; LOADTEST_ARGS for more)
	@[ -n "$(URL)" ] || { echo "usage: make loadtest URL=https://erp.example.com USERS=8[,16,...] [LOADTEST_ARGS='--ssh ubuntu@host --out out/loadtest']" >&2; exit 2; }
	$(PY) -m odoo_pulumi.loadtest --url $(URL) --users $(USERS) $(LOADTEST_ARGS)

bench-preview: venv ## Time a no-op preview of the local stack against an empty program (needs root and the test host)
	scripts/bench-preview $(BENCH_ARGS)

render: venv ## Render every server file of STACK under OUT
	$(PY) -m odoo_pulumi.cli render --stack $(STACK) --out $(OUT)

lint-workflows: ## Lint the GitHub workflows with actionlint
	scripts/lint-workflows

lint-stacks: venv ## Lint stacks/*.yaml against Pulumi.yaml: unknown keys, plain-text secrets, values not allowed
	scripts/lint-stacks

docs: venv ## Regenerate README.md's settings table from Pulumi.yaml (CI fails when it is stale)
	$(PY) -m odoo_pulumi.docs --write README.md

clean: ## Remove local build output (not the caches outside the repo)
	rm -rf out .pytest_cache .hypothesis
