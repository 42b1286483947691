"""A tiny harness that times callables *interleaved* and reports medians and ratios.

This machine's speed drifts 2-3x over a minute, so timing A for ten seconds and then B for
ten seconds compares the machine with itself. Instead every round times one batch of each
candidate in turn (rotating who goes first), many rounds over. A candidate's ratio to the
baseline is the median over rounds of (its time / the baseline's time *in that round*):
batches of one round run back to back, so the drift cancels in each quotient.

The per-call cost of the timing loop itself (a Python ``for`` and a call of an empty
function, ~30-50 ns) is measured the same way and subtracted, so ratios of very cheap
calls are not pulled towards 1.

Usage from a benchmark script (numpy must not be imported before ``setup``)::

    from benchmarks import _timing
    ARGS = _timing.setup("my_benchmark")       # parses --threads/--json/--quick
    import numpy as np                         # noqa: E402  (after the thread count)
    results = _timing.compare({"numpy": f, "functorch_lite": g}, baseline="numpy")
    _timing.print_table("title", results, baseline="numpy")
    _timing.save_json(ARGS, {"title": results})
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from dataclasses import asdict, dataclass, field

__all__ = ["setup", "compare", "paired_ratio", "paired_difference", "print_table", "print_header",
           "save_json",
           "Result", "torch_threads"]

_THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
_RESULTS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")
_ROUNDS = 41  # set by ``setup(--rounds/--quick)``
_CLOCKS = {"wall": time.perf_counter_ns, "cpu": time.process_time_ns}
_clock = _CLOCKS["wall"]  # set by ``setup(--clock)``


@dataclass
class Result:
    """One candidate's timings over the rounds (all times net of the loop's own cost)."""

    name: str
    median_ns: float   # median time per call
    q1_ns: float       # first and third quartiles of the per-round times: the noise
    q3_ns: float
    ratio: float       # median over rounds of time / baseline's time in the same round
    ratio_q1: float
    ratio_q3: float
    calls_per_batch: int
    rounds: int
    per_round_ns: list = field(default_factory=list, repr=False)


# --------------------------------------------------------------------------------------
# Command line and thread count
# --------------------------------------------------------------------------------------
def setup(name, argv=None, description=None):
    """Parse the common flags and fix the BLAS/OpenMP thread count.

    Must run before numpy (or torch, jax) is imported: they read the thread count from
    the environment when they load.

    Returns:
        The parsed arguments: ``threads``, ``json`` (bool), ``quick`` (bool), ``name``.
    """
    parser = argparse.ArgumentParser(prog=f"python -m benchmarks.{name}",
                                     description=description,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=1,
                        help="BLAS/OpenMP threads for every library (default 1)")
    parser.add_argument("--json", action="store_true",
                        help=f"also write benchmarks/results/{name}.json")
    parser.add_argument("--quick", action="store_true",
                        help="9 rounds instead of 41: a smoke run, too noisy to quote")
    parser.add_argument("--rounds", type=int, default=None,
                        help="rounds per comparison (default 41, or 9 with --quick)")
    parser.add_argument("--clock", choices=sorted(_CLOCKS), default="wall",
                        help="wall: elapsed time (default); cpu: CPU time of the whole "
                             "process, which ignores time spent waiting for a core on a "
                             "busy machine (with --threads 1 only: it adds up threads)")
    parser.add_argument("--malloc", choices=("pinned", "glibc"), default="pinned",
                        help="pinned (default): fix glibc's mmap and trim thresholds for "
                             "every candidate alike; glibc: leave its adaptive thresholds, "
                             "under which a loop of 128 KiB arrays flips between two speeds")
    args = parser.parse_args(argv)
    args.name = name
    args.malloc_pinned = args.malloc == "pinned" and _pin_malloc()
    if "numpy" in sys.modules:
        print("warning: numpy was imported before the thread count was set; "
              "--threads may not take effect", file=sys.stderr)
    for var in _THREAD_VARS:
        os.environ[var] = str(args.threads)
    global _ROUNDS, _clock
    _ROUNDS = args.rounds or (9 if args.quick else 41)
    _clock = _CLOCKS[args.clock]
    return args


def _pin_malloc():
    """Fix glibc malloc's mmap threshold (32 MiB) and trim threshold (64 MiB).

    By default glibc adapts both as a process runs: the same NumPy loop allocating and
    freeing 128 KiB arrays then runs either from the heap or through fresh mmaps whose
    pages fault on first touch, 1.5-1.8x slower, depending on what ran before. Pinned,
    every candidate allocates from the heap in every round. Returns whether it took effect
    (False off glibc).
    """
    import ctypes

    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return False
    m_trim_threshold, m_mmap_threshold = -1, -3  # from glibc's malloc.h
    return bool(libc.mallopt(m_mmap_threshold, 32 << 20)
                and libc.mallopt(m_trim_threshold, 64 << 20))


def torch_threads(torch, n):
    """Give PyTorch the same thread count as the BLAS libraries (it has its own pool)."""
    torch.set_num_threads(n)
    try:
        torch.set_num_interop_threads(n)
    except RuntimeError:  # settable only once, before any parallel work
        pass


# --------------------------------------------------------------------------------------
# Timing
# --------------------------------------------------------------------------------------
def _empty():
    return None


def _time_batch(fn, n):
    clock = _clock
    it = range(n)
    t0 = clock()
    for _ in it:
        fn()
    return clock() - t0


def _calls_per_batch(fn, target_ns):
    """Calls per batch so that one batch takes about ``target_ns`` (at least 1)."""
    n = 1
    while True:
        elapsed = _time_batch(fn, n)
        if elapsed >= target_ns / 4 or n >= 1 << 20:
            return max(1, int(n * target_ns / max(elapsed, 1)))
        n *= 4


def _quartiles(values):
    if len(values) < 2:
        return values[0], values[0], values[0]
    q1, q2, q3 = statistics.quantiles(values, n=4)
    return q1, q2, q3


def compare(candidates, baseline, *, rounds=None, batch_ms=2.0, warmup=3):
    """Time zero-argument callables interleaved; return ``{name: Result}``.

    Args:
        candidates: ``{name: fn}``; each ``fn()`` does one unit of work.
        baseline: the name ratios are taken against.
        rounds: rounds of one batch per candidate (default: from ``--rounds``, 41).
        batch_ms: target duration of one batch, milliseconds.
        warmup: untimed calls of each candidate first (caches, lazy imports, JIT warm-up).

    Returns:
        One :class:`Result` per candidate, in the order given.
    """
    if baseline not in candidates:
        raise ValueError(f"baseline {baseline!r} is not one of {list(candidates)}")
    rounds = rounds or _ROUNDS
    fns = dict(candidates)
    fns["<empty call>"] = _empty
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    number = {name: _calls_per_batch(fn, batch_ms * 1e6) for name, fn in fns.items()}
    names = list(fns)
    per_call = {name: [] for name in names}
    for r in range(rounds):
        start = r % len(names)
        for name in names[start:] + names[:start]:
            per_call[name].append(_time_batch(fns[name], number[name]) / number[name])

    loop_ns = statistics.median(per_call.pop("<empty call>"))
    net = {name: [max(t - loop_ns, 1e-3) for t in times] for name, times in per_call.items()}
    results = {}
    for name in candidates:
        q1, median, q3 = _quartiles(net[name])
        ratios = [t / b for t, b in zip(net[name], net[baseline], strict=True)]
        r1, ratio, r3 = _quartiles(ratios)
        results[name] = Result(name, median, q1, q3, ratio, r1, r3, number[name], rounds,
                               net[name])
    return results


def paired_difference(a, b):
    """Median over rounds of ``a``'s time - ``b``'s time in the same round, ns per call."""
    return statistics.median(x - y for x, y in zip(a.per_round_ns, b.per_round_ns,
                                                   strict=True))


def paired_ratio(a, b):
    """Median over rounds of ``a``'s time / ``b``'s time in the same round (two Results
    from one :func:`compare`)."""
    return statistics.median(x / y for x, y in zip(a.per_round_ns, b.per_round_ns,
                                                   strict=True))


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
    """Print median time per call, its interquartile range, and the ratio to ``baseline``
    (median of the per-round ratios, with their interquartile range)."""
    width = max(len(n) for n in results) + 2
    print(f"\n{title}")
    print(f"  {'candidate':<{width}}{'median/call':>12}{'IQR of times':>24}"
          f"{'ratio vs ' + baseline:>{max(26, len(baseline) + 12)}}")
    for name, res in results.items():
        spread = f"{_fmt_ns(res.q1_ns)} - {_fmt_ns(res.q3_ns)}"
        ratio = f"{res.ratio:.3f}x ({res.ratio_q1:.2f}-{res.ratio_q3:.2f})"
        print(f"  {name:<{width}}{_fmt_ns(res.median_ns):>12}{spread:>24}"
              f"{ratio:>{max(26, len(baseline) + 12)}}")


def environment(args):
    """What the numbers depend on: threads, versions, machine."""
    import numpy as np

    return {"threads": args.threads, "clock": args.clock, "python": platform.python_version(),
            "numpy": np.__version__, "machine": platform.machine(),
            "platform": platform.platform(), "cpus": os.cpu_count(),
            "load_average": os.getloadavg() if hasattr(os, "getloadavg") else None,
            "quick": args.quick, "malloc_pinned": getattr(args, "malloc_pinned", False),
            "time": time.strftime("%Y-%m-%dT%H:%M:%S")}


def print_header(args, title):
    env = environment(args)
    load = env["load_average"]
    print(f"{title}\n  threads={env['threads']} (OMP/OPENBLAS/MKL_NUM_THREADS), "
          f"{env['clock']} clock, "
          f"python {env['python']}, numpy {env['numpy']}, {env['cpus']} cpus"
          f"{f', load average {load[0]:.1f}' if load else ''}"
          f"{', QUICK (noisy)' if args.quick else ''}"
          f"{', malloc thresholds pinned' if env['malloc_pinned'] else ''}")
    print("  medians over interleaved rounds; ratio = median of per-round ratios "
          "(IQR in brackets).\n  Compare ratios, not absolute times.")


def save_json(args, tables, extra=None):
    """Write ``benchmarks/results/<name>.json`` when ``--json`` was given.

    Args:
        args: the namespace from :func:`setup`.
        tables: ``{table title: {candidate: Result}}``.
        extra: more JSON-able data to store (targets, verdicts).
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
