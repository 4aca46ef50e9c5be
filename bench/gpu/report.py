#!/usr/bin/env python3
"""Turns the JSON of run.sh's alternating rounds into the issue's table.

  report.py OUT_DIR     reads OUT_DIR/smx-N.json (smx bench --json) and
                        OUT_DIR/peer-N.json (hf_bert_peer.py); prints the
                        table and writes OUT_DIR/summary.json

Each round's number is already a median of its timed steps; the table gives
the median over rounds. Speed ratios are bert-base's ms per example over the
model's (the paper's Table 8 convention: higher is faster). Model FLOPs
utilisation (MFU) is the model's FLOPs per example (from the engine's cost
model, as `smx info` prints them) times examples per second over the matrix
-product peak measured on the same GPU in the first round. The peer is charged
bert-base's FLOPs: same architecture, less our embedding projection.
"""
import csv
import glob
import json
import os
import re
import statistics
import sys

PAPER = {"sparse-mixer": (1.65, 1.61), "fast-sparse-mixer": (1.89, 1.98)}


def load_rounds(folder, prefix):
    files = sorted(glob.glob(os.path.join(folder, prefix + "-*.json")),
                   key=lambda f: int(re.search(r"-(\d+)\.json$", f).group(1)))
    return [(f, json.load(open(f))) for f in files]


def gib(b):
    return "-" if b is None or b < 0 else f"{b / 2**30:.2f}"


def summarize(folder):
    smx_rounds = load_rounds(folder, "smx")
    peer_rounds = load_rounds(folder, "peer")
    if not smx_rounds:
        sys.exit(f"report: no smx-N.json in {folder}")
    by_name = {}
    order = []
    for _, doc in smx_rounds + peer_rounds:
        for r in doc["results"]:
            if r["name"] not in by_name:
                order.append(r["name"])
            by_name.setdefault(r["name"], []).append(r)
    first = smx_rounds[0][1]
    peak = first.get("matmul_peak_tflops", 0.0)
    shapes = {(r["batch_size"], r["seq_len"], r["mlm_predictions"]) for rs in by_name.values() for r in rs}
    baseline = first.get("baseline", "bert-base")
    flops = {r["name"]: r for r in first["results"]}

    rows = {}
    for name in order:
        rs = by_name[name]
        row = {
            "rounds": len(rs),
            "train_ms_per_example": statistics.median(r["train_ms_per_example"] for r in rs),
            "infer_ms_per_example": statistics.median(r["infer_ms_per_example"] for r in rs),
            "train_peak_bytes": max(r.get("peak_memory_bytes", -1) for r in rs),
            "infer_peak_bytes": max(r.get("infer_peak_memory_bytes", -1) for r in rs),
            "optimizer": rs[0].get("optimizer", ""),
            "params": rs[0].get("params", 0),
        }
        cost = flops.get(name) or flops.get(baseline) or {}
        row["train_flops_per_example"] = cost.get("train_flops_per_example", 0)
        row["forward_flops_per_example"] = cost.get("forward_flops_per_example", 0)
        for what, f in (("train", "train_flops_per_example"), ("infer", "forward_flops_per_example")):
            ms = row[what + "_ms_per_example"]
            row[what + "_mfu"] = row[f] / (ms * 1e-3) / (peak * 1e12) if peak > 0 and ms > 0 else 0.0
        rows[name] = row
    base = rows.get(baseline)
    for name, row in rows.items():
        for what in ("train", "infer"):
            key = what + "_ms_per_example"
            row[what + "_speedup"] = base[key] / row[key] if base and row[key] > 0 else 0.0
    phases_file = os.path.join(folder, "phases.json")
    phases = []
    if os.path.exists(phases_file):
        phases = [{k: r.get(k, 0) for k in ("name", "train_forward_ms", "train_backward_ms", "train_optimizer_ms")}
                  for r in json.load(open(phases_file))["results"]]
    return {
        "pretrain": pretraining(folder),
        "top_kernels": top_kernels(folder),
        "phases": phases,
        "device": first.get("device"), "bf16": first.get("bf16", True), "torch_version": first.get("torch_version"),
        "peer": peer_rounds[0][1].get("peer") if peer_rounds else None,
        "matmul_peak_tflops": peak, "matmul_peak_dtype": first.get("matmul_peak_dtype", "bf16"), "shapes": sorted(shapes), "baseline": baseline,
        "rounds": len(smx_rounds), "models": rows, "moe_breakdown": first.get("moe_breakdown", []),
    }


