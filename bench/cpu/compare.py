#!/usr/bin/env python3
"""One command for the CPU comparison: `smx bench` and the plain-PyTorch peer
(torch_peer.py) on the same models and shapes, in alternating rounds, then a
table of ms per example and the peer-to-smx ratios (above 1: smx is faster),
with smx's training FLOP rate against this machine's matrix-product peak.

    python3 bench/cpu/compare.py --smx build/model/cli/smx          # bert-base, sparse-mixer; batch 2 x 512
    python3 bench/cpu/compare.py --smx build/model/cli/smx --presets demo --batch 32 --seq 64

Both sides use the same number of threads (--threads; default: all CPUs).
Needs Debian's python3-torch (packaging/install-deps.sh installs it).
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))


def run_json(cmd):
    out = subprocess.run(cmd, check=True, stdout=subprocess.PIPE, text=True).stdout
    return json.loads(out)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--smx", default="smx", help="the smx command (default: smx on PATH)")
    p.add_argument("--python", default=sys.executable, help="the Python with torch for the peer")
    p.add_argument("--presets", default="bert-base,sparse-mixer")
    p.add_argument("--batch", type=int, default=2)
    p.add_argument("--seq", type=int, default=512)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    p.add_argument("--no-peak", dest="peak", action="store_false", help="skip the matrix-product peak")
    p.add_argument("--json", help="also write the rounds and the summary here")
    a = p.parse_args()
    presets = [x for x in a.presets.split(",") if x]
    common = ["--batch", str(a.batch), "--seq", str(a.seq)]
    timing = ["--warmup", str(a.warmup), "--repeats", str(a.repeats), "--threads", str(a.threads)]
    rounds = []
    with tempfile.TemporaryDirectory() as tmp:
        infos = {}
        for name in presets:
            infos[name] = os.path.join(tmp, name + ".json")
            with open(infos[name], "w") as f:
                f.write(json.dumps(run_json([a.smx, "info", "-p", name, "--json"] + common)))
        peak = None
        for r in range(a.rounds):
            ours = run_json([a.smx, "bench", "-p", ",".join(presets), "--json", "-q"] + common + timing +
                            (["--matmul-peak"] if a.peak and r == 0 else []))
            if r == 0 and a.peak:
                peak = ours["matmul_peak_tflops"] * 1e12 if ours.get("matmul_peak_tflops") else None
            theirs = {}
            for name in presets:
                theirs[name] = run_json([a.python, os.path.join(HERE, "torch_peer.py"), infos[name]] + common + timing)
            rounds.append({"smx": ours, "peer": theirs})
            print(f"round {r + 1}/{a.rounds} done", file=sys.stderr)

    rows = []
    for name in presets:
        def pick(kind, side):
            out = []
            for rd in rounds:
                res = rd["smx"]["results"] if side == "smx" else rd["peer"][name]["results"]
                res = [x for x in res if side != "smx" or x["name"] == name]
                out.append(res[0][f"{kind}_ms_per_example"])
            return statistics.median(out)
        ours_train, ours_infer = pick("train", "smx"), pick("infer", "smx")
        peer_train, peer_infer = pick("train", "peer"), pick("infer", "peer")
        first = [x for x in rounds[0]["smx"]["results"] if x["name"] == name][0]
        flops = first.get("train_flops_per_example")
        rate = flops / (ours_train / 1e3) if flops else None
        rows.append({"model": name, "smx_train_ms": ours_train, "peer_train_ms": peer_train,
                     "train_ratio": peer_train / ours_train, "smx_infer_ms": ours_infer, "peer_infer_ms": peer_infer,
                     "infer_ratio": peer_infer / ours_infer, "smx_train_gflops": rate / 1e9 if rate else None,
                     "of_peak": rate / peak if rate and peak else None})
    print(f"CPU comparison: batch {a.batch} x {a.seq}, {a.threads} threads, median of {a.rounds} rounds "
          f"({a.repeats} timed steps each); ms per example; ratio = peer / smx (above 1: smx is faster)")
    if peak:
        print(f"matrix-product peak: {peak / 1e9:.1f} GFLOP/s")
    print(f"{'model':<22} {'train smx':>10} {'peer':>10} {'ratio':>6} {'infer smx':>10} {'peer':>10} {'ratio':>6} "
          f"{'GFLOP/s':>8} {'of peak':>8}")
    for r in rows:
        g = f"{r['smx_train_gflops']:.1f}" if r["smx_train_gflops"] else "-"
        pk = f"{100 * r['of_peak']:.0f}%" if r["of_peak"] else "-"
        print(f"{r['model']:<22} {r['smx_train_ms']:>10.1f} {r['peer_train_ms']:>10.1f} {r['train_ratio']:>6.2f} "
              f"{r['smx_infer_ms']:>10.1f} {r['peer_infer_ms']:>10.1f} {r['infer_ratio']:>6.2f} {g:>8} {pk:>8}")
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"rounds": rounds, "summary": rows, "peak_flops": peak}, f, indent=2)


if __name__ == "__main__":
    main()
