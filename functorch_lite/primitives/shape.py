"""Shape primitives: reshape, broadcast_to, transpose, concatenate, pad.

All are linear: each declares its transpose (the vjp) and gets its jvp from ``linear``.
Other shape functions (squeeze, expand_dims, moveaxis, stack, tile, ...) are composites in
``functorch_lite.numpy._shape`` and need no rules.
"""

from __future__ import annotations

import numpy as np

from functorch_lite import numpy as fnp
from functorch_lite.core import ShapedArray, bind
from functorch_lite.primitives.rules import linear, unbroadcast


def _move_to_front(x, bdim):
    return x if bdim == 0 else fnp.moveaxis(x, bdim, 0)


# --- reshape ----------------------------------------------------------------------------
def _reshape_eval(x, *, new_sizes):
    if int(np.prod(new_sizes)) != x.size:
        raise ValueError(f"fnp.reshape: cannot reshape an array of shape {x.shape} "
                         f"({x.size} elements) into shape {new_sizes}")
    return ShapedArray(new_sizes, x.dtype, x.weak_type)


def _reshape_impl(xp, x, new_sizes):
    # the ndarray method skips ~1 us of numpy.reshape's Python dispatch
    return x.reshape(new_sizes) if type(x) is np.ndarray else xp.reshape(x, new_sizes)


reshape_p = linear(
    "reshape", _reshape_impl, _reshape_eval,
    lambda ct, avals, needs, new_sizes: (fnp.reshape(ct, avals[0].shape),),
    emit="reshape",
    batch=lambda args, dims, new_sizes: (
        bind(reshape_p, _move_to_front(args[0], dims[0]),
             new_sizes=(args[0].shape[dims[0]],) + new_sizes), 0))


# --- broadcast_to -----------------------------------------------------------------------
def _broadcast_eval(x, *, shape):
    try:
        np.broadcast_shapes(x.shape, shape)
        ok = len(shape) >= x.ndim and all(
            d == s or d == 1 for d, s in zip(x.shape[::-1], shape[::-1]))
    except ValueError:
        ok = False
    if not ok:
        raise ValueError(f"fnp.broadcast_to: cannot broadcast shape {x.shape} to {shape}")
    return ShapedArray(shape, x.dtype, x.weak_type)


def _broadcast_batch(args, dims, shape):
    x, bd = args[0], dims[0]
    x = _move_to_front(x, bd)
    pad = len(shape) - (x.ndim - 1)
    x = fnp.reshape(x, (x.shape[0],) + (1,) * pad + tuple(x.shape[1:]))
    return bind(broadcast_to_p, x, shape=(x.shape[0],) + shape), 0


_SMALL = 4096


def broadcast_impl(xp, x, shape):
    # xp.broadcast_to costs ~2.5 us of Python (stride tricks): a small result is cheaper as
    # a filled copy (~0.3 us); a large one stays a zero-copy read-only view.
    if type(x) in (int, float, bool, complex):
        return xp.full(shape, x)
    n = 1
    for d in shape:
        n *= d
    if n <= _SMALL:
        out = xp.empty(shape, x.dtype)
        out[...] = x
        return out
    return xp.broadcast_to(x, shape)


broadcast_to_p = linear(
    "broadcast_to", broadcast_impl, _broadcast_eval,
    lambda ct, avals, needs, shape: (unbroadcast(ct, avals[0]),),
    emit="broadcast_to", batch=_broadcast_batch)


# --- transpose --------------------------------------------------------------------------
def _transpose_eval(x, *, perm):
    if sorted(perm) != list(range(x.ndim)):
        raise ValueError(f"fnp.transpose: axes {perm} are not a permutation of the "
                         f"{x.ndim} axes of an array of shape {x.shape}")
    return ShapedArray(tuple(x.shape[p] for p in perm), x.dtype, x.weak_type)


transpose_p = linear(
    "transpose", lambda xp, x, perm: xp.transpose(x, perm), _transpose_eval,
    lambda ct, avals, needs, perm: (fnp.transpose(ct, tuple(np.argsort(perm))),),
    emit="transpose",
    batch=lambda args, dims, perm: (
        bind(transpose_p, _move_to_front(args[0], dims[0]),
             perm=(0,) + tuple(p + 1 for p in perm)), 0))


# --- concatenate ------------------------------------------------------------------------
def _concatenate_eval(*xs, axis):
    first = xs[0]
    for x in xs[1:]:
        if x.ndim != first.ndim or any(
                a != b for i, (a, b) in enumerate(zip(x.shape, first.shape)) if i != axis):
            shapes = ", ".join(str(x.shape) for x in xs)
            raise ValueError(f"fnp.concatenate: shapes {shapes} differ outside axis {axis}")
    shape = list(first.shape)
    shape[axis] = sum(x.shape[axis] for x in xs)
    dtype = np.result_type(*(x.promotion_operand() for x in xs))
    return ShapedArray(shape, dtype, all(x.weak_type for x in xs))


def _concatenate_transpose(ct, avals, needs, axis):
    cts, start = [], 0
    for aval, need in zip(avals, needs):
        stop = start + aval.shape[axis]
        if need:
            index = (slice(None),) * axis + (slice(start, stop),)
            cts.append(unbroadcast(ct[index], aval))
        else:
            cts.append(None)
        start = stop
    return tuple(cts)


def _concatenate_batch(args, dims, axis):
    size = next(a.shape[d] for a, d in zip(args, dims) if d is not None)
    moved = []
    for a, d in zip(args, dims):
        if d is None:
            a = fnp.broadcast_to(a, (size,) + tuple(fnp.shape(a)))
        else:
            a = _move_to_front(a, d)
        moved.append(a)
    return bind(concatenate_p, *moved, axis=axis + 1), 0


concatenate_p = linear(
    "concatenate", lambda xp, *xs, axis: xp.concatenate(xs, axis=axis), _concatenate_eval,
    _concatenate_transpose, emit="concatenate", batch=_concatenate_batch)


# --- pad (constant zero padding; other modes are composites) -----------------------------
def _pad_eval(x, *, widths):
    shape = tuple(d + lo + hi for d, (lo, hi) in zip(x.shape, widths))
    return ShapedArray(shape, x.dtype, x.weak_type)


def _pad_transpose(ct, avals, needs, widths):
    index = tuple(slice(lo, ct.shape[i] - hi) for i, (lo, hi) in enumerate(widths))
    return (ct[index],)


pad_p = linear(
    "pad", lambda xp, x, widths: xp.pad(x, widths), _pad_eval, _pad_transpose, emit="pad",
    batch=lambda args, dims, widths: (
        bind(pad_p, _move_to_front(args[0], dims[0]), widths=((0, 0),) + widths), 0))
