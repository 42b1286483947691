"""Elementwise math, comparisons and logic, with NumPy names and semantics."""

from __future__ import annotations

import functools

import numpy as np

from functorch_lite._traceback import hide_internal_frames
from functorch_lite.core import Array, ArrayMethods, Tracer, aval_of, bind, ctx
from functorch_lite.primitives import elementwise as ew

# name -> primitive, for every public elementwise function that is exactly one primitive.
_UNARY = {
    "negative": ew.negative_p, "absolute": ew.abs_p, "sign": ew.sign_p, "floor": ew.floor_p,
    "ceil": ew.ceil_p, "trunc": ew.trunc_p, "rint": ew.rint_p, "square": ew.square_p,
    "sqrt": ew.sqrt_p, "cbrt": ew.cbrt_p, "reciprocal": ew.reciprocal_p, "exp": ew.exp_p,
    "exp2": ew.exp2_p, "expm1": ew.expm1_p, "log": ew.log_p, "log2": ew.log2_p,
    "log10": ew.log10_p, "log1p": ew.log1p_p, "sin": ew.sin_p, "cos": ew.cos_p,
    "tan": ew.tan_p, "arcsin": ew.arcsin_p, "arccos": ew.arccos_p, "arctan": ew.arctan_p,
    "sinh": ew.sinh_p, "cosh": ew.cosh_p, "tanh": ew.tanh_p, "arcsinh": ew.arcsinh_p,
    "arccosh": ew.arccosh_p, "arctanh": ew.arctanh_p, "isnan": ew.isnan_p,
    "isinf": ew.isinf_p, "isfinite": ew.isfinite_p, "signbit": ew.signbit_p,
    "logical_not": ew.logical_not_p, "invert": ew.invert_p, "real": ew.real_p,
    "imag": ew.imag_p, "conjugate": ew.conj_p,
}
_BINARY = {
    "add": ew.add_p, "subtract": ew.subtract_p, "multiply": ew.multiply_p,
    "true_divide": ew.true_divide_p, "floor_divide": ew.floor_divide_p,
    "remainder": ew.remainder_p, "power": ew.power_p, "maximum": ew.maximum_p,
    "minimum": ew.minimum_p, "arctan2": ew.arctan2_p, "hypot": ew.hypot_p,
    "logaddexp": ew.logaddexp_p, "copysign": ew.copysign_p, "heaviside": ew.heaviside_p,
    "equal": ew.equal_p,
    "not_equal": ew.not_equal_p, "less": ew.less_p, "less_equal": ew.less_equal_p,
    "greater": ew.greater_p, "greater_equal": ew.greater_equal_p,
    "logical_and": ew.logical_and_p, "logical_or": ew.logical_or_p,
    "logical_xor": ew.logical_xor_p, "bitwise_and": ew.bitwise_and_p,
    "bitwise_or": ew.bitwise_or_p, "bitwise_xor": ew.bitwise_xor_p,
    "left_shift": ew.left_shift_p, "right_shift": ew.right_shift_p,
}

_EXAMPLE_INPUT = {
    "arccosh": "[1.5, 2.0]", "log": "[0.5, 2.0]", "log2": "[0.5, 2.0]", "log10": "[0.5, 2.0]",
    "sqrt": "[0.25, 4.0]", "reciprocal": "[0.5, 2.0]", "invert": "[1, 2]",
    "logical_not": "[True, False]",
}


