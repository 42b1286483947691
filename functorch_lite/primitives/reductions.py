"""Reductions over static axes (sum, prod, max, min, all, any, argmax, argmin) and the
cumulative scans along one axis (cumsum, cumprod).

Every reduction primitive takes ``axes`` as a sorted tuple of non-negative ints and drops
those axes (``keepdims`` is a reshape done by the ``fnp`` function). A scan takes one
non-negative ``axis`` and a ``reverse`` flag (scan from the end). ``mean``, ``var``,
``std``, ``logsumexp``, ``average``, ``count_nonzero`` ... are composites in
``functorch_lite.numpy._reductions``.

The derivatives of ``prod`` and ``cumprod`` never divide by ``x``: "the product of the
other elements" is built from exclusive scans, so they are exact when ``x`` holds zeros.
"""

from __future__ import annotations

import functools

import numpy as np

from functorch_lite import numpy as fnp
from functorch_lite.core import Primitive, ShapedArray, bind
from functorch_lite.numpy._creation import _eye_like, _placed
from functorch_lite.primitives.rules import elementwise_dtype, linear
from functorch_lite.primitives.shape import broadcast_impl

_kept_shapes: dict = {}


def _kept_shape(shape, axes):
    """``shape`` with the reduced ``axes`` set to 1 (the keepdims shape)."""
    try:
        return _kept_shapes[shape, axes]
    except KeyError:
        if len(_kept_shapes) > 4096:  # many distinct shapes: start over
            _kept_shapes.clear()
        kept = _kept_shapes[shape, axes] = tuple(
            1 if i in axes else d for i, d in enumerate(shape))
        return kept


def _reduce_eval(name, impl):
    def abstract_eval(x, *, axes):
        for a in axes:
            if not 0 <= a < x.ndim:
                raise ValueError(f"fnp.{name}: axis {a} is out of range for an array of "
                                 f"shape {x.shape}")
        shape = tuple(d for i, d in enumerate(x.shape) if i not in axes)
        dtype, _ = elementwise_dtype(name, lambda xp, v: impl(xp, v, ()), [x], {})
        return ShapedArray(shape, dtype, x.weak_type and dtype == x.dtype)
    return abstract_eval


def _reduce_batch(prim):
    def batch(args, dims, *, axes):
        x, bd = args[0], dims[0]
        x = x if bd == 0 else fnp.moveaxis(x, bd, 0)
        return bind(prim, x, axes=tuple(a + 1 for a in axes)), 0
    return batch


# --- sum --------------------------------------------------------------------------------
def _sum_impl(xp, x, axes):
    if type(x) is np.ndarray:  # what x.sum calls, minus ~0.4 us of NumPy's Python wrapper
        return _add_reduce(x, axis=axes)
    if type(x) in (int, float, bool, complex):
        return xp.sum(x, axis=axes)
    return x.sum(axis=axes)  # the method skips ~1 us of numpy.sum's Python dispatch


_add_reduce = np.add.reduce


def _sum_transpose(ct, avals, needs, *, axes):
    (aval,) = avals
    if type(ct) is np.ndarray:  # on buffers (eager reverse mode)
        out = broadcast_impl(np, ct.reshape(_kept_shape(aval.shape, axes)), aval.shape)
        return (out.astype(aval.dtype) if out.dtype != aval.dtype else out,)
    ct = fnp.reshape(ct, _kept_shape(aval.shape, axes))
    out = fnp.broadcast_to(ct, aval.shape)
    return (fnp.astype(out, aval.dtype) if out.dtype != aval.dtype else out,)


reduce_sum_p = linear("reduce_sum", _sum_impl, _reduce_eval("sum", _sum_impl), _sum_transpose,
                      emit="sum")
reduce_sum_p.batch = _reduce_batch(reduce_sum_p)


# --- prod: the derivative is the product of the *other* elements of each group ----------
def _prod_impl(xp, x, axes):
    return xp.prod(x, axis=axes)


def _exclusive_cumprod(x, reverse):
    """Along the last axis, the product of the elements strictly before each one (after it
    when ``reverse``): a scan of all but one element, shifted in by a column of ones."""
    ones = fnp.ones_like(x, x.dtype, fnp.shape(x)[:-1] + (1,))
    if reverse:
        return fnp.concatenate([bind(cumprod_p, x[..., 1:], axis=fnp.ndim(x) - 1,
                                     reverse=True), ones], axis=-1)
    return fnp.concatenate([ones, bind(cumprod_p, x[..., :-1], axis=fnp.ndim(x) - 1,
                                       reverse=False)], axis=-1)


