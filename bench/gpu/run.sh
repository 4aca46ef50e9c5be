#!/usr/bin/env bash
# The GPU check in one command (issues 5 and 19), for one call of a GPU machine
# that has PyTorch (CUDA) with its LibTorch, CMake, Ninja and a compiler, but
# no Qt and no Debian packages:
#
#   1. builds the engine with training, `smx` and the Qt-free engine checks
#      against PyTorch's LibTorch; SentencePiece, SQLite and zlib come from the
#      system where it has them, otherwise from .gpu-deps/ (stage-deps.sh);
#   2. runs the engine checks (CUDA vs CPU, bf16 training, fused AdamW and
#      attention, no host sync inside a step);
#   3. benchmarks bert-base, sparse-mixer and fast-sparse-mixer with `smx bench`
#      and the Hugging Face BERT peer (hf_bert_peer.py) in alternating rounds,
#      same batch, sequence length, head policy, bf16 autocast and fused AdamW;
#   4. pre-trains `demo` and `sparse-mixer` on WordNet (`smx pretrain`) with
#      telemetry and checkpoints, then reloads each checkpoint (`smx eval`) and
#      resumes each run for a few steps;
#   5. prints the table (report.py): ms/example, ratios beside the paper's,
#      MFU against the measured matmul peak, peak memory, the MoE layer's time
#      split, and the pre-training runs' losses, speed, GPU memory and
#      checkpoint checks.
#
# It keeps to a time budget (BUDGET_S, 560 s: the device tool allows 600): the
# build, the checks, the first benchmark round and the pre-training always run
# (a pre-training run starting with under 150 s left is cut to a quarter of its
# steps, with under 60 s left it is skipped); further rounds, the phase timing
# and the profile only while time is left.
#
# Everything lands in build-gpu/out; where $OUT is set (the device tool sets
# it), the report, the summary and the checks' output are copied there after
# every stage, and all the rest packed into $OUT/gpu-run.tar.gz.
# Options (environment):
#   ROUNDS=2 BATCH=32 SEQ=512 REPEATS=10 WARMUP=3 DEVICE=cuda BUDGET_S=560
#   PRESETS=bert-base,sparse-mixer,fast-sparse-mixer   PEER=1 (0: no HF peer)
#   PRETRAIN=demo:400:64:64,sparse-mixer:300:64:512    preset:steps:batch:seq, ... ("" : none)
#   RESUME_STEPS=20   steps each pre-training run is resumed for
#   TORCH_PREFIX=...  LibTorch's CMake prefix (default: python3's torch)
#   STAGED=auto       auto: staged copies only for what the system lacks; all: staged only; none
#   TRAINING=1        0: the engine-only build of issue 5 (no pre-training)
#   SKIP_CHECKS=1     no engine checks
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
build=${BUILD_DIR:-$root/build-gpu}
out=$build/out
deps=${GPU_DEPS:-$root/.gpu-deps}
rounds=${ROUNDS:-2} batch=${BATCH:-32} seq=${SEQ:-512} repeats=${REPEATS:-10} warmup=${WARMUP:-3}
device=${DEVICE:-cuda} presets=${PRESETS:-bert-base,sparse-mixer,fast-sparse-mixer} peer=${PEER:-1}
pretrain=${PRETRAIN-demo:400:64:64,sparse-mixer:300:64:512} resume_steps=${RESUME_STEPS:-20}
budget=${BUDGET_S:-560} staged=${STAGED:-auto} training=${TRAINING:-1}
rm -rf "$out"
mkdir -p "$out"
log() { echo "== [$SECONDS s] $*" >&2; echo "$SECONDS $*" >>"$out/timeline.txt"; }
publish() {  # what there is so far, to $OUT (a run cut short still brings back its part)
  if [[ -n ${OUT:-} && -d ${OUT:-} ]]; then
    for f in report.txt summary.json checks.txt timeline.txt deps.txt; do [[ -f $out/$f ]] && cp "$out/$f" "$OUT/"; done
    tar -czf "$OUT/gpu-run.tar.gz" -C "$out" . 2>/dev/null || true
  fi
  return 0
}
trap publish EXIT
left() { echo $((budget - SECONDS)); }

