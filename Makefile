# Every target builds what it needs from nothing: a fresh clone runs `make demo` or `make test` directly.
# Two environments: .venv floats on current boto3; .venv-aio holds aiobotocore, which pins botocore.
# A third, .venv-lowest (`make test-lowest`), holds every runtime dependency at its declared floor.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
VENV_AIO := .venv-aio
BIN_AIO := $(VENV_AIO)/bin
STAMP_AIO := $(VENV_AIO)/.installed
VENV_LOWEST := .venv-lowest
BIN_LOWEST := $(VENV_LOWEST)/bin
STAMP_LOWEST := $(VENV_LOWEST)/.installed

.PHONY: demo docs test test-lowest lint typecheck pytest test-aio coverage browser chat bench bench-chat soak fake-server clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e . --group dev --group frameworks --group docs
	touch $(STAMP)

$(STAMP_AIO): pyproject.toml
	test -x $(BIN_AIO)/python || $(PYTHON) -m venv $(VENV_AIO)
	$(BIN_AIO)/python -m pip install --quiet --upgrade pip
	$(BIN_AIO)/python -m pip install --quiet -e '.[aio]' --group dev-aio
	touch $(STAMP_AIO)

# The floors in pyproject.toml's [project] dependencies, installed exactly (`>=X` becomes `==X`, read by
# .ci/lowest_constraints.py); the dev tools float as usual, the frameworks group is left out.
$(STAMP_LOWEST): pyproject.toml .ci/lowest_constraints.py
	rm -rf $(VENV_LOWEST)
	$(PYTHON) -m venv $(VENV_LOWEST)
	$(BIN_LOWEST)/python -m pip install --quiet --upgrade pip
	$(BIN_LOWEST)/python .ci/lowest_constraints.py pyproject.toml > $(VENV_LOWEST)/constraints.txt
	$(BIN_LOWEST)/python -m pip install --quiet -c $(VENV_LOWEST)/constraints.txt -e . --group dev
	$(BIN_LOWEST)/python -m pip check
	touch $(STAMP_LOWEST)

demo: $(STAMP)
	$(BIN)/python examples/quickstart.py

# The site, into site/ (git-ignored). Strict: a broken link, anchor or API reference fails the build; the
# samples on its pages run in tests/docs (pytest, both environments).
docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --quiet --site-dir site

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy safe_bedrock tests/typing

# Coverage is measured over both environments and checked once, against a floor that only rises.
# `coverage run` starts before pytest loads our pytest11 plugin, so import-time lines count as run.
pytest: $(STAMP)
	$(BIN)/coverage erase
	$(BIN)/coverage run -m pytest -p no:cacheprovider

# The end-to-end chat test drives the system Chromium (never a downloaded browser).
browser:
	command -v chromium >/dev/null && command -v chromedriver >/dev/null || \
		(apt-get update -qq && apt-get install -y -qq --no-install-recommends chromium chromium-driver)

test-aio: $(STAMP_AIO) browser
	$(BIN_AIO)/coverage run -m pytest -p no:cacheprovider tests/aio examples/chat_server/tests tests/docs

coverage: $(STAMP)
	$(BIN)/coverage combine --quiet
	$(BIN)/coverage report --fail-under=$$(cat .coverage-floor)

test: lint typecheck docs pytest test-aio coverage

# The sync suite at the lowest versions pyproject.toml allows; prints the versions it runs on. The
# frameworks and docs groups are not installed there, so the framework, client and docs-sample tests are
# left out. Not part of `test`: CI runs both.
test-lowest: $(STAMP_LOWEST)
	$(BIN_LOWEST)/python -m pip freeze --exclude-editable | grep -iE '^(boto3|botocore|tenacity|structlog|tomli)=='
	$(BIN_LOWEST)/python -m pytest -p no:cacheprovider -q tests --ignore=tests/aio --ignore=tests/test_frameworks.py --ignore=tests/test_clients.py --ignore=tests/docs

chat: $(STAMP_AIO)
	$(BIN_AIO)/python examples/chat_server/app.py

bench: $(STAMP) $(STAMP_AIO)
	$(BIN)/python -m pip install --quiet --group bench
	$(BIN)/python benchmarks/run_all.py

bench-chat: $(STAMP_AIO)
	$(BIN_AIO)/python benchmarks/bench_chat_load.py

soak: $(STAMP) $(STAMP_AIO)
	SAFE_BEDROCK_SOAK=10 $(BIN)/python -m pytest -p no:cacheprovider tests/reliability
	SAFE_BEDROCK_SOAK=10 $(BIN_AIO)/python -m pytest -p no:cacheprovider tests/aio/test_soak_async.py

fake-server: $(STAMP)
	$(BIN)/safe-bedrock fake-server --host 127.0.0.1 --port 4010

clean:
	rm -rf site $(VENV) $(VENV_AIO) $(VENV_LOWEST) .pytest_cache .mypy_cache .ruff_cache .coverage .coverage.* htmlcov