def _prod_of_others(x, axes):
    """For each element of ``x``, the product of the other elements of its reduction group.

    The reduced axes are moved last and flattened into one group axis; the product of the
    others is (product of those before) * (product of those after): no division by ``x``.
    """
    shape = fnp.shape(x)
    if 0 in shape:
        return fnp.zeros_like(x)  # empty groups (and no groups) have nothing to multiply
    kept = tuple(i for i in range(len(shape)) if i not in axes)
    perm = kept + tuple(axes)
    moved = fnp.transpose(x, perm)
    lead = tuple(shape[i] for i in kept)
    group = fnp.reshape(moved, lead + (int(np.prod([shape[a] for a in axes])),))
    others = _exclusive_cumprod(group, False) * _exclusive_cumprod(group, True)
    return fnp.transpose(fnp.reshape(others, fnp.shape(moved)), tuple(np.argsort(perm)))


def _prod_jvp(primals, tangents, *, axes):
    (x,), (t,) = primals, tangents
    return bind(reduce_prod_p, x, axes=axes), fnp.sum(t * _prod_of_others(x, axes), axis=axes)


def _prod_vjp(ct, out, primals, needs, *, axes):
    (x,) = primals
    ct = fnp.reshape(ct, _kept_shape(fnp.shape(x), axes))
    return (ct * _prod_of_others(x, axes),)


reduce_prod_p = Primitive("reduce_prod", _prod_impl, _reduce_eval("prod", _prod_impl),
                          jvp=_prod_jvp, vjp=_prod_vjp, emit="prod")
reduce_prod_p.batch = _reduce_batch(reduce_prod_p)


# --- max / min: the derivative is shared equally among the elements that attain it -------
def _extremum_weights(x, out, axes):
    location = fnp.astype(x == fnp.reshape(out, _kept_shape(fnp.shape(x), axes)), out.dtype)
    counts = fnp.sum(location, axis=axes, keepdims=True)
    return location / counts


def _extremum(name, impl):
    def jvp(primals, tangents, *, axes):
        (x,), (t,) = primals, tangents
        out = bind(prim, x, axes=axes)
        return out, fnp.sum(t * _extremum_weights(x, out, axes), axis=axes)

    def vjp(ct, out, primals, needs, *, axes):
        (x,) = primals
        ct = fnp.reshape(ct, _kept_shape(fnp.shape(x), axes))
        return (ct * _extremum_weights(x, out, axes),)

    prim = Primitive(name, impl, _reduce_eval(name, impl), jvp=jvp, vjp=vjp, emit=name)
    prim.batch = _reduce_batch(prim)
    return prim


def _check_nonempty(name, x, axes):
    if x.size == 0 and any(x.shape[a] == 0 for a in axes):
        raise ValueError(f"fnp.{name}: zero-size reduction over axes {axes} of an array of "
                         f"shape {x.shape} has no identity; pass initial= or check sizes")


def _max_impl(xp, x, axes):
    _check_nonempty("max", x, axes)
    if type(x) is np.ndarray:  # what np.max calls, minus its Python wrappers
        return _max_reduce(x, axis=axes)
    return xp.max(x, axis=axes)


def _min_impl(xp, x, axes):
    _check_nonempty("min", x, axes)
    if type(x) is np.ndarray:
        return _min_reduce(x, axis=axes)
    return xp.min(x, axis=axes)


_max_reduce, _min_reduce = np.maximum.reduce, np.minimum.reduce


reduce_max_p = _extremum("reduce_max", _max_impl)
reduce_min_p = _extremum("reduce_min", _min_impl)


# --- all / any (boolean results; no derivatives) -----------------------------------------
def _all_impl(xp, x, axes):
    return xp.all(x, axis=axes)


def _any_impl(xp, x, axes):
    return xp.any(x, axis=axes)


reduce_and_p = Primitive("reduce_and", _all_impl, _reduce_eval("all", _all_impl),
                         differentiable=False, emit="all")
reduce_or_p = Primitive("reduce_or", _any_impl, _reduce_eval("any", _any_impl),
                        differentiable=False, emit="any")
reduce_and_p.batch = _reduce_batch(reduce_and_p)
reduce_or_p.batch = _reduce_batch(reduce_or_p)


# --- argmax / argmin (one axis; no derivatives) ------------------------------------------
def _arg_eval(name):
    def abstract_eval(x, *, axis):
        shape = tuple(d for i, d in enumerate(x.shape) if i != axis)
        return ShapedArray(shape, np.int64)
    return abstract_eval


