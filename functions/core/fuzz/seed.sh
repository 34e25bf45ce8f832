#!/usr/bin/env bash
# Seeds the fuzz corpora (corpus/, not committed) from `medrec generate` output: CSV files cut
# to their first lines (header included) for csv_tables, the smallest vendor files for
# vendor_json. Usage: seed.sh [MEDREC_BINARY] (default: the workspace's target/debug/medrec,
# built by `make build`).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../../.." && pwd)"
medrec="${1:-$root/target/debug/medrec}"
[ -x "$medrec" ] || (cd "$root" && cargo build --bin medrec)
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
"$medrec" generate --persons 20 --seed 7 --bad-row-rate 0.2 --out "$tmp/csv" >/dev/null
"$medrec" generate --persons 20 --seed 7 --bad-row-rate 0.2 --format json --version 3 \
    --out "$tmp/json" >/dev/null
mkdir -p "$here/corpus/csv_tables" "$here/corpus/vendor_json"
for f in "$tmp"/csv/*.csv; do
    name="$(basename "$f" .csv)"
    head -n 12 "$f" >"$here/corpus/csv_tables/gen_$name.csv"
    head -n 2 "$f" >"$here/corpus/csv_tables/gen_${name}_one_row.csv"
done
# The eight smallest person files (a few KB each).
ls -S "$tmp"/json/*.json | tail -n 8 | while read -r f; do
    cp "$f" "$here/corpus/vendor_json/gen_$(basename "$f")"
done
echo "seeded $(ls "$here/corpus/csv_tables" | wc -l) csv_tables and" \
    "$(ls "$here/corpus/vendor_json" | wc -l) vendor_json inputs under $here/corpus"
