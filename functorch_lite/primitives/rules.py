"""Helpers that turn one fact about a primitive into all of its rules.

* ``unary``: an elementwise op gives its derivative ``f'(x)`` once (as a function of the
  input and the already-computed output) and gets jvp, vjp and batching from it.
* ``binary``: a broadcasting elementwise op gives its two partial derivatives and gets the
  shared unbroadcast for its vjp.
* ``linear``: a linear op gives its transpose and gets jvp (apply to the tangent) and vjp.

Rules are written with ``fnp`` functions, never with ``xp``, so they trace: higher
derivatives, jit and vmap of gradients come for free. NB: a zero tangent or cotangent is
``None`` and never reaches a derivative function.
"""

from __future__ import annotations

import numpy as np

from functorch_lite import numpy as fnp
from functorch_lite.core import Array, Primitive, ShapedArray, aval_of, bind

__all__ = ["unary", "binary", "linear", "unbroadcast", "instantiate",
           "elementwise_dtype", "broadcast_shapes_for"]


# --------------------------------------------------------------------------------------
# Abstract evaluation of elementwise ops: the dtype comes from running the impl on one
# element of each input dtype (exactly NumPy's rules, NEP 50 weak scalars included),
# cached per (primitive, dtypes, params).
# --------------------------------------------------------------------------------------
_dtype_cache: dict = {}


def elementwise_dtype(prim_name, impl, avals, params):
    key = (prim_name, tuple((a.dtype, a.weak_type) for a in avals),
           tuple(sorted(params.items())) if params else ())
    try:
        return _dtype_cache[key]
    except KeyError:
        pass
    except TypeError:  # unhashable params: compute without caching
        key = None
    samples = [a.promotion_operand() if a.weak_type else np.ones((), a.dtype) for a in avals]
    with np.errstate(all="ignore"):
        out = impl(np, *samples, **params)
    result = (np.result_type(out), all(a.weak_type for a in avals))
    if key is not None:
        _dtype_cache[key] = result
    return result


def broadcast_shapes_for(name, avals):
    try:
        return np.broadcast_shapes(*(a.shape for a in avals))
    except ValueError:
        shapes = " and ".join(str(a.shape) for a in avals)
        raise ValueError(
            f"fnp.{name}: operands with shapes {shapes} cannot be broadcast together "
            "(NumPy broadcasting: trailing dimensions must match or be 1). Reshape or "
            "expand_dims one operand.") from None


def _elementwise_abstract_eval(name, impl):
    def abstract_eval(*avals, **params):
        shape = broadcast_shapes_for(name, avals) if len(avals) > 1 else avals[0].shape
        dtype, weak = elementwise_dtype(name, impl, avals, params)
        return ShapedArray(shape, dtype, weak)
    return abstract_eval


# --------------------------------------------------------------------------------------
# Shape helpers used by many rules
# --------------------------------------------------------------------------------------
def unbroadcast(g, like):
    """Sum ``g`` down to the shape of ``like`` (undoing broadcasting) and cast to its dtype.

    A NumPy buffer ``g`` (a rule run on buffers) is summed by NumPy and stays a buffer.

    ``like`` is the operand (an array or tracer) or its aval; a weakly typed (Python
    scalar) operand keeps ``g``'s dtype.
    """
    if type(g) is Array and type(like) is Array:  # eager reverse mode: the common case
        gbuf, lbuf = g._buf, like._buf
        if gbuf.shape == lbuf.shape and gbuf.dtype == lbuf.dtype:
            return g
    if type(like) in _PY_SCALARS:
        like = aval_of(like)
    if type(g) is np.ndarray:  # eager reverse mode on NumPy buffers
        return _unbroadcast_buffer(g, like)
    shape, dtype = like.shape, like.dtype
    gshape = g.shape
    if gshape == shape and g.dtype == dtype:
        return g
    if gshape != shape:
        lead = len(gshape) - len(shape)
        axes = tuple(range(lead)) + tuple(
            lead + i for i, d in enumerate(shape) if d == 1 and gshape[lead + i] != 1)
        if axes:
            g = fnp.sum(g, axis=axes)
        if g.shape != shape:
            g = fnp.reshape(g, shape)
    if g.dtype != dtype and not getattr(like, "weak_type", False):
        g = fnp.astype(g, dtype)
    return g


