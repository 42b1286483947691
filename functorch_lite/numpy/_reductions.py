"""Reductions and scans with NumPy's ``axis`` / ``keepdims`` / ``dtype`` conventions.

``sum``, ``prod``, ``max``, ``min``, ``all``, ``any``, ``argmax``, ``argmin``, ``cumsum`` and
``cumprod`` are one primitive each; the rest (``mean``, ``var``, ``logsumexp``, ``average``
...) are composites. NB: ``sum``, ``mean`` and ``max`` run on every eager call of most
programs, so on a CPU ``Array`` outside any transform they skip ``bind`` and call the NumPy
ufunc's ``reduce`` directly (the same result as the primitive's impl).
"""

from __future__ import annotations

import builtins

import numpy as np

from functorch_lite.config import settings
from functorch_lite.core import Array, Tracer, aval_of, bind, ctx
from functorch_lite.numpy._creation import _placed, full_like
from functorch_lite.numpy._elementwise import (
    astype,
    exp,
    isfinite,
    isnan,
    log,
    maximum,
    minimum,
    not_equal,
    sqrt,
    where,
)
from functorch_lite.numpy._shape import broadcast_to, moveaxis, ravel, reshape
from functorch_lite.primitives import reductions as red
from functorch_lite.primitives import shape as shape_p

_axes_cache: dict = {}


def normalize_axes(name, axis, ndim):
    """``axis`` (None, int or tuple, negative allowed) as a sorted tuple of non-negative ints."""
    try:
        return _axes_cache[type(axis), axis, ndim]  # the type: 1.0 == 1 but is no axis
    except (KeyError, TypeError):  # TypeError: an unhashable axis (a list)
        pass
    if axis is None:
        out = tuple(range(ndim))
    else:
        out = []
        for a in (axis,) if isinstance(axis, (int, np.integer)) else _axis_tuple(name, axis):
            a = int(a)
            if not -ndim <= a < ndim:
                raise ValueError(f"fnp.{name}: axis {a} is out of range for a {ndim}-d array "
                                 f"(valid: {-ndim}..{ndim - 1})")
            out.append(a % ndim)
        if len(set(out)) != len(out):
            raise ValueError(f"fnp.{name}: repeated axis in {axis}")
        out = tuple(sorted(out))
    if not isinstance(axis, list):
        _axes_cache[type(axis), axis, ndim] = out
    return out


def _axis_tuple(name, axis):
    # NB: this module's ``all``/``sum``/``max``... are the fnp reductions, not the builtins.
    if isinstance(axis, (tuple, list)) and builtins.all(
            isinstance(a, (int, np.integer)) for a in axis):
        return axis
    raise TypeError(f"fnp.{name}: axis must be None, an int or a tuple of ints, got {axis!r}")


def _reduce(name, prim, a, axis, keepdims, dtype=None):
    shape = a.shape if isinstance(a, (Array, Tracer)) else aval_of(a).shape
    if dtype is not None:
        a = astype(a, dtype)
    axes = normalize_axes(name, axis, len(shape))
    trace = ctx.trace
    if trace is None:
        out = bind(prim, a, axes=axes)
    else:  # what bind does, a call less
        out = trace.process(prim, (a,), {"axes": axes})
    if keepdims and axes:  # a valid reshape by construction: no need of fnp.reshape's checks
        params = {"new_sizes": red._kept_shape(shape, axes)}
        out = (bind(shape_p.reshape_p, out, **params) if trace is None
               else trace.process(shape_p.reshape_p, (out,), params))
    return out


def _eager_reduce(ufunc, buf, name, axis, keepdims):
    """The fast eager path: ``ufunc.reduce`` on a NumPy buffer, wrapped as an Array."""
    out = ufunc.reduce(buf, axis=normalize_axes(name, axis, buf.ndim), keepdims=keepdims)
    return Array(out if type(out) is np.ndarray else np.asarray(out))


def _reduced_size(shape, axes):
    n = 1
    for a in axes:
        n *= shape[a]
    return n


def _float_dtype_for(dtype):
    """The float dtype an integer/bool input is averaged in (float32 unless it is 64-bit or
    x64 is on); float inputs keep theirs."""
    if dtype.kind in "fc":
        return dtype
    return np.dtype(np.float64) if settings.x64 or dtype.itemsize > 4 else settings.float_dtype


