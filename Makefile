# medrec: the commands the README documents. `make demo` runs the pipeline, `make test` the tests.
SHELL := /bin/bash
DATA ?= ../shared/data/sample
# `make demo` generates its data unless DATA is given on the command line.
DEMO_DATA := $(if $(filter command line environment,$(origin DATA)),$(DATA),)
CARGO ?= cargo

.PHONY: chromium report-screenshot package bench bench-vendor bench-build lambda-init wrk demo ingest local-up local-down test test-readme lint fmt schema events postgres build build-release tools
TOOLS := .venv/tools
CARGO_LAMBDA_VERSION := 1.9.2
CARGO_FUZZ_VERSION := 0.13.2

## One dev-profile build (dependencies at opt-level 1) shared by `make demo`, `make local-up`,
## `make ingest` and the README's `medrec` commands: the first takes 15 to 20 minutes on 2 cores,
## later ones seconds; cargo's progress is shown. `make test` adds the test targets (and rebuilds
## the dependencies whose features a dev-dependency changes). Only `make bench` and
## `make package` build release.
build:
	$(CARGO) build --bin medrec

build-release:
	$(CARGO) build --release --bin medrec

## The serverless loop on this machine: local-up (or the running stack), upload DATA's CSVs
## (default: generated) to the bucket, wait for exactly those objects and their persons' features,
## show a person through the API URL, local-down (KEEP=1 leaves it running).
demo:
	DATA=$(DEMO_DATA) bash local/stack demo

## Everything the loop needs, left running: PostgreSQL, LocalStack, cargo lambda watch, the poller.
local-up:
	bash local/stack up

local-down:
	bash local/stack down

## The same cleaning with no AWS at all: a directory of raw CSVs into a throwaway PostgreSQL (or
## DATABASE_URL), with the load report.
ingest: build
	./target/debug/medrec ingest $(DATA)

## The test suite, against the local PostgreSQL (started if it is down). The quality report is
## checked in a real browser: Debian's chromium, installed here if missing.
test: postgres tools chromium
	$(CARGO) test --workspace

chromium:
	@command -v chromium >/dev/null || { echo "installing Debian's chromium for the report's browser test"; \
	  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } || \
	  sudo sh -c 'apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null'; }

## Every shell block of README.md, in order, in one bash session from the repo root (it brings
## the stack up on the default ports and takes it down); see local/tests/readme.rs.
test-readme: postgres tools
	MEDREC_README_TEST=1 $(CARGO) test --workspace --test readme -- --nocapture

lint:
	$(CARGO) fmt --all --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

fmt:
	$(CARGO) fmt --all

## Write the current migrations version (the digest docs/deploy.md passes to sam deploy) into the
## example migrate events; local/tests/events.rs checks it.
events:
	@v=$$(cat migrations/*.sql migrations/definitions/*.sql | sha256sum | cut -c1-16); \
	  sed -i -E "s/(\"MigrationsVersion\": \")[^\"]*/\1$$v/" local/events/migrate-create.json local/events/migrate-delete.json; \
	  echo "MigrationsVersion $$v in local/events/migrate-{create,delete}.json"

## Regenerate docs/schema.md from a freshly migrated throwaway database.
schema: build
	./target/debug/medrec schema-diagram --out docs/schema.md

## Make sure the machine's PostgreSQL answers on 127.0.0.1:5432 (tests create their databases there).
postgres:
	@bash .ci/ensure-postgres

## Benchmarks (docs/performance.md): PERSONS=50000 by default, PERSONS=1000000 for the full scale;
## figures in target/bench/results.json. Needs psql and wrk (installed with apt-get as root).
bench: build-release wrk
	python3 local/bench/bench.py

## The vendor JSON feed: FILES=10000 per-person files into BASE_PERSONS=100000 persons with 1, 2
## and 4 workers, and the API's latency while it runs; figures in target/bench/vendor.json.
bench-vendor: build-release wrk
	python3 local/bench/bench.py vendor

## A fresh clone's first builds with an empty target/ (what `make demo` builds, then what `make
## test` adds), timed into target/bench/build.json, which `make bench` then reports. With no
## target/ yet (a clean clone) they run in place and are kept; otherwise in a temporary clone.
bench-build:
	python3 local/bench/bench.py build

## Each function of target/lambda (`make package`): its size zipped and its init time.
lambda-init: package
	python3 local/bench/lambda_init.py target/lambda

wrk:
	@command -v wrk >/dev/null || { [ "$$(id -u)" = 0 ] && apt-get update -qq && apt-get install -y -qq wrk >/dev/null; } \
	  || { echo "bench: wrk is missing (apt-get install wrk)" >&2; exit 1; }

## The Lambda artifacts SAM deploys (target/lambda/<function>/bootstrap), with their sizes.
package: tools
	$(TOOLS)/bin/cargo-lambda lambda build --release --compiler cargo -p medrec-lambda
	@# The release profile keeps line tables for profiling; a deployed function needs none.
	strip --strip-debug target/lambda/*/bootstrap
	@for f in target/lambda/*/bootstrap; do printf '%-36s %6.1f MB\n' "$$f" "$$(stat -c %s "$$f" | awk '{print $$1 / 1048576}')"; done

## The quality report's screenshot in docs/ (docs/report.png), from the report `make demo` wrote
## (.local/report/index.html; REPORT= another), rendered by headless chromium.
REPORT ?= .local/report/index.html
report-screenshot: chromium
	chromium --headless --no-sandbox --disable-gpu --hide-scrollbars --user-data-dir=$$(mktemp -d) \
	  --window-size=1200,2400 --screenshot=$(CURDIR)/docs/report.png file://$(abspath $(REPORT))

## Fuzzing (functions/core/fuzz/README.md): each cargo-fuzz target for FUZZ_SECONDS, one after
## the other, from the committed seeds plus corpus/ (kept between runs, not committed); a crash
## fails the target (its input is saved under functions/core/fuzz/artifacts/). cargo-fuzz passes
## nightly flags (-Zsanitizer): RUSTC_BOOTSTRAP=1 lets the stable toolchain take them.
FUZZ_SECONDS ?= 30
FUZZ_TARGETS := csv_tables vendor_json
FUZZ_DIR := functions/core/fuzz
fuzz: $(TOOLS)/bin/cargo-fuzz
	cd $(FUZZ_DIR) && for t in $(FUZZ_TARGETS); do \
	  mkdir -p corpus/$$t && \
	  RUSTC_BOOTSTRAP=1 $(CURDIR)/$(TOOLS)/bin/cargo-fuzz fuzz run $$t corpus/$$t seeds/$$t -- \
	    -max_total_time=$(FUZZ_SECONDS) -timeout=10 -print_final_stats=1 || exit 1; \
	done

## More seeds for `make fuzz`: cuts of `medrec generate` output into the fuzz corpora.
fuzz-seed: build
	bash $(FUZZ_DIR)/seed.sh $(CURDIR)/target/debug/medrec

$(TOOLS)/bin/cargo-fuzz:
	$(CARGO) install cargo-fuzz --version $(CARGO_FUZZ_VERSION) --locked --root $(TOOLS)

## Tools the tests and the local stack run, in a venv under the repo: cargo-lambda (from PyPI).
tools: $(TOOLS)/bin/cargo-lambda
$(TOOLS)/bin/cargo-lambda:
	python3 -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet --disable-pip-version-check cargo-lambda==$(CARGO_LAMBDA_VERSION)
