#!/usr/bin/env bash
# The smx CLI as a user runs it: every preset's info, a small bench with
# ratios, JSON output, a tiny pre-training and fine-tuning run with the run
# store, and clear failures on bad input.
set -euo pipefail
smx="$1"
resources="$2"
fixtures="$3"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
# `smx ... | contains PATTERN`: reads all of its input before it searches. With
# `| grep -q` under pipefail, grep exits at the first match and smx, if it is
# still writing, dies of SIGPIPE: a random failure.
contains() { local all; all=$(cat); grep -q -- "$1" <<<"$all"; }

"$smx" --version | contains "LibTorch" || fail "--version"
for p in $("$smx" presets | awk '{print $1}'); do
  "$smx" info --preset "$p" | contains "parameters:" || fail "info $p"
done
"$smx" info --preset sparse-mixer --json | contains '"total_params"' || fail "info --json"

"$smx" bench --presets demo,demo --repeats 1 --warmup 0 --quiet --phases > "$tmp/bench.txt" || fail "bench"
grep -q "speed" "$tmp/bench.txt" || fail "bench table"
[ "$(grep -c '^demo .*|' "$tmp/bench.txt")" = 2 ] || fail "bench rows"
grep -q "training step phases" "$tmp/bench.txt" || fail "bench phases"
"$smx" bench --presets demo --repeats 1 --warmup 0 --quiet --json | contains '"train_ms_per_example"' || fail "bench --json"
# What the GPU benchmark asks for: MoE layer split, matmul peak and MFU, the optimizer used.
"$smx" bench --presets demo,bert-l2-h256 --seq 32 --repeats 1 --warmup 0 --quiet --moe-breakdown --matmul-peak \
  --optimizer foreach > "$tmp/bench2.txt" || fail "bench --moe-breakdown --matmul-peak"
grep -q "matrix-product peak" "$tmp/bench2.txt" || fail "bench matmul peak"
grep -Eq "^demo +[0-9.]+% +[0-9.]+%" "$tmp/bench2.txt" || fail "bench MFU row"
grep -Eq "^demo +[0-9]+ +1x64, 8x8 .*%\)" "$tmp/bench2.txt" || fail "bench MoE breakdown row"
grep -Eq "^bert-l2-h256 +none" "$tmp/bench2.txt" || fail "bench MoE breakdown of a dense model"
grep -q "optimizer: AdamW, foreach" "$tmp/bench2.txt" || fail "bench optimizer"
"$smx" bench --presets demo --seq 32 --repeats 1 --warmup 0 --quiet --json --moe-breakdown --matmul-peak >"$tmp/bench.json"
# auto on the CPU is the engine's one-pass AdamW
for key in matmul_peak_tflops train_mfu moe_breakdown router_share '"optimizer": "fused"'; do
  grep -q "$key" "$tmp/bench.json" || fail "bench --json lacks $key"
done
# --profile on the CPU: Chrome traces of training and inference steps, and the operators by self time.
"$smx" bench --presets demo --seq 32 --repeats 1 --warmup 0 --quiet --profile "$tmp/trace" >"$tmp/profile.txt" \
  || fail "bench --profile"
for f in "$tmp/trace-demo.json" "$tmp/trace-demo-inference.json"; do
  python3 -c 'import json, sys; e = json.load(open(sys.argv[1])); assert any(x["name"] == "aten::mm" and x["ph"] == "X" for x in e)' "$f" \
    || fail "bench --profile: $f is not a Chrome trace with aten::mm in it"
done
grep -q "demo's training step, profiled: .* ms per step; operators by self time" "$tmp/profile.txt" || fail "profile table"
grep -Eq "^  aten::(mm|addmm|bmm) +[0-9.]+ +[0-9.]+%" "$tmp/profile.txt" || fail "profile table rows: $(cat "$tmp/profile.txt")"
grep -q "demo's inference, profiled" "$tmp/profile.txt" || fail "profile table of inference"
"$smx" bench --presets demo --seq 32 --repeats 1 --warmup 0 --quiet --no-inference --json --profile "$tmp/trace2" \
  | python3 -c 'import json, sys; r = json.load(sys.stdin)["results"][0]; ops = r["train_operators"]
assert ops and all({"name", "self_ms", "total_ms", "calls"} <= set(o) and o["calls"] > 0 for o in ops)
assert "aten::mm" in {o["name"] for o in ops} and not r["infer_operators"]' \
  || fail "bench --profile --json: the operators"

