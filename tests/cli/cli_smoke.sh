#!/usr/bin/env bash
# The smx CLI as a user runs it: every preset's info, a small bench with
# ratios, JSON output, and clear failures on bad input.
set -euo pipefail
smx="$1"
resources="$2"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

"$smx" --version | grep -q "LibTorch" || fail "--version"
for p in $("$smx" presets | awk '{print $1}'); do
  "$smx" info --preset "$p" | grep -q "parameters:" || fail "info $p"
done
"$smx" info --preset sparse-mixer --json | grep -q '"total_params"' || fail "info --json"

"$smx" bench --presets demo,demo --repeats 1 --warmup 0 --quiet --phases > "$tmp/bench.txt" || fail "bench"
grep -q "speed" "$tmp/bench.txt" || fail "bench table"
[ "$(grep -c '^demo .*|' "$tmp/bench.txt")" = 2 ] || fail "bench rows"
grep -q "training step phases" "$tmp/bench.txt" || fail "bench phases"
"$smx" bench --presets demo --repeats 1 --warmup 0 --quiet --json | grep -q '"train_ms_per_example"' || fail "bench --json"

# A custom config written from a preset, edited, and read back.
"$smx" presets demo | sed 's/"d_model": 128/"d_model": 64/' > "$tmp/custom.json"
"$smx" info --config "$tmp/custom.json" | grep -q "d_model 64" || fail "custom config"

# The example config shipped in resources/.
"$smx" info --config "$resources/configs/tokens-choose-fourier.json" | grep -q "tokens-choose top-2" || fail "example config"
"$smx" info --config "$resources/configs/tokens-choose-fourier.json" | grep -q "fourier" || fail "example mixing"

# Bad input: non-zero exit and a message naming the problem.
expect_error() {
  local pattern="$1"; shift
  if "$@" > "$tmp/out" 2> "$tmp/err"; then fail "accepted: $*"; fi
  grep -q -- "$pattern" "$tmp/err" || fail "message for '$*' lacks '$pattern': $(cat "$tmp/err")"
}
expect_error "unknown preset 'nope'" "$smx" info --preset nope
echo '{"num_experts": 0, "moe_layers": 2}' > "$tmp/bad.json"
expect_error "num_experts" "$smx" info --config "$tmp/bad.json"
expect_error "CUDA is not available" "$smx" bench --presets demo --device cuda
# sparse-mixer-large needs ~55 GB to train: refused up front where memory is smaller.
if [ "$(awk '/MemTotal/ {print $2}' /proc/meminfo)" -lt 60000000 ]; then
  expect_error "try --no-train" "$smx" bench --presets sparse-mixer-large
fi
expect_error "does not exist" "$smx" info --config /nonexistent.json
echo "cli_smoke: all checks passed"
