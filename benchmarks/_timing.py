"""A tiny harness that times callables *interleaved* and reports medians and ratios.

This machine's speed drifts 2-3x over a minute, so timing A for ten seconds and then B for
ten seconds compares the machine with itself. Instead every round times one batch of each
candidate in turn (rotating who goes first), many rounds over, and the median per-call
time of each candidate is compared with the baseline's from the same rounds.

The per-call cost of the timing loop itself (a Python ``for`` and a call of an empty
function, ~30-50 ns) is measured the same way and subtracted, so ratios of very cheap
calls are not pulled towards 1.

Usage from a benchmark script (numpy must not be imported before ``setup``)::

    from benchmarks import _timing
    args = _timing.setup("my_benchmark")      # parses --threads/--json/--quick
    import numpy as np                        # noqa: E402  (after the thread count)
    results = _timing.compare({"numpy": f, "functorch_lite": g}, baseline="numpy")
    _timing.print_table("title", results, baseline="numpy")
    _timing.save_json(args, {"title": results})
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from dataclasses import asdict, dataclass

__all__ = ["setup", "compare", "print_table", "save_json", "Result", "Skip"]

_THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
_RESULTS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")
_QUICK = False  # set by ``setup(--quick)``: fewer rounds


class Skip(Exception):
    """Raised by a benchmark's setup when a candidate's library is not importable."""


@dataclass
class Result:
    """Median time per call of one candidate, with its spread over the rounds."""

    name: str
    median_ns: float
    q1_ns: float  # first and third quartiles of the per-round times: the noise
    q3_ns: float
    calls_per_batch: int
    rounds: int


# --------------------------------------------------------------------------------------
# Command line and thread count
# --------------------------------------------------------------------------------------
def setup(name, argv=None, description=None):
    """Parse the common flags and fix the BLAS/OpenMP thread count.

    Must run before numpy (or torch, jax) is imported: the thread count is read from the
    environment when those libraries load.

    Returns:
        The parsed arguments: ``threads``, ``json`` (bool), ``quick`` (bool), ``name``.
    """
    parser = argparse.ArgumentParser(prog=f"python -m benchmarks.{name}",
                                     description=description)
    parser.add_argument("--threads", type=int, default=1,
                        help="BLAS/OpenMP threads for every library (default 1)")
    parser.add_argument("--json", action="store_true",
                        help=f"also write benchmarks/results/{name}.json")
    parser.add_argument("--quick", action="store_true",
                        help="fewer rounds: a smoke run, too noisy to quote")
    args = parser.parse_args(argv)
    args.name = name
    if "numpy" in sys.modules:
        print("warning: numpy was imported before the thread count was set; "
              "--threads may not take effect", file=sys.stderr)
    for var in _THREAD_VARS:
        os.environ[var] = str(args.threads)
    global _QUICK
    _QUICK = args.quick
    return args


def torch_threads(torch, n):
    """Give PyTorch the same thread count as the BLAS libraries (it has its own pool)."""
    torch.set_num_threads(n)
    try:
        torch.set_num_interop_threads(n)
    except RuntimeError:  # only settable once, before any parallel work
        pass


# --------------------------------------------------------------------------------------
# Timing
# --------------------------------------------------------------------------------------
def _empty():
    return None


def _time_batch(fn, n):
    perf = time.perf_counter_ns
    it = range(n)
    t0 = perf()
    for _ in it:
        fn()
    return perf() - t0


def _calls_per_batch(fn, target_ns):
    """Calls per batch so that one batch takes about ``target_ns`` (at least 1)."""
    n = 1
    while True:
        elapsed = _time_batch(fn, n)
        if elapsed >= target_ns / 4 or n >= 1 << 20:
            return max(1, int(n * target_ns / max(elapsed, 1)))
        n *= 4


def compare(candidates, baseline=None, *, rounds=None, batch_ms=2.0, warmup=3):
    """Time zero-argument callables interleaved; return ``{name: Result}``.

    Args:
        candidates: ``{name: fn}``; each ``fn()`` does one unit of work.
        baseline: the name ratios are taken against (only used for ordering checks).
        rounds: rounds of one batch per candidate (default 41; 9 with ``--quick``).
        batch_ms: target duration of one batch, milliseconds.
        warmup: untimed calls of each candidate first (caches, lazy imports, JIT warm-up).

    Returns:
        One :class:`Result` per candidate, times net of the loop's own per-call cost.
    """
    if baseline is not None and baseline not in candidates:
        raise ValueError(f"baseline {baseline!r} is not one of {list(candidates)}")
    rounds = rounds or (9 if _QUICK else 41)
    fns = dict(candidates)
    fns["<empty call>"] = _empty
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    target_ns = batch_ms * 1e6
    number = {name: _calls_per_batch(fn, target_ns) for name, fn in fns.items()}
    names = list(fns)
    per_call = {name: [] for name in names}
    for r in range(rounds):
        start = r % len(names)
        for name in names[start:] + names[:start]:
            per_call[name].append(_time_batch(fns[name], number[name]) / number[name])
    loop_ns = statistics.median(per_call.pop("<empty call>"))
    results = {}
    for name in candidates:
        times = sorted(t - loop_ns for t in per_call[name])
        q = statistics.quantiles(times, n=4) if len(times) > 1 else [times[0]] * 3
        results[name] = Result(name, q[1], q[0], q[2], number[name], rounds)
    return results


# --------------------------------------------------------------------------------------
# Reporting
# --------------------------------------------------------------------------------------
def _fmt_ns(ns):
    if ns >= 1e6:
        return f"{ns / 1e6:.3f} ms"
    if ns >= 1e3:
        return f"{ns / 1e3:.2f} us"
    return f"{ns:.0f} ns"


def print_table(title, results, baseline):
    """Print median time per call, the interquartile range and the ratio to ``baseline``."""
    base = results[baseline].median_ns
    width = max(len(n) for n in results) + 2
    ratio_head = f"vs {baseline}"
    print(f"\n{title}")
    print(f"  {'candidate':<{width}}{'median/call':>13}{'IQR (q1 - q3)':>25}  {ratio_head}")
    for name, res in results.items():
        ratio = res.median_ns / base if base > 0 else float("nan")
        spread = f"{_fmt_ns(res.q1_ns)} - {_fmt_ns(res.q3_ns)}"
        print(f"  {name:<{width}}{_fmt_ns(res.median_ns):>13}{spread:>25}  "
              f"{ratio:>{len(ratio_head) - 1}.3f}x")


def environment(args):
    """What the numbers depend on: threads, versions, machine."""
    import numpy as np

    return {"threads": args.threads, "python": platform.python_version(),
            "numpy": np.__version__, "machine": platform.machine(),
            "processor": platform.processor() or platform.platform(),
            "cpus": os.cpu_count(), "quick": args.quick,
            "time": time.strftime("%Y-%m-%dT%H:%M:%S")}


def print_header(args, title):
    env = environment(args)
    print(f"{title}\n  threads={env['threads']} (OMP/OPENBLAS/MKL_NUM_THREADS), "
          f"python {env['python']}, numpy {env['numpy']}, {env['cpus']} cpus"
          f"{', QUICK (noisy)' if args.quick else ''}")
    print("  times are medians over interleaved rounds; compare ratios, not absolute times")


def save_json(args, tables, extra=None):
    """Write ``benchmarks/results/<name>.json`` when ``--json`` was given.

    Args:
        args: the namespace from :func:`setup`.
        tables: ``{table title: {candidate: Result}}``.
        extra: more JSON-able data to store (targets, notes).
    """
    if not args.json:
        return None
    os.makedirs(_RESULTS_DIR, exist_ok=True)
    path = os.path.join(_RESULTS_DIR, f"{args.name}.json")
    payload = {"benchmark": args.name, "environment": environment(args),
               "tables": {title: {n: asdict(r) for n, r in res.items()}
                          for title, res in tables.items()}}
    if extra:
        payload.update(extra)
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(payload, f, indent=2)
    os.replace(tmp, path)
    print(f"\nwrote {os.path.relpath(path)}")
    return path