def _arg_batch(prim):
    def batch(args, dims, *, axis):
        x, bd = args[0], dims[0]
        x = x if bd == 0 else fnp.moveaxis(x, bd, 0)
        return bind(prim, x, axis=axis + 1), 0
    return batch


argmax_p = Primitive("argmax", lambda xp, x, axis: xp.argmax(x, axis=axis), _arg_eval("argmax"),
                     differentiable=False, emit="argmax")
argmin_p = Primitive("argmin", lambda xp, x, axis: xp.argmin(x, axis=axis), _arg_eval("argmin"),
                     differentiable=False, emit="argmin")
argmax_p.batch = _arg_batch(argmax_p)
argmin_p.batch = _arg_batch(argmin_p)


# --- cumsum / cumprod: scans along one axis -----------------------------------------------
def _scan_impl(name):
    def impl(xp, x, axis, reverse):
        scan = getattr(xp, name)
        if not reverse:
            return scan(x, axis=axis)
        return xp.flip(scan(xp.flip(x, axis), axis=axis), axis)
    return impl


@functools.cache
def _scan_dtype(impl, dtype):
    """NumPy's result dtype (small ints and bools accumulate in int64, as in ``sum``)."""
    return impl(np, np.ones((1,), dtype), axis=0, reverse=False).dtype


def _scan_eval(name, impl):
    def abstract_eval(x, *, axis, reverse):
        if not 0 <= axis < x.ndim:
            raise ValueError(f"fnp.{name}: axis {axis} is out of range for an array of "
                             f"shape {x.shape}")
        dtype = _scan_dtype(impl, x.dtype)
        return ShapedArray(x.shape, dtype, x.weak_type and dtype == x.dtype)
    return abstract_eval


def _scan_batch(prim):
    def batch(args, dims, *, axis, reverse):
        x, bd = args[0], dims[0]
        x = x if bd == 0 else fnp.moveaxis(x, bd, 0)
        return bind(prim, x, axis=axis + 1, reverse=reverse), 0
    return batch


def _cumsum_transpose(ct, avals, needs, *, axis, reverse):
    (aval,) = avals
    out = bind(cumsum_p, ct, axis=axis, reverse=not reverse)
    return (fnp.astype(out, aval.dtype) if out.dtype != aval.dtype else out,)


_cumsum_impl = _scan_impl("cumsum")
cumsum_p = linear("cumsum", _cumsum_impl, _scan_eval("cumsum", _cumsum_impl),
                  _cumsum_transpose, emit="cumsum")
cumsum_p.batch = _scan_batch(cumsum_p)


def _cumprod_partials(x, axis, reverse):
    """``B[..., k, i] = d y_i / d x_k`` for ``y = cumprod(x)``, with ``axis`` moved last.

    Row ``k`` is the scan of ``x`` with ``x_k`` replaced by 1, kept where ``i >= k``
    (``i <= k`` when ``reverse``). Exact when ``x`` holds zeros, at the price of O(n^2)
    memory per scanned row of length n (and one more factor n per derivative order).
    """
    x = fnp.moveaxis(x, axis, -1)
    n = fnp.shape(x)[-1]
    rows = fnp.where(_eye_like(x, n, bool), 1, fnp.expand_dims(x, -2))
    scans = bind(cumprod_p, rows, axis=fnp.ndim(rows) - 1, reverse=reverse)
    k, i = np.arange(n).reshape(n, 1), np.arange(n)
    return fnp.where(_placed(k >= i if reverse else k <= i, like=x), scans, 0)


def _cumprod_jvp(primals, tangents, *, axis, reverse):
    (x,), (t,) = primals, tangents
    partials = _cumprod_partials(x, axis, reverse)
    t = fnp.expand_dims(fnp.moveaxis(t, axis, -1), -1)
    t_out = fnp.moveaxis(fnp.sum(partials * t, axis=-2), -1, axis)
    return bind(cumprod_p, x, axis=axis, reverse=reverse), t_out


def _cumprod_vjp(ct, out, primals, needs, *, axis, reverse):
    (x,) = primals
    partials = _cumprod_partials(x, axis, reverse)
    ct = fnp.expand_dims(fnp.moveaxis(ct, axis, -1), -2)
    return (fnp.moveaxis(fnp.sum(partials * ct, axis=-1), -1, axis),)


_cumprod_impl = _scan_impl("cumprod")
cumprod_p = Primitive("cumprod", _cumprod_impl, _scan_eval("cumprod", _cumprod_impl),
                      jvp=_cumprod_jvp, vjp=_cumprod_vjp, emit="cumprod")
cumprod_p.batch = _scan_batch(cumprod_p)
