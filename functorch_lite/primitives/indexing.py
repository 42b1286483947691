"""Indexing primitives: basic slicing, gather/scatter, sort, argsort, searchsorted.

An index is a static parameter: a :class:`StaticIndex` wraps a NumPy index tuple (ints,
slices, ``None``, ``Ellipsis``) in which each integer-array index is replaced by the
placeholder :data:`ARRAY`; the arrays themselves are operands. Every impl is then just
NumPy's own indexing, ``x[index]``, with the arrays filled back in.

* ``slice`` / ``update_slice``: basic indexing (no arrays), ``x[index]`` and
  ``x with x[index] replaced by v``. Both are linear, and each is the other's transpose.
* ``gather`` / ``scatter`` / ``scatter_add`` / ``scatter_mul`` / ``scatter_min`` /
  ``scatter_max``: indexing with integer arrays and the ``.at[...]`` updates. ``gather``
  and ``scatter_add`` transpose into each other; ``scatter`` (set) routes the cotangent of
  each update to it only if that update is the one that was written (repeated indices).

NumPy places the dimensions of the broadcast index arrays (the *advanced block*) where the
first advanced index stands when all advanced indices are adjacent, and first otherwise;
an integer counts as an advanced index whenever an array is present. :func:`index_layout`
is that rule, and the batching rules lean on it to find where the batch axis ends up.
"""

from __future__ import annotations

import builtins
import operator

import numpy as np

from functorch_lite import _compiled_backward
from functorch_lite import numpy as fnp
from functorch_lite.core import Primitive, ShapedArray, aval_of, bind
from functorch_lite.numpy._creation import _arange_like
from functorch_lite.primitives.rules import linear


# --------------------------------------------------------------------------------------
# Static indices
# --------------------------------------------------------------------------------------
class _ArrayPlaceholder:
    """Stands for an integer-array operand inside a :class:`StaticIndex`."""

    __slots__ = ()

    def __repr__(self):
        return "<array>"

    def __reduce__(self):
        return "ARRAY"


ARRAY = _ArrayPlaceholder()


def static_int(v):
    """A slice bound as a Python int (or None)."""
    return v if v is None or type(v) is int else operator.index(v)


class StaticIndex:
    """A NumPy index tuple as a hashable primitive parameter.

    ``entries`` is what NumPy receives (with :data:`ARRAY` where an array operand goes);
    equality and hashing use a normalized key, computed only when asked for (the eager path
    never hashes).
    """

    __slots__ = ("entries", "_key")

    def __init__(self, entries):
        self.entries = entries
        self._key = None

    @property
    def key(self):
        if self._key is None:
            self._key = tuple(
                ("slice", static_int(e.start), static_int(e.stop), static_int(e.step))
                if type(e) is slice else e for e in self.entries)
        return self._key

    def __hash__(self):
        return hash(self.key)

    def __eq__(self, other):
        return type(other) is StaticIndex and self.key == other.key

    def __repr__(self):
        return f"[{format_index(self.entries)}]"

    def fill(self, arrays):
        """The NumPy index with ``arrays`` in place of the placeholders."""
        it = iter(arrays)
        return tuple(next(it) if e is ARRAY else e for e in self.entries)

    def prepend(self, entry):
        return StaticIndex((entry,) + tuple(self.entries))


_compiled_backward.PLAIN_PARAM_TYPES.add(StaticIndex)  # holds no arrays: a valid key part


def format_index(entries):
    """``entries`` as written between brackets (``1:3, None, ...``), for messages."""
    def one(e):
        if type(e) is slice:
            parts = ["" if v is None else str(v) for v in (e.start, e.stop, e.step)]
            return ":".join(parts[:2] if e.step is None else parts)
        if e is Ellipsis:
            return "..."
        if e is ARRAY or e is None or isinstance(e, (int, np.integer)):
            return repr(e) if e is ARRAY else str(e)
        aval = aval_of(e)
        return f"<{aval.str_short()} array>"
    return ", ".join(one(e) for e in entries)