log "machine"
{
  nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv 2>/dev/null || echo "no nvidia-smi"
  python3 -c 'import torch; print("python torch", torch.__version__, "cuda", torch.version.cuda)' 2>/dev/null || true
  echo "$(nproc) cores; $(c++ --version | head -1); $(cmake --version | head -1)"
  echo "$(ldd --version 2>&1 | head -1); libstdc++: $(c++ -print-file-name=libstdc++.so.6)"
  grep PRETTY_NAME /etc/os-release 2>/dev/null || true
  echo "nvcc: $(command -v nvcc || echo none)"
} | tee "$out/machine.txt" >&2

link=()
if [[ -z ${TORCH_PREFIX:-} ]]; then
  prefix=$(python3 -c 'import torch; print(torch.utils.cmake_prefix_path)')
  torch_include=$(python3 -c 'import os, torch; print(os.path.join(os.path.dirname(torch.__file__), "include"))')
  # pip's LibTorch finds CUDA's libraries (cuDNN, cuBLAS, NCCL...) through the
  # RUNPATH of its own libraries, in site-packages/nvidia/*/lib: name them to
  # the linker and the loader too, in case either does not follow that.
  libdirs=$(python3 - <<'PY'
import glob, os, torch
dirs = [os.path.join(os.path.dirname(torch.__file__), "lib")]
site = os.path.dirname(os.path.dirname(torch.__file__))
dirs += sorted(glob.glob(os.path.join(site, "nvidia", "*", "lib")))
print(":".join(d for d in dirs if os.path.isdir(d)))
PY
)
  export LD_LIBRARY_PATH=$libdirs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
  link=(-DCMAKE_EXE_LINKER_FLAGS="-Wl,-rpath-link,$libdirs")
else
  prefix=$TORCH_PREFIX
  torch_include=$prefix/include
fi

