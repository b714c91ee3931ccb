# The two quickstart commands: `make run` and `make test`; `make deploy STAGE=prod` to deploy.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
STAGE ?= dev

# Lambda-compatible wheels for `chalice package`, downloaded once while setting
# up (the one step that reaches PyPI); packaging and its tests then run offline.
WHEELHOUSE := build/wheelhouse
WHEELS := $(WHEELHOUSE)/.complete
# Lambda's python3.x runtimes up to 3.11 have glibc 2.26: any manylinux tag up to that.
LAMBDA_PLATFORMS := manylinux2014_x86_64 $(foreach minor,17 18 19 20 21 22 23 24 25 26,manylinux_2_$(minor)_x86_64)

.PHONY: run run-fresh test lint deploy undeploy redrive package rotate-secret wheelhouse fuzz bench clean

# checkov (the template's policy-as-code scan in make test) in a venv of its
# own: its pins of boto3, botocore and packaging differ from the app's.
CHECKOV := build/checkov/bin/checkov
$(CHECKOV): requirements-checkov.txt
	$(PYTHON) -m venv build/checkov
	build/checkov/bin/pip install --quiet -r requirements-checkov.txt
	touch $(CHECKOV)

$(STAMP): requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $(STAMP)

# For the Python of the venv (Chalice deploys the runtime it runs on): first the
# manylinux wheels Lambda needs (pydantic-core, PyYAML, ...), then this machine's
# own, which `chalice package` resolves first when it is not x86_64 Linux.
$(WHEELS): requirements.txt $(STAMP)
	rm -rf $(WHEELHOUSE) && mkdir -p $(WHEELHOUSE)
	version=$$($(BIN)/python -c 'import sys; print("%d.%d" % sys.version_info[:2])') && \
	$(BIN)/pip download --quiet --dest $(WHEELHOUSE) --only-binary=:all: --implementation cp \
		--python-version $$version $(addprefix --platform ,$(LAMBDA_PLATFORMS)) -r requirements.txt
	$(BIN)/pip download --quiet --dest $(WHEELHOUSE) --prefer-binary -r requirements.txt
	touch $(WHEELS)

wheelhouse: $(WHEELS)

run: $(STAMP)  ## start the API on 127.0.0.1:8000 with an embedded DynamoDB, kept in .data/ (CHAT_DATA_DIR)
	$(BIN)/python -m devtools.run

run-fresh: $(STAMP)  ## the same, from an empty table, keeping nothing (.data/ is left as it is)
	CHAT_EPHEMERAL=1 $(BIN)/python -m devtools.run

test: $(STAMP) $(WHEELS) $(CHECKOV)  ## lint, then the whole test suite (tests/test_deploy.py packages offline)
	$(BIN)/ruff check .
	$(BIN)/pytest -q -n 2 --dist loadfile

fuzz: $(STAMP)  ## the long schemathesis run against the make run server (the bounded one is in make test)
	$(BIN)/python -m fuzz.run_fuzz --max-examples 500

bench: $(STAMP)  ## the benchmarks; writes bench/RESULTS.md
	$(BIN)/python bench/run_all.py

lint: $(STAMP)
	$(BIN)/ruff check .

# To AWS with `chalice deploy` (infra/deploy.py): the stage's stack, chalice
# deploy, then what Chalice cannot set. REPAIR=1 makes .chalice/deployed/$(STAGE).json
# match what exists instead of stopping. Honours AWS_PROFILE, AWS_REGION, AWS_ENDPOINT_URL.
deploy: $(STAMP) $(WHEELS)  ## create or update the stage on AWS (STAGE=dev|prod; ALERT_EMAIL=... subscribes to the alarms)
	$(BIN)/python infra/build_template.py
	ALERT_EMAIL="$(ALERT_EMAIL)" $(BIN)/python infra/deploy.py deploy --stage $(STAGE) $(if $(REPAIR),--repair)

undeploy: $(STAMP)  ## chalice delete, then the stage's stack (prod keeps its table and data)
	$(BIN)/python infra/deploy.py undeploy --stage $(STAGE) $(if $(REPAIR),--repair)

# A new JWT secret; the previous one stays accepted until the next rotation (README, Tokens).
rotate-secret: $(STAMP)  ## the stage's current JWT secret becomes the previous one, a new one the current
	$(BIN)/python infra/rotate_secret.py --stage $(STAGE)

# Replays the stream records the on-failure queue names (kept whole in the
# stage's bucket, so also after the stream's 24 hours), then deletes the
# messages it replayed. Honours AWS_PROFILE, AWS_REGION, AWS_ENDPOINT_URL.
redrive: $(STAMP)  ## replay the stream records the stage gave up (STAGE=dev|prod)
	$(BIN)/python infra/redrive.py --stage $(STAGE)

# The CloudFormation-only path: one template for the AWS CLI (README).
package: $(STAMP) $(WHEELS)  ## build/$(STAGE)/: sam.json + deployment.zip (STAGE=dev|prod)
	$(BIN)/python infra/build_template.py
	$(BIN)/python infra/package.py --stage $(STAGE)

clean:
	rm -rf $(VENV) build .pytest_cache