def _make_unary(name, prim):
    # The eager fast path: one CPU Array in, no transform active. It calls the NumPy ufunc
    # directly (the buffer is a NumPy array, so xp is numpy) and skips ``bind``'s argument
    # handling; this is the ~1 us budget of an eager primitive. Defaults bind globals as
    # fast locals.
    def fn(x, /, _ctx=ctx, _Array=Array, _ndarray=np.ndarray, _ufunc=getattr(np, name)):
        try:
            trace = _ctx.trace
            if trace is None:
                tx = type(x)
                buf = x._buf if tx is _Array else x if tx is _ndarray else None
                if type(buf) is _ndarray:  # (a raw ndarray: a rule run on buffers)
                    out = _ufunc(buf)
                    if type(out) is _ndarray:
                        return _Array(out)
                    if isinstance(out, np.generic):  # of a 0-d array: NumPy gives a scalar
                        return _Array(np.asarray(out))
                return bind(prim, x)
            return trace.process(prim, (x,), _NO_PARAMS)  # what bind does, a call less
        except Exception as e:  # free unless raised: the user sees their own frames
            hide_internal_frames(e)
            raise

    example = _EXAMPLE_INPUT.get(name, "[0.5, -0.25]")
    compare = "allclose" if prim.differentiable else "array_equal"
    fn.__name__ = fn.__qualname__ = name
    fn.__doc__ = f"""Elementwise ``numpy.{name}``, traceable and differentiable.

    Example:
        >>> import numpy as np
        >>> import functorch_lite.numpy as fnp
        >>> x = fnp.array({example})
        >>> bool(np.{compare}(fnp.{name}(x), np.{name}(np.asarray(x))))
        True
    """
    return fn


_SCALAR_TYPES = (int, float)
_NO_PARAMS = {}  # never mutated: bind passes a fresh dict, process only reads it


def _make_binary(name, prim):
    # Fast path as for unary ops: Arrays on the CPU, or an Array and a Python int/float.
    # the primitive's ufunc, else its impl (maximum/minimum: a zero scalar meets zeros)
    ufunc = prim.np_ufunc or functools.partial(prim.impl, np)

    def fn(x, y, /, _ctx=ctx, _Array=Array, _ndarray=np.ndarray, _ufunc=ufunc,
           _scalars=_SCALAR_TYPES):
        try:
            trace = _ctx.trace
            if trace is not None:
                return trace.process(prim, (x, y), _NO_PARAMS)  # what bind does, a call less
            tx = type(x)
            ty = type(y)
            if tx is _Array:
                a = x._buf
                if ty is _Array:
                    b = y._buf
                    fast = type(a) is _ndarray and type(b) is _ndarray
                else:
                    b = y
                    fast = ty in _scalars and type(a) is _ndarray
            elif ty is _Array and tx in _scalars:
                a = x
                b = y._buf
                fast = type(b) is _ndarray
            else:
                fast = False
            if fast:  # NumPy buffers (and Python scalars) only: no device to check
                try:
                    out = _ufunc(a, b)
                except ValueError:
                    return bind(prim, x, y)  # re-raised there with a clearer message
                if type(out) is _ndarray:
                    return _Array(out)
                if isinstance(out, np.generic):  # 0-d operands: NumPy gives a scalar
                    return _Array(np.asarray(out))
            return bind(prim, x, y)
        except Exception as e:  # free unless raised: the user sees their own frames
            hide_internal_frames(e)
            raise

    integer_only = name.startswith(("bitwise", "left_shift", "right_shift"))
    example = "[1, 6], [3, 4]" if integer_only else "[1.5, -2.0], [0.5, 3.0]"
    a, b = example.split("], [")
    fn.__name__ = fn.__qualname__ = name
    fn.__doc__ = f"""Elementwise ``numpy.{name}`` with broadcasting, traceable.

    Python scalars are weakly typed (NEP 50): ``fnp.{name}(x_f32, 2.0)`` keeps float32.

    Example:
        >>> import numpy as np
        >>> import functorch_lite.numpy as fnp
        >>> x, y = fnp.array({a}]), fnp.array([{b})
        >>> bool(np.array_equal(fnp.{name}(x, y), np.{name}(np.asarray(x), np.asarray(y)),
        ...                     equal_nan=True))
        True
    """
    return fn


for _name, _prim in _UNARY.items():
    globals()[_name] = _make_unary(_name, _prim)
for _name, _prim in _BINARY.items():
    globals()[_name] = _make_binary(_name, _prim)