# Dependencies: the system's where it has them (STAGED=auto), else the copies
# stage-deps.sh put in .gpu-deps. CMake gets the staged files by full path, so
# the programs (and the dlmopen()ed SentencePiece shim) find them through their
# RUNPATH; nothing else in the process is pointed at them.
opts=(-DSMX_BUILD_GUI=OFF -DSMX_BUILD_TESTS=OFF)
[[ -d $deps/include ]] && opts+=(-DSMX_HEADER_DEPS_DIR="$deps/include")
compiles() {  # header, link flags...: does the system's compiler find them unaided?
  local h=$1
  shift
  mkdir -p "$build"
  printf '#include <%s>\nint main() { return 0; }\n' "$h" | c++ -x c++ - -o "$build/probe" "$@" >/dev/null 2>&1
}
use_staged() {  # name: 0 when the staged copy is to be used
  case $staged in
    all) return 0 ;;
    none) return 1 ;;
  esac
  case $1 in
    sentencepiece) ! { command -v pkg-config >/dev/null && pkg-config --exists sentencepiece; } ;;
    sqlite3) ! compiles sqlite3.h -lsqlite3 ;;
    zlib) ! compiles zlib.h -lz ;;
    wordnet) [[ -z ${SMX_WORDNET_DIR:-} && ! -f /usr/share/wordnet/data.noun ]] ;;
  esac
}
staged_files() {  # component: the files of its staged copy
  case $1 in
    sentencepiece) echo sentencepiece/include/sentencepiece_trainer.h sentencepiece/lib/libsentencepiece.so.0 \
                        sentencepiece/lib/libsentencepiece_train.so.0 ;;
    sqlite3) echo sqlite3/include/sqlite3.h sqlite3/lib/libsqlite3.so.0 ;;
    zlib) echo zlib/include/zlib.h zlib/lib/libz.so.1 ;;
    wordnet) echo wordnet/data.noun wordnet/data.verb wordnet/data.adj wordnet/data.adv ;;
  esac
}
: >"$out/deps.txt"
# The staged libraries are Debian 12's: they need the newest glibc and libstdc++
# symbol versions MANIFEST.txt lists.
runtime_ok() {
  local manifest=$deps/MANIFEST.txt glibc need lib
  [[ -f $manifest ]] || return 0
  glibc=$(getconf GNU_LIBC_VERSION 2>/dev/null | awk '{print $2}')
  need=$(grep -oE 'GLIBC_[0-9.]+' "$manifest" | sed 's/GLIBC_//' | sort -V | tail -1)
  if [[ -n $glibc && -n $need && $(printf '%s\n%s\n' "$glibc" "$need" | sort -V | head -1) != "$need" ]]; then
    echo "glibc $glibc is older than the $need the staged libraries need" >&2
    return 1
  fi
  lib=$(c++ -print-file-name=libstdc++.so.6)
  for need in $(grep -oE 'GLIBCXX_[0-9.]+' "$manifest" | sort -uV | tail -1); do
    [[ ! -f $lib ]] || grep -aq "$need" "$(readlink -f "$lib")" || { echo "$lib lacks $need" >&2; return 1; }
  done
}
# Which components come from .gpu-deps. Where one is needed but not there, or
# the machine's runtime is older than the staged libraries need, the build goes
# on without training rather than failing (the checks and benchmark still run).
from_staged=() missing=()
if [[ $training == 1 ]]; then
  for c in sentencepiece sqlite3 zlib wordnet; do
    use_staged "$c" || continue
    from_staged+=("$c")
    for f in $(staged_files "$c"); do [[ -e $deps/$f ]] || missing+=("$deps/$f"); done
  done
  if ((${#missing[@]})); then
    echo "training: OFF: neither the system nor .gpu-deps has ${missing[*]} (run bench/gpu/stage-deps.sh on a Debian 12 machine and carry .gpu-deps)" |
      tee -a "$out/deps.txt" >&2
    training=0
  elif [[ " ${from_staged[*]} " =~ " "(sentencepiece|sqlite3|zlib)" " ]] && ! runtime_ok; then
    echo "training: OFF: the staged Debian 12 libraries need a newer C/C++ runtime than this machine's" | tee -a "$out/deps.txt" >&2
    training=0
  fi
fi
staged_use() { [[ " ${from_staged[*]} " == *" $1 "* ]]; }
if [[ $training == 1 ]]; then
  opts+=(-DSMX_BUILD_TRAINING=ON)
  if staged_use sentencepiece; then
    opts+=(-DSMX_SENTENCEPIECE_INCLUDE_DIR="$deps/sentencepiece/include"
           -DSMX_SENTENCEPIECE_LIBRARY="$deps/sentencepiece/lib/libsentencepiece.so.0"
           -DSMX_SENTENCEPIECE_TRAIN_LIBRARY="$deps/sentencepiece/lib/libsentencepiece_train.so.0")
    echo "sentencepiece: staged $deps/sentencepiece" >>"$out/deps.txt"
  else
    opts+=(-USMX_SENTENCEPIECE_INCLUDE_DIR -USMX_SENTENCEPIECE_LIBRARY -USMX_SENTENCEPIECE_TRAIN_LIBRARY)
    echo "sentencepiece: system (pkg-config)" >>"$out/deps.txt"
  fi
  if staged_use sqlite3; then
    opts+=(-DSQLite3_INCLUDE_DIR="$deps/sqlite3/include" -DSQLite3_LIBRARY="$deps/sqlite3/lib/libsqlite3.so.0")
    echo "sqlite3: staged $deps/sqlite3" >>"$out/deps.txt"
  else
    opts+=(-USQLite3_INCLUDE_DIR -USQLite3_LIBRARY)  # found again (a build folder may hold staged paths)
    echo "sqlite3: system" >>"$out/deps.txt"
  fi
  if staged_use zlib; then
    opts+=(-DZLIB_INCLUDE_DIR="$deps/zlib/include" -DZLIB_LIBRARY="$deps/zlib/lib/libz.so.1"
           -DZLIB_LIBRARY_RELEASE="$deps/zlib/lib/libz.so.1")
    echo "zlib: staged $deps/zlib" >>"$out/deps.txt"
  else
    opts+=(-UZLIB_INCLUDE_DIR -UZLIB_LIBRARY -UZLIB_LIBRARY_RELEASE)
    echo "zlib: system" >>"$out/deps.txt"
  fi
  if staged_use wordnet; then
    export SMX_WORDNET_DIR=$deps/wordnet
    echo "wordnet: staged $SMX_WORDNET_DIR" >>"$out/deps.txt"
  else
    echo "wordnet: system ${SMX_WORDNET_DIR:-/usr/share/wordnet}" >>"$out/deps.txt"
  fi
  # c10d/Gloo (distributed training) needs <gloo/config.h>: PyTorch's wheel may lack it.
  if [[ -f $torch_include/gloo/config.h || -f /usr/include/gloo/config.h || -f /usr/local/include/gloo/config.h ]]; then
    echo "gloo: yes (distributed training built)" >>"$out/deps.txt"
  else
    opts+=(-DSMX_WITH_DIST=OFF)
    echo "gloo: no headers (SMX_WITH_DIST=OFF)" >>"$out/deps.txt"
  fi
else
  opts+=(-DSMX_BUILD_TRAINING=OFF)
  pretrain=""
fi
cat "$out/deps.txt" >&2

log "configure against $prefix"
if ! cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH="$prefix" \
     "${opts[@]}" "${link[@]}" >"$out/configure.log" 2>&1; then
  tail -40 "$out/configure.log" >&2
  exit 1
fi
grep -E "LibTorch|SMX_WITH_CUDA|SMX_WITH_DIST|headers from|SentencePiece" "$out/configure.log" >&2 || true
grep -E "^(SQLite3_INCLUDE_DIR|SQLite3_LIBRARY|ZLIB_INCLUDE_DIR|ZLIB_LIBRARY_RELEASE|SMX_SENTENCEPIECE_[A-Z_]+|SENTENCEPIECE_LINK_LIBRARIES|pkgcfg_lib_SENTENCEPIECE_[a-z_]+)(:|=)" \
  "$build/CMakeCache.txt" | tee -a "$out/deps.txt" >&2 || true
log "build"
start=$SECONDS
if ! cmake --build "$build" --target smx smx_device_checks >"$out/build.log" 2>&1; then
  grep -E -A5 "error|FAILED" "$out/build.log" | head -60 >&2
  # A source that does not compile against this LibTorch only with training
  # should not cost the checks and the benchmark: build again without training,
  # where the time allows (the engine's objects are rebuilt: SMX_WITH_TRAINING).
  if [[ $training == 1 ]] && (($(left) > 300)); then
    echo "training: OFF after the build with training failed (build.log); building without it" | tee -a "$out/deps.txt" >&2
    log "build without training"
    training=0 pretrain=""
    mv "$out/build.log" "$out/build-training.log"
    cmake -S "$root" -B "$build" -DSMX_BUILD_TRAINING=OFF >"$out/configure-no-training.log" 2>&1 &&
      cmake --build "$build" --target smx smx_device_checks >"$out/build.log" 2>&1 ||
      { grep -E -A5 "error|FAILED" "$out/build.log" | head -60 >&2; exit 1; }
  else
    exit 1
  fi
fi
echo "built in $((SECONDS - start)) s" >&2
smx=$build/model/cli/smx
checks=$build/tests/device/smx_device_checks
if [[ $training == 1 ]]; then  # which copies the programs load (RUNPATH, not LD_LIBRARY_PATH)
  shim=$build/model/text/libsmx_sentencepiece_shim.so
  { echo "smx loads:"; env -u LD_LIBRARY_PATH ldd "$smx" | grep -E "libsqlite3|libz\.so" || true
    echo "the SentencePiece shim loads:"; env -u LD_LIBRARY_PATH ldd "$shim" | grep -E "sentencepiece" || true
  } | tee -a "$out/deps.txt" >&2
fi
publish

if [[ ${SKIP_CHECKS:-0} != 1 ]]; then
  log "engine checks"
  "$checks" | tee "$out/checks.txt" >&2 || { echo "engine checks failed" >&2; exit 1; }
  publish
fi

common=(--batch "$batch" --seq "$seq" --warmup "$warmup" --repeats "$repeats" --json -q)
round_s=0
bench_round() {  # round number
  local r=$1 t=$SECONDS extra=()
  [[ $r == 1 ]] && extra=(--matmul-peak --moe-breakdown)
  "$smx" bench -d "$device" -p "$presets" "${common[@]}" "${extra[@]}" >"$out/smx-$r.json"
  echo "round $r: smx done" >&2
  if [[ $peer == 1 ]]; then
    python3 "$root/bench/gpu/hf_bert_peer.py" --device "$device" --batch "$batch" --seq "$seq" \
      --warmup "$warmup" --repeats "$repeats" >"$out/peer-$r.json"
    echo "round $r: peer done" >&2
  fi
  round_s=$((SECONDS - t))
}
report() {
  python3 "$root/bench/gpu/report.py" "$out" >"$out/report.txt" 2>"$out/report.err" || cat "$out/report.err" >&2
  publish
}

log "benchmark round 1 of $rounds: batch $batch x $seq on $device"
bench_round 1
report

# Pre-training: a real run per preset (telemetry every 10 steps, snapshots,
# checkpoints), the GPU's memory sampled beside it; then the checkpoint is
# reloaded (`smx eval` of the run) and the run resumed for RESUME_STEPS more.
data=$build/pretrain-data   # checkpoints stay out of $OUT
rm -rf "$data"
mkdir -p "$data"
IFS=',' read -r -a runs <<<"$pretrain"
for spec in "${runs[@]}"; do
  IFS=':' read -r p steps pbatch pseq <<<"$spec"
  rsteps=$resume_steps
  # Late (a slow build): a shorter run rather than none, or none rather than past the budget.
  if (($(left) < 60)); then
    log "pretrain $p skipped: $(left) s left"
    continue
  elif (($(left) < 150 && steps > 50)); then
    steps=$((steps / 4 > 50 ? steps / 4 : 50)) rsteps=$((resume_steps < 5 ? resume_steps : 5))
    log "pretrain $p shortened to $steps steps: $(left) s left"
  fi
  log "pretrain $p: $steps steps, batch $pbatch x $pseq on $device"
  sampler=""
  if [[ $device == cuda ]] && command -v nvidia-smi >/dev/null; then
    nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits -lms 200 >"$out/pretrain-$p-gpumem.txt" 2>/dev/null &
    sampler=$!
  fi
  t=$SECONDS
  status=0
  "$smx" pretrain -p "$p" --device "$device" --steps "$steps" --batch "$pbatch" --seq "$pseq" \
    --data-dir "$data" --name "gpu-check $p" --log-every 10 --snapshot-every 50 \
    --checkpoint-every $((steps / 2 > 0 ? steps / 2 : 1)) --eval-every 0 --json -q \
    >"$out/pretrain-$p.json" 2>"$out/pretrain-$p.log" || status=$?
  wall=$((SECONDS - t))
  [[ -n $sampler ]] && { kill "$sampler" 2>/dev/null; wait "$sampler" 2>/dev/null || true; }
  if ((status != 0)); then
    echo "pretrain $p failed ($status):" >&2
    tail -20 "$out/pretrain-$p.log" >&2
    continue
  fi
  id=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["run_id"])' "$out/pretrain-$p.json")
  "$smx" runs export "$id" --data-dir "$data" >"$out/pretrain-$p-metrics.csv" || true
  t=$SECONDS
  "$smx" eval --run "$id" --device "$device" --data-dir "$data" --json >"$out/pretrain-$p-eval.json" \
    2>>"$out/pretrain-$p.log" || echo "eval of $p's checkpoint failed" >&2
  eval_wall=$((SECONDS - t))
  t=$SECONDS
  "$smx" pretrain --resume "$id" --steps $((steps + rsteps)) --data-dir "$data" --json -q \
    >"$out/pretrain-$p-resume.json" 2>>"$out/pretrain-$p.log" || echo "resuming $p failed" >&2
  resume_wall=$((SECONDS - t))
  ckpt=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["checkpoint"])' "$out/pretrain-$p.json")
  python3 - "$out/pretrain-$p-run.json" <<PY
import json, os, sys
json.dump({"preset": "$p", "device": "$device", "steps": $steps, "batch": $pbatch, "seq": $pseq,
           "resume_steps": $rsteps, "wall_seconds": $wall, "eval_wall_seconds": $eval_wall,
           "resume_wall_seconds": $resume_wall, "checkpoint": "$ckpt",
           "checkpoint_bytes": os.path.getsize("$ckpt") if os.path.exists("$ckpt") else -1},
          open(sys.argv[1], "w"), indent=1)
PY
  echo "pretrain $p: $wall s, eval $eval_wall s, resume $resume_wall s" >&2
  report
done

for r in $(seq 2 "$rounds"); do
  if (($(left) < round_s + 10)); then
    log "benchmark round $r skipped: $(left) s left, a round took $round_s s"
    continue
  fi
  log "benchmark round $r of $rounds"
  bench_round "$r"
done
report

# Where the time of a step goes, for the profile-free first look: forward,
# backward and optimizer timed apart (this synchronises between them, so it
# is a separate run, not part of the rounds above).
if (($(left) > round_s)); then
  log "phases"
  "$smx" bench -d "$device" -p "$presets" "${common[@]}" --no-inference --phases >"$out/phases.json"
else
  log "phases skipped: $(left) s left"
fi
# Which kernels take the time: a Chrome trace of 3 training steps per model
# (LibTorch's Kineto profiler), summarised by the report.
if (($(left) > round_s)); then
  log "profile"
  "$smx" bench -d "$device" -p "$presets" --batch "$batch" --seq "$seq" --warmup 1 --repeats 1 --no-inference -q \
    --profile "$out/trace" >/dev/null || echo "profiling failed; the report goes on without it" >&2
else
  log "profile skipped: $(left) s left"
fi

log "report"
report
cat "$out/report.txt"
log "done"
