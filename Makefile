# Every target builds what it needs from nothing: a fresh clone runs `make demo` or `make test` directly.
# Two environments: .venv floats on current boto3; .venv-aio holds aiobotocore, which pins botocore.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
VENV_AIO := .venv-aio
BIN_AIO := $(VENV_AIO)/bin
STAMP_AIO := $(VENV_AIO)/.installed

.PHONY: demo test lint typecheck pytest test-aio coverage browser chat bench bench-chat soak fake-server clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

$(STAMP_AIO): pyproject.toml
	test -x $(BIN_AIO)/python || $(PYTHON) -m venv $(VENV_AIO)
	$(BIN_AIO)/python -m pip install --quiet --upgrade pip
	$(BIN_AIO)/python -m pip install --quiet -e '.[aio,dev-aio]'
	touch $(STAMP_AIO)

demo: $(STAMP)
	$(BIN)/python examples/quickstart.py

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy safe_bedrock

# Coverage is measured over both environments and checked once, against a floor that only rises.
pytest: $(STAMP)
	$(BIN)/python -m pytest --cov --cov-report= -p no:cacheprovider

# The end-to-end chat test drives the system Chromium (never a downloaded browser).
browser:
	command -v chromium >/dev/null && command -v chromedriver >/dev/null || \
		(apt-get update -qq && apt-get install -y -qq --no-install-recommends chromium chromium-driver)

test-aio: $(STAMP_AIO) browser
	$(BIN_AIO)/python -m pytest --cov --cov-append --cov-report= -p no:cacheprovider tests/aio examples/chat_server/tests

coverage: $(STAMP)
	$(BIN)/coverage report --fail-under=$$(cat .coverage-floor)

test: lint typecheck pytest test-aio coverage

chat: $(STAMP_AIO)
	$(BIN_AIO)/python examples/chat_server/app.py

bench: $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[dev,bench]'
	$(BIN)/python benchmarks/run_all.py

bench-chat: $(STAMP_AIO)
	$(BIN_AIO)/python benchmarks/bench_chat_load.py

soak: $(STAMP)
	SAFE_BEDROCK_SOAK=10 $(BIN)/python -m pytest -p no:cacheprovider tests/reliability

fake-server: $(STAMP)
	$(BIN)/safe-bedrock fake-server --host 127.0.0.1 --port 4010

clean:
	rm -rf $(VENV) $(VENV_AIO) .pytest_cache .mypy_cache .ruff_cache .coverage htmlcov