# --------------------------------------------------------------------------------------
# One primitive each
# --------------------------------------------------------------------------------------
def sum(a, axis=None, dtype=None, keepdims=False):  # noqa: A001
    """Sum over ``axis`` (None: all axes; int or tuple; negative allowed).

    Small integers and bools are summed in int64, as in NumPy.

    Example:
        >>> import functorch_lite.numpy as fnp
        >>> x = fnp.array([[1.0, 2.0], [3.0, 4.0]])
        >>> fnp.sum(x, axis=0)
        Array([4., 6.], dtype=float32)
        >>> fnp.sum(x, axis=-1, keepdims=True)
        Array([[3.],
               [7.]], dtype=float32)
    """
    if ctx.trace is None and type(a) is Array and type(a._buf) is np.ndarray and dtype is None:
        return _eager_reduce(np.add, a._buf, "sum", axis, keepdims)
    return _reduce("sum", red.reduce_sum_p, a, axis, keepdims, dtype)


def prod(a, axis=None, dtype=None, keepdims=False):
    """Product over ``axis``. Its gradient is exact when the input holds zeros.

    Example:
        >>> import functorch_lite as fl
        >>> import functorch_lite.numpy as fnp
        >>> fnp.prod(fnp.array([[1.0, 2.0], [3.0, 4.0]]), axis=1)
        Array([ 2., 12.], dtype=float32)
        >>> fl.grad(fnp.prod)(fnp.array([0.0, 2.0, 3.0]))
        Array([6., 0., 0.], dtype=float32)
    """
    return _reduce("prod", red.reduce_prod_p, a, axis, keepdims, dtype)


def _with_initial(name, prim, combine, a, axis, keepdims, initial):
    """``max``/``min`` with NumPy's ``initial``: also defined for empty reductions."""
    aval = aval_of(a)
    axes = normalize_axes(name, axis, aval.ndim)
    initial = astype(initial, aval.dtype)
    if _reduced_size(aval.shape, axes) == 0:
        shape = red._kept_shape(aval.shape, axes) if keepdims else tuple(
            d for i, d in enumerate(aval.shape) if i not in axes)
        return full_like(a, initial, aval.dtype, shape)
    return combine(_reduce(name, prim, a, axis, keepdims), initial)


def max(a, axis=None, keepdims=False, initial=None):  # noqa: A001
    """Maximum over ``axis``. The gradient is shared equally among tied maxima.

    ``initial`` is included in every reduction (and makes empty reductions legal).

    Example:
        >>> import functorch_lite.numpy as fnp
        >>> fnp.max(fnp.array([[1.0, 5.0], [3.0, 4.0]]), axis=1)
        Array([5., 4.], dtype=float32)
        >>> fnp.max(fnp.zeros((0, 2)), axis=0, initial=-1.0)
        Array([-1., -1.], dtype=float32)
    """
    if initial is not None:
        return _with_initial("max", red.reduce_max_p, maximum, a, axis, keepdims, initial)
    if ctx.trace is None and type(a) is Array and type(a._buf) is np.ndarray and a.size:
        return _eager_reduce(np.maximum, a._buf, "max", axis, keepdims)
    return _reduce("max", red.reduce_max_p, a, axis, keepdims)


def min(a, axis=None, keepdims=False, initial=None):  # noqa: A001
    """Minimum over ``axis``. The gradient is shared equally among tied minima.

    Example:
        >>> import functorch_lite.numpy as fnp
        >>> fnp.min(fnp.array([[1.0, 5.0], [3.0, 4.0]]), axis=0)
        Array([1., 4.], dtype=float32)
    """
    if initial is not None:
        return _with_initial("min", red.reduce_min_p, minimum, a, axis, keepdims, initial)
    return _reduce("min", red.reduce_min_p, a, axis, keepdims)


amax, amin = max, min


def all(a, axis=None, keepdims=False):  # noqa: A001
    """Whether every element along ``axis`` is true (nonzero); True for empty reductions.

    Example:
        >>> import functorch_lite.numpy as fnp
        >>> fnp.all(fnp.array([[1, 0], [2, 3]]), axis=1)
        Array([False,  True], dtype=bool)
    """
    return _reduce("all", red.reduce_and_p, a, axis, keepdims)


def any(a, axis=None, keepdims=False):  # noqa: A001
    """Whether any element along ``axis`` is true (nonzero); False for empty reductions.

    Example:
        >>> import functorch_lite.numpy as fnp
        >>> fnp.any(fnp.array([[1, 0], [0, 0]]), axis=1)
        Array([ True, False], dtype=bool)
    """
    return _reduce("any", red.reduce_or_p, a, axis, keepdims)


