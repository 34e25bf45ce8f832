# medrec: the commands the README documents. `make demo` runs the pipeline, `make test` the tests.
SHELL := /bin/bash
DATA ?= ../shared/data/sample
CARGO ?= cargo

.PHONY: demo test lint fmt schema postgres build

build:
	$(CARGO) build --release --bin medrec

## Clean and load a directory of raw CSVs into a throwaway PostgreSQL (or DATABASE_URL), print the report.
demo: build
	./target/release/medrec ingest $(DATA)

## The test suite, against the local PostgreSQL (started if it is down).
test: postgres
	$(CARGO) test --workspace

lint:
	$(CARGO) fmt --all --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

fmt:
	$(CARGO) fmt --all

## Regenerate docs/schema.md from a freshly migrated throwaway database.
schema:
	$(CARGO) run --quiet --bin medrec -- schema-diagram --out docs/schema.md

## Make sure the machine's PostgreSQL answers on 127.0.0.1:5432 (tests create their databases there).
postgres:
	@bash .ci/ensure-postgres