def _unbroadcast_buffer(g, like):
    """``unbroadcast`` of a NumPy buffer, by NumPy: same sums, same casts."""
    t = type(like)
    if t is np.ndarray:
        if g.shape == like.shape and g.dtype == like.dtype and type(g) is np.ndarray:
            return g
    elif t is Array:
        like = like._buf
    elif t in _PY_SCALARS:
        like = aval_of(like)
    if type(g) is Array:  # the rule's derivative came from an fnp function
        if type(g._buf) is not np.ndarray:
            return unbroadcast(g, like)
        g = g._buf
    elif type(g) is not np.ndarray:
        g = np.asarray(g)  # a NumPy scalar from arithmetic on 0-d buffers
    shape, dtype = like.shape, like.dtype
    gshape = g.shape
    if gshape != shape:
        lead = len(gshape) - len(shape)
        axes = tuple(range(lead)) + tuple(
            lead + i for i, d in enumerate(shape) if d == 1 and gshape[lead + i] != 1)
        if axes:
            g = np.add.reduce(g, axis=axes)  # what fnp.sum runs
        if g.shape != shape:
            g = g.reshape(shape)
    if g.dtype != dtype and not getattr(like, "weak_type", False):
        if g.dtype.kind == "c" and dtype.kind != "c":
            return fnp.astype(Array(np.asarray(g)), dtype)  # fnp's complex-to-real rule
        g = g.astype(dtype)
    return g


def instantiate(t, x):
    """A concrete tangent: ``t``, or zeros shaped like the primal ``x`` (on its device)
    when ``t`` is None."""
    if t is not None:
        return t
    return fnp.zeros_like(x, aval_of(x).dtype)


def _broadcast_tangent(t, out):
    if t.shape != out.shape:
        t = fnp.broadcast_to(t, out.shape)
    if t.dtype != out.dtype:
        t = fnp.astype(t, out.dtype)
    return t


_CONSTANT_TYPES = (int, float)
_PY_SCALARS = (bool, int, float, complex)


def _scale(t, d):
    """``t * d`` skipping multiplications by the constants 1 and -1."""
    if type(d) in _CONSTANT_TYPES:
        if d == 1:
            return t
        if d == -1:
            return -t
    elif type(t) is np.ndarray and type(d) is Array and type(d._buf) is np.ndarray:
        d = d._buf  # a rule on buffers whose derivative came from an fnp function
    return t * d


# --------------------------------------------------------------------------------------
# Declarations
# --------------------------------------------------------------------------------------
def unary(name, impl, derivative=None, *, emit=None, differentiable=True, batch=None):
    """Declare an elementwise unary primitive.

    ``derivative(x, y)`` is f'(x), given the input ``x`` and output ``y = f(x)``
    (so ``tanh`` can reuse ``1 - y*y``). Leave it ``None`` for ops with no derivative
    (``differentiable=False``) or a derivative that is zero almost everywhere
    (floor, sign): then the tangent is zero.
    """

    if derivative is None:
        def jvp(primals, tangents, **params):
            return bind(prim, *primals, **params), None

        def vjp(ct, out, primals, needs, **params):
            return (None,)
    else:
        def jvp(primals, tangents, **params):
            (x,), (t,) = primals, tangents
            y = bind(prim, x, **params)
            return y, _broadcast_tangent(_scale(t, derivative(x, y)), y)

        def vjp(ct, out, primals, needs, **params):
            (x,) = primals
            return (unbroadcast(_scale(ct, derivative(x, out)), x),)

    prim = Primitive(name, impl, _elementwise_abstract_eval(name, impl), jvp=jvp, vjp=vjp,
                     batch=batch or _elementwise_batch(lambda *a, **p: bind(prim, *a, **p)),
                     emit=emit, differentiable=differentiable)
    prim.elementwise = True
    prim.vjp_reads = "values" if derivative is not None else "shapes"
    prim.vjp_on_buffers = True
    return prim


