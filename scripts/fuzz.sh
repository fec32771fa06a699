#!/usr/bin/env bash
# Runs every libFuzzer target for a short time over its committed corpus.
set -euo pipefail
build=${1:?build dir}; secs=${2:-20}
src=$(cd "$(dirname "$0")/.." && pwd)
shopt -s nullglob
n=0
for f in "$build"/bin/fuzz_*; do
  name=$(basename "$f")
  corpus="$src/tests/fuzz/corpus/${name#fuzz_}"
  work=$(mktemp -d)
  [[ -d "$corpus" ]] && cp -r "$corpus"/. "$work"/
  echo "fuzz: $name for ${secs}s"
  "$f" -max_total_time="$secs" -max_len=65536 -timeout=10 -rss_limit_mb=2048 "$work" 2>"$work.log" || {
    tail -n 50 "$work.log" >&2; rm -rf "$work" "$work.log"; echo "fuzz: $name FAILED" >&2; exit 1; }
  grep -E '^#[0-9]+.*DONE' "$work.log" | tail -n 1 || true
  rm -rf "$work" "$work.log"
  n=$((n + 1))
done
[[ $n -gt 0 ]] || { echo "fuzz: no fuzz targets were built" >&2; exit 1; }
echo "fuzz: $n targets ran clean"