# The operators of Array and Tracer are these functions themselves: no extra call layer
# on the eager hot path (the reflected ones swap the operands).
for _op, _fn in (("add", "add"), ("sub", "subtract"), ("mul", "multiply"),
                 ("truediv", "true_divide"), ("floordiv", "floor_divide"), ("mod", "remainder"),
                 ("pow", "power"), ("and", "bitwise_and"), ("or", "bitwise_or"),
                 ("xor", "bitwise_xor")):
    setattr(ArrayMethods, f"__{_op}__", globals()[_fn])
for _op, _fn in (("eq", "equal"), ("ne", "not_equal"), ("lt", "less"), ("le", "less_equal"),
                 ("gt", "greater"), ("ge", "greater_equal")):
    setattr(ArrayMethods, f"__{_op}__", globals()[_fn])
ArrayMethods.__neg__ = globals()["negative"]

# NumPy's aliases
abs = absolute = globals()["absolute"]  # noqa: A001
fabs = absolute
divide = true_divide = globals()["true_divide"]
mod = remainder = globals()["remainder"]
pow = power = globals()["power"]  # noqa: A001
conj = conjugate = globals()["conjugate"]


def positive(x, /):
    """``+x``: returns ``x`` as an array.

    Example:
        >>> import functorch_lite.numpy as fnp
        >>> fnp.positive(fnp.array([1, -2]))
        Array([ 1, -2], dtype=int64)
    """
    from functorch_lite.numpy import asarray

    return asarray(x)


def round(x, decimals=0):  # noqa: A001
    """Round to ``decimals`` places (half to even), like ``numpy.round``.

    Example:
        >>> import functorch_lite.numpy as fnp
        >>> fnp.round(fnp.array([0.5, 1.5, 2.567]), 1)
        Array([0.5, 1.5, 2.6], dtype=float32)
    """
    return bind(ew.round_p, x, decimals=int(decimals))


around = round


def where(condition, x=None, y=None, /):
    """Select ``x`` where ``condition`` holds, else ``y`` (broadcasting), like ``numpy.where``.

    Gradients flow only through the selected branch, and a nan or inf in the branch not
    taken never reaches the gradient. With only ``condition``, returns ``nonzero``
    (eager only: the result's shape depends on the data).

    Example:
        >>> import functorch_lite.numpy as fnp
        >>> x = fnp.array([-1.0, 2.0])
        >>> fnp.where(x > 0, x, 0.0)
        Array([0., 2.], dtype=float32)
    """
    if x is None and y is None:
        from functorch_lite.numpy import nonzero

        return nonzero(condition)
    if x is None or y is None:
        raise TypeError("fnp.where: pass both x and y, or neither (for nonzero)")
    return bind(ew.where_p, condition, x, y)


def astype(x, dtype, /, *, copy=True):
    """Cast to ``dtype`` (``x.astype(dtype)``). Casting to int or bool stops derivatives.

    Example:
        >>> import functorch_lite.numpy as fnp
        >>> fnp.astype(fnp.array([1.7, -2.2]), "int32")
        Array([ 1, -2], dtype=int32)
    """
    dtype = np.dtype(dtype)
    if isinstance(x, (Array, Tracer)) and x.dtype == dtype:
        return x
    return bind(ew.convert_element_type_p, x, dtype=dtype)


def clip(a, a_min=None, a_max=None, /, *, min=None, max=None):  # noqa: A002
    """Limit values to ``[a_min, a_max]`` (either may be None), like ``numpy.clip``.

    Example:
        >>> import functorch_lite.numpy as fnp
        >>> fnp.clip(fnp.array([-2.0, 0.5, 3.0]), -1.0, 1.0)
        Array([-1. ,  0.5,  1. ], dtype=float32)
    """
    lo = a_min if a_min is not None else min
    hi = a_max if a_max is not None else max
    if lo is None and hi is None:
        raise ValueError("fnp.clip: give at least one of a_min / a_max")
    out = a
    if lo is not None:
        out = maximum(out, lo)  # noqa: F821
    if hi is not None:
        out = minimum(out, hi)  # noqa: F821
    return out


