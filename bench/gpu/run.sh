#!/usr/bin/env bash
# The GPU build, checks and benchmark in one command (issue 5), for one call of
# a GPU machine that has PyTorch (CUDA) but no Qt and no Debian packages:
#
#   1. builds the engine, `smx` and the Qt-free engine checks against
#      PyTorch's LibTorch (training, studio and Qt tests left out);
#   2. runs the engine checks (CUDA vs CPU, bf16 training, fused AdamW and
#      attention, no host sync inside a step);
#   3. benchmarks bert-base, sparse-mixer and fast-sparse-mixer with `smx bench`
#      and the Hugging Face BERT peer (hf_bert_peer.py) in alternating rounds,
#      same batch, sequence length, head policy, bf16 autocast and fused AdamW;
#   4. prints the table (report.py): ms/example, ratios, MFU against the
#      measured matmul peak, peak memory, the MoE layer's time split.
#
# Everything lands in build-gpu/out; where $OUT is set (the device tool sets
# it), the report, the summary and the checks' output are copied there, and
# all the rest packed into $OUT/gpu-run.tar.gz (the tool brings back few files).
# Options (environment):
#   ROUNDS=3 BATCH=32 SEQ=512 REPEATS=10 WARMUP=3 DEVICE=cuda
#   PRESETS=bert-base,sparse-mixer,fast-sparse-mixer   PEER=1 (0: no HF peer)
#   TORCH_PREFIX=...  LibTorch's CMake prefix (default: python3's torch)
#   SKIP_CHECKS=1     benchmark only
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
build=${BUILD_DIR:-$root/build-gpu}
out=$build/out
rounds=${ROUNDS:-3} batch=${BATCH:-32} seq=${SEQ:-512} repeats=${REPEATS:-10} warmup=${WARMUP:-3}
device=${DEVICE:-cuda} presets=${PRESETS:-bert-base,sparse-mixer,fast-sparse-mixer} peer=${PEER:-1}
rm -rf "$out"
mkdir -p "$out"
log() { echo "== $*" >&2; }
finish() {
  if [[ -n ${OUT:-} && -d ${OUT:-} ]]; then
    for f in report.txt summary.json checks.txt; do [[ -f $out/$f ]] && cp "$out/$f" "$OUT/"; done
    tar -czf "$OUT/gpu-run.tar.gz" -C "$out" .
  fi
}
trap finish EXIT

log "machine"
{
  nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv 2>/dev/null || echo "no nvidia-smi"
  python3 -c 'import torch; print("python torch", torch.__version__, "cuda", torch.version.cuda)' 2>/dev/null || true
  echo "$(nproc) cores; $(c++ --version | head -1); $(cmake --version | head -1)"
} | tee "$out/machine.txt" >&2

link=()
if [[ -z ${TORCH_PREFIX:-} ]]; then
  prefix=$(python3 -c 'import torch; print(torch.utils.cmake_prefix_path)')
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
fi
deps=()
[[ -d $root/.gpu-deps/include ]] && deps=(-DSMX_HEADER_DEPS_DIR="$root/.gpu-deps/include")
log "configure against $prefix"
if ! cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH="$prefix" \
     -DSMX_BUILD_GUI=OFF -DSMX_BUILD_TESTS=OFF -DSMX_BUILD_TRAINING=OFF "${deps[@]}" "${link[@]}" \
     >"$out/configure.log" 2>&1; then
  tail -40 "$out/configure.log" >&2
  exit 1
fi
grep -E "LibTorch|SMX_WITH_CUDA|headers from" "$out/configure.log" >&2 || true
log "build"
start=$SECONDS
if ! cmake --build "$build" --target smx smx_device_checks >"$out/build.log" 2>&1; then
  grep -E -A5 "error|FAILED" "$out/build.log" | head -60 >&2
  exit 1
fi
echo "built in $((SECONDS - start)) s" >&2
smx=$build/model/cli/smx
checks=$build/tests/device/smx_device_checks

if [[ ${SKIP_CHECKS:-0} != 1 ]]; then
  log "engine checks"
  "$checks" | tee "$out/checks.txt" >&2 || { echo "engine checks failed" >&2; exit 1; }
fi

log "benchmark: $rounds alternating rounds, batch $batch x $seq on $device"
common=(--batch "$batch" --seq "$seq" --warmup "$warmup" --repeats "$repeats" --json -q)
for r in $(seq 1 "$rounds"); do
  extra=()
  [[ $r == 1 ]] && extra=(--matmul-peak --moe-breakdown)
  "$smx" bench -d "$device" -p "$presets" "${common[@]}" "${extra[@]}" >"$out/smx-$r.json"
  echo "round $r: smx done" >&2
  if [[ $peer == 1 ]]; then
    python3 "$root/bench/gpu/hf_bert_peer.py" --device "$device" --batch "$batch" --seq "$seq" \
      --warmup "$warmup" --repeats "$repeats" >"$out/peer-$r.json"
    echo "round $r: peer done" >&2
  fi
done

# Where the time of a step goes, for the profile-free first look: forward,
# backward and optimizer timed apart (this synchronises between them, so it
# is a separate run, not part of the rounds above).
"$smx" bench -d "$device" -p "$presets" "${common[@]}" --no-inference --phases >"$out/phases.json"
# Which kernels take the time: a Chrome trace of 3 training steps per model
# (LibTorch's Kineto profiler), summarised by the report.
"$smx" bench -d "$device" -p "$presets" --batch "$batch" --seq "$seq" --warmup 1 --repeats 1 --no-inference -q \
  --profile "$out/trace" >/dev/null || echo "profiling failed; the report goes on without it" >&2

log "report"
python3 "$root/bench/gpu/report.py" "$out" | tee "$out/report.txt"
