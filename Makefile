# Courtside: `make run` starts everything with demo content; `make test` runs the whole suite.
.PHONY: help install run test lint bench services clean

PY := .venv/bin/python
B ?=

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' Makefile | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

install: ## install what is missing (OS packages when root, venv, Python and npm deps)
	@WANT_BROWSER=$(WANT_BROWSER) scripts/bootstrap.sh

run: install ## start the API, a worker with beat, Redis if needed, and demo content
	@scripts/run.sh

test: ## the whole test suite against real PostgreSQL, Redis, ffmpeg, S3 and Chromium
	@WANT_BROWSER=1 scripts/bootstrap.sh
	@scripts/services.sh >/dev/null
	$(PY) -m pytest $(T)

lint: install ## ruff, mypy strict, import-linter
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .
	.venv/bin/mypy .
	.venv/bin/lint-imports

bench: install ## all benchmarks, or one with B=NAME
	@scripts/services.sh >/dev/null
	$(PY) -m bench $(B)

clean: ## remove the local database, media and logs
	rm -rf var
