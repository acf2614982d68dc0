# The two commands that matter: `make local` runs filepipe on this machine, `make test` checks everything.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
SYSTEM_PACKAGES := clamav clamav-daemon chromium
PORT ?= 8000

STACK ?= filepipe
SENDER_EMAIL ?= filepipe@example.com
# sam builds python3.12 functions with a 3.12 interpreter first on PATH (pyenv's, when present).
PY312_BIN := $(shell pyenv prefix 3.12.1 2>/dev/null | sed 's|$$|/bin|' || dirname "$$(command -v python3.12)")

.PHONY: install system-packages local test lint typecheck unit bench deploy test-aws clean

install: $(STAMP)

$(STAMP): pyproject.toml $(wildcard tests/browser/package-lock.json)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev,bench]"
	cd tests/browser && npm ci --silent --no-audit --no-fund
	touch $(STAMP)

# Debian packages the product and its tests use: clamd for scanning, chromium for browser tests.
system-packages:
	@missing=""; for p in $(SYSTEM_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing; \
	fi

local: install system-packages
	$(BIN)/filepipe local --port $(PORT)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/cfn-lint template.yaml

typecheck: install
	$(BIN)/mypy

unit: install
	$(BIN)/pytest tests/unit tests/workflow

test: install system-packages lint typecheck
	$(BIN)/pytest

bench: install system-packages
	$(BIN)/python -m filepipe.bench

# Deploy to the AWS account of the current credentials, then publish the web UI with its config.json.
# The ClamAV layer is built from Amazon Linux packages: run on Amazon Linux 2023 or add --use-container.
deploy: install
	$(BIN)/python -m pip install --quiet -e ".[deploy]"
	PATH="$(PY312_BIN):$$PATH" $(BIN)/sam build $(SAM_BUILD_FLAGS)
	$(BIN)/sam deploy --stack-name $(STACK) --resolve-s3 --no-fail-on-empty-changeset \
	  --capabilities CAPABILITY_IAM CAPABILITY_AUTO_EXPAND --parameter-overrides SenderEmail=$(SENDER_EMAIL)
	$(BIN)/python -m filepipe.site --stack $(STACK)

# The black-box journey against the deployed stack $(STACK), with the caller's credentials and region
# (AWS_REGION or AWS_DEFAULT_REGION); `make test` runs the same test against `filepipe local`.
test-aws: install
	@test -n "$(STACK)" || { echo "make test-aws needs STACK=<deployed stack name>"; exit 2; }
	FILEPIPE_TEST_STACK=$(STACK) $(BIN)/pytest tests/journey

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache tests/browser/node_modules