def index_layout(shape, entries, array_shapes):
    """NumPy's result shape of ``x[entries]`` for ``x`` of ``shape``.

    Returns ``(out_shape, block_start, block_ndim)``: where the advanced block (the
    broadcast shape of the index arrays) sits in the result; ``block_start`` is ``None``
    when the index has no arrays. Raises IndexError like NumPy does.
    """
    ndim = len(shape)
    consumed = ellipses = 0
    has_arrays = False
    for e in entries:
        if e is None:
            continue
        if e is Ellipsis:
            ellipses += 1
            continue
        consumed += 1
        has_arrays = has_arrays or e is ARRAY
    if ellipses > 1:
        raise IndexError("an index can only have a single ellipsis ('...')")
    if consumed > ndim:
        raise IndexError(f"too many indices for array: array is {ndim}-dimensional, but "
                         f"{consumed} were indexed")
    out, positions, block_shapes = [], [], []
    block_start = None
    dim = 0
    arrays = iter(array_shapes)
    for pos, e in enumerate(entries):
        if e is None:
            out.append(1)
            continue
        if e is Ellipsis:
            k = ndim - consumed
            out.extend(shape[dim:dim + k])
            dim += k
            continue
        if type(e) is slice:
            out.append(len(range(*e.indices(shape[dim]))))
            dim += 1
            continue
        if e is ARRAY:
            block_shapes.append(tuple(next(arrays)))
        else:
            n = shape[dim]
            if not -n <= e < n:
                raise IndexError(f"index {e} is out of bounds for axis {dim} with size {n}")
            if not has_arrays:  # a plain integer drops its axis
                dim += 1
                continue
        if block_start is None:
            block_start = len(out)
        positions.append(pos)
        dim += 1
    out.extend(shape[dim:])
    if not positions:
        return tuple(out), None, 0
    try:
        block = np.broadcast_shapes(*block_shapes)
    except ValueError:
        raise IndexError("shape mismatch: indexing arrays could not be broadcast together "
                         f"with shapes {' '.join(map(str, block_shapes))}") from None
    if positions[-1] - positions[0] != len(positions) - 1:
        block_start = 0  # advanced indices not adjacent: the block goes first
    out[block_start:block_start] = block
    return tuple(out), block_start, len(block)


def _indexed_aval(x, arrays, index):
    for a in arrays:
        if a.dtype.kind not in "iu":
            raise IndexError(f"arrays used as indices must be of integer (or boolean) type, "
                             f"got {a.dtype}")
    shape, _, _ = index_layout(x.shape, index.entries, [a.shape for a in arrays])
    return ShapedArray(shape, x.dtype, x.weak_type)


def _check_update(name, x, arrays, v, index):
    want = _indexed_aval(x, arrays, index).shape
    if v.shape != want:
        raise ValueError(f"{name}: updates of shape {v.shape} do not match the indexed shape "
                         f"{want} of x{index} with x of shape {x.shape}")
    return ShapedArray(x.shape, x.dtype, x.weak_type)


# --------------------------------------------------------------------------------------
# Batching: rewrite an index so that it also walks the batch axis
# --------------------------------------------------------------------------------------
def _move_to_front(x, bdim):
    return x if bdim == 0 else fnp.moveaxis(x, bdim, 0)


def _first_advanced(entries, ndim):
    """``(k, dim)``: the position in ``entries`` of the first advanced entry (an array, or
    an int when arrays are present) and the axis of an ``ndim``-d ``x`` that it indexes."""
    consumed = builtins.sum(1 for e in entries if e is not None and e is not Ellipsis)
    dim = 0
    for k, e in enumerate(entries):
        if e is ARRAY or type(e) is int:
            return k, dim
        if e is Ellipsis:
            dim += ndim - consumed
        elif e is not None:
            dim += 1
    raise AssertionError("no advanced index")


