# AgentOps Replay developer commands. Everything installs into .venv (and the SAM CLI into .venv-sam, because it
# pins its own boto3). Nothing here needs Docker or AWS credentials.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
SAM_VENV := .venv-sam
LOCAL_PACKAGES := -e ./verifier -e ./layers/server -e ./sdk
STAMP := $(VENV)/.installed

.PHONY: venv lint test bench dev clean

venv: $(STAMP)

$(STAMP): requirements-dev.txt constraints.txt verifier/pyproject.toml layers/server/pyproject.toml sdk/pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip==26.3
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt -c constraints.txt
	$(BIN)/python -m pip install --quiet --no-deps $(LOCAL_PACKAGES)
	touch $(STAMP)

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy --strict verifier/src
	$(BIN)/mypy tests benchmarks

test: lint
	$(BIN)/pytest

bench: venv
	@for script in benchmarks/*.py; do echo "== $$script"; $(BIN)/python $$script || exit 1; done

clean:
	rm -rf $(VENV) $(SAM_VENV) .aws-sam .pytest_cache .mypy_cache .ruff_cache