# A custom config written from a preset, edited, and read back.
"$smx" presets demo | sed 's/"d_model": 128/"d_model": 64/' > "$tmp/custom.json"
"$smx" info --config "$tmp/custom.json" | contains "d_model 64" || fail "custom config"

# The example config shipped in resources/.
"$smx" info --config "$resources/configs/tokens-choose-fourier.json" | contains "tokens-choose top-2" || fail "example config"
"$smx" info --config "$resources/configs/tokens-choose-fourier.json" | contains "fourier" || fail "example mixing"

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
expect_error "not in {auto,fused,foreach,reference}" "$smx" bench --presets demo --optimizer adam
# a trace folder that cannot be written is refused before anything is timed
expect_error "cannot write traces into $tmp/missing: not a writable folder" \
  "$smx" bench --presets demo --profile "$tmp/missing/trace"
"$smx" bench --presets demo --seq 32 --repeats 1 --warmup 0 --quiet --no-inference --optimizer fused \
  | contains "optimizer: AdamW, fused" || fail "bench --optimizer fused on the CPU"
# sparse-mixer-large needs ~55 GB to train: refused up front where memory is smaller.
if [ "$(awk '/MemTotal/ {print $2}' /proc/meminfo)" -lt 60000000 ]; then
  expect_error "try --no-train" "$smx" bench --presets sparse-mixer-large
fi
expect_error "does not exist" "$smx" info --config /nonexistent.json

# Wrong input refused at once with the exit status given (105: CLI11's "value not allowed";
# 2: input the engine refuses), and a message naming the option or field, the value and the range.
expect_status() {
  local want="$1" pattern="$2"; shift 2
  local rc=0
  timeout 120 "$@" > "$tmp/out" 2> "$tmp/err" || rc=$?
  [ "$rc" = "$want" ] || fail "exit status $rc, expected $want, for '$*': $(cat "$tmp/err")"
  grep -q -- "$pattern" "$tmp/err" || fail "message for '$*' lacks '$pattern': $(cat "$tmp/err")"
}
cpus=$(nproc)
expect_status 105 "--threads: -5 is out of range: must be in \[1, $cpus\] (the CPUs of this machine)" \
  "$smx" bench --presets demo --threads -5
expect_status 105 "--threads: 100000 is out of range" "$smx" bench --presets demo --threads 100000
expect_status 105 "--batch: 0 is out of range: must be in \[1, 65536\]" "$smx" bench --presets demo --batch 0
expect_status 105 "--repeats: 0 is out of range" "$smx" bench --presets demo --repeats 0
expect_status 2 "--seq 100 is larger than demo's max_seq_len (64)" "$smx" bench --presets demo --seq 100 --quiet
expect_status 105 "--seq: 0 is out of range" "$smx" info --preset demo --seq 0
expect_status 105 "--batch: NaN is not allowed: must be in \[1, 65536\]" "$smx" info --preset demo --batch nan
# A JSON number no double holds: the file, the line and column, and what was expected; no library text.
printf '{\n  "preset": "demo",\n  "dropout": 1e999\n}\n' > "$tmp/overflow.json"
expect_status 2 "$tmp/overflow.json: line 3, column 14: the number 1e999 is out of range" \
  "$smx" info --config "$tmp/overflow.json"
grep -q "json.exception" "$tmp/err" && fail "library text in: $(cat "$tmp/err")"
# Sizes that cannot exist, and a batch that cannot fit (the estimate is in the message).
echo '{"preset": "bert-base", "d_model": 10000000}' > "$tmp/wide.json"
expect_status 2 "config field 'd_model' = 10000000: must be in \[1, 65536\]" "$smx" info --config "$tmp/wide.json"
expect_status 1 "bert-base needs about .* TB .*activations .* to train with batch 65536 x 512 tokens" \
  "$smx" bench --presets bert-base --batch 65536 --quiet
echo "cli_smoke: all checks passed"