def _batched_index(x, x_bdim, arrays, array_bdims, index, size, batch_x):
    """Rewrite an indexing of batched operands as one indexing of whole arrays.

    Returns ``(x, arrays, index, x_bdim, out_bdim)``: the batch axis of the new ``x`` and
    of ``x[index]``. When no index array is batched, the batch axis of ``x`` goes first and
    a leading full slice walks it. Otherwise the batched index arrays get their batch axis
    first (lined up with the others by broadcasting), and a batched ``x`` has its batch
    axis moved next to the advanced indices and indexed there by an ``arange`` array, so
    that element ``b`` of the batch reads ``x[b]`` (no Python loop over the batch); the
    advanced block then lands where it did for one example. ``batch_x`` forces a batched
    ``x`` (scatters write a result per batch element).
    """
    x_shape = tuple(fnp.shape(x))
    if x_bdim is None and batch_x:
        x, x_bdim = fnp.broadcast_to(x, (size,) + x_shape), 0
    if all(bd is None for bd in array_bdims):
        x = _move_to_front(x, x_bdim)
        index = index.prepend(slice(None))
        _, start, block_ndim = index_layout(fnp.shape(x), index.entries,
                                            [fnp.shape(a) for a in arrays])
        return x, list(arrays), index, 0, block_ndim if start == 0 else 0
    rank = max(fnp.ndim(a) - (bd is not None) for a, bd in zip(arrays, array_bdims, strict=True))
    lined_up = []
    for a, bd in zip(arrays, array_bdims, strict=True):
        if bd is not None:
            a = _move_to_front(a, bd)
            a_shape = fnp.shape(a)
            a = fnp.reshape(a, (size,) + (1,) * (rank + 1 - len(a_shape)) + a_shape[1:])
        lined_up.append(a)
    if x_bdim is not None:
        entries = tuple(index.entries)
        k, dim = _first_advanced(entries, len(fnp.shape(x)) - 1)
        if x_bdim != dim:
            x = fnp.moveaxis(x, x_bdim, dim)
        batch_ids = fnp.reshape(_arange_like(x, size), (size,) + (1,) * rank)
        lined_up.insert(builtins.sum(1 for e in entries[:k] if e is ARRAY), batch_ids)
        index, x_bdim = StaticIndex(entries[:k] + (ARRAY,) + entries[k:]), dim
    _, start, _ = index_layout(fnp.shape(x), index.entries, [fnp.shape(a) for a in lined_up])
    return x, lined_up, index, x_bdim, start


def _batch_size(args, dims):
    return next(fnp.shape(a)[d] for a, d in zip(args, dims, strict=True) if d is not None)


def _gather_batch(args, dims, *, index):
    x, *arrays = args
    x, arrays, index, _, out_bdim = _batched_index(x, dims[0], arrays, dims[1:], index,
                                                   _batch_size(args, dims), batch_x=False)
    return bind(gather_p, x, *arrays, index=index), out_bdim


def _scatter_batch(prim):
    def batch(args, dims, *, index):
        x, *arrays, v = args
        x, arrays, index, x_bdim, v_bdim = _batched_index(
            x, dims[0], arrays, dims[1:-1], index, _batch_size(args, dims), batch_x=True)
        target, _, _ = index_layout(fnp.shape(x), index.entries, [fnp.shape(a) for a in arrays])
        if dims[-1] is None:
            v = fnp.broadcast_to(fnp.expand_dims(v, v_bdim), target)
        elif dims[-1] != v_bdim:
            v = fnp.moveaxis(v, dims[-1], v_bdim)
        return bind(prim, x, *arrays, v, index=index), x_bdim
    return batch


# --------------------------------------------------------------------------------------
# Basic indexing: slice and update_slice (linear, each the other's transpose)
# --------------------------------------------------------------------------------------
def _update_slice_impl(xp, x, v, index):
    out = x.copy()
    out[index.entries] = v
    return out


def _slice_transpose(ct, avals, needs, *, index):
    (x,) = avals
    return (bind(update_slice_p, fnp.zeros_like(ct, ct.dtype, x.shape), ct, index=index),)


def _update_slice_transpose(ct, avals, needs, *, index):
    x, v = avals
    ct_x = (bind(update_slice_p, ct, fnp.zeros_like(ct, ct.dtype, v.shape), index=index)
            if needs[0] else None)
    ct_v = bind(slice_p, ct, index=index) if needs[1] else None
    return ct_x, ct_v


def _slice_batch(args, dims, *, index):
    return bind(slice_p, _move_to_front(args[0], dims[0]), index=index.prepend(slice(None))), 0


def _update_slice_batch(args, dims, *, index):
    size = _batch_size(args, dims)
    x, v = [fnp.broadcast_to(a, (size,) + tuple(fnp.shape(a))) if d is None else
            _move_to_front(a, d) for a, d in zip(args, dims, strict=True)]
    return bind(update_slice_p, x, v, index=index.prepend(slice(None))), 0


