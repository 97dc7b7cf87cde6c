# memprov developer targets; `make help` lists them. CI runs `make ci` (see .ci/run).
PYTHON ?= python3
ENV ?= local

.PHONY: help install demo test test-fast lint typecheck format ci golden bench bench-alerts render-check
help: ## list targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | expand -t 16

install: ## install memprov and the development tools (editable)
	$(PYTHON) -m pip install -q -e '.[dev]'

demo: install ## validate the example spec and plan it against local files
	memprov validate && memprov plan --env $(ENV)

test: ## the whole test suite (installs promtool/amtool/prometheus if missing)
	./scripts/ensure-tools
	$(PYTHON) -m pytest -q

test-fast: ## unit tests only (no real Prometheus/Alertmanager)
	$(PYTHON) -m pytest -q -m "not integration"

lint: ## ruff lint + format check
	ruff check .
	ruff format --check .

typecheck: ## mypy (strict)
	mypy

format: ## apply ruff formatting and fixes
	ruff format .
	ruff check --fix .

render-check: ## fail if the committed dashboards are stale
	memprov render --check

golden: ## regenerate golden files (review the diff before committing!)
	MEMPROV_UPDATE_GOLDEN=1 $(PYTHON) -m pytest -q tests -k golden
	memprov render

bench: ## validate, render and plan after apply of 10,000 jobs x 4 environments (CPU time, peak RSS; ~15 min)
	$(PYTHON) bench/run.py

bench-alerts: ## alert quality: memprov's rules vs a static 85% rule on synthetic incidents (~75 s)
	./scripts/ensure-tools
	$(PYTHON) bench/alert_quality/run.py

ci: lint typecheck render-check test ## everything CI runs
