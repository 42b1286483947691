"""A strict array backend: NumPy arrays that only compute when asked through ``xp``.

``StrictArray`` is an ndarray whose NumPy functions and ufuncs refuse to run unless they
were called through ``strict_xp`` (the namespace a primitive's impl gets as ``xp``), or
through the array's own methods and operators (which dispatch on the array's type, as
they would on a CuPy array). So an impl that calls ``np.something(buffer)`` directly, which
would break on CuPy, raises ``StrictBackendError`` naming the function. Results stay
``StrictArray``: an impl that builds its result with plain NumPy returns a plain ndarray,
which :func:`strict_backend` also reports.

Usage::

    with strict_backend():
        out = fnp.sin(fl.Array(as_strict(np.ones(3))))  # every primitive gets strict_xp
"""

from __future__ import annotations

import contextlib
import sys
import threading
import types

import numpy as np

from functorch_lite import core

__all__ = ["StrictArray", "StrictBackendError", "strict_xp", "as_strict", "to_plain",
           "strict_backend"]


class StrictBackendError(AssertionError):
    """NumPy was called directly on a buffer, bypassing the backend namespace ``xp``."""


class _Permission(threading.local):
    depth = 0


_permission = _Permission()


@contextlib.contextmanager
def _permitted():
    _permission.depth += 1
    try:
        yield
    finally:
        _permission.depth -= 1


def _unwrap(value):
    if isinstance(value, StrictArray):
        return np.ndarray.view(value, np.ndarray)
    if type(value) in (list, tuple):
        return type(value)(_unwrap(v) for v in value)
    return value


def _wrap(value):
    if isinstance(value, StrictArray):
        return value
    if isinstance(value, np.ndarray):
        return value.view(StrictArray)
    if isinstance(value, np.generic):  # a backend returns 0-d arrays, as CuPy does
        return np.asarray(value).view(StrictArray)
    if isinstance(value, tuple) and hasattr(value, "_fields"):  # namedtuple results
        return type(value)(*(_wrap(v) for v in value))
    if type(value) in (list, tuple):
        return type(value)(_wrap(v) for v in value)
    return value


def _call(func, args, kwargs):
    """Run a NumPy function on unwrapped arguments; wrap what it returns."""
    out = kwargs.get("out")
    with _permitted():
        result = func(*_unwrap(args), **{k: _unwrap(v) for k, v in kwargs.items()})
    if out is not None:
        # In-place results are the caller's own (strict) output buffers.
        if isinstance(out, tuple):
            return out[0] if len(out) == 1 else out
        return out
    return _wrap(result)


# Functions that only read metadata (shape, dtype) are fine on any backend.
_METADATA = {np.shape, np.ndim, np.size, np.result_type, np.can_cast, np.iscomplexobj,
             np.isrealobj}


class StrictArray(np.ndarray):
    def get(self):
        """A plain NumPy copy (what ``cupy.ndarray.get`` gives: the host's array)."""
        return np.array(np.ndarray.view(self, np.ndarray))

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        if not _permission.depth:
            raise StrictBackendError(
                f"numpy.{ufunc.__name__}{'' if method == '__call__' else '.' + method} was "
                "called directly on a buffer; an impl must call it through its xp argument")
        return _call(getattr(ufunc, method), inputs, kwargs)

    def __array_function__(self, func, types, args, kwargs):
        if not _permission.depth and func not in _METADATA:
            raise StrictBackendError(
                f"numpy.{func.__name__} was called directly on a buffer; an impl must call "
                "it through its xp argument")
        return _call(func, args, kwargs)


def _method(name):
    base = getattr(np.ndarray, name)

    def method(self, *args, **kwargs):
        with _permitted():
            result = base(self, *_unwrap(args), **{k: _unwrap(v) for k, v in kwargs.items()})
        return result if result is NotImplemented else _wrap(result)

    method.__name__ = name
    return method


# An array's own methods and operators are backend-generic (CuPy has the same), so they
# may compute; numpy.* functions may not.
_OPERATORS = [
    f"__{op}__" for base in ("add", "sub", "mul", "truediv", "floordiv", "mod", "pow",
                             "matmul", "and", "or", "xor", "lshift", "rshift", "divmod")
    for op in (base, "r" + base, "i" + base)
] + ["__neg__", "__pos__", "__abs__", "__invert__", "__eq__", "__ne__", "__lt__", "__le__",
     "__gt__", "__ge__", "__getitem__", "__setitem__", "__bool__", "__float__", "__int__",
     "__index__", "__complex__", "__len__", "__iter__", "__repr__", "__str__", "__format__"]
# ``view`` stays NumPy's own: it computes nothing, and view(np.ndarray) must stay plain.
_METHODS = [name for name in dir(np.ndarray) if not name.startswith("_") and name != "view"
            and callable(getattr(np.ndarray, name))]
for _name in _OPERATORS + _METHODS:
    if hasattr(np.ndarray, _name):
        setattr(StrictArray, _name, _method(_name))


