# failover-engine: `make drill` runs the local failover drill; `make test` runs every test.
# Both set everything up first (venv, packages, the collection link) from a fresh clone.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
CLOUD  ?= aws
CLOUDS := aws gcp azure multi terraform

.PHONY: all drill drill-all zone-drill aa-drill zone-drill test unit integration bench lint collections clean help

help:
	@echo "make drill   - run a complete failover drill locally (moto + local regions), print RTO"
	@echo "make drill CLOUD=gcp   - the drill on Cloud DNS; CLOUD=azure: Traffic Manager; CLOUD=multi:"
	@echo "               one service steered by Route 53 + Cloud DNS + Traffic Manager (local emulators);"
	@echo "               CLOUD=terraform: the service built from Terraform outputs, its pilot-light standby"
	@echo "               promoted by terraform apply before traffic moves (real Terraform, no account)"
	@echo "make drill-all - the drill on each of $(CLOUDS), one after the other"
	@echo "make zone-drill - take one availability zone of an active-active service out and back"
	@echo "               (ARC zonal shift emulator + three local zones), print both RTOs"
	@echo "make aa-drill - active-active over three regions (Route 53 weights): a member out and back"
	@echo "make test    - set up and run the whole test suite"
	@echo "make bench   - run the benchmarks (figures go to docs/benchmarks.md by hand)"
	@echo "make clean   - remove the venv and run artefacts"

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

collections/ansible_collections/resilience/failover:
	@mkdir -p collections/ansible_collections/resilience
	@ln -sfn ../../.. collections/ansible_collections/resilience/failover

collections: collections/ansible_collections/resilience/failover

drill: $(STAMP) collections
	$(BIN)/failover drill --cloud $(CLOUD) --dir .drill

# every cloud in turn, each in its own run directory (.drill/<cloud>) so every report stays;
# a failed drill does not stop the others, but fails the target
drill-all: $(STAMP) collections
	@failed=""; for cloud in $(CLOUDS); do \
	  echo "=== drill on $$cloud"; \
	  $(BIN)/failover drill --cloud $$cloud --dir .drill/$$cloud || failed="$$failed $$cloud"; \
	done; \
	if [ -n "$$failed" ]; then echo "=== drill FAILED on:$$failed"; exit 1; fi; \
	echo "=== drill succeeded on: $(CLOUDS) (reports in .drill/<cloud>/drill-report.json)"

zone-drill: $(STAMP) collections
	$(BIN)/failover drill --cloud zone --dir .drill/zone

# active-active over three regions on Route 53 weights: a member out (its share spread in
# proportion) and back, with RTO
aa-drill: $(STAMP) collections
	$(BIN)/failover drill --cloud weighted --dir .drill/weighted

test: $(STAMP) collections
	$(BIN)/python -m pytest -q -ra

unit: $(STAMP)
	$(BIN)/python -m pytest -q tests/unit

integration: $(STAMP) collections
	$(BIN)/python -m pytest -q tests/integration

bench: $(STAMP)
	$(BIN)/python bench/route53_batch.py
	$(BIN)/python bench/probe_throughput.py
	$(BIN)/python bench/detection_latency.py
	$(BIN)/python bench/mcp_overhead.py
	$(BIN)/python bench/terraform_runner.py

clean:
	rm -rf $(VENV) .drill .failover-state .pytest_cache collections/ansible_collections .ansible
