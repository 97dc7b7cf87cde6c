# memprov developer targets; `make help` lists them. CI runs `make ci` (see .ci/run).
# Everything runs from the project's virtualenv (.venv, made by scripts/venv); PYTHON=... uses another
# interpreter, which is then only checked, never installed into.
VENV ?= .venv
PYTHON ?= $(VENV)/bin/python
ENV ?= local
export PYTHON

.PHONY: help venv install demo test test-fast lint typecheck format ci golden bench bench-alerts render-check
help: ## list targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | expand -t 16

venv: ## .venv with memprov alone (no cloud SDK): enough for validate, plan, apply
	./scripts/venv

install: ## .venv with memprov, every extra and the development tools (editable)
	./scripts/venv dev

demo: venv ## validate the example spec and plan it against local files
	$(PYTHON) -m provisioner validate && $(PYTHON) -m provisioner plan --env $(ENV)

test: ## the whole test suite (installs the dev tools into .venv, promtool/amtool/prometheus if missing)
	./scripts/ensure-tools
	$(PYTHON) -m pytest -q

test-fast: ## unit tests only (no real Prometheus/Alertmanager)
	$(PYTHON) -m pytest -q -m "not integration"

lint: ## ruff lint + format check
	$(PYTHON) -m ruff check .
	$(PYTHON) -m ruff format --check .

typecheck: ## mypy (strict)
	$(PYTHON) -m mypy

format: ## apply ruff formatting and fixes
	$(PYTHON) -m ruff format .
	$(PYTHON) -m ruff check --fix .

render-check: ## fail if the committed dashboards are stale
	$(PYTHON) -m provisioner render --check

golden: ## regenerate golden files (review the diff before committing!)
	MEMPROV_UPDATE_GOLDEN=1 $(PYTHON) -m pytest -q tests -k golden
	$(PYTHON) -m provisioner render

bench: ## validate, render and plan after apply of 10,000 jobs x 4 environments (CPU time, peak RSS; ~15 min)
	$(PYTHON) bench/run.py

bench-alerts: ## alert quality on one held-out seed: memprov's rules vs a static 85% rule (~2 min)
	./scripts/ensure-tools
	$(PYTHON) bench/alert_quality/run.py

ci: lint typecheck render-check test ## everything CI runs