def _arg(name, prim, a, axis, keepdims):
    aval = aval_of(a)
    if axis is None:
        out = bind(prim, ravel(a), axis=0)
        return reshape(out, (1,) * aval.ndim) if keepdims else out
    ax = _one_axis(name, axis, aval.ndim)
    out = bind(prim, a, axis=ax)
    if keepdims:
        out = reshape(out, red._kept_shape(aval.shape, (ax,)))
    return out


def _one_axis(name, axis, ndim):
    if not isinstance(axis, (int, np.integer)):
        raise TypeError(f"fnp.{name}: axis must be None or an int, got {axis!r}")
    return normalize_axes(name, axis, ndim)[0]


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


def _scan(name, prim, a, axis, dtype):
    if dtype is not None:
        a = astype(a, dtype)
    if axis is None:
        a, axis = ravel(a), 0
    return bind(prim, a, axis=_one_axis(name, axis, aval_of(a).ndim), reverse=False)


def cumsum(a, axis=None, dtype=None):
    """Cumulative sum along ``axis`` (of the flattened array when None).

    Example:
        >>> import functorch_lite.numpy as fnp
        >>> fnp.cumsum(fnp.array([[1, 2], [3, 4]]), axis=1)
        Array([[1, 3],
               [3, 7]], dtype=int64)
    """
    return _scan("cumsum", red.cumsum_p, a, axis, dtype)


def cumprod(a, axis=None, dtype=None):
    """Cumulative product along ``axis`` (of the flattened array when None).

    The gradient is exact when the input holds zeros; it takes O(n^2) memory for a scan of
    length n.

    Example:
        >>> import functorch_lite.numpy as fnp
        >>> fnp.cumprod(fnp.array([1.0, 2.0, 3.0, 4.0]))
        Array([ 1.,  2.,  6., 24.], dtype=float32)
    """
    return _scan("cumprod", red.cumprod_p, a, axis, dtype)


# --------------------------------------------------------------------------------------
# Composites
# --------------------------------------------------------------------------------------
def mean(a, axis=None, dtype=None, keepdims=False):
    """Arithmetic mean over ``axis``; integer inputs give a float result (as NumPy), and
    float16 inputs are summed in float32.

    Example:
        >>> import functorch_lite.numpy as fnp
        >>> fnp.mean(fnp.array([[1.0, 2.0], [3.0, 4.0]]), axis=0)
        Array([2., 3.], dtype=float32)
    """
    if ctx.trace is None and type(a) is Array and dtype is None:
        buf = a._buf
        if type(buf) is np.ndarray and buf.dtype.kind == "f" and buf.dtype.itemsize >= 4:
            axes = normalize_axes("mean", axis, buf.ndim)
            total = np.add.reduce(buf, axis=axes, keepdims=keepdims)
            return Array(np.asarray(total / _reduced_size(buf.shape, axes)))
    aval = aval_of(a)
    if dtype is None and aval.dtype.kind in "biu":
        dtype = _float_dtype_for(aval.dtype)
    if dtype is not None:
        a = astype(a, dtype)
    n = _reduced_size(aval.shape, normalize_axes("mean", axis, aval.ndim))
    if dtype is None and aval.dtype == np.float16:
        return astype(sum(a, axis, dtype=np.float32, keepdims=keepdims) / n, np.float16)
    return sum(a, axis, keepdims=keepdims) / n


def var(a, axis=None, dtype=None, ddof=0, keepdims=False):
    """Variance over ``axis`` with ``ddof`` delta degrees of freedom (two-pass, stable).

    Example:
        >>> import functorch_lite.numpy as fnp
        >>> fnp.var(fnp.array([1.0, 2.0, 3.0, 4.0]))
        Array(1.25, dtype=float32)
        >>> fnp.var(fnp.array([1.0, 2.0, 3.0, 4.0]), ddof=1)
        Array(1.6666666, dtype=float32)
    """
    aval = aval_of(a)
    centered = a - mean(a, axis, dtype=dtype, keepdims=True)
    n = _reduced_size(aval.shape, normalize_axes("var", axis, aval.ndim))
    return sum(centered * centered, axis, keepdims=keepdims) / (n - ddof)