def nan_to_num(x, nan=0.0, posinf=None, neginf=None):
    """Replace nan with ``nan`` and ±inf with the largest finite values (or the given ones).

    Example:
        >>> import functorch_lite.numpy as fnp
        >>> fnp.nan_to_num(fnp.array([float("nan"), 1.0]))
        Array([0., 1.], dtype=float32)
    """
    dtype = aval_of(x).dtype
    if dtype.kind not in "fc":
        return x
    info = np.finfo(dtype)
    posinf = info.max if posinf is None else posinf
    neginf = info.min if neginf is None else neginf
    x = where(isnan(x), nan, x)  # noqa: F821
    x = where(x == np.inf, posinf, x)
    return where(x == -np.inf, neginf, x)


def divmod(x, y, /):  # noqa: A001
    """``(floor_divide(x, y), remainder(x, y))``.

    Example:
        >>> import functorch_lite.numpy as fnp
        >>> fnp.divmod(fnp.array([7, -7]), 3)
        (Array([ 2, -3], dtype=int64), Array([1, 2], dtype=int64))
    """
    return floor_divide(x, y), remainder(x, y)  # noqa: F821


def deg2rad(x, /):
    """Degrees to radians.

    Example:
        >>> import functorch_lite.numpy as fnp
        >>> fnp.deg2rad(fnp.array([180.0]))
        Array([3.1415927], dtype=float32)
    """
    return multiply(x, np.pi / 180)  # noqa: F821


def rad2deg(x, /):
    """Radians to degrees.

    Example:
        >>> import functorch_lite.numpy as fnp
        >>> fnp.rad2deg(fnp.array([3.14159265]))
        Array([180.], dtype=float32)
    """
    return multiply(x, 180 / np.pi)  # noqa: F821


radians, degrees = deg2rad, rad2deg


def isclose(a, b, rtol=1e-05, atol=1e-08, equal_nan=False):
    """Elementwise ``|a - b| <= atol + rtol * |b|``, like ``numpy.isclose``.

    Example:
        >>> import functorch_lite.numpy as fnp
        >>> fnp.isclose(fnp.array([1.0, 2.0]), fnp.array([1.0, 2.1]))
        Array([ True, False], dtype=bool)
    """
    close = less_equal(absolute(subtract(a, b)), atol + rtol * absolute(b))  # noqa: F821
    eq = equal(a, b)  # noqa: F821  (handles infinities of the same sign)
    out = logical_or(close, eq)  # noqa: F821
    if equal_nan:
        out = logical_or(out, logical_and(isnan(a), isnan(b)))  # noqa: F821
    return out


def allclose(a, b, rtol=1e-05, atol=1e-08, equal_nan=False):
    """Whether all elements are close (a Python bool; eager only).

    Example:
        >>> import functorch_lite.numpy as fnp
        >>> fnp.allclose(fnp.array([1.0]), fnp.array([1.0 + 1e-9]))
        True
    """
    from functorch_lite.numpy import all as all_

    return bool(all_(isclose(a, b, rtol, atol, equal_nan)))


def array_equal(a1, a2, equal_nan=False):
    """Whether two arrays have the same shape and elements (a Python bool; eager only).

    Example:
        >>> import functorch_lite.numpy as fnp
        >>> fnp.array_equal(fnp.array([1, 2]), [1, 2])
        True
    """
    from functorch_lite.numpy import all as all_

    if aval_of(a1).shape != aval_of(a2).shape:
        return False
    eq = equal(a1, a2)  # noqa: F821
    if equal_nan:
        eq = logical_or(eq, logical_and(isnan(a1), isnan(a2)))  # noqa: F821
    return bool(all_(eq))


__all__ = sorted(set(_UNARY) | set(_BINARY) | {
    "abs", "fabs", "divide", "mod", "pow", "conj", "positive", "round", "around", "where",
    "astype", "clip", "nan_to_num", "divmod", "deg2rad", "rad2deg", "radians", "degrees",
    "isclose", "allclose", "array_equal"})
