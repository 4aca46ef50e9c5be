#!/usr/bin/env bash
# bench/gpu/report.py on made-up rounds whose medians, ratios, MFU and peer
# comparison are known: two smx rounds and two peer rounds.
set -euo pipefail
report=$1
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT

smx_round() {  # round, bert-base train ms/ex, sparse-mixer train ms/ex
  cat >"$dir/smx-$1.json" <<JSON
{"device": "cuda", "torch_version": "2.11.0", "baseline": "bert-base", "matmul_peak_tflops": 800.0,
 "results": [
  {"name": "bert-base", "batch_size": 32, "seq_len": 512, "mlm_predictions": 80, "params": 110000000,
   "train_flops_per_example": 1.0e12, "forward_flops_per_example": 4.0e11,
   "train_ms_per_example": $2, "infer_ms_per_example": 1.0,
   "peak_memory_bytes": 21474836480, "infer_peak_memory_bytes": 2147483648, "optimizer": "fused"},
  {"name": "sparse-mixer", "batch_size": 32, "seq_len": 512, "mlm_predictions": 80, "params": 300000000,
   "train_flops_per_example": 4.0e11, "forward_flops_per_example": 1.6e11,
   "train_ms_per_example": $3, "infer_ms_per_example": 0.5,
   "peak_memory_bytes": 10737418240, "infer_peak_memory_bytes": 1073741824, "optimizer": "fused"}],
 "moe_breakdown": [{"name": "sparse-mixer", "layer": 5, "groups": 4, "tokens_per_group": 4096, "experts": 16,
   "capacity": 256, "layer_ms": 10.0, "router_ms": 1.0, "experts_ms": 7.0, "dispatch_ms": 2.0,
   "router_share": 0.1, "dispatch_share": 0.2}]}
JSON
}
peer_round() {  # round, train ms/ex
  cat >"$dir/peer-$1.json" <<JSON
{"peer": "transformers 5.17.0", "torch_version": "2.11.0", "device": "cuda",
 "results": [{"name": "hf-bert-base", "batch_size": 32, "seq_len": 512, "mlm_predictions": 80, "params": 110000000,
   "train_ms_per_example": $2, "infer_ms_per_example": 1.25, "peak_memory_bytes": 32212254720,
   "infer_peak_memory_bytes": -1, "optimizer": "fused"}]}
JSON
}
smx_round 1 4.0 2.0
smx_round 2 6.0 2.0
peer_round 1 4.5
peer_round 2 5.5
echo "one NVIDIA H100 (made up)" >"$dir/machine.txt"
cat >"$dir/trace-bert-base.json" <<JSON
{"traceEvents": [
  {"ph": "X", "cat": "kernel", "name": "sm90_xmma_gemm_bf16", "ts": 0, "dur": 6000},
  {"ph": "X", "cat": "kernel", "name": "sm90_xmma_gemm_bf16", "ts": 7000, "dur": 3000},
  {"ph": "X", "cat": "kernel", "name": "flash_fwd_kernel", "ts": 9000, "dur": 3000},
  {"ph": "X", "cat": "cpu_op", "name": "aten::mm", "ts": 0, "dur": 50000}]}
JSON
cat >"$dir/phases.json" <<JSON
{"results": [{"name": "bert-base", "train_forward_ms": 50.0, "train_backward_ms": 100.0, "train_optimizer_ms": 3.5}]}
JSON

# One pre-training run of run.sh: 400 steps, loss 10.5 -> 6.25, eval 6.0 again after reloading, resumed to 420.
cat >"$dir/pretrain-demo-run.json" <<JSON
{"preset": "demo", "device": "cuda", "steps": 400, "batch": 64, "seq": 64, "resume_steps": 20, "wall_seconds": 31,
 "eval_wall_seconds": 4, "resume_wall_seconds": 5, "checkpoint": "/x/step-00000400.ckpt", "checkpoint_bytes": 12582912}
JSON
cat >"$dir/pretrain-demo.json" <<JSON
{"status": "finished", "steps": 400, "run_id": 1, "examples_per_second": 2500.0, "tokens_per_second": 160000.0,
 "train_seconds": 10.24, "final": {"eval/loss_mlm": 6.0}, "checkpoint": "/x/step-00000400.ckpt"}
JSON
printf 'step,loss/mlm,loss/total,memory/resident_mb,memory/gpu_allocated_mb,memory/gpu_peak_mb\n10,10.0,10.5,900,300,1200\n400,5.5,6.25,1000,310,1500\n' >"$dir/pretrain-demo-metrics.csv"
printf '500\n2048\n1536\n' >"$dir/pretrain-demo-gpumem.txt"
echo '{"eval/loss_mlm": 6.0, "step": 400, "checkpoint": "/x/step-00000400.ckpt"}' >"$dir/pretrain-demo-eval.json"
echo '{"status": "finished", "steps": 420}' >"$dir/pretrain-demo-resume.json"

out=$(python3 "$report" "$dir")
echo "$out"
fail() { echo "FAIL: $*" >&2; exit 1; }
want() { grep -qF -- "$1" <<<"$out" || fail "missing: $1"; }
# bert-base: median 5.0 ms/ex -> 200 ex/s x 1e12 FLOP = 200 TFLOP/s of 800: 25% MFU.
want "bert-base                  5.000  1.00x"
# sparse-mixer: 2.0 ms/ex, 2.50x faster (paper 1.65x); inference 1.0/0.5 = 2.00x (paper 1.61x).
want "sparse-mixer               2.000  2.50x  1.65x       0.500  2.00x  1.61x"
want " 25.0%"
# the peer: median 5.0 train (ours 5.0: 1.00x), inference 1.25 vs 1.0 (1.25x); charged bert-base's FLOPs.
want "training 1.00x, inference 1.25x its throughput"
want "hf-bert-base"
want "router 10.0%, dispatch (gather/scatter) 20.0%, experts 70.0%"
want "20.00"  # bert-base's training peak in GiB
want "medians of 2 alternating rounds"
# 3 profiled steps: the gemm 9 ms in all = 3 ms a step, 75% of 12 ms of kernels.
want "bert-base: top kernels of a training step (profiled), 4.00 ms of kernels per step"
want "   3.000 ms  75.0%    0.7x  sm90_xmma_gemm_bf16"
want "forward+losses    50.00  backward   100.00  optimizer     3.50"
want "demo                   400     64 x 64      10.500 -> 6.250    6.000    2500.0     160000   1500/2048     12.0  ok 6.000 (d +0.0e+00)"
want "ok, to step 420"
python3 - "$dir/summary.json" <<'PY' || fail "summary.json"
import json, sys
s = json.load(open(sys.argv[1]))
m = s["models"]
assert abs(m["sparse-mixer"]["train_speedup"] - 2.5) < 1e-9, m["sparse-mixer"]
assert abs(m["bert-base"]["train_mfu"] - 0.25) < 1e-9, m["bert-base"]
assert abs(m["hf-bert-base"]["train_mfu"] - 0.25) < 1e-9, m["hf-bert-base"]
assert m["hf-bert-base"]["infer_peak_bytes"] == -1
p = s["pretrain"][0]
assert p["reload_ok"] and p["resume_ok"] and p["gpu_used_mib_max"] == 2048, p
PY
# No rounds at all is an error that says so.
empty=$(mktemp -d)
if python3 "$report" "$empty" 2>"$dir/err"; then fail "an empty folder was accepted"; fi
grep -q "no smx-N.json" "$dir/err" || fail "unclear error: $(cat "$dir/err")"
rmdir "$empty"
echo "gpu_report: ok"