def std(a, axis=None, dtype=None, ddof=0, keepdims=False):
    """Standard deviation over ``axis`` (``sqrt(var)``).

    Example:
        >>> import functorch_lite.numpy as fnp
        >>> fnp.std(fnp.array([1.0, 3.0]))
        Array(1., dtype=float32)
    """
    return sqrt(var(a, axis, dtype=dtype, ddof=ddof, keepdims=keepdims))


def logsumexp(a, axis=None, b=None, keepdims=False):
    """``log(sum(b * exp(a), axis))`` computed stably (like ``scipy.special.logsumexp``).

    The maximum is subtracted before exponentiating (and treated as a constant for
    derivatives, which leaves them exact), so large inputs do not overflow; ``-inf`` entries
    contribute nothing and get a zero gradient. The gradient is ``softmax(a)``.

    Example:
        >>> import functorch_lite as fl
        >>> import functorch_lite.numpy as fnp
        >>> fnp.logsumexp(fnp.array([0.0, 0.0]))
        Array(0.6931472, dtype=float32)
        >>> fnp.logsumexp(fnp.array([1e30, 0.0]))
        Array(1.e+30, dtype=float32)
        >>> fl.grad(fnp.logsumexp)(fnp.array([0.0, -fnp.inf]))
        Array([1., 0.], dtype=float32)
    """
    from functorch_lite.autodiff import stop_gradient

    aval = aval_of(a)
    if aval.dtype.kind in "biu":
        a = astype(a, _float_dtype_for(aval.dtype))
    axes = normalize_axes("logsumexp", axis, aval.ndim)
    if _reduced_size(aval.shape, axes) == 0:
        return full_like(a, -np.inf, aval_of(a).dtype, red._kept_shape(aval.shape, axes)
                         if keepdims else tuple(
                             d for i, d in enumerate(aval.shape) if i not in axes))
    shift = stop_gradient(max(a, axes, keepdims=True))
    # An all -inf (or +inf) group has an infinite maximum: shift it by 0 instead, which
    # gives the right answer (-inf, +inf) rather than nan from inf - inf.
    shift = where(isfinite(shift), shift, 0)
    terms = exp(a - shift)
    if b is not None:
        terms = terms * b
    out = log(sum(terms, axes, keepdims=True)) + shift
    return out if keepdims else reshape(out, tuple(
        d for i, d in enumerate(aval_of(out).shape) if i not in axes))


def average(a, axis=None, weights=None, returned=False, *, keepdims=False):
    """Weighted average over ``axis``: ``sum(a * w) / sum(w)``.

    ``weights`` has ``a``'s shape, or is 1-D with the length of ``a``'s (single) ``axis``.
    With ``returned=True`` the sum of the weights is returned as well (broadcast to the
    result's shape). Weights that sum to zero give ``nan``/``inf`` (no error is raised).

    Example:
        >>> import functorch_lite.numpy as fnp
        >>> fnp.average(fnp.array([1.0, 2.0, 4.0]), weights=fnp.array([2.0, 1.0, 1.0]))
        Array(2., dtype=float32)
    """
    aval = aval_of(a)
    if aval.dtype.kind in "biu":
        a = astype(a, _float_dtype_for(aval.dtype))
    if weights is None:
        out = mean(a, axis, keepdims=keepdims)
        if not returned:
            return out
        count = _reduced_size(aval.shape, normalize_axes("average", axis, aval.ndim))
        return out, full_like(out, count, aval_of(out).dtype)
    w_shape = aval_of(weights).shape
    if w_shape != aval.shape:
        if axis is None or not isinstance(axis, (int, np.integer)):
            raise ValueError(
                f"fnp.average: weights of shape {w_shape} differ from a's shape {aval.shape}; "
                "pass an int axis for 1-D weights, or weights of a's shape")
        (ax,) = normalize_axes("average", axis, aval.ndim)
        if len(w_shape) != 1 or w_shape[0] != aval.shape[ax]:
            raise ValueError(
                f"fnp.average: 1-D weights need the length of axis {axis} of a (shape "
                f"{aval.shape}), got weights of shape {w_shape}")
        weights = moveaxis(reshape(weights, w_shape + (1,) * (aval.ndim - 1)), 0, ax)
    total_weight = sum(broadcast_to(weights, aval.shape), axis, keepdims=keepdims)
    out = sum(a * weights, axis, keepdims=keepdims) / total_weight
    if returned:
        return out, broadcast_to(total_weight, aval_of(out).shape)
    return out