def binary(name, impl, derivatives=None, *, emit=None, differentiable=True, batch=None,
           symmetric=False):
    """Declare a broadcasting elementwise primitive of two (or more) operands.

    ``derivatives`` holds one ``d(x, y, out)`` per operand (a number such as ``1`` or
    ``-1`` skips the multiplication, ``None`` means that operand gets no derivative).
    ``symmetric``: ``f(x, y) == f(y, x)`` with the derivatives swapped, so when both
    operands are one value (``x * x``) their cotangents are equal and computed once.
    """

    if derivatives is None:
        def jvp(primals, tangents, **params):
            return bind(prim, *primals, **params), None

        def vjp(ct, out, primals, needs, **params):
            return (None,) * len(primals)
    else:
        def jvp(primals, tangents, **params):
            out = bind(prim, *primals, **params)
            t_out = None
            for t, d in zip(tangents, derivatives):
                if t is None or d is None:
                    continue
                term = _scale(t, d if isinstance(d, (int, float)) else d(*primals, out))
                t_out = term if t_out is None else t_out + term
            return out, (None if t_out is None else _broadcast_tangent(t_out, out))

        def vjp(ct, out, primals, needs, **params):
            if type(ct) is np.ndarray and len(primals) == 2:  # on buffers (eager)
                return _binary_vjp_buffers(ct, out, primals, needs, derivatives, symmetric)
            if symmetric and primals[0] is primals[1] and needs[0]:
                d = derivatives[0]
                g = _scale(ct, d if type(d) in _CONSTANT_TYPES else d(*primals, out))
                g = unbroadcast(g, primals[0])
                return g, g
            cts = []
            for x, d, need in zip(primals, derivatives, needs):
                if not need or d is None:
                    cts.append(None)
                    continue
                g = _scale(ct, d if type(d) in _CONSTANT_TYPES else d(*primals, out))
                cts.append(unbroadcast(g, x))
            return tuple(cts)

    prim = Primitive(name, impl, _elementwise_abstract_eval(name, impl), jvp=jvp, vjp=vjp,
                     batch=batch or _elementwise_batch(lambda *a, **p: bind(prim, *a, **p)),
                     emit=emit, differentiable=differentiable)
    prim.elementwise = True
    # add and subtract: constant derivatives, so the backward pass needs only shapes
    constant = derivatives is None or all(
        d is None or type(d) in _CONSTANT_TYPES for d in derivatives)
    prim.vjp_reads = "shapes" if constant else "values"
    prim.vjp_on_buffers = True
    return prim


def _binary_vjp_buffers(ct, out, primals, needs, derivatives, symmetric):
    """The vjp of a binary elementwise op on NumPy buffers: the general rule, unrolled."""
    x, y = primals
    gx = gy = None
    if needs[0] and derivatives[0] is not None:
        gx = _operand_ct_buffer(ct, derivatives[0], x, y, out, x)
        if symmetric and y is x:  # x * x: both cotangents are one value
            return gx, gx
    if needs[1] and derivatives[1] is not None:
        gy = _operand_ct_buffer(ct, derivatives[1], x, y, out, y)
    return gx, gy


def _operand_ct_buffer(ct, d, x, y, out, operand):
    g = _scale(ct, d if type(d) in _CONSTANT_TYPES else d(x, y, out))
    if type(g) is not np.ndarray or g.shape != operand.shape or g.dtype != operand.dtype:
        g = _unbroadcast_buffer(g, operand)
    return g


def linear(name, impl, abstract_eval, transpose, *, emit=None, batch=None,
           multiple_results=False):
    """Declare a primitive that is linear in every operand.

    ``transpose(ct, avals, needs, **params)`` returns one cotangent per operand. The jvp
    applies the op to the tangents (zeros filled in where only some are nonzero).
    """

    def jvp(primals, tangents, **params):
        out = bind(prim, *primals, **params)
        if all(t is None for t in tangents):
            return out, None
        ts = [instantiate(t, x) for t, x in zip(tangents, primals)]
        return out, bind(prim, *ts, **params)

    def vjp(ct, out, primals, needs, **params):
        return transpose(ct, [aval_of(x) for x in primals], needs, **params)

    prim = Primitive(name, impl, abstract_eval, jvp=jvp, vjp=vjp, batch=batch, emit=emit,
                     multiple_results=multiple_results)
    prim.transpose = transpose
    prim.vjp_reads = "shapes"
    prim.vjp_on_buffers = True
    return prim


def _elementwise_batch(apply):
    """vmap rule for elementwise ops: move every batch axis to the front and line up ranks.

    An unbatched operand broadcasts as usual; a batched one gets singleton axes after its
    batch axis so that it lines up with the per-example rank of the result.
    """

    def batch(args, batch_dims, **params):
        ranks = [aval_of(a).ndim - (bd is not None) for a, bd in zip(args, batch_dims)]
        rank = max(ranks)
        moved = []
        for a, bd, r in zip(args, batch_dims, ranks):
            if bd is None:
                moved.append(a)
                continue
            if bd != 0:
                a = fnp.moveaxis(a, bd, 0)
            if r < rank:
                a = fnp.reshape(a, (a.shape[0],) + (1,) * (rank - r) + tuple(a.shape[1:]))
            moved.append(a)
        return apply(*moved, **params), 0

    return batch