slice_p = linear(
    "slice", lambda xp, x, index: x[index.entries],
    lambda x, *, index: _indexed_aval(x, (), index), _slice_transpose,
    emit="getitem", batch=_slice_batch)

update_slice_p = linear(
    "update_slice", _update_slice_impl,
    lambda x, v, *, index: _check_update("update_slice", x, (), v, index),
    _update_slice_transpose, emit="update_slice", batch=_update_slice_batch)


# --------------------------------------------------------------------------------------
# gather and scatter_add: x[index] with array operands, and its transpose
# --------------------------------------------------------------------------------------
def _gather_jvp(primals, tangents, *, index):
    x, *arrays = primals
    out = bind(gather_p, x, *arrays, index=index)
    if tangents[0] is None:
        return out, None
    return out, bind(gather_p, tangents[0], *arrays, index=index)


def _gather_vjp(ct, out, primals, needs, *, index):
    x, *arrays = primals
    zeros = fnp.zeros_like(ct, ct.dtype, aval_of(x).shape)
    return (bind(scatter_add_p, zeros, *arrays, ct, index=index),) + (None,) * len(arrays)


gather_p = Primitive(
    "gather", lambda xp, x, *arrays, index: x[index.fill(arrays)],
    lambda x, *arrays, index: _indexed_aval(x, arrays, index),
    jvp=_gather_jvp, vjp=_gather_vjp, batch=_gather_batch, emit="gather")


def _ufunc_at(name):
    """An impl writing ``x`` with ``ufunc.at`` (repeated indices all apply)."""
    cupyx_name = {"add": "scatter_add", "minimum": "scatter_min", "maximum": "scatter_max"}

    def impl(xp, x, *args, index):
        *arrays, v = args
        out = x.copy()
        at = getattr(getattr(xp, name), "at", None)
        if at is None:  # older CuPy: ufunc.at for add/min/max lives in cupyx.scatter_*
            import cupyx

            at = getattr(cupyx, cupyx_name[name])
        at(out, index.fill(arrays), v)
        return out
    return impl


def _scatter_eval(name):
    return lambda x, *args, index: _check_update(name, x, args[:-1], args[-1], index)


def _scatter_add_jvp(primals, tangents, *, index):
    x, *arrays, v = primals
    t_x, t_v = tangents[0], tangents[-1]
    out = bind(scatter_add_p, x, *arrays, v, index=index)
    if t_v is None:
        return out, t_x
    if t_x is None:
        t_x = fnp.zeros_like(t_v, shape=aval_of(x).shape)
    return out, bind(scatter_add_p, t_x, *arrays, t_v, index=index)


def _scatter_add_vjp(ct, out, primals, needs, *, index):
    x, *arrays, v = primals
    ct_v = bind(gather_p, ct, *arrays, index=index) if needs[-1] else None
    return (ct if needs[0] else None,) + (None,) * len(arrays) + (ct_v,)


scatter_add_p = Primitive(
    "scatter_add", _ufunc_at("add"), _scatter_eval("scatter_add"), jvp=_scatter_add_jvp,
    vjp=_scatter_add_vjp, emit="scatter_add")
scatter_add_p.batch = _scatter_batch(scatter_add_p)


# --------------------------------------------------------------------------------------
# scatter (set): with repeated indices one update wins; only it gets a cotangent
# --------------------------------------------------------------------------------------
def _scatter_impl(xp, x, *args, index):
    *arrays, v = args
    out = x.copy()
    out[index.fill(arrays)] = v
    return out


def _winners(like, x_shape, arrays, v_shape, index):
    """Boolean mask over the updates: True where that update is the one written.

    Each update writes its own position number; reading the numbers back says which one
    landed (the same scatter, so the same choice among repeated indices). The constants
    go on the device of ``like``.
    """
    ids = fnp.reshape(_arange_like(like, int(np.prod(v_shape, dtype=np.int64))), v_shape)
    slots = bind(scatter_p, fnp.full_like(like, -1, np.int64, x_shape), *arrays, ids,
                 index=index)
    return bind(gather_p, slots, *arrays, index=index) == ids


