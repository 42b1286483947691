"""NumPy interop: plain ``numpy`` calls on our arrays and tracers run the fnp equivalent.

``Array`` and ``Tracer`` implement ``__array_ufunc__`` / ``__array_function__`` by calling
the two functions below, so unmodified NumPy code can be transformed. A NumPy function
without an fnp equivalent raises a TypeError naming it: it is never run on a silently
materialized constant.
"""

from __future__ import annotations

import functorch_lite.numpy as fnp

# ufunc.reduce / ufunc.accumulate -> the fnp reduction
_REDUCE = {"add": "sum", "multiply": "prod", "maximum": "max", "minimum": "min",
           "logical_and": "all", "logical_or": "any"}
_ACCUMULATE = {"add": "cumsum", "multiply": "cumprod"}


def _no_out(name, kwargs):
    out = kwargs.pop("out", None)
    outs = out if isinstance(out, tuple) else (out,)
    if any(o is not None for o in outs):
        raise TypeError(
            f"numpy.{name}(..., out=...) cannot write into a functorch_lite array: arrays are "
            f"immutable. Use the returned value instead (x = numpy.{name}(...)).")


def dispatch_ufunc(ufunc, method, inputs, kwargs):
    name = ufunc.__name__
    _no_out(name, kwargs)
    if method == "__call__":
        fn = getattr(fnp, name, None)
        if fn is None:
            raise TypeError(f"numpy.{name} has no functorch_lite.numpy equivalent yet, so it "
                            "cannot run on traced values; write it with fnp functions")
        if kwargs.pop("dtype", None) is not None or kwargs.pop("where", True) is not True:
            raise TypeError(f"numpy.{name}: the dtype= and where= arguments are not supported "
                            "on functorch_lite arrays")
        return fn(*inputs, **kwargs)
    if method == "reduce" and name in _REDUCE:
        return getattr(fnp, _REDUCE[name])(*inputs, **kwargs)
    if method == "accumulate" and name in _ACCUMULATE:
        axis = kwargs.pop("axis", 0)
        return getattr(fnp, _ACCUMULATE[name])(*inputs, axis=axis, **kwargs)
    if method == "outer":
        a, b = inputs
        a = fnp.asarray(a)
        return getattr(fnp, name)(fnp.reshape(a, a.shape + (1,) * fnp.ndim(b)), b)
    if method == "at":
        raise TypeError(f"numpy.{name}.at updates in place; functorch_lite arrays are "
                        f"immutable. Use x.at[idx].add(v) (or .set/.multiply/.min/.max).")
    raise TypeError(f"numpy.{name}.{method} is not supported on functorch_lite arrays")


def dispatch_function(func, args, kwargs):
    module = func.__module__ or "numpy"
    namespace = fnp
    for part in module.split(".")[1:]:
        if part.startswith("_"):
            break
        namespace = getattr(namespace, part, None)
        if namespace is None:
            break
    fn = getattr(namespace, func.__name__, None) if namespace is not None else None
    if fn is None:
        raise TypeError(f"{module}.{func.__name__} has no functorch_lite.numpy equivalent, so "
                        "it cannot run on functorch_lite arrays or traced values; use fnp "
                        "functions, or convert explicitly with np.asarray(x) outside any "
                        "transform")
    return fn(*args, **kwargs)
