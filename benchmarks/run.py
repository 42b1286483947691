"""Run every benchmark workload and print one table of medians and ratios.

Each workload is a script of its own (``benchmarks/<name>.py``) that fixes the BLAS
thread count before importing numpy, so each runs in a fresh process
(``python -m benchmarks.<name> --json ...``); this runner reads the JSON it writes and
combines them. Within a workload the candidates (functorch_lite, NumPy by hand, and JAX /
PyTorch / autograd when installed) are timed interleaved by ``_timing.compare``, so every
ratio compares measurements taken in the same rounds. A workload whose script is missing
or fails is reported and skipped; the others still run.

Writes ``benchmarks/results/suite.json`` (every row, the machine, the targets) and
``benchmarks/results/suite.md`` (the table for the README, with the machine described);
``--update-readme`` also copies that table into the top-level README.md, between the
``<!-- benchmark-results:start -->`` and ``<!-- benchmark-results:end -->`` markers.
Only a run of all the workloads saves: with ``--only`` the saved table stays one whole run.

Run: ``python -m benchmarks [--threads N] [--quick] [--rounds N] [--clock cpu]
[--only hessian,lstm] [--verbose] [--update-readme]`` (or ``python benchmarks/run.py``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import textwrap
import time
from dataclasses import dataclass
from importlib import metadata

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if __package__ in (None, ""):  # run as ``python benchmarks/run.py``
    sys.path.insert(0, ROOT)

from benchmarks._timing import _fmt_ns  # noqa: E402

RESULTS = os.path.join(ROOT, "benchmarks", "results")
README = os.path.join(ROOT, "README.md")
MARKERS = ("<!-- benchmark-results:start -->", "<!-- benchmark-results:end -->")
WORKLOADS = ("eager_overhead", "eager_grad", "jit_step", "per_example_grads",
             "elementwise_chain", "hessian", "lstm", "dataloader")
PEERS = ("jax", "jaxlib", "torch", "autograd")
CLOCKS = {"wall": "wall clock",
          "cpu": "cpu clock (the process's CPU time: waiting for a busy core left out)"}
FIRST_CALL = "first call of a jitted 1,000-op function (trace + passes + compile)"


# --------------------------------------------------------------------------------------
# Targets: a paired ratio (median over rounds of time(candidate) / time(reference) in the
# same round) or a measured value, against a limit
# --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Target:
    label: str
    workload: str
    table: str              # a substring of the table titles it reads
    candidate: str
    reference: str | None   # None: the table's baseline
    op: str                 # "<=" or ">="
    limit: float
    unit: str = "x"         # " s": the candidate's median time in seconds, not a ratio;
    #                         " us": its time minus the reference's (paired), in us


TARGETS = (
    Target("eager fnp op, 10 elements (worst of sin/add/a+b/sum) vs NumPy", "eager_overhead",
           ", 10 elements", "functorch_lite", None, "<=", 2.0),
    Target("eager fnp op, 1e6 elements (worst of four) vs NumPy", "eager_overhead",
           ", 1,000,000 elements", "functorch_lite", None, "<=", 1.02),
    Target("eager grad, 10-op function: time vs PyTorch eager", "eager_grad",
           "(a) grad", "functorch_lite", "pytorch eager", "<=", 0.8),
    Target("eager grad, 10-op function: time vs HIPS autograd", "eager_grad",
           "(a) grad", "functorch_lite", "autograd", "<=", 0.5),
    Target("eager SGD step, MLP 64-256-256-10, vs NumPy by hand", "eager_grad",
           "(b) SGD step", "functorch_lite", None, "<=", 1.3),
    Target("jit SGD step, MLP 64-256-256-10 b128, vs NumPy by hand", "jit_step",
           "64-256-256-10", "fl.jit", None, "<=", 1.0),
    Target("jit SGD step, MLP 784-1024-1024-10 b256, vs NumPy by hand", "jit_step",
           "784-1024-1024-10", "fl.jit", None, "<=", 1.0),
    Target("first call (trace + compile) of a 1,000-op function", "jit_step",
           FIRST_CALL, "fl.jit", None, "<=", 0.5, " s"),
    Target("jit call overhead, 10-leaf dict argument, over the compiled body", "jit_step",
           "call overhead, 10-leaf dict argument", "fl.jit call", "compiled body", "<=", 10.0,
           " us"),
    Target("per-example grads: vmap(grad) vs NumPy by hand", "per_example_grads",
           "per-example", "fl vmap(grad)", None, "<=", 2.0),
    Target("per-example grads: speed-up of vmap(grad) over a loop of grad",
           "per_example_grads", "per-example", "fl loop of grad", "fl vmap(grad)", ">=", 20.0),
    Target("gelu(layernorm) fwd+bwd: speed-up of fl.jit over NumPy by hand",
           "elementwise_chain", "backward", "numpy (by hand)", "fl.jit", ">=", 2.0),
    Target("Hessian n=100: fl.jit(hessian) vs NumPy closed form", "hessian",
           "Hessian", "fl.jit(hessian)", None, "<=", 3.0),
)


def _paired_difference(cand, ref):
    return statistics.median(a - b for a, b in zip(cand["per_round_ns"], ref["per_round_ns"]))


def _paired(cand, ref):
    return statistics.median(a / b for a, b in zip(cand["per_round_ns"], ref["per_round_ns"]))


def evaluate(target, tables):
    """``(value, met)`` of one target over a workload's tables; the worst value when the
    substring matches several tables; ``(None, None)`` when nothing matches."""
    values = []
    for title, table in tables.items():
        if target.table not in title or target.candidate not in table:
            continue
        if target.unit == " s":
            values.append(table[target.candidate]["median_ns"] / 1e9)
        elif target.unit == " us":
            values.append(_paired_difference(table[target.candidate],
                                             table[target.reference]) / 1e3)
        elif target.reference is None:
            values.append(table[target.candidate]["ratio"])
        elif target.reference in table:
            values.append(_paired(table[target.candidate], table[target.reference]))
    if not values:
        return None, None
    value = max(values) if target.op == "<=" else min(values)
    return value, value <= target.limit if target.op == "<=" else value >= target.limit


# --------------------------------------------------------------------------------------
# Running the workloads
# --------------------------------------------------------------------------------------
def parse_args(argv=None):
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=1,
                        help="BLAS/OpenMP threads for every library (default 1)")
    parser.add_argument("--quick", action="store_true",
                        help="9 rounds instead of 41: a smoke run, too noisy to quote")
    parser.add_argument("--rounds", type=int, default=None, help="rounds per comparison")
    parser.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                        help="wall (default) or cpu: process CPU time (with --threads 1)")
    parser.add_argument("--malloc", choices=("pinned", "glibc"), default="pinned",
                        help="pinned (default): the same fixed glibc malloc thresholds for "
                             "every candidate; glibc: its adaptive ones (two-speed loops)")
    parser.add_argument("--only", default=None,
                        help=f"comma-separated workloads (default all: {','.join(WORKLOADS)})")
    parser.add_argument("--verbose", "-v", action="store_true",
                        help="show each workload's own output as it runs")
    parser.add_argument("--timeout", type=float, default=1200,
                        help="seconds one workload may run before it is stopped")
    parser.add_argument("--update-readme", action="store_true",
                        help="copy the table into README.md between the benchmark markers")
    args = parser.parse_args(argv)
    names = WORKLOADS if args.only is None else tuple(
        n.strip() for n in args.only.split(",") if n.strip())
    unknown = [n for n in names if n not in WORKLOADS]
    if unknown:
        parser.error(f"--only: unknown workload(s) {unknown}; choose from {list(WORKLOADS)}")
    args.workloads = names
    return args


def passthrough(args):
    flags = ["--json", "--threads", str(args.threads), "--clock", args.clock,
             "--malloc", args.malloc]
    if args.quick:
        flags.append("--quick")
    if args.rounds:
        flags += ["--rounds", str(args.rounds)]
    return flags


def run_workload(name, args):
    """Run one script; ``{"status", "seconds", "note", "json"}`` (json: its tables)."""
    path = os.path.join(RESULTS, f"{name}.json")
    if not os.path.exists(os.path.join(ROOT, "benchmarks", f"{name}.py")):
        return {"status": "skipped", "seconds": 0.0, "note": f"benchmarks/{name}.py is missing"}
    cmd = [sys.executable, "-m", f"benchmarks.{name}", *passthrough(args)]
    start = time.time()
    try:
        proc = subprocess.run(cmd, cwd=ROOT, timeout=args.timeout, text=True,
                              stdout=None if args.verbose else subprocess.PIPE,
                              stderr=None if args.verbose else subprocess.STDOUT)
    except subprocess.TimeoutExpired:
        return {"status": "failed", "seconds": time.time() - start,
                "note": f"stopped after {args.timeout:.0f} s (--timeout)"}
    seconds = time.time() - start
    if proc.returncode != 0:
        tail = (proc.stdout or "").strip().splitlines()[-1:] or ["see --verbose"]
        return {"status": "failed", "seconds": seconds,
                "note": f"exit status {proc.returncode}: {tail[0]}"}
    if not os.path.exists(path) or os.path.getmtime(path) < start:
        return {"status": "failed", "seconds": seconds,
                "note": f"wrote no {os.path.relpath(path, ROOT)}"}
    with open(path) as f:
        return {"status": "ok", "seconds": seconds, "note": "", "json": json.load(f)}


def tables_of(report):
    """A workload's tables, plus the first-call times of ``jit_step`` as a table of its
    own (medians in seconds; the ratio is a quotient of medians, not paired)."""
    tables = dict(report["json"]["tables"])
    fl_first = report["json"].get("first_call_s")
    if fl_first:
        table = {"fl.jit": _single(fl_first["total"] * 1e9, 1.0)}
        jax_first = report["json"].get("jax_first_call_s")
        if jax_first:
            table["jax.jit"] = _single(jax_first["total"] * 1e9,
                                       jax_first["total"] / fl_first["total"])
        tables[FIRST_CALL] = table
    return tables


def _single(ns, ratio):
    return {"median_ns": ns, "q1_ns": None, "q3_ns": None, "ratio": ratio,
            "ratio_q1": None, "ratio_q3": None, "per_round_ns": [ns]}


def rows_of(name, tables):
    """One row per candidate: the table's baseline is the candidate whose every per-round
    ratio is exactly 1 (the ratio of the baseline to itself)."""
    rows = []
    for title, table in tables.items():
        for cand, r in table.items():
            baseline = (r["ratio"] == 1.0 and r["ratio_q1"] in (1.0, None)
                        and r["ratio_q3"] in (1.0, None))
            rows.append({"workload": name, "table": title, "candidate": cand,
                         "median_ns": r["median_ns"], "q1_ns": r["q1_ns"], "q3_ns": r["q3_ns"],
                         "ratio": r["ratio"], "ratio_q1": r["ratio_q1"],
                         "ratio_q3": r["ratio_q3"], "baseline": baseline})
    return rows


def _fmt_time(row):
    if row["table"] == FIRST_CALL:
        return f"{row['median_ns'] / 1e9:.3f} s"
    return _fmt_ns(row["median_ns"])


def _fmt_ratio(row):
    if row["baseline"]:
        return "1 (baseline)"
    if row["ratio_q1"] is None:
        return f"{row['ratio']:.2f}x"
    return f"{row['ratio']:.2f}x ({row['ratio_q1']:.2f}-{row['ratio_q3']:.2f})"


def _verdict(t, value, met):
    """``(met / MISSED / n/a, the number against the limit)`` of one target."""
    if value is None:
        return "n/a", f"{t.label}: not measured in this run"
    return ("met" if met else "MISSED",
            f"{t.label}: {value:.2f}{t.unit} (target {t.op} {t.limit:g}{t.unit})")


# --------------------------------------------------------------------------------------
# The machine
# --------------------------------------------------------------------------------------
def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def blas():
    """The BLAS NumPy loaded (name, version and kernel via threadpoolctl when installed)."""
    try:
        from threadpoolctl import threadpool_info

        for info in threadpool_info():
            if info.get("user_api") == "blas":
                return f"{info['internal_api']} {info['version']} ({info['architecture']} kernel)"
    except ImportError:
        pass
    import numpy as np

    dep = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
    return f"{dep['name']} {dep.get('version', '')}".strip()


def _version(package):
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def machine(args):
    import numpy as np

    return {"cpu": cpu_model(), "cpus": os.cpu_count(), "machine": platform.machine(),
            "platform": platform.platform(), "python": platform.python_version(),
            "numpy": np.__version__, "blas": blas(), "threads": args.threads,
            "clock": args.clock, "quick": args.quick, "rounds": args.rounds,
            "malloc": args.malloc,
            "peers": {p: _version(p) for p in PEERS},
            "date": time.strftime("%Y-%m-%d %H:%M %Z"),
            "load_average_start": os.getloadavg() if hasattr(os, "getloadavg") else None}


def describe(env):
    """The machine and the run in a paragraph (wrapped for the README)."""
    peers = ", ".join(f"{p} {v}" for p, v in env["peers"].items() if v and p != "jaxlib")
    missing = [p for p, v in env["peers"].items() if not v]
    threads = f"{env['threads']} BLAS thread{'s' if env['threads'] != 1 else ''}"
    loads = [f"{env[k][0]:.1f} at {k.rsplit('_', 1)[1]}"
             for k in ("load_average_start", "load_average_end") if env.get(k)]
    text = (f"Measured {env['date']} on {env['cpu']} ({env['cpus']} cores, "
            f"{env['machine']}), {threads}, {CLOCKS[env['clock']]}"
            f"{', --quick (noisy)' if env['quick'] else ''}"
            f"{', glibc malloc thresholds pinned' if env.get('malloc') == 'pinned' else ''}"
            f"; Python {env['python']}, "
            f"NumPy {env['numpy']} with {env['blas']}; peers: {peers or 'none'}"
            f"{f' (not installed: {missing})' if missing else ''}"
            f"{'; load average ' + ', '.join(loads) if loads else ''}.")
    return textwrap.fill(text, 92)


# --------------------------------------------------------------------------------------
# Output
# --------------------------------------------------------------------------------------
def _grouped(rows):
    """``(row, first row of its workload, first row of its table)`` for each row: the
    tables print a workload's name and a table's title once."""
    previous = (None, None)
    for r in rows:
        yield r, r["workload"] != previous[0], (r["workload"], r["table"]) != previous
        previous = (r["workload"], r["table"])


def text_table(rows):
    head = ("workload", "benchmark", "candidate", "median", "ratio vs baseline (IQR)")
    cells = [head]
    for r, first_of_workload, first_of_table in _grouped(rows):
        cells.append((r["workload"] if first_of_workload else "",
                      r["table"] if first_of_table else "",
                      r["candidate"], _fmt_time(r), _fmt_ratio(r)))
    widths = [max(len(c[i]) for c in cells) for i in range(len(head))]
    lines = []
    for i, c in enumerate(cells):
        lines.append("  ".join(c[k].ljust(widths[k]) if k < 3 else c[k].rjust(widths[k])
                               for k in range(len(head))).rstrip())
        if i == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def markdown(env, rows, targets, reports):
    lines = [describe(env), "",
             textwrap.fill("Median time per call; ratio = median over interleaved rounds "
                           "of (candidate time / baseline time in the same round), "
                           "interquartile range in brackets; below 1 is faster than the "
                           "baseline. Compare ratios, not absolute times.", 92), "",
             "| workload | benchmark | candidate | median | ratio vs baseline (IQR) |",
             "|---|---|---|---:|---:|"]
    for r, first_of_workload, first_of_table in _grouped(rows):
        lines.append(f"| {r['workload'] if first_of_workload else ''} | "
                     f"{_md(r['table']) if first_of_table else ''} | {_md(r['candidate'])} | "
                     f"{_fmt_time(r)} | {_fmt_ratio(r)} |")
    if any(r["table"] == FIRST_CALL for r in rows):
        lines += ["", textwrap.fill("The first-call rows are medians over fresh jits, in "
                                    "elapsed seconds; their ratio is a quotient of medians, "
                                    "not paired.", 92)]
    lines += ["", "Targets:", ""]
    lines += ["- **{}** {}".format(*_verdict(t, v, m)) for t, v, m in targets]
    notes = [f"- {n}: {rep['status']} ({rep['note']})" for n, rep in reports.items()
             if rep["status"] != "ok"]
    if notes:
        lines += ["", "Not in this table:", "", *notes]
    return "\n".join(lines) + "\n"


def _md(text):
    """``text`` safe in a markdown table cell (``*`` would start emphasis)."""
    return text.replace("|", "\\|").replace("*", "\\*")


def update_readme(text):
    with open(README) as f:
        readme = f.read()
    start, end = readme.find(MARKERS[0]), readme.find(MARKERS[1])
    if start < 0 or end < start:
        print(f"README.md has no {MARKERS[0]} ... {MARKERS[1]} markers: not updated")
        return
    readme = readme[:start + len(MARKERS[0])] + "\n" + text + readme[end:]
    with open(README + ".tmp", "w") as f:
        f.write(readme)
    os.replace(README + ".tmp", README)
    print("updated README.md")


def write(name, text):
    os.makedirs(RESULTS, exist_ok=True)
    path = os.path.join(RESULTS, name)
    with open(path + ".tmp", "w") as f:
        f.write(text)
    os.replace(path + ".tmp", path)
    print(f"wrote {os.path.relpath(path, ROOT)}")


def run_all(args):
    """Run the selected workloads in turn: ``(reports by name, table rows)``."""
    reports, rows = {}, []
    for name in args.workloads:
        print(f"running {name} ...", end=" ", flush=True)
        reports[name] = report = run_workload(name, args)
        note = f": {report['note']}" if report["note"] else ""
        print(f"{report['status']} ({report['seconds']:.0f} s){note}", flush=True)
        if report["status"] == "ok":
            report["tables"] = tables_of(report)
            rows += rows_of(name, report["tables"])
    return reports, rows


def check_targets(reports):
    """``(target, value, met)`` for the targets of the workloads that were run."""
    return [(t, *evaluate(t, reports[t.workload].get("tables", {})))
            for t in TARGETS if t.workload in reports]


def save(args, env, reports, rows, targets):
    suite = {"environment": env,
             "workloads": {n: {k: v for k, v in rep.items() if k not in ("json", "tables")}
                           for n, rep in reports.items()},
             "rows": rows,
             "targets": [{"label": t.label, "workload": t.workload, "op": t.op,
                          "limit": t.limit, "unit": t.unit.strip(), "value": v, "met": m}
                         for t, v, m in targets]}
    write("suite.json", json.dumps(suite, indent=2) + "\n")
    md = markdown(env, rows, targets, reports)
    write("suite.md", md)
    if args.update_readme:
        update_readme(md)


def main(argv=None):
    args = parse_args(argv)
    env = machine(args)
    print(describe(env))
    reports, rows = run_all(args)
    env["load_average_end"] = os.getloadavg() if hasattr(os, "getloadavg") else None
    targets = check_targets(reports)
    print()
    print(text_table(rows))
    print("\ntargets:")
    for t, value, met in targets:
        print("  {:<6} {}".format(*_verdict(t, value, met)))
    print()
    if args.only is None:
        save(args, env, reports, rows, targets)
    else:  # the saved table stays one whole run
        print("--only: results/suite.json, suite.md and README.md left as they were")
    return 0 if all(rep["status"] != "failed" for rep in reports.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