def _scatter_jvp(primals, tangents, *, index):
    x, *arrays, v = primals
    t_x, t_v = tangents[0], tangents[-1]
    out = bind(scatter_p, x, *arrays, v, index=index)
    if t_x is None and t_v is None:
        return out, None
    dtype = aval_of(t_x if t_x is not None else t_v).dtype
    t_x = fnp.zeros_like(t_v, dtype, aval_of(x).shape) if t_x is None else t_x
    t_v = fnp.zeros_like(t_x, dtype, aval_of(v).shape) if t_v is None else t_v
    return out, bind(scatter_p, t_x, *arrays, t_v, index=index)


def _scatter_vjp(ct, out, primals, needs, *, index):
    x, *arrays, v = primals
    v_shape = aval_of(v).shape
    ct_x = ct_v = None
    if needs[0]:
        ct_x = bind(scatter_p, ct, *arrays, fnp.zeros_like(ct, ct.dtype, v_shape), index=index)
    if needs[-1]:
        won = _winners(ct, aval_of(x).shape, arrays, v_shape, index)
        ct_v = fnp.where(won, bind(gather_p, ct, *arrays, index=index), 0)
    return (ct_x,) + (None,) * len(arrays) + (ct_v,)


scatter_p = Primitive("scatter", _scatter_impl, _scatter_eval("scatter"), jvp=_scatter_jvp,
                      vjp=_scatter_vjp, emit="scatter")
scatter_p.batch = _scatter_batch(scatter_p)


# --------------------------------------------------------------------------------------
# scatter_mul: out = x * (product of the updates landing on each element). Linear in x;
# the derivative in the updates with repeated indices is not implemented (``.at[].multiply``
# with indices known to be unique is a differentiable composite in ``fnp``).
# --------------------------------------------------------------------------------------
def _no_update_derivative():
    return NotImplementedError(
        "x.at[idx].multiply(v): the derivative with respect to v is only implemented when "
        "the indices are known to have no repeats (concrete index arrays without "
        "duplicates, basic indices, or .multiply(v, unique_indices=True)). Differentiate "
        "with respect to x only, or write the update as x.at[idx].set(x[idx] * v) when "
        "the indices are unique.")


def _scatter_mul_jvp(primals, tangents, *, index):
    x, *arrays, v = primals
    if tangents[-1] is not None:
        raise _no_update_derivative()
    out = bind(scatter_mul_p, x, *arrays, v, index=index)
    return out, bind(scatter_mul_p, tangents[0], *arrays, v, index=index)


def _scatter_mul_vjp(ct, out, primals, needs, *, index):
    x, *arrays, v = primals
    if needs[-1]:
        raise _no_update_derivative()
    return (bind(scatter_mul_p, ct, *arrays, v, index=index),) + (None,) * (len(arrays) + 1)


def _scatter_mul_impl(xp, x, *args, index):
    *arrays, v = args
    at = getattr(xp.multiply, "at", None)
    if at is None:
        raise NotImplementedError(
            "x.at[idx].multiply(v) with index arrays has no CUDA implementation (CuPy has no "
            "multiply.at); with unique indices write x.at[idx].set(x[idx] * v)")
    out = x.copy()
    at(out, index.fill(arrays), v)
    return out


scatter_mul_p = Primitive("scatter_mul", _scatter_mul_impl, _scatter_eval("scatter_mul"),
                          jvp=_scatter_mul_jvp, vjp=_scatter_mul_vjp, emit="scatter_mul")
scatter_mul_p.batch = _scatter_batch(scatter_mul_p)


# --------------------------------------------------------------------------------------
# scatter_min / scatter_max: the derivative goes to whichever of x and the updates landing
# on an element was selected, shared equally among ties (like reduce_max).
# --------------------------------------------------------------------------------------
def _selection(x, arrays, v, out, index):
    """Masks of the selected x entries and updates, and the tie count of each element."""
    dtype = aval_of(out).dtype
    picked_x = x == out
    picked_v = v == bind(gather_p, out, *arrays, index=index)
    counts = fnp.astype(picked_x, dtype) + bind(
        scatter_add_p, fnp.zeros_like(out, dtype), *arrays,
        fnp.astype(picked_v, dtype), index=index)
    return picked_x, picked_v, counts


