# AgentOps Replay developer commands. Everything installs into .venv (and the SAM CLI into .venv-sam, because it
# pins its own boto3). Nothing here needs Docker or AWS credentials.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
SAM_VENV := .venv-sam
LOCAL_PACKAGES := -e ./verifier -e ./layers/server -e ./sdk
STAMP := $(VENV)/.installed

CHROMIUM := /usr/bin/chromium

.PHONY: venv sam-venv browser lint test bench dev demo sam-build clean

venv: $(STAMP)

$(STAMP): requirements-dev.txt constraints.txt verifier/pyproject.toml layers/server/pyproject.toml sdk/pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip==26.3
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt -c constraints.txt
	$(BIN)/python -m pip install --quiet --no-deps $(LOCAL_PACKAGES)
	touch $(STAMP)

lint: venv sam-venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy --strict verifier/src
	$(BIN)/mypy layers/server/agentops_server sdk/src/agentops_replay infra tests benchmarks
	@# Every handler is a top-level module named app, so each is checked on its own.
	for handler in functions/*/app.py; do $(BIN)/mypy $$handler || exit 1; done
	$(BIN)/cfn-lint template.yaml
	SAM_CLI_TELEMETRY=0 $(SAM_VENV)/bin/sam validate --lint --region us-east-1

# Debian's chromium, for the replay viewer's tests and benchmark in headless Chromium (tests/browser). CI runs as
# root on Debian; the package lists are fetched only when apt does not know the package yet.
browser:
	@test -x $(CHROMIUM) || { \
		apt-cache show chromium >/dev/null 2>&1 || apt-get update; \
		DEBIAN_FRONTEND=noninteractive apt-get install -y chromium; }
	@test -x $(CHROMIUM) || { echo "$(CHROMIUM) is still missing after apt-get install chromium" >&2; exit 1; }

# sam build runs here too: the deployable layer must build and carry the verifier (one hashing implementation).
test: lint sam-build browser
	@test -f .aws-sam/build/ServerLayer/python/agentops_verify/_hashing.py || \
		{ echo "sam build produced a layer without agentops_verify" >&2; exit 1; }
	$(BIN)/pytest

bench: venv browser
	@for script in benchmarks/*.py; do echo "== $$script"; $(BIN)/python $$script || exit 1; done

# The SAM CLI pins its own boto3/botocore, so it lives in its own virtual environment.
sam-venv: $(SAM_VENV)/.installed

$(SAM_VENV)/.installed:
	test -x $(SAM_VENV)/bin/python || $(PYTHON) -m venv $(SAM_VENV)
	$(SAM_VENV)/bin/python -m pip install --quiet aws-sam-cli==1.170.0
	touch $@

# Builds the functions and the layer into .aws-sam/ without Docker (the layer's Makefile fetches arm64 wheels).
sam-build: sam-venv
	SAM_CLI_TELEMETRY=0 $(SAM_VENV)/bin/sam build --region us-east-1

# The local stack of API.md: moto + the real handlers behind a local HTTP front. PORT=0 picks a free port.
# Parameter-backed variables pass through, e.g. EXPORT_ASYNC_MIN_EVENTS=1 make dev (every export asynchronous).
dev: venv
	$(BIN)/python -m infra.local_stack

# A real agent session recorded, sealed, exported and verified offline, then a tampered copy rejected.
demo: venv
	$(BIN)/python -m infra.demo

clean:
	rm -rf $(VENV) $(SAM_VENV) .aws-sam .pytest_cache .mypy_cache .ruff_cache
