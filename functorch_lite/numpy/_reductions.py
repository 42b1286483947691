"""Reductions with NumPy's ``axis`` / ``keepdims`` conventions."""

from __future__ import annotations

import numpy as np

from functorch_lite.core import aval_of, bind
from functorch_lite.primitives import reductions as red


def normalize_axes(name, axis, ndim):
    """``axis`` (None, int or tuple, negative allowed) as a sorted tuple of non-negative ints."""
    if axis is None:
        return tuple(range(ndim))
    axes = (axis,) if isinstance(axis, (int, np.integer)) else tuple(axis)
    out = []
    for a in axes:
        a = int(a)
        if not -ndim <= a < ndim:
            raise ValueError(f"fnp.{name}: axis {a} is out of range for a {ndim}-d array "
                             f"(valid: {-ndim}..{ndim - 1})")
        out.append(a % ndim)
    if len(set(out)) != len(out):
        raise ValueError(f"fnp.{name}: repeated axis in {axis}")
    return tuple(sorted(out))


def _reduce(name, prim, a, axis, keepdims, dtype=None):
    from functorch_lite.numpy import astype, reshape

    aval = aval_of(a)
    if dtype is not None:
        a = astype(a, dtype)
    axes = normalize_axes(name, axis, aval.ndim)
    out = bind(prim, a, axes=axes)
    if keepdims:
        out = reshape(out, red._kept_shape(aval.shape, axes))
    return out


def sum(a, axis=None, dtype=None, keepdims=False):  # noqa: A001
    """Sum over ``axis`` (None: all axes; int or tuple; negative allowed).

    Example:
        >>> import functorch_lite.numpy as fnp
        >>> x = fnp.array([[1.0, 2.0], [3.0, 4.0]])
        >>> fnp.sum(x, axis=0)
        Array([4., 6.], dtype=float32)
        >>> fnp.sum(x, axis=-1, keepdims=True)
        Array([[3.],
               [7.]], dtype=float32)
    """
    return _reduce("sum", red.reduce_sum_p, a, axis, keepdims, dtype)


def max(a, axis=None, keepdims=False):  # noqa: A001
    """Maximum over ``axis``. The gradient is shared equally among tied maxima.

    Example:
        >>> import functorch_lite.numpy as fnp
        >>> fnp.max(fnp.array([[1.0, 5.0], [3.0, 4.0]]), axis=1)
        Array([5., 4.], dtype=float32)
    """
    return _reduce("max", red.reduce_max_p, a, axis, keepdims)


def min(a, axis=None, keepdims=False):  # noqa: A001
    """Minimum over ``axis``. The gradient is shared equally among tied minima.

    Example:
        >>> import functorch_lite.numpy as fnp
        >>> fnp.min(fnp.array([[1.0, 5.0], [3.0, 4.0]]), axis=0)
        Array([1., 4.], dtype=float32)
    """
    return _reduce("min", red.reduce_min_p, a, axis, keepdims)


amax, amin = max, min


def _arg(name, prim, a, axis, keepdims):
    from functorch_lite.numpy import ravel, reshape

    aval = aval_of(a)
    if axis is None:
        out = bind(prim, ravel(a), axis=0)
        return reshape(out, (1,) * aval.ndim) if keepdims else out
    (ax,) = normalize_axes(name, axis, aval.ndim)
    out = bind(prim, a, axis=ax)
    if keepdims:
        out = reshape(out, red._kept_shape(aval.shape, (ax,)))
    return out


def argmax(a, axis=None, keepdims=False):
    """Index of the maximum along ``axis`` (of the flattened array when None).

    Example:
        >>> import functorch_lite.numpy as fnp
        >>> fnp.argmax(fnp.array([[1.0, 5.0], [3.0, 4.0]]), axis=1)
        Array([1, 1], dtype=int64)
    """
    return _arg("argmax", red.argmax_p, a, axis, keepdims)


def argmin(a, axis=None, keepdims=False):
    """Index of the minimum along ``axis`` (of the flattened array when None).

    Example:
        >>> import functorch_lite.numpy as fnp
        >>> fnp.argmin(fnp.array([3.0, 1.0, 2.0]))
        Array(1, dtype=int64)
    """
    return _arg("argmin", red.argmin_p, a, axis, keepdims)


def _count(aval, axis):
    axes = normalize_axes("mean", axis, aval.ndim)
    n = 1
    for a in axes:
        n *= aval.shape[a]
    return n


def mean(a, axis=None, dtype=None, keepdims=False):
    """Arithmetic mean over ``axis``; integer inputs give a float result (as NumPy).

    Example:
        >>> import functorch_lite.numpy as fnp
        >>> fnp.mean(fnp.array([[1.0, 2.0], [3.0, 4.0]]), axis=0)
        Array([2., 3.], dtype=float32)
    """
    from functorch_lite.config import settings
    from functorch_lite.numpy import astype

    aval = aval_of(a)
    if dtype is None and aval.dtype.kind in "biu":
        dtype = np.float64 if settings.x64 or aval.dtype.itemsize > 4 else settings.float_dtype
    if dtype is not None:
        a = astype(a, dtype)
    n = _count(aval, axis)
    return sum(a, axis, keepdims=keepdims) / n


def var(a, axis=None, dtype=None, ddof=0, keepdims=False):
    """Variance over ``axis`` with ``ddof`` delta degrees of freedom (two-pass, stable).

    Example:
        >>> import functorch_lite.numpy as fnp
        >>> fnp.var(fnp.array([1.0, 2.0, 3.0, 4.0]))
        Array(1.25, dtype=float32)
    """
    aval = aval_of(a)
    centered = a - mean(a, axis, dtype=dtype, keepdims=True)
    n = _count(aval, axis)
    return sum(centered * centered, axis, keepdims=keepdims) / (n - ddof)


def std(a, axis=None, dtype=None, ddof=0, keepdims=False):
    """Standard deviation over ``axis`` (``sqrt(var)``).

    Example:
        >>> import functorch_lite.numpy as fnp
        >>> fnp.std(fnp.array([1.0, 3.0]))
        Array(1., dtype=float32)
    """
    from functorch_lite.numpy import sqrt

    return sqrt(var(a, axis, dtype=dtype, ddof=ddof, keepdims=keepdims))


__all__ = ["sum", "max", "min", "amax", "amin", "argmax", "argmin", "mean", "var", "std"]
