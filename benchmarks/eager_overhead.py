"""Eager overhead: one ``fnp`` call against the same NumPy call, small and large arrays.

With no transform active an ``fnp`` function should cost little more than NumPy: the
issue's targets are <= 2.0x NumPy's time at 10 elements (where the library's Python
overhead is everything) and <= 1.02x at 1e6 elements (where it should vanish).

Also measures what an exception boundary (``functorch_lite._traceback.api_boundary``)
would add per call if it wrapped every ``fnp`` function.

Run: ``python -m benchmarks.eager_overhead [--threads N] [--json] [--quick]``
"""

from benchmarks import _timing

ARGS = _timing.setup("eager_overhead", description=__doc__)

import numpy as np  # noqa: E402  (after the thread count is fixed)

import functorch_lite.numpy as fnp  # noqa: E402
from functorch_lite._traceback import api_boundary  # noqa: E402

SIZES = (10, 1_000_000)
TARGETS = {10: 2.0, 1_000_000: 1.02}


def op_candidates(n):
    """``{op: {candidate: fn}}`` for one array size; NumPy first (the baseline)."""
    rng = np.random.default_rng(0)
    x, y = (rng.standard_normal(n).astype(np.float32) for _ in range(2))
    a, b = fnp.asarray(x), fnp.asarray(y)
    return {
        "sin": {"numpy": lambda: np.sin(x), "functorch_lite": lambda: fnp.sin(a)},
        "add": {"numpy": lambda: np.add(x, y), "functorch_lite": lambda: fnp.add(a, b)},
        "a + b": {"numpy": lambda: x + y, "functorch_lite": lambda: a + b},
        "sum": {"numpy": lambda: x.sum(), "functorch_lite": lambda: fnp.sum(a)},
    }


def generic_boundary(fn):
    """The obvious ``*args, **kwargs`` wrapper, for comparison with ``api_boundary``."""
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except Exception:
            raise
    return wrapper


def boundary_candidates():
    """The per-call price of an exception boundary around an ``fnp`` function."""
    a = fnp.asarray(np.ones(10, np.float32))
    cands = {}
    for name, fn in (("sin", fnp.sin), ("sum", fnp.sum)):
        wrapped, generic = api_boundary(fn), generic_boundary(fn)
        cands[f"fnp.{name}, 10 elements"] = {
            f"fnp.{name}": lambda fn=fn: fn(a),
            f"api_boundary(fnp.{name})": lambda wrapped=wrapped: wrapped(a),
            "*args/**kwargs wrapper": lambda generic=generic: generic(a),
        }
    return cands


def main():
    _timing.print_header(ARGS, "Eager overhead: functorch_lite.numpy vs NumPy (float32)")
    tables, verdicts = {}, []
    for n in SIZES:
        for op, cands in op_candidates(n).items():
            title = f"{op}, {n:,} elements"
            res = _timing.compare(cands, baseline="numpy", batch_ms=2.0 if n < 1000 else 8.0)
            _timing.print_table(title, res, baseline="numpy")
            tables[title] = res
            ratio = res["functorch_lite"].ratio
            verdicts.append((title, ratio, TARGETS[n]))
    for op, cands in boundary_candidates().items():
        baseline = next(iter(cands))
        res = _timing.compare(cands, baseline=baseline)
        title = f"exception boundary cost: {op}"
        _timing.print_table(title, res, baseline=baseline)
        for name in list(cands)[1:]:
            extra_ns = _timing.paired_difference(res[name], res[baseline])
            print(f"  -> {name} adds {extra_ns:.0f} ns per call")
        tables[title] = res

    print("\nTargets (functorch_lite / NumPy):")
    for title, ratio, target in verdicts:
        status = "ok  " if ratio <= target else "MISS"
        print(f"  {status} {title:<28} {ratio:6.3f}x  (target <= {target}x)")
    _timing.save_json(ARGS, tables, {"targets": {str(n): t for n, t in TARGETS.items()},
                                     "ratios": {t: r for t, r, _ in verdicts}})


if __name__ == "__main__":
    main()
