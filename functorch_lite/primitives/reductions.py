"""Reductions over static axes: sum, max, min, argmax, argmin.

Every reduction primitive takes ``axes`` as a sorted tuple of non-negative ints and drops
those axes (``keepdims`` is a reshape done by the ``fnp`` function). ``mean``, ``var``,
``std`` are composites.
"""

from __future__ import annotations

import numpy as np

from functorch_lite import numpy as fnp
from functorch_lite.core import Primitive, ShapedArray, bind
from functorch_lite.primitives.rules import elementwise_dtype, linear


def _kept_shape(shape, axes):
    """``shape`` with the reduced ``axes`` set to 1 (the keepdims shape)."""
    return tuple(1 if i in axes else d for i, d in enumerate(shape))


def _reduce_eval(name, impl):
    def abstract_eval(x, *, axes):
        for a in axes:
            if not 0 <= a < x.ndim:
                raise ValueError(f"fnp.{name}: axis {a} is out of range for an array of "
                                 f"shape {x.shape}")
        shape = tuple(d for i, d in enumerate(x.shape) if i not in axes)
        dtype, _ = elementwise_dtype(name, lambda xp, v: impl(xp, v, ()), [x], {})
        return ShapedArray(shape, dtype, x.weak_type)
    return abstract_eval


def _reduce_batch(prim):
    def batch(args, dims, *, axes):
        x, bd = args[0], dims[0]
        x = x if bd == 0 else fnp.moveaxis(x, bd, 0)
        return bind(prim, x, axes=tuple(a + 1 for a in axes)), 0
    return batch


# --- sum --------------------------------------------------------------------------------
def _sum_impl(xp, x, axes):
    return xp.sum(x, axis=axes)


def _sum_transpose(ct, avals, needs, *, axes):
    (aval,) = avals
    ct = fnp.reshape(ct, _kept_shape(aval.shape, axes))
    out = fnp.broadcast_to(ct, aval.shape)
    return (fnp.astype(out, aval.dtype) if out.dtype != aval.dtype else out,)


reduce_sum_p = linear("reduce_sum", _sum_impl, _reduce_eval("sum", _sum_impl), _sum_transpose,
                      emit="sum")
reduce_sum_p.batch = _reduce_batch(reduce_sum_p)


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
    if x.size == 0 and any(x.shape[a] == 0 for a in (axes or range(x.ndim))):
        raise ValueError(f"fnp.{name}: zero-size reduction over axes {axes} of an array of "
                         f"shape {x.shape} has no identity; pass initial= or check sizes")


def _max_impl(xp, x, axes):
    _check_nonempty("max", x, axes)
    return xp.max(x, axis=axes)


def _min_impl(xp, x, axes):
    _check_nonempty("min", x, axes)
    return xp.min(x, axis=axes)


reduce_max_p = _extremum("reduce_max", _max_impl)
reduce_min_p = _extremum("reduce_min", _min_impl)


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