def read_json(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def pretraining(folder):
    """Per pre-training run of run.sh (pretrain-<preset>.json and its
    companions): losses, speed, memory, and whether the checkpoint reloads
    (`smx eval` gives the run's final evaluation again) and resumes."""
    runs = []
    for path in sorted(glob.glob(os.path.join(folder, "pretrain-*-run.json")),
                       key=lambda f: os.path.getmtime(f)):
        run = read_json(path)
        if not run:
            continue
        stem = path[:-len("-run.json")]
        out = read_json(stem + ".json") or {}
        row = {"preset": run["preset"], "device": run.get("device"), "steps": run["steps"], "batch": run["batch"],
               "seq": run["seq"], "status": out.get("status"), "steps_done": out.get("steps"),
               "examples_per_second": out.get("examples_per_second", 0.0),
               "tokens_per_second": out.get("tokens_per_second", 0.0),
               "train_seconds": out.get("train_seconds", 0.0), "wall_seconds": run.get("wall_seconds"),
               "checkpoint": run.get("checkpoint"), "checkpoint_bytes": run.get("checkpoint_bytes", -1),
               "eval_loss_mlm": (out.get("final") or {}).get("eval/loss_mlm")}
        # The logged metrics: first and last training loss, the most memory any memory/ metric saw.
        first = last = None
        memory = {}
        try:
            with open(stem + "-metrics.csv") as f:
                for rec in csv.DictReader(f):
                    loss = rec.get("loss/total")
                    if loss:
                        first = first if first is not None else (int(rec["step"]), float(loss))
                        last = (int(rec["step"]), float(loss), float(rec.get("loss/mlm") or "nan"))
                    for k, v in rec.items():
                        if k.startswith("memory/") and v:
                            memory[k] = max(memory.get(k, float("-inf")), float(v))
        except OSError:
            pass
        row["loss_first"], row["loss_last"] = first, last
        row["memory_metrics"] = memory
        gpu = []
        try:
            with open(stem + "-gpumem.txt") as f:
                gpu = [float(x) for x in f.read().split() if x.replace(".", "", 1).isdigit()]
        except OSError:
            pass
        row["gpu_used_mib_max"] = max(gpu) if gpu else None
        ev = read_json(stem + "-eval.json") or {}
        row["reload_eval_loss_mlm"] = ev.get("eval/loss_mlm")
        row["reload_checkpoint"] = ev.get("checkpoint")
        a, b = row["eval_loss_mlm"], row["reload_eval_loss_mlm"]
        row["reload_ok"] = a is not None and b is not None and abs(a - b) <= 0.01 * max(1.0, abs(a))
        res = read_json(stem + "-resume.json") or {}
        row["resume_status"], row["resume_steps"] = res.get("status"), res.get("steps")
        row["resume_ok"] = res.get("status") == "finished" and res.get("steps") == run["steps"] + run.get("resume_steps", 0)
        runs.append(row)
    return runs


def top_kernels(folder, steps=3, top=12):
    """Per trace-<model>.json (smx bench --profile): the kernels with the most
    device time, per training step. Where a trace has no kernels (a CPU run),
    the operators by inclusive time instead."""
    tables = {}
    for path in sorted(glob.glob(os.path.join(folder, "trace-*.json"))):
        name = os.path.basename(path)[len("trace-"):-len(".json")]
        if name.endswith("-inference"):
            continue  # the inference steps' trace: this table is about training steps
        trace = json.load(open(path))
        # Kineto's object with traceEvents, or on the CPU smx's own array of operator events (no "cat").
        events = trace if isinstance(trace, list) else trace.get("traceEvents", [])
        kernels = [e for e in events if str(e.get("cat", "")).lower() == "kernel" and "dur" in e]
        what = "kernels"
        if not kernels:
            kernels = [e for e in events if e.get("cat", "cpu_op") == "cpu_op" and "dur" in e]
            what = "operators (inclusive)"
        totals = {}
        for e in kernels:
            t = totals.setdefault(e["name"], [0.0, 0])
            t[0] += e["dur"]
            t[1] += 1
        all_us = sum(t[0] for t in totals.values()) if what == "kernels" else 0
        rows = sorted(totals.items(), key=lambda kv: -kv[1][0])[:top]
        tables[name] = {"what": what, "total_ms_per_step": all_us / 1e3 / steps,
                        "rows": [{"name": n, "ms_per_step": t[0] / 1e3 / steps, "calls_per_step": t[1] / steps,
                                  "share": t[0] / all_us if all_us else 0} for n, (t) in rows]}
    return tables


def print_table(s, machine):
    if machine:
        print(machine.strip())
    b, seq, pred = s["shapes"][0] if s["shapes"] else (0, 0, 0)
    print(f"\nbatch {b} x {seq} tokens, {pred} masked predictions per example, "
          f"{'bf16 autocast' if s['bf16'] else 'float32'}; "
          f"torch {s['torch_version']}, peer {s['peer'] or 'not run'}; medians of {s['rounds']} alternating rounds")
    if len(s["shapes"]) > 1:
        print(f"WARNING: the runs differ in shape: {s['shapes']}")
    print(f"matrix-product peak ({s['matmul_peak_dtype']}, measured): {s['matmul_peak_tflops']:.1f} TFLOP/s\n")
    head = (f"{'model':<20} {'train ms/ex':>11} {'speed':>6} {'paper':>6} {'infer ms/ex':>11} {'speed':>6} "
            f"{'paper':>6} {'MFU tr':>7} {'MFU inf':>7} {'peak tr GiB':>11} {'peak inf GiB':>12}  optimizer")
    print(head)
    print("-" * len(head))
    for name, r in s["models"].items():
        paper = PAPER.get(name, (None, None))
        fmt_paper = lambda x: f"{x:.2f}x" if x else ""
        print(f"{name:<20} {r['train_ms_per_example']:>11.3f} {r['train_speedup']:>5.2f}x {fmt_paper(paper[0]):>6} "
              f"{r['infer_ms_per_example']:>11.3f} {r['infer_speedup']:>5.2f}x {fmt_paper(paper[1]):>6} "
              f"{100 * r['train_mfu']:>6.1f}% {100 * r['infer_mfu']:>6.1f}% {gib(r['train_peak_bytes']):>11} "
              f"{gib(r['infer_peak_bytes']):>12}  {r['optimizer']}")
    ours, peer = s["models"].get("bert-base"), s["models"].get("hf-bert-base")
    if ours and peer:
        print(f"\nbert-base vs the Hugging Face peer: training {peer['train_ms_per_example'] / ours['train_ms_per_example']:.2f}x,"
              f" inference {peer['infer_ms_per_example'] / ours['infer_ms_per_example']:.2f}x its throughput"
              " (above 1: ours is faster)")
    if s["phases"]:
        print("\ntraining step phases, ms per step (a separate run, synchronised between phases):")
        for p in s["phases"]:
            print(f"  {p['name']:<20} forward+losses {p['train_forward_ms']:8.2f}  backward {p['train_backward_ms']:8.2f}"
                  f"  optimizer {p['train_optimizer_ms']:8.2f}")
    if s.get("pretrain"):
        print_pretraining(s["pretrain"])
    for name, t in s["top_kernels"].items():
        total = f", {t['total_ms_per_step']:.2f} ms of kernels per step" if t["what"] == "kernels" else ""
        print(f"\n{name}: top {t['what']} of a training step (profiled){total}")
        for r in t["rows"]:
            share = f"{100 * r['share']:5.1f}%" if r["share"] else ""
            label = r["name"] if len(r["name"]) <= 90 else r["name"][:87] + "..."
            print(f"  {r['ms_per_step']:8.3f} ms {share:>6} {r['calls_per_step']:6.1f}x  {label}")
    if s["moe_breakdown"]:
        print("\none MoE layer, forward + backward:")
        for m in s["moe_breakdown"]:
            if m["layer"] < 0:
                continue
            print(f"  {m['name']:<20} layer {m['layer']}: {m['layer_ms']:.2f} ms; router {100 * m['router_share']:.1f}%,"
                  f" dispatch (gather/scatter) {100 * m['dispatch_share']:.1f}%, experts "
                  f"{100 * m['experts_ms'] / max(m['layer_ms'], 1e-9):.1f}% (G x T = {m['groups']} x "
                  f"{m['tokens_per_group']}, E x C = {m['experts']} x {m['capacity']})")


def print_pretraining(runs):
    print(f"\npre-training (smx pretrain on WordNet, on {runs[0]['device']}; loss = MLM + NSP + router losses):")
    head = (f"{'model':<20} {'steps':>5} {'batch x seq':>11} {'loss first -> last':>20} {'eval MLM':>8} {'ex/s':>9} "
            f"{'tokens/s':>10} {'GPU MiB':>11} {'ckpt MiB':>8}  reload (eval again)        resume")
    print(head)
    print("-" * len(head))
    for r in runs:
        first, last = r["loss_first"], r["loss_last"]
        losses = f"{first[1]:.3f} -> {last[1]:.3f}" if first and last else "-"
        ev = f"{r['eval_loss_mlm']:.3f}" if r["eval_loss_mlm"] is not None else "-"
        # The engine's own record (memory/gpu_peak_mb: the caching allocator's peak), then nvidia-smi's.
        peak = [v for k, v in r["memory_metrics"].items() if "peak" in k and any(w in k for w in ("cuda", "gpu"))]
        parts = [f"{max(peak):.0f}"] if peak else []
        if r["gpu_used_mib_max"] is not None:
            parts.append(f"{r['gpu_used_mib_max']:.0f}" + ("" if peak else " smi"))
        mem = "/".join(parts) or "-"
        ckpt = f"{r['checkpoint_bytes'] / 2**20:.1f}" if r["checkpoint_bytes"] and r["checkpoint_bytes"] > 0 else "-"
        if r["reload_eval_loss_mlm"] is None:
            reload = "FAILED"
        else:
            reload = (f"{'ok' if r['reload_ok'] else 'DIFFERS'} {r['reload_eval_loss_mlm']:.3f} "
                      f"(d {r['reload_eval_loss_mlm'] - (r['eval_loss_mlm'] or 0):+.1e})")
        resume = f"ok, to step {r['resume_steps']}" if r["resume_ok"] else f"FAILED ({r['resume_status']})"
        status = "" if r["status"] == "finished" else f"  [{r['status']}]"
        print(f"{r['preset']:<20} {r['steps_done'] or 0:>5} {str(r['batch']) + ' x ' + str(r['seq']):>11} {losses:>20} {ev:>8} "
              f"{r['examples_per_second']:>9.1f} {r['tokens_per_second']:>10.0f} {mem:>11} {ckpt:>8}  {reload:<26} {resume}{status}")
    print("GPU MiB: the run's peak of allocated memory (its memory/gpu_peak_mb) / the most the GPU had in use"
          " (nvidia-smi every 0.2 s: CUDA context and allocator cache included); wall time per run: " +
          ", ".join(f"{r['preset']} {r['wall_seconds']} s" for r in runs))


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    folder = sys.argv[1]
    s = summarize(folder)
    machine_file = os.path.join(folder, "machine.txt")
    machine = open(machine_file).read() if os.path.exists(machine_file) else ""
    print_table(s, machine)
    with open(os.path.join(folder, "summary.json"), "w") as f:
        json.dump(s, f, indent=2)


if __name__ == "__main__":
    main()
