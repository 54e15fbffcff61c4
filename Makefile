# Every target creates the virtualenv first if it is missing or stale, so a
# fresh clone needs nothing installed by hand.
PYTHON ?= python3.11
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cat requirements.txt requirements-local.txt | cksum | cut -d' ' -f1)
PYTEST_ARGS ?=

.PHONY: venv run demo test unit integration e2e bench lint fmt clean

venv: $(STAMP)

$(STAMP): requirements.txt requirements-local.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-local.txt
	rm -f $(VENV)/.installed-*
	touch $@

run: venv ## start the embedded local stack in the foreground
	$(PY) -m local.stack

demo: venv ## GCP billing export -> FOCUS over the local stack (starts one unless running)
	$(PY) -m local.demo

test: venv ## the whole suite: unit, integration (emulator) and e2e (whole stack)
	$(PY) -m pytest $(PYTEST_ARGS) tests/unit tests/integration tests/e2e

unit: venv
	$(PY) -m pytest $(PYTEST_ARGS) tests/unit

integration: venv
	$(PY) -m pytest $(PYTEST_ARGS) tests/integration

e2e: venv
	$(PY) -m pytest $(PYTEST_ARGS) tests/e2e

bench: venv ## benchmarks print their figures; never part of `make test`
	$(PY) -m pytest -s tests/bench

lint: venv
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy shared

fmt: venv
	$(PY) -m ruff format .
	$(PY) -m ruff check --fix .

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
