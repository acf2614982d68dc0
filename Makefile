# The two commands that matter: `make local` runs filepipe on this machine, `make test` checks everything.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
# checkov and the SAM CLI pin packages that the dev venv pins otherwise: each runs from a venv of its own.
TOOLS := $(VENV)/tools
TOOL_STAMPS := $(TOOLS)/checkov/.installed $(TOOLS)/sam/.installed
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
SYSTEM_PACKAGES := clamav clamav-daemon chromium
PORT ?= 8000
CORES := $(shell nproc 2>/dev/null || echo 2)

STACK ?= filepipe
# Who scans uploads on AWS (the template's Scanner): GuardDuty needs no Docker to deploy; ClamAV's scan
# function is a container image that `sam build` builds with Docker.
SCANNER ?= GuardDuty
# Who emails owners their outcomes on AWS; empty: no email (the web UI and FileProcessed events still tell).
SENDER_EMAIL ?=
# The local demo's sender (nothing leaves the machine: `filepipe outbox` shows the mail).
LOCAL_SENDER ?= filepipe@example.com
# sam builds python3.12 functions with a 3.12 interpreter first on PATH (pyenv's, when present).
PY312_BIN := $(shell pyenv prefix 3.12.1 2>/dev/null | sed 's|$$|/bin|' || dirname "$$(command -v python3.12)")

.PHONY: install system-packages local test lint typecheck unit build-check bench deploy test-aws clean

install: $(STAMP) $(TOOL_STAMPS)

$(STAMP): pyproject.toml functions/requirements.txt filepipe/requirements.txt gates/package-lock.json \
  $(wildcard tests/browser/package-lock.json)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev,bench]"
	cd tests/browser && npm ci --silent --no-audit --no-fund
	cd gates && npm ci --silent --no-audit --no-fund
	touch $(STAMP)

$(TOOLS)/%/.installed: gates/requirements/%.txt | $(STAMP)
	rm -rf $(TOOLS)/$*
	$(BIN)/python -m venv $(TOOLS)/$*
	$(TOOLS)/$*/bin/python -m pip install --quiet -r $<
	touch $@

# Debian packages the product and its tests use: clamd for scanning, chromium for browser tests.
system-packages:
	@missing=""; for p in $(SYSTEM_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing; \
	fi

# SES sends only from verified identities, and in its sandbox only to verified ones: the operator's step,
# done here in the open as on AWS (where it is a click on SES's link), for the sender and the demo user.
local: install system-packages
	$(BIN)/filepipe local --port $(PORT) --parameter SenderEmail=$(LOCAL_SENDER) \
	  --verify-email $(LOCAL_SENDER) --verify-email demo@example.com

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/cfn-lint template.yaml
	$(BIN)/actionlint
	$(BIN)/python -m gates.template_scan
	$(BIN)/python -m gates.asl
	cd functions && ../$(BIN)/lint-imports --config ../pyproject.toml

typecheck: install
	$(BIN)/mypy

unit: install
	$(BIN)/pytest tests/unit tests/workflow

# `sam build` of every .zip function for arm64; the image functions' Dockerfile is linted and their entry
# point run instead (their build needs Docker). Tests check the artifacts.
build-check: install
	$(BIN)/python -m gates.lambda_build

# The gates run side by side, a job per core, each one's output kept together. The journey runs against
# filepipe local here, whatever FILEPIPE_TEST_STACK the shell exports. One pytest worker per core; a test
# file runs whole in one worker, so its module fixtures (a local runtime, a stack) start once.
test: install system-packages
	$(MAKE) --no-print-directory --jobs $(CORES) --output-sync=target lint typecheck build-check
	env -u FILEPIPE_TEST_STACK $(BIN)/pytest --numprocesses auto --dist loadfile

bench: install system-packages
	$(BIN)/python -m filepipe.bench

# Deploy to the AWS account of the current credentials, then publish the web UI with its config.json.
# `sam build` and `sam deploy` act on every image function whatever its Condition: those SCANNER leaves out
# (ClamAV's, with GuardDuty) are neither built nor pushed (filepipe/sam_images.py). With SCANNER=ClamAV,
# `sam build` builds the scan function's image with Docker, and --resolve-image-repos has SAM push it to an
# ECR repository of a companion stack it manages (`<stack>-<hash>-CompanionStack`).
# PipelineConcurrency comes from the account's unreserved Lambda concurrency (0 where none can be spared).
deploy: install
	excluded=$$($(BIN)/python -m filepipe.sam_images exclude template.yaml Scanner=$(SCANNER)) && \
	PATH="$(PY312_BIN):$$PATH" $(TOOLS)/sam/bin/sam build $(SAM_BUILD_FLAGS) $$excluded
	$(BIN)/python -m filepipe.sam_images unbuilt .aws-sam/build/template.yaml Scanner=$(SCANNER)
	concurrency=$$($(BIN)/python -m filepipe.concurrency --stack $(STACK)) && \
	$(TOOLS)/sam/bin/sam deploy --stack-name $(STACK) --resolve-s3 --resolve-image-repos \
	  --no-fail-on-empty-changeset --capabilities CAPABILITY_IAM CAPABILITY_AUTO_EXPAND \
	  --parameter-overrides 'SenderEmail="$(SENDER_EMAIL)"' "PipelineConcurrency=$$concurrency" \
	  "Scanner=$(SCANNER)"
	$(BIN)/python -m filepipe.site --stack $(STACK)
	$(BIN)/filepipe ses status --stack $(STACK)

# The black-box journey against the deployed stack $(STACK), with the caller's credentials and region
# (AWS_REGION or AWS_DEFAULT_REGION); `make test` runs the same test against `filepipe local`.
test-aws: install
	@test -n "$(STACK)" || { echo "make test-aws needs STACK=<deployed stack name>"; exit 2; }
	FILEPIPE_TEST_STACK=$(STACK) $(BIN)/pytest tests/journey

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache tests/browser/node_modules gates/node_modules build
