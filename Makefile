# failover-engine: `make drill` runs the local failover drill; `make test` runs every test.
# Both set everything up first (venv, packages, the collection link) from a fresh clone.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
CLOUD  ?= aws
CLOUDS := aws gcp azure multi terraform

.PHONY: all drill drill-all drill-screenshot chromium zone-drill aa-drill monitors-drill test unit integration bench lint sanity ansible-lint lint-imports collections clean help

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
	@echo "make monitors-drill - three monitor processes coordinating through DynamoDB (moto): the primary"
	@echo "               down, the leader killed mid-failover; who acted, the epochs, the hand-over, the RTO"
	@echo "make drill-screenshot - run a drill and save a screenshot of its HTML report to docs/img/drill-report.png"
	@echo "make test    - set up and run the whole test suite"
	@echo "make lint    - ansible-test sanity, ansible-lint and the import contracts (what CI checks)"
	@echo "make dist    - build the library's wheel and sdist and the collection's tarball into dist/"
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

# three `failover monitor` processes, one leader (DynamoDB leases on moto); the leader is killed
# mid-failover and another finishes it (report: .drill/monitors/monitors-drill-report.json)
monitors-drill: $(STAMP)
	$(BIN)/failover drill --monitors 3 --dir .drill/monitors

# a drill's HTML report (drill-report.html) as docs/img/drill-report.png, in headless Chromium
drill-screenshot: $(STAMP) collections chromium
	$(BIN)/python tools/drill_screenshot.py --cloud $(CLOUD) --dir .drill/screenshot --out docs/img/drill-report.png

# the browser test (tests/integration/test_report_browser.py) and drill-screenshot drive Debian's
# chromium: installed here when it is missing and this runs as root with apt; else the test is
# skipped, saying why in one line
chromium:
	@command -v chromium >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 \
	  && apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } \
	  || echo "make: chromium is not installed (not root, or apt-get failed): the browser test will be skipped"

test: $(STAMP) collections chromium
	$(BIN)/python -m pytest -q -ra

unit: $(STAMP)
	$(BIN)/python -m pytest -q tests/unit

integration: $(STAMP) collections
	$(BIN)/python -m pytest -q tests/integration

# `make lint`: ansible-test sanity, ansible-lint on the whole repository, the import contracts.
lint: sanity ansible-lint lint-imports

# ansible-test wants the collection's real path to end in ansible_collections/resilience/failover
# (it resolves the collections/ link), so sanity runs in a copy of the files git lists (tracked,
# and new ones not ignored) under .ansible/sanity/; the copy keeps its tests/output/ (results and
# ansible-test's delegation venv) between runs. The --venv environments bootstrap pip with a
# get-pip script that ansible-test downloads from outside the package registries:
# tests/sanity/get_pip.py stands in for it in ansible-test's cache (~/.ansible/test/cache),
# unless a script that is not ours is cached already. SANITY_ARGS=... passes options on
# (e.g. SANITY_ARGS="--test pep8").
SANITY_ROOT   := .ansible/sanity/ansible_collections/resilience/failover
GET_PIP_CACHE := $(HOME)/.ansible/test/cache
SANITY_ARGS   ?=

sanity: $(STAMP)
	@pip=$$($(BIN)/python -c 'import sys, types; from ansible_test._internal.python_requirements import get_venv_packages; print(get_venv_packages(types.SimpleNamespace(version="%d.%d" % sys.version_info[:2]))["pip"])') \
	  && cached="$(GET_PIP_CACHE)/get_pip_$$(echo $$pip | tr . _).py" \
	  && if [ ! -e "$$cached" ] || grep -q 'failover-engine get-pip stand-in' "$$cached"; then \
	       mkdir -p "$(GET_PIP_CACHE)" && cp tests/sanity/get_pip.py "$$cached"; fi
	@mkdir -p $(SANITY_ROOT) && { test -d $(SANITY_ROOT)/.git || git init -q $(SANITY_ROOT); } \
	  && printf '/tests/output/\n' > $(SANITY_ROOT)/.git/info/exclude
	@find $(SANITY_ROOT) -mindepth 1 \( -path $(SANITY_ROOT)/.git -o -path $(SANITY_ROOT)/tests/output \) -prune \
	  -o \( -type f -o -type l \) -exec rm -f {} +
	@git ls-files -z --cached --others --exclude-standard \
	  | xargs -0 sh -c 'for f; do if [ -e "$$f" ]; then printf "%s\0" "$$f"; fi; done' sh \
	  | tar --null -T - -cf - | tar -xf - -C $(SANITY_ROOT)
	cd $(SANITY_ROOT) && $(abspath $(BIN))/ansible-test sanity --venv --python \
	  $$($(abspath $(BIN))/python -c 'import sys; print("%d.%d" % sys.version_info[:2])') $(SANITY_ARGS)

# the whole repository (.ansible-lint says what is not Ansible content); it runs ansible-playbook
# --syntax-check and ansible-galaxy, so the venv's bin comes first on PATH
ansible-lint: $(STAMP)
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/ansible-lint

# the architecture's contracts: [tool.importlinter] in pyproject.toml
lint-imports: $(STAMP)
	$(BIN)/lint-imports

# The library's wheel and sdist (python -m build: from the sdist, in an isolated environment that
# takes setuptools from the package registry) and the collection's tarball (galaxy.yml's
# build_ignore keeps development files out of it), all in $(DIST)/: README "Install".
DIST ?= dist
.PHONY: dist
dist: $(STAMP)
	@mkdir -p $(DIST) && rm -f $(DIST)/failover_engine-* $(DIST)/resilience-failover-*
	$(BIN)/python -m build --outdir $(DIST) . > $(DIST)/build.log 2>&1 || { cat $(DIST)/build.log; exit 1; }
	$(BIN)/ansible-galaxy collection build --force --output-path $(DIST)
	@ls -1 $(DIST)/failover_engine-* $(DIST)/resilience-failover-*

bench: $(STAMP)
	$(BIN)/python bench/route53_batch.py
	$(BIN)/python bench/probe_throughput.py
	$(BIN)/python bench/detection_latency.py
	$(BIN)/python bench/mcp_overhead.py
	$(BIN)/python bench/terraform_runner.py

clean:
	rm -rf $(VENV) .drill .failover-state .pytest_cache collections/ansible_collections .ansible dist build