class _StrictFunction:
    """A NumPy function or ufunc seen through ``strict_xp`` (ufunc methods included)."""

    def __init__(self, func):
        self._func = func
        self.__name__ = getattr(func, "__name__", type(func).__name__)

    def __call__(self, *args, **kwargs):
        return _call(self._func, args, kwargs)

    def __getattr__(self, name):  # ufunc.at, .reduce, .accumulate, .outer
        attr = getattr(self._func, name)
        return _StrictFunction(attr) if callable(attr) else attr


class _StrictNamespace:
    """``numpy`` seen through a backend boundary: functions compute on StrictArrays."""

    def __init__(self, module):
        self._module = module
        self.__name__ = f"strict_{module.__name__}"

    def __getattr__(self, name):
        attr = getattr(self._module, name)
        if isinstance(attr, types.ModuleType):
            return _StrictNamespace(attr)
        if isinstance(attr, type) or not callable(attr):
            return attr  # dtypes, classes and constants are the same on every backend
        return _StrictFunction(attr)


strict_xp = _StrictNamespace(np)


def as_strict(x):
    return np.asarray(x).view(StrictArray)


def to_plain(x):
    """A plain ndarray of an Array, a StrictArray or an ndarray."""
    buf = x._buf if isinstance(x, core.Array) else x
    return np.ndarray.view(buf, np.ndarray) if isinstance(buf, StrictArray) else np.asarray(buf)


_PY_SCALARS = (bool, int, float, complex)
_wrap_result = core._wrap_result


def _strict_result(prim, out, args):
    """An impl's result as Arrays; every buffer must still be a StrictArray."""
    if type(out) is tuple:
        return tuple(_strict_result(prim, o, args) for o in out)
    if not isinstance(out, StrictArray):
        raise StrictBackendError(
            f"primitive {prim.name} returned a {type(out).__name__}, not a buffer of its "
            "backend: its impl computed outside xp (np.asarray, np.empty, a Python scalar...)")
    if out.ndim == 0 and all(type(a) in _PY_SCALARS for a in args):
        # Python scalars alone give a default-typed array, as in core._wrap_result.
        plain = _wrap_result(np.ndarray.view(out, np.ndarray)[()], args)
        return core.Array(np.ndarray.view(plain._buf, StrictArray))
    return core.Array(out)


def _make_eager_apply(reject_numpy_operands):
    def strict_eager_apply(prim, args, params):
        """core.eager_apply with ``xp = strict_xp``, checking what the impl gets and returns."""
        bufs = [a._buf if type(a) is core.Array else
                a if isinstance(a, StrictArray) else core.to_buffer(a) for a in args]
        for i, buf in enumerate(bufs):
            if type(buf) is not np.ndarray:
                continue
            if reject_numpy_operands and buf.ndim > 0:  # 0-d ones may join (core.xp_of)
                raise StrictBackendError(
                    f"primitive {prim.name}: operand {i} ({core._short_aval(buf)}) is a NumPy "
                    "array made outside the backend (by fnp.zeros, fnp.arange, fnp.asarray(0.0)"
                    "...); on a GPU it is a CPU array mixed into a CUDA computation. Create it "
                    "like its operands (e.g. zeros_like) or keep a Python scalar")
            bufs[i] = buf.view(StrictArray)  # a constant: let it join the computation
        return _strict_result(prim, prim.impl(strict_xp, *bufs, **params), args)
    return strict_eager_apply


def _xp_of_buffer(buf):
    return strict_xp


def _xp_of(bufs):
    return strict_xp


@contextlib.contextmanager
def strict_backend(reject_numpy_operands=False):
    """Make every primitive (and library code asking for a buffer's namespace) use
    ``strict_xp``, and check that primitives return strict buffers.

    With ``reject_numpy_operands``, a primitive given a plain NumPy array with dimensions
    (a constant made by a creation function, which lives on the CPU) raises too: on a
    GPU ``core.xp_of`` rejects that mix of devices. Otherwise such constants join the
    strict computation.
    """
    saved = []

    def patch(obj, name, value):
        saved.append((obj, name, getattr(obj, name)))
        setattr(obj, name, value)

    # With a GPU "seen", the eager fast paths of fnp defer to bind instead of calling NumPy.
    patch(core.backends, "gpu_seen", True)
    replacements = {core.eager_apply: _make_eager_apply(reject_numpy_operands),
                    core.xp_of: _xp_of, core.xp_of_buffer: _xp_of_buffer}
    for module in list(sys.modules.values()):
        if not getattr(module, "__name__", "").startswith("functorch_lite"):
            continue
        for name in ("eager_apply", "xp_of", "xp_of_buffer"):
            original = getattr(module, name, None)
            if original is not None and original in replacements:
                patch(module, name, replacements[original])
    try:
        yield
    finally:
        for obj, name, value in reversed(saved):
            setattr(obj, name, value)