# Training: tokenizer, pre-training, the run store, evaluation, fine-tuning
# (absent from a build with SMX_BUILD_TRAINING=OFF).
if ! "$smx" pretrain --help > /dev/null 2>&1; then echo "cli smoke: ok (no training commands in this build)"; exit 0; fi
data="$tmp/data"
echo '{"preset": "demo", "d_model": 32, "d_ff": 64, "num_layers": 2, "attention_layers": 1, "moe_layers": 1, "num_experts": 4, "num_heads": 2, "max_seq_len": 32}' > "$tmp/tiny.json"
"$smx" tokenizer train --corpus "$fixtures/corpus/tiny.txt" --vocab 90 -o "$tmp/tok.model" > "$tmp/tok.txt" || fail "tokenizer train"
grep -q "pieces from 71 sentences in 14 documents" "$tmp/tok.txt" || fail "tokenizer summary: $(cat "$tmp/tok.txt")"
"$smx" pretrain --config "$tmp/tiny.json" --corpus "$fixtures/corpus/tiny.txt" --tokenizer "$tmp/tok.model" \
  --steps 6 --batch 4 --eval-every 3 --snapshot-every 3 --device cpu --data-dir "$data" --name smoke > "$tmp/pre.txt" 2> "$tmp/pre.err" \
  || fail "pretrain: $(cat "$tmp/pre.err")"
grep -q "run 1 finished after 6 steps" "$tmp/pre.txt" || fail "pretrain summary: $(cat "$tmp/pre.txt")"
grep -q "eval @ step 3" "$tmp/pre.err" || fail "pretrain progress lines"
"$smx" runs list --data-dir "$data" | contains "smoke .*pretrain .*finished" || fail "runs list"
"$smx" runs show 1 --data-dir "$data" | contains "snapshots: 3" || fail "runs show"
"$smx" runs export 1 --data-dir "$data" -o "$tmp/run.csv" 2> /dev/null || fail "runs export"
head -1 "$tmp/run.csv" | contains "^step,wall_seconds,.*loss/total" || fail "csv header"
[ "$(wc -l < "$tmp/run.csv")" = 7 ] || fail "csv rows: $(wc -l < "$tmp/run.csv")"
"$smx" eval --run 1 --data-dir "$data" --device cpu --json | contains '"eval/accuracy_mlm"' || fail "eval"
"$smx" finetune --from 1 --task sst2 --task-dir "$fixtures/glue/SST-2" --steps 4 --batch 4 --device cpu \
  --data-dir "$data" --json > "$tmp/ft.json" 2> "$tmp/ft.err" || fail "finetune: $(cat "$tmp/ft.err")"
grep -q '"majority_baseline"' "$tmp/ft.json" || fail "finetune json"
"$smx" runs list --data-dir "$data" --json | contains '"parent_id": 1' || fail "finetune parent"
"$smx" pretrain --resume 1 --steps 8 --data-dir "$data" --quiet | contains "run 1 finished after 8 steps" || fail "resume"

# Training options out of range: refused before anything starts (no hang, no run created).
runs_before=$("$smx" runs list --data-dir "$data" --json | grep -c '"id"')
expect_status 105 "--threads: 100000 is out of range: must be in \[1, $cpus\]" \
  "$smx" pretrain --config "$tmp/tiny.json" --threads 100000 --data-dir "$data"
expect_status 105 "--clip: NaN is not allowed: must be in \[0, 1e+06\]" "$smx" pretrain --clip nan --data-dir "$data"
expect_status 105 "--lr: inf is out of range: must be in (0, 1\]" "$smx" pretrain --lr inf --data-dir "$data"
expect_status 105 "--lr: 0 is out of range" "$smx" pretrain --lr 0 --data-dir "$data"
expect_status 105 "--resume: -1 is out of range: must be in \[1, " "$smx" pretrain --resume -1 --data-dir "$data"
expect_status 105 "--seed: -1 is out of range" "$smx" pretrain --seed -1 --data-dir "$data"
expect_status 105 "--expert-dropout: 1 is out of range: must be in \[0, 1)" \
  "$smx" finetune --from 1 --expert-dropout 1 --data-dir "$data"
expect_status 105 "--vocab: 5 is out of range" "$smx" tokenizer train --vocab 5 -o "$tmp/x.model"
expect_status 105 "--run: 0 is out of range" "$smx" eval --run 0 --data-dir "$data"
expect_status 105 "id: -4 is out of range" "$smx" runs show -4 --data-dir "$data"
expect_status 2 "training field 'seq_len' = 64: larger than the model's max_seq_len (32)" \
  "$smx" pretrain --config "$tmp/tiny.json" --seq 64 --corpus "$fixtures/corpus/tiny.txt" --data-dir "$data"