def count_nonzero(a, axis=None, *, keepdims=False):
    """Number of nonzero (true) elements along ``axis``, as int64.

    Example:
        >>> import functorch_lite.numpy as fnp
        >>> fnp.count_nonzero(fnp.array([[0, 1, 2], [0, 0, 3]]), axis=1)
        Array([2, 1], dtype=int64)
    """
    return sum(not_equal(a, 0), axis, keepdims=keepdims)


def nansum(a, axis=None, dtype=None, keepdims=False):
    """Sum over ``axis`` treating NaNs as zero (their gradient is zero).

    Example:
        >>> import functorch_lite.numpy as fnp
        >>> fnp.nansum(fnp.array([1.0, fnp.nan, 2.0]))
        Array(3., dtype=float32)
    """
    return sum(where(isnan(a), 0, a), axis, dtype=dtype, keepdims=keepdims)


def nanmean(a, axis=None, dtype=None, keepdims=False):
    """Mean over ``axis`` ignoring NaNs (an all-NaN group gives NaN).

    Example:
        >>> import functorch_lite.numpy as fnp
        >>> fnp.nanmean(fnp.array([1.0, fnp.nan, 2.0]))
        Array(1.5, dtype=float32)
    """
    aval = aval_of(a)
    if dtype is None and aval.dtype.kind in "biu":
        dtype = _float_dtype_for(aval.dtype)
    present = ~isnan(a)
    total = sum(where(present, a, 0), axis, dtype=dtype, keepdims=keepdims)
    return total / sum(present, axis, dtype=aval_of(total).dtype, keepdims=keepdims)


def ptp(a, axis=None, keepdims=False):
    """Range (maximum minus minimum) along ``axis``.

    Example:
        >>> import functorch_lite.numpy as fnp
        >>> fnp.ptp(fnp.array([[1.0, 5.0], [3.0, 4.0]]), axis=1)
        Array([4., 1.], dtype=float32)
    """
    return max(a, axis, keepdims) - min(a, axis, keepdims)


def _sorted_groups(name, a, axis):
    """``a`` with its reduced axes moved last, flattened into one sorted axis of length n."""
    from functorch_lite import numpy as fnp  # sort lives with the indexing functions

    aval = aval_of(a)
    axes = normalize_axes(name, axis, aval.ndim)
    n = _reduced_size(aval.shape, axes)
    if n == 0:
        raise ValueError(f"fnp.{name}: the reduction over axes {axes} of an array of shape "
                         f"{aval.shape} is empty and has no {name}")
    kept = tuple(i for i in range(aval.ndim) if i not in axes)
    moved = fnp.transpose(a, kept + axes)
    return fnp.sort(reshape(moved, tuple(aval.shape[i] for i in kept) + (n,)), axis=-1), axes


def _take_sorted(sorted_, index):
    """The sorted values at the static positions ``index``: ``index.shape + kept shape``."""
    if index.ndim == 0:
        return sorted_[..., int(index)]
    picked = sorted_[..., index]
    q_axes = tuple(range(aval_of(picked).ndim - index.ndim, aval_of(picked).ndim))
    return moveaxis(picked, q_axes, tuple(range(index.ndim)))


# Static positions of each quantile method in a sorted group of n: (below, above, weight of
# above), as NumPy computes them from the "virtual index" v = (n - 1) q.
_QUANTILE_METHODS = {
    "linear": lambda v, n: (np.floor(v), np.minimum(np.floor(v) + 1, n - 1), v - np.floor(v)),
    "lower": lambda v, n: (np.floor(v),) * 2 + (None,),
    "higher": lambda v, n: (np.ceil(v),) * 2 + (None,),
    "nearest": lambda v, n: (np.around(v),) * 2 + (None,),
    "midpoint": lambda v, n: (np.floor(v), np.ceil(v), np.where(v % 1 == 0, 0.0, 0.5)),
}


