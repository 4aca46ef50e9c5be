#!/usr/bin/env bash
# The CPU comparison (bench/cpu/compare.py) end to end on two small models:
# it runs, prints a row per model, and the PyTorch peer builds the same model
# (parameter counts equal but for the engine's unused fine-tuning classifier).
# Built and run, never timed: the numbers of a test run mean nothing.
set -euo pipefail
smx=$1 compare=$2
python=${PYTHON:-/usr/bin/python3}
"$python" -c 'import torch' 2>/dev/null || { echo "cpu_peer: $python has no torch: install python3-torch (packaging/install-deps.sh)"; exit 1; }
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
"$python" "$compare" --smx "$smx" --python "$python" --presets bert-l2-h256,sparse-mixer-l2-h256 --batch 2 --seq 32 \
  --rounds 1 --warmup 0 --repeats 1 --threads 1 --no-peak --json "$dir/out.json" | tee "$dir/table.txt"
grep -q '^bert-l2-h256 ' "$dir/table.txt"
grep -q '^sparse-mixer-l2-h256 ' "$dir/table.txt"
"$python" - "$dir/out.json" <<'PY'
import json, sys
j = json.load(open(sys.argv[1]))
rd = j["rounds"][0]
for r in rd["smx"]["results"]:
    peer = rd["peer"][r["name"]]["results"][0]
    classifier = 256 * 2 + 2
    assert r["params"] - peer["params"] == classifier, (r["name"], r["params"], peer["params"])
    assert peer["train_ms_per_example"] > 0 and peer["infer_ms_per_example"] > 0
print("cpu_peer: ok")
PY