echo '{"threads": 100000}' > "$tmp/threads.json"
expect_status 2 "$tmp/threads.json: training field 'threads': must be in \[0, 4096\]" \
  "$smx" pretrain --config "$tmp/tiny.json" --training-config "$tmp/threads.json" --data-dir "$data"
expect_status 2 "'bert-base' needs about .* activations .* batch_size 65536 x 512 tokens" \
  "$smx" pretrain --preset bert-base --batch 65536 --data-dir "$data"
# Resuming a run as the other kind; a model given beside a checkpoint.
expect_status 2 "run 1 (smoke) is a pre-training run, not a fine-tuning run: resume it with \`smx pretrain --resume 1\`" \
  "$smx" finetune --resume 1 --data-dir "$data"
expect_status 2 "run 2 .* is a fine-tuning run, not a pre-training run: resume it with \`smx finetune --resume 2\`" \
  "$smx" pretrain --resume 2 --data-dir "$data"
expect_status 2 "--lr cannot be used with --resume: a resumed run keeps the config it was started with" \
  "$smx" pretrain --resume 1 --steps 9 --lr 0.5 --data-dir "$data"
expect_status 2 "--preset cannot be used with --resume" "$smx" pretrain --resume 1 --preset demo --data-dir "$data"
ckpt=$(ls "$data"/runs/1/checkpoints/*.ckpt | tail -1)
expect_status 2 "--preset demo cannot be used with --checkpoint: the model (its shape and weights) comes from the checkpoint" \
  "$smx" finetune --checkpoint "$ckpt" --preset demo --data-dir "$data"
expect_status 2 "--config $tmp/tiny.json cannot be used with --from" \
  "$smx" finetune --from 1 --config "$tmp/tiny.json" --data-dir "$data"
# A tokenizer of another vocabulary size than the checkpoint's model: refused, naming both sizes.
"$smx" tokenizer train --corpus "$fixtures/corpus/tiny.txt" --vocab 40 -o "$tmp/tok40.model" > /dev/null 2>&1 || fail "tokenizer 40"
expect_status 2 "tokenizer $tmp/tok40.model has [0-9]* pieces, but the model of the checkpoint was trained with a vocabulary of [0-9]*" \
  "$smx" finetune --from 1 --tokenizer "$tmp/tok40.model" --task sst2 --task-dir "$fixtures/glue/SST-2" --device cpu --data-dir "$data"
[ "$("$smx" runs list --data-dir "$data" --json | grep -c '"id"')" = "$runs_before" ] || fail "a refused command created a run"
# A vocabulary the corpus is too small for: a clear warning, and the real size.
"$smx" tokenizer train --corpus "$fixtures/corpus/tiny.txt" --vocab 8000 -o "$tmp/tok8000.model" > "$tmp/out" 2> "$tmp/err" \
  || fail "tokenizer --vocab 8000: $(cat "$tmp/err")"
grep -q "warning: the corpus $fixtures/corpus/tiny.txt is too small for a vocabulary of 8000: .* has only [0-9]* pieces" "$tmp/err" \
  || fail "no small-corpus warning: $(cat "$tmp/err")"
real=$(sed -n 's/.*has only \([0-9]*\) pieces.*/\1/p' "$tmp/err")
grep -q "tok8000.model: $real pieces from 71 sentences" "$tmp/out" || fail "real size not printed: $(cat "$tmp/out")"
# A corpus folder with a symbolic link loop: the loop is skipped with a warning, the rest is read.
mkdir -p "$tmp/looped" && cp "$fixtures/corpus/tiny.txt" "$tmp/looped/a.txt"
ln -s loop-b "$tmp/looped/loop-a" && ln -s loop-a "$tmp/looped/loop-b"
"$smx" tokenizer train --corpus "$tmp/looped" --vocab 90 -o "$tmp/looped.model" > "$tmp/out" 2> "$tmp/err" \
  || fail "corpus with a link loop refused: $(cat "$tmp/err")"
grep -q "warning: skipped $tmp/looped/loop-a: a symbolic link loop" "$tmp/err" || fail "no link-loop warning: $(cat "$tmp/err")"
grep -q "pieces from 71 sentences" "$tmp/out" || fail "link-loop corpus: $(cat "$tmp/out")"

expect_error "does not exist" "$smx" pretrain --preset demo --corpus "$tmp/absent.txt" --data-dir "$data"
expect_error "train.tsv" "$smx" finetune --preset demo --task sst2 --task-dir "$tmp" --data-dir "$data"
expect_error "unknown task" "$smx" finetune --preset demo --task nope --data-dir "$data"
expect_error "there is no run 99" "$smx" finetune --from 99 --data-dir "$data"
expect_error "there is no run 42" "$smx" runs show 42 --data-dir "$data"
expect_error "add --yes" "$smx" runs delete 1 --data-dir "$data"

# Decoder LMs (sMLP family): a tiny LM run through `smx pretrain`, held-out perplexity, generation,
# bench tokens/s, and clear errors.
echo '{"preset": "smlp-demo", "d_model": 32, "d_ff": 64, "num_layers": 3, "moe_layers": 1, "num_experts": 2, "max_seq_len": 32, "router": {"eval_capacity_factor": 2.0}}' > "$tmp/tiny-lm.json"
"$smx" pretrain --config "$tmp/tiny-lm.json" --corpus "$fixtures/corpus/tiny.txt" --tokenizer "$tmp/tok.model" \
  --steps 6 --batch 4 --eval-every 3 --device cpu --data-dir "$data" --name lm-smoke > "$tmp/lm.txt" 2> "$tmp/lm.err" \
  || fail "LM pretrain: $(cat "$tmp/lm.err")"
lm_run=$(awk '/^run [0-9]+ finished after 6 steps/ {print $2}' "$tmp/lm.txt")
[ -n "$lm_run" ] || fail "LM pretrain summary: $(cat "$tmp/lm.txt")"
grep -q "final (step 6): perplexity" "$tmp/lm.txt" || fail "LM final perplexity: $(cat "$tmp/lm.txt")"
"$smx" runs list --data-dir "$data" | contains "lm-smoke .*lm .*finished" || fail "LM run in runs list"
"$smx" eval --run "$lm_run" --data-dir "$data" --device cpu --json | contains '"eval/perplexity"' || fail "LM eval"
"$smx" generate --run "$lm_run" --data-dir "$data" "a small" --tokens 5 | contains "^a small" || fail "generate greedy"
"$smx" generate --run "$lm_run" --data-dir "$data" "a small" --tokens 5 --temperature 0.8 --top-k 10 --seed 1 \
  | contains "^a small" || fail "generate sampled"
expect_error "is an encoder" "$smx" generate --run 1 --data-dir "$data" "a small"
expect_error "out of range" "$smx" generate --run "$lm_run" --data-dir "$data" "a small" --tokens 0
expect_error "out of range" "$smx" generate --run "$lm_run" --data-dir "$data" "a small" --top-k -1
expect_error "give --run ID or --checkpoint FILE" "$smx" generate "a small" --data-dir "$data"
expect_error "decoder LM" "$smx" finetune --preset smlp-demo --task wordnet-lexname --data-dir "$data"
echo '{"smoe_routing": "partial"}' > "$tmp/bad-smoe.json"
expect_error "sMoE token mixing needs family 'decoder-lm'" "$smx" info --config "$tmp/bad-smoe.json"
"$smx" bench --presets smlp-demo,transformer-lm-demo --seq 32 --batch 2 --repeats 1 --warmup 0 --quiet > "$tmp/lmbench.txt" \
  || fail "bench of LM presets"
[ "$(grep -Ec '^(smlp-demo|transformer-lm-demo) .*\|' "$tmp/lmbench.txt")" = 2 ] || fail "LM bench rows: $(cat "$tmp/lmbench.txt")"
"$smx" presets > "$tmp/presets.txt"  # a file: grep -q closing a pipe early would fail pipefail
grep -q "^smlp-partial-demo .*decoder LM" "$tmp/presets.txt" || fail "LM presets listed"
grep -q "^gshard-lm-demo .*MoE FFN gshard top-2" "$tmp/presets.txt" || fail "router LM presets listed"
"$smx" info --preset smlp-0.8t | contains "smoe-deterministic" || fail "info of a paper-size sMLP"

mkdir -p "$tmp/baddir" && printf 'not a database, but long enough to be read as one by a careless program' > "$tmp/baddir/runs.sqlite"
expect_error "runs.sqlite" "$smx" runs list --data-dir "$tmp/baddir"

# Data safety: run N's files live in DATA/runs/N, whatever folder the store was
# made in. Copies of the data folder (cp -a), one as this version writes it and
# one as a store of schema 1 (absolute folders, migrated on open) would be:
# deleting and resuming in them leaves the original byte for byte as it was.
expect_status() {  # expect_status CODE PATTERN command...: that exit status and a message with PATTERN
  local code="$1" pattern="$2" rc=0; shift 2
  "$@" > "$tmp/out" 2> "$tmp/err" || rc=$?
  [ "$rc" = "$code" ] || fail "exit status $rc, not $code: $* : $(cat "$tmp/err")"
  grep -q -- "$pattern" "$tmp/err" || fail "message for '$*' lacks '$pattern': $(cat "$tmp/err")"
}
fingerprint() {  # every entry (type, path, link target) and every file's SHA-256
  (cd "$1" && find . -printf '%y %p %l\n' | LC_ALL=C sort && find . -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum)
}
store_sql() { python3 -c 'import sqlite3, sys; c = sqlite3.connect(sys.argv[1]); c.executescript(sys.argv[2]); c.close()' "$1/runs.sqlite" "$2"; }
original=$(fingerprint "$data")
cp -a "$data" "$tmp/copy"
cp -a "$data" "$tmp/v1copy"
store_sql "$tmp/v1copy" "PRAGMA user_version = 1; UPDATE runs SET directory = '$data/runs/' || id;
  UPDATE snapshots SET path = '$data/runs/' || run_id || '/' || path;"
for copy in "$tmp/copy" "$tmp/v1copy"; do
  "$smx" runs delete 2 --yes --data-dir "$copy" | contains "deleted run 2 and $copy/runs/2" || fail "runs delete in $copy"
  [ ! -e "$copy/runs/2" ] && [ -d "$data/runs/2" ] || fail "runs delete 2 in $copy removed the wrong folder"
  "$smx" pretrain --resume 1 --steps 10 --data-dir "$copy" --quiet | contains "run 1 finished after 10 steps" \
    || fail "resume in $copy"
  ls "$copy/runs/1/checkpoints" | contains "step-0*10\.ckpt" || fail "resume in $copy wrote no checkpoint there"
  [ "$(fingerprint "$data")" = "$original" ] || fail "working in $copy changed the original data folder"
done
"$smx" runs show 1 --data-dir "$tmp/v1copy" | contains "folder-relocated .*this data folder was copied or moved" \
  || fail "the migrated run does not say where its folder was"
"$smx" runs list --data-dir "$data" --json | contains '"id": 2' || fail "run 2 of the original is gone"
# A tampered row naming a folder outside runs/ (or the data folder, or /) deletes and writes nothing.
mkdir -p "$tmp/outside" && echo "years of work" > "$tmp/outside/thesis.tex"
tampered="$tmp/copy"
for target in "$tmp/outside" "$tampered" / "runs/../.." "runs/3"; do
  store_sql "$tampered" "UPDATE runs SET directory = '$target' WHERE id = 1;"
  before=$(fingerprint "$tampered" | grep -v runs.sqlite; fingerprint "$tmp/outside")
  expect_status 1 "run 1: the store names its folder '$target' where 'runs/1' of the data folder ($tampered/runs/1) was expected" \
    "$smx" runs delete 1 --yes --data-dir "$tampered"
  grep -q "nothing was deleted" "$tmp/err" || fail "runs delete of a damaged row: $(cat "$tmp/err")"
  expect_status 1 "run 1: the store names its folder '$target'" \
    "$smx" pretrain --resume 1 --steps 12 --data-dir "$tampered" --quiet
  [ "$(fingerprint "$tampered" | grep -v runs.sqlite; fingerprint "$tmp/outside")" = "$before" ] \
    || fail "a row naming '$target' changed files"
done
"$smx" runs show 1 --data-dir "$tampered" > "$tmp/show.txt" 2> "$tmp/show.err" && fail "runs show of a damaged row exited 0"
grep -q "folder DAMAGED: .*'runs/3'" "$tmp/show.txt" && grep -q "^metrics:" "$tmp/show.txt" || fail "runs show: $(cat "$tmp/show.txt")"
# A run folder that is a symbolic link out of runs/ is not followed.
store_sql "$tampered" "UPDATE runs SET directory = 'runs/1' WHERE id = 1;"
mv "$tampered/runs/1" "$tmp/moved-run1" && ln -s "$tmp/outside" "$tampered/runs/1"
expect_status 1 "run 1: its folder '$tampered/runs/1' is a symbolic link to '$tmp/outside'" "$smx" runs delete 1 --yes --data-dir "$tampered"
[ -f "$tmp/outside/thesis.tex" ] || fail "runs delete followed a symbolic link"
"$smx" runs delete 1 --keep-files --yes --data-dir "$tampered" | contains "no file was touched" || fail "runs delete --keep-files"
[ -L "$tampered/runs/1" ] && [ -f "$tmp/outside/thesis.tex" ] || fail "runs delete --keep-files touched files"
# runs show of a run whose stored config is damaged: what can be printed is, and the damage is named.
store_sql "$tmp/v1copy" "UPDATE runs SET config_json = '{\"model\": {\"d_model\": 3' WHERE id = 1;"
expect_status 1 "its stored config is not valid JSON (syntax error at byte" "$smx" runs show 1 --data-dir "$tmp/v1copy"
grep -q "^run 1: smoke" "$tmp/out" && grep -q "^metrics:" "$tmp/out" && grep -q "^config: DAMAGED, not valid JSON" "$tmp/out" \
  || fail "runs show of a damaged config printed: $(cat "$tmp/out")"
# A checkpoint file fine-tunes in any data folder; its run is the parent only where that run is.
ckpt=$(ls "$data"/runs/1/checkpoints/*.ckpt | tail -1)
"$smx" finetune --checkpoint "$ckpt" --task sst2 --task-dir "$fixtures/glue/SST-2" --steps 2 --batch 4 --device cpu \
  --data-dir "$tmp/fresh" --quiet > "$tmp/ft2.txt" 2> "$tmp/ft2.err" || fail "finetune --checkpoint elsewhere: $(cat "$tmp/ft2.err")"
grep -q "run 1 finished after 2 steps" "$tmp/ft2.txt" || fail "finetune --checkpoint elsewhere: $(cat "$tmp/ft2.txt")"
grep -q "was written by run 1, but not in that run's folder of this data folder" "$tmp/ft2.err" || fail "no note: $(cat "$tmp/ft2.err")"
"$smx" runs list --data-dir "$tmp/fresh" --json | contains '"parent_id": null' || fail "finetune --checkpoint elsewhere recorded a parent"
"$smx" finetune --checkpoint "$ckpt" --task sst2 --task-dir "$fixtures/glue/SST-2" --steps 2 --batch 4 --device cpu \
  --data-dir "$data" --json > "$tmp/ft3.json" 2> "$tmp/ft3.err" || fail "finetune --checkpoint here: $(cat "$tmp/ft3.err")"
new_run=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["run_id"])' "$tmp/ft3.json")
"$smx" runs list --data-dir "$data" --json | python3 -c 'import json, sys; runs = {r["id"]: r for r in json.load(sys.stdin)};
sys.exit(runs[int(sys.argv[1])]["parent_id"] != 1)' "$new_run" || fail "finetune --checkpoint here recorded no parent"

# The data folder chosen once with `smx data-dir --set` is where runs go; a
# damaged settings file is an error that names it and is left untouched.
(
  export HOME="$tmp/home" XDG_CONFIG_HOME="$tmp/config"
  unset SMX_DATA_DIR XDG_DATA_HOME
  "$smx" data-dir | contains "$tmp/home/.local/share/sparse-mixer-studio" || fail "data-dir default"
  "$smx" data-dir --set "$tmp/chosen" > /dev/null || fail "data-dir --set"
  [ -d "$tmp/chosen" ] || fail "data-dir --set did not create the folder"
  "$smx" data-dir | contains "from settings file $tmp/config/sparse-mixer-studio/settings.json" || fail "data-dir source"
  "$smx" runs list > /dev/null && [ -f "$tmp/chosen/runs.sqlite" ] || fail "runs list did not use the chosen folder"
  SMX_DATA_DIR="$tmp/env" "$smx" data-dir | contains "from SMX_DATA_DIR" || fail "SMX_DATA_DIR wins"
  "$smx" data-dir --reset > /dev/null && "$smx" data-dir | contains "(from default)" || fail "data-dir --reset"
  echo '{"data_dir": ' > "$tmp/config/sparse-mixer-studio/settings.json"
  expect_error "settings.json is not a JSON object" "$smx" data-dir --set "$tmp/other"
  expect_error "settings.json is not a JSON object" "$smx" runs list
  [ "$(cat "$tmp/config/sparse-mixer-studio/settings.json")" = '{"data_dir": ' ] || fail "damaged settings file was changed"
)
echo "cli smoke: ok"