def _quantile(name, a, q, axis, method, keepdims, scale=1):
    if isinstance(q, Tracer):
        raise TypeError(f"fnp.{name}: q must be static (Python numbers or a concrete array): "
                        "the positions read from the sorted values depend on it")
    weak_q = type(q) in (int, float)  # np.float64 is a float subclass, but not weak
    # A list q takes the default float dtype, like any list (NumPy: float64).
    q_dtype = settings.float_dtype if isinstance(q, (list, tuple)) else np.asarray(q).dtype
    q = np.asarray(q, dtype=q_dtype if q_dtype.kind == "f" else np.float64)
    if not np.all((q >= 0) & (q <= scale)):
        raise ValueError(f"fnp.{name}: q must lie in [0, {scale}], got {q}")
    q = q / scale
    if method not in _QUANTILE_METHODS:
        raise ValueError(f"fnp.{name}: method {method!r} is not supported; use one of "
                         f"{', '.join(map(repr, _QUANTILE_METHODS))}")
    aval = aval_of(a)
    # Like NumPy: the discrete methods read values (ints stay ints); interpolation runs in
    # a float dtype, the weights in that dtype promoted with q's (a Python float is weak).
    dtype = weight_dtype = aval.dtype
    if method in ("linear", "midpoint"):
        dtype = weight_dtype = _float_dtype_for(dtype)
        if not weak_q:
            weight_dtype = np.result_type(dtype, q_dtype)
    sorted_, axes = _sorted_groups(name, astype(a, dtype), axis)
    n = _reduced_size(aval.shape, axes)
    below, above, weight = _QUANTILE_METHODS[method]((n - 1) * q, n)
    low = _take_sorted(sorted_, below.astype(np.int64))
    if weight is not None:
        # NumPy's lerp, from the nearer end (a weight of 0 or 1 gives a value exactly), with
        # the weights rounded to the result dtype as NumPy rounds them.
        high = _take_sorted(sorted_, above.astype(np.int64))
        lead = weight.shape + (1,) * (aval.ndim - len(axes))
        near_high = _placed((weight >= 0.5).reshape(lead), like=low)
        weight, complement = (_placed(w.astype(weight_dtype).reshape(lead), like=low)
                              for w in (weight, 1 - weight))
        diff = high - low
        low = where(near_high, high - diff * complement, low + diff * weight)
    if keepdims:
        low = reshape(low, q.shape + red._kept_shape(aval.shape, axes))
    return low


def quantile(a, q, axis=None, method="linear", keepdims=False):
    """The ``q``-th quantiles (``0 <= q <= 1``, static) of ``a`` over ``axis``, as NumPy.

    ``method`` is ``"linear"`` (interpolate), ``"lower"``, ``"higher"``, ``"nearest"`` or
    ``"midpoint"``. The dimensions of ``q`` come first in the result; a list ``q`` has the
    default float dtype (NumPy: float64). The gradient flows to the elements the quantile is
    read from.

    Example:
        >>> import functorch_lite.numpy as fnp
        >>> fnp.quantile(fnp.array([4.0, 1.0, 3.0, 2.0]), [0.0, 0.5, 1.0])
        Array([1. , 2.5, 4. ], dtype=float32)
    """
    return _quantile("quantile", a, q, axis, method, keepdims)


def percentile(a, q, axis=None, method="linear", keepdims=False):
    """The ``q``-th percentiles (``0 <= q <= 100``): :func:`quantile` of ``q / 100``.

    Example:
        >>> import functorch_lite.numpy as fnp
        >>> fnp.percentile(fnp.array([[1.0, 2.0, 3.0], [4.0, 6.0, 8.0]]), 50, axis=1)
        Array([2., 6.], dtype=float32)
    """
    return _quantile("percentile", a, q, axis, method, keepdims, scale=100)


def median(a, axis=None, keepdims=False):
    """The median over ``axis``: the middle sorted value, or the mean of the two middle ones.

    Example:
        >>> import functorch_lite.numpy as fnp
        >>> fnp.median(fnp.array([[3.0, 1.0, 2.0], [4.0, 6.0, 5.0]]), axis=1)
        Array([2., 5.], dtype=float32)
    """
    aval = aval_of(a)
    sorted_, axes = _sorted_groups("median", astype(a, _float_dtype_for(aval.dtype)), axis)
    n = _reduced_size(aval.shape, axes)
    middle = _take_sorted(sorted_, np.asarray(n // 2))
    if n % 2 == 0:  # as NumPy: the mean of the two middle values
        middle = (_take_sorted(sorted_, np.asarray(n // 2 - 1)) + middle) / 2
    return reshape(middle, red._kept_shape(aval.shape, axes)) if keepdims else middle


__all__ = ["sum", "prod", "max", "min", "amax", "amin", "all", "any", "argmax", "argmin",
           "cumsum", "cumprod", "mean", "var", "std", "logsumexp", "average",
           "count_nonzero", "nansum", "nanmean", "ptp", "quantile", "percentile", "median"]
