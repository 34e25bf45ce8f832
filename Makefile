# medrec: the commands the README documents. `make demo` runs the pipeline, `make test` the tests.
SHELL := /bin/bash
DATA ?= ../shared/data/sample
CARGO ?= cargo

.PHONY: demo test lint fmt schema postgres build tools
TOOLS := .venv/tools
CARGO_LAMBDA_VERSION := 1.9.2

build:
	$(CARGO) build --release --bin medrec

## Clean and load a directory of raw CSVs into a throwaway PostgreSQL (or DATABASE_URL), print the report.
demo: build
	./target/release/medrec ingest $(DATA)

## The test suite, against the local PostgreSQL (started if it is down).
test: postgres tools
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

## Tools the tests and the local stack run, in a venv under the repo: cargo-lambda (from PyPI).
tools: $(TOOLS)/bin/cargo-lambda
$(TOOLS)/bin/cargo-lambda:
	python3 -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet --disable-pip-version-check cargo-lambda==$(CARGO_LAMBDA_VERSION)