def _scatter_extremum(name, ufunc_name):
    def jvp(primals, tangents, *, index):
        x, *arrays, v = primals
        t_x, t_v = tangents[0], tangents[-1]
        out = bind(prim, x, *arrays, v, index=index)
        picked_x, picked_v, counts = _selection(x, arrays, v, out, index)
        dtype = aval_of(out).dtype
        t_out = fnp.zeros_like(out, dtype)
        if t_x is not None:
            t_out = fnp.where(picked_x, t_x, t_out)
        if t_v is not None:
            t_out = bind(scatter_add_p, t_out, *arrays, fnp.where(picked_v, t_v, 0),
                         index=index)
        return out, t_out / counts

    def vjp(ct, out, primals, needs, *, index):
        x, *arrays, v = primals
        picked_x, picked_v, counts = _selection(x, arrays, v, out, index)
        share = ct / counts
        ct_x = fnp.where(picked_x, share, 0) if needs[0] else None
        ct_v = (fnp.where(picked_v, bind(gather_p, share, *arrays, index=index), 0)
                if needs[-1] else None)
        return (ct_x,) + (None,) * len(arrays) + (ct_v,)

    prim = Primitive(name, _ufunc_at(ufunc_name), _scatter_eval(name), jvp=jvp, vjp=vjp,
                     emit=name)
    prim.batch = _scatter_batch(prim)
    return prim


scatter_min_p = _scatter_extremum("scatter_min", "minimum")
scatter_max_p = _scatter_extremum("scatter_max", "maximum")


# --------------------------------------------------------------------------------------
# sort, argsort, searchsorted (one static, non-negative axis)
# --------------------------------------------------------------------------------------
def _same_aval(x, *, axis):
    return ShapedArray(x.shape, x.dtype, x.weak_type)


def _sort_jvp(primals, tangents, *, axis):
    (x,), (t,) = primals, tangents
    perm = bind(argsort_p, x, axis=axis)
    return bind(sort_p, x, axis=axis), fnp.take_along_axis(t, perm, axis)


def _sort_vjp(ct, out, primals, needs, *, axis):
    # sort = take_along_axis(x, perm); its transpose puts ct back through the inverse perm.
    inverse = bind(argsort_p, bind(argsort_p, primals[0], axis=axis), axis=axis)
    return (fnp.take_along_axis(ct, inverse, axis),)


def _axis_batch(prim):
    def batch(args, dims, *, axis):
        return bind(prim, _move_to_front(args[0], dims[0]), axis=axis + 1), 0
    return batch


sort_p = Primitive("sort", lambda xp, x, axis: xp.sort(x, axis=axis), _same_aval,
                   jvp=_sort_jvp, vjp=_sort_vjp, emit="sort")
sort_p.batch = _axis_batch(sort_p)

def _argsort_impl(xp, x, axis):
    # CuPy's argsort is always stable (and older CuPy takes no ``kind``); any other
    # backend is asked for a stable sort.
    if type(x).__module__.startswith("cupy"):
        return xp.argsort(x, axis=axis)
    return xp.argsort(x, axis=axis, kind="stable")


argsort_p = Primitive(
    "argsort", _argsort_impl, lambda x, *, axis: ShapedArray(x.shape, np.intp),
    differentiable=False, emit="argsort")
argsort_p.batch = _axis_batch(argsort_p)


def _searchsorted_batch(args, dims, *, side):
    a, v = args
    a_bdim, v_bdim = dims
    if a_bdim is None:  # the result is shaped like v, batch axis included
        return bind(searchsorted_p, a, v, side=side), v_bdim
    # Each batch element has its own sorted row: count the entries below each value.
    a = _move_to_front(a, a_bdim)
    size = fnp.shape(a)[0]
    v = (fnp.broadcast_to(v, (size,) + tuple(fnp.shape(v))) if v_bdim is None else
         _move_to_front(v, v_bdim))
    v_rank = fnp.ndim(v) - 1
    rows = fnp.reshape(a, (size,) + (1,) * v_rank + (fnp.shape(a)[1],))
    below = rows < v[..., None] if side == "left" else rows <= v[..., None]
    return fnp.sum(fnp.astype(below, np.intp), axis=-1), 0


searchsorted_p = Primitive(
    "searchsorted", lambda xp, a, v, side: xp.searchsorted(a, v, side=side),
    lambda a, v, *, side: ShapedArray(v.shape, np.intp), differentiable=False,
    batch=_searchsorted_batch, emit="searchsorted")
