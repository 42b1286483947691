"""Indexing with NumPy semantics: ``x[idx]``, ``x.at[idx].set(v)``, take, sort, diagonal...

``getitem`` has a short eager path for basic indices (ints, slices, ``None``, ``...``):
one ``slice`` primitive whose parameter is the index itself. Integer arrays (and boolean
masks, turned into integer arrays with ``nonzero``) go to ``gather``; ``.at[...]`` updates
go to ``update_slice`` (basic indices) or the ``scatter`` family.
"""

from __future__ import annotations

import builtins

import numpy as np

from functorch_lite.core import (
    Array,
    ConcretizationError,
    Tracer,
    aval_of,
    bind,
    ctx,
    to_buffer,
    xp_of_buffer,
)
from functorch_lite.numpy._creation import _placed, asarray, zeros_like
from functorch_lite.numpy._elementwise import astype, clip, maximum, minimum, where
from functorch_lite.numpy._reductions import normalize_axes, sum
from functorch_lite.numpy._shape import (
    broadcast_to,
    concatenate,
    moveaxis,
    ndim,
    ravel,
    reshape,
    shape,
)
from functorch_lite.primitives import indexing as ix
from functorch_lite.primitives.indexing import ARRAY, StaticIndex, format_index

_BASIC = frozenset({int, slice, type(None), type(Ellipsis)})


# --------------------------------------------------------------------------------------
# Parsing an index
# --------------------------------------------------------------------------------------
def _concrete_buffer(a, what, fix):
    """The concrete buffer of ``a``; a clear error when a transform only knows its shape."""
    if isinstance(a, Tracer):
        try:
            a = a._concrete()
        except ConcretizationError:
            raise ConcretizationError(
                f"{what}: the shape of the result depends on the values of the "
                f"{a.aval.str_short()} argument, which are not known inside "
                f"{a._trace.transform_name}. {fix}") from None
    return to_buffer(a)


def _bool_mask(k, x_shape):
    return _concrete_buffer(
        k, f"fnp.getitem (x[mask] with x of shape {x_shape})",
        "Use fnp.where(mask, x, fill) to keep a fixed shape, or index outside the "
        "transformed function.")


def _entry_dims(shape, entries):
    """The first axis that each index entry reads (a ``("mask", k, shape)`` entry reads k
    axes)."""
    widths = [0 if e is None or e is Ellipsis else e[1] if type(e) is tuple else 1
              for e in entries]
    rest = len(shape) - builtins.sum(widths)
    dims, dim = [], 0
    for e, width in zip(entries, widths, strict=True):
        dims.append(dim)
        dim += rest if e is Ellipsis else width
    return dims


def _parse_index(x, key):
    """``(entries, arrays)``: ``key`` (indexing ``x``) as static entries plus integer-array
    operands.

    Python and NumPy integers and 0-d concrete integer arrays become static ints; lists
    and NumPy arrays become arrays on the device of ``x``; a boolean mask becomes its
    ``nonzero`` integer arrays (it must be concrete: its values decide the result's shape).
    """
    x_shape = shape(x)
    if type(key) is not tuple:
        key = (key,)
    entries, arrays, masks = [], [], []
    for k in key:
        t = type(k)
        if t in _BASIC:
            entries.append(slice(*(ix.static_int(v) for v in (k.start, k.stop, k.step)))
                           if t is slice else k)
            continue
        if t is bool or t is np.bool_:
            raise TypeError(f"fnp.getitem: a scalar boolean index ({k}) is not supported; "
                            "use x[None] to add an axis, or fnp.where for a selection")
        if isinstance(k, np.integer):
            entries.append(int(k))
            continue
        if isinstance(k, (list, tuple)):
            k = np.asarray(k)
            k = _placed(k if k.size else k.astype(np.intp), like=x)
        elif type(k) is np.ndarray:
            k = _placed(k, like=x)  # bind's fast path takes Arrays
        aval = aval_of(k)
        kind = aval.dtype.kind
        if kind == "b":
            if aval.ndim == 0:
                raise TypeError("fnp.getitem: a 0-d boolean index is not supported; use "
                                "x[None] to add an axis, or fnp.where for a selection")
            buf = _bool_mask(k, x_shape)
            # Marked as ("mask", ndim, shape) until its axes are known (after the loop).
            entries.append(("mask", aval.ndim, aval.shape))
            masks.append(xp_of_buffer(buf).nonzero(buf))
        elif kind in "iu":
            if aval.ndim == 0 and not isinstance(k, Tracer):
                entries.append(int(k))
            else:
                entries.append(ARRAY)
                arrays.append(k)
        else:
            raise IndexError(f"fnp.getitem: arrays used as indices must be of integer or "
                             f"boolean type, got {aval.dtype}")
    if not masks:
        return tuple(entries), arrays
    return _expand_masks(x_shape, entries, arrays, masks)


def _expand_masks(x_shape, entries, arrays, masks):
    """Replace each mask entry by one ARRAY per mask axis (after checking its shape)."""
    dims = _entry_dims(x_shape, entries)
    out, out_arrays = [], []
    arrays, masks = iter(arrays), iter(masks)
    for e, dim in zip(entries, dims, strict=True):
        if type(e) is not tuple:
            out.append(e)
            if e is ARRAY:
                out_arrays.append(next(arrays))
            continue
        _, k, mask_shape = e
        if tuple(x_shape[dim:dim + k]) != tuple(mask_shape):
            axes = f"axis {dim}" if k == 1 else f"axes {dim}..{dim + k - 1}"
            raise IndexError(
                f"fnp.getitem: boolean index of shape {mask_shape} does not match the "
                f"shape {tuple(x_shape[dim:dim + k])} of the {axes} it indexes (array of "
                f"shape {tuple(x_shape)})")
        out.extend([ARRAY] * k)
        out_arrays.extend(Array(i) for i in next(masks))
    return tuple(out), out_arrays


def _index_error(fn, x, key, err):
    msg = str(err)
    if msg.startswith(("fnp.", "x.at")):
        return err
    hint = (" Valid integer indices along an axis of size n are -n..n-1."
            if "out of bounds" in msg else "")
    shown = format_index(key if type(key) is tuple else (key,))
    return IndexError(f"{fn}: {msg} (indexing an array of shape {shape(x)} with "
                      f"[{shown}]).{hint}")


# --------------------------------------------------------------------------------------
# x[idx]
# --------------------------------------------------------------------------------------
def getitem(a, key):
    """``a[key]`` with NumPy semantics (what ``Array.__getitem__`` calls).

    Supports ints (negative too), slices with any start/stop/step, ``None``/``newaxis``,
    ``...``, integer arrays (broadcast together, placed by NumPy's rule for advanced
    indices) and boolean masks (eager only: the result's shape depends on the mask's
    values; under ``jit``/``vmap`` use ``fnp.where``). Out-of-bounds integers raise
    ``IndexError``.

    Example:
        >>> import functorch_lite.numpy as fnp
        >>> x = fnp.arange(12).reshape(3, 4)
        >>> fnp.getitem(x, (slice(None), -1))
        Array([ 3,  7, 11], dtype=int64)
        >>> x[::2, [0, 3]]
        Array([[ 0,  3],
               [ 8, 11]], dtype=int64)
        >>> x[x % 5 == 0]
        Array([ 0,  5, 10], dtype=int64)
    """
    if type(key) is not tuple:
        key = (key,)
    for k in key:
        if type(k) not in _BASIC:
            return _advanced_getitem(a, key)
    try:
        if ctx.trace is None and type(a) is Array and type(a._buf) is np.ndarray:
            # The eager fast path: NumPy's own basic indexing (a view), no bind.
            out = a._buf[key]
            return Array(out if type(out) is np.ndarray else np.asarray(out))
        return bind(ix.slice_p, a, index=StaticIndex(key))
    except IndexError as e:
        raise _index_error("fnp.getitem", a, key, e) from None


def _advanced_getitem(a, key):
    try:
        entries, arrays = _parse_index(a, key)
        if not arrays:
            return bind(ix.slice_p, a, index=StaticIndex(entries))
        return bind(ix.gather_p, a, *arrays, index=StaticIndex(entries))
    except IndexError as e:
        raise _index_error("fnp.getitem", a, key, e) from None


# --------------------------------------------------------------------------------------
# x.at[idx].set(v) and friends
# --------------------------------------------------------------------------------------
class IndexUpdateHelper:
    """What ``x.at`` returns: ``x.at[idx]`` is a reference with the update methods.

    Example:
        >>> import functorch_lite.numpy as fnp
        >>> x = fnp.zeros(4)
        >>> x.at[1:3].set(5.0)
        Array([0., 5., 5., 0.], dtype=float32)
        >>> x.at[[0, 0, 3]].add(1.0)
        Array([2., 0., 0., 1.], dtype=float32)
    """

    __slots__ = ("array",)

    def __init__(self, array):
        self.array = array

    def __getitem__(self, index):
        return IndexUpdateRef(self.array, index)

    def __repr__(self):
        return f"IndexUpdateHelper({self.array!r})"


class IndexUpdateRef:
    """``x.at[idx]``: functional updates of ``x`` at ``idx`` (JAX's ``.at`` semantics).

    Each method returns a new array with ``x``'s shape and dtype (``v`` is cast to it and
    broadcast to the shape of ``x[idx]``). With repeated indices ``add``, ``multiply``,
    ``min`` and ``max`` apply every update; ``set`` keeps one of them. ``set``, ``add``,
    ``min`` and ``max`` are differentiable with respect to ``x`` and ``v``; ``multiply``
    with respect to ``v`` only when the indices have no repeats.
    """

    __slots__ = ("array", "index")

    def __init__(self, array, index):
        self.array = array
        self.index = index

    def get(self):
        """``x[idx]``.

        Example:
            >>> import functorch_lite.numpy as fnp
            >>> fnp.arange(4).at[::2].get()
            Array([0, 2], dtype=int64)
        """
        return getitem(self.array, self.index)

    def set(self, values):
        """``x`` with ``x[idx]`` replaced by ``values``.

        Example:
            >>> import functorch_lite.numpy as fnp
            >>> fnp.zeros((2, 2)).at[:, 1].set(fnp.array([1.0, 2.0]))
            Array([[0., 1.],
                   [0., 2.]], dtype=float32)
        """
        return _update("set", self.array, self.index, values)

    def add(self, values):
        """``x`` with ``values`` added at ``idx`` (repeated indices accumulate).

        Example:
            >>> import functorch_lite.numpy as fnp
            >>> fnp.zeros(3).at[[0, 2, 0]].add(1.0)
            Array([2., 0., 1.], dtype=float32)
        """
        return _update("add", self.array, self.index, values)

    def multiply(self, values, unique_indices=False):
        """``x`` with ``x[idx]`` multiplied by ``values`` (repeated indices multiply in).

        ``unique_indices=True`` promises that the index has no repeats, which makes the
        result differentiable with respect to ``values`` even when the indices are traced.

        Example:
            >>> import functorch_lite.numpy as fnp
            >>> fnp.ones(3).at[[1, 1]].multiply(3.0)
            Array([1., 9., 1.], dtype=float32)
        """
        return _update("multiply", self.array, self.index, values, unique_indices)

    def min(self, values):
        """``x`` with ``x[idx]`` replaced by ``minimum(x[idx], values)``.

        Example:
            >>> import functorch_lite.numpy as fnp
            >>> fnp.array([1.0, 5.0]).at[:].min(3.0)
            Array([1., 3.], dtype=float32)
        """
        return _update("min", self.array, self.index, values)

    def max(self, values):
        """``x`` with ``x[idx]`` replaced by ``maximum(x[idx], values)``.

        Example:
            >>> import functorch_lite.numpy as fnp
            >>> fnp.array([1.0, 5.0]).at[[0, 1]].max(3.0)
            Array([3., 5.], dtype=float32)
        """
        return _update("max", self.array, self.index, values)


_COMBINE = {"add": lambda old, v: old + v, "multiply": lambda old, v: old * v,
            "min": minimum, "max": maximum}
_SCATTER = {"set": ix.scatter_p, "add": ix.scatter_add_p, "multiply": ix.scatter_mul_p,
            "min": ix.scatter_min_p, "max": ix.scatter_max_p}


def _update(method, x, key, values, unique_indices=False):
    x_aval = aval_of(x)
    try:
        entries, arrays = _parse_index(x, key)
        target, _, _ = ix.index_layout(x_aval.shape, entries, [shape(a) for a in arrays])
        values = _as_update(method, key, values, x_aval, target)
        index = StaticIndex(entries)
        if not arrays:  # basic index: no repeats, so every update is a read and a write
            if method != "set":
                old = bind(ix.slice_p, x, index=index)
                values = astype(_COMBINE[method](old, values), x_aval.dtype)
            return bind(ix.update_slice_p, x, values, index=index)
        if method == "multiply" and (unique_indices or _unique(x_aval.shape, entries, arrays)):
            old = bind(ix.gather_p, x, *arrays, index=index)
            return bind(ix.scatter_p, x, *arrays, old * values, index=index)
        return bind(_SCATTER[method], x, *arrays, values, index=index)
    except IndexError as e:
        raise _index_error(_at_name(method, key), x, key, e) from None


def _at_name(method, key):
    return f"x.at[{format_index(key if type(key) is tuple else (key,))}].{method}"


def _as_update(method, key, values, x_aval, target):
    """``values`` cast to x's dtype and broadcast to the indexed shape ``target``."""
    v_aval = aval_of(values)
    if v_aval.dtype != x_aval.dtype or v_aval.weak_type:
        values = (asarray(values, dtype=x_aval.dtype) if not isinstance(values, Tracer)
                  else astype(values, x_aval.dtype))
    if v_aval.shape != target:
        try:
            values = broadcast_to(values, target)
        except ValueError:
            raise ValueError(f"{_at_name(method, key)}: values of shape {v_aval.shape} "
                             f"cannot be broadcast to the indexed shape {target}") from None
    return values


def _unique(x_shape, entries, arrays):
    """Whether concrete index arrays address each element at most once."""
    if any(isinstance(a, Tracer) for a in arrays):
        return False
    bufs = [np.asarray(a) for a in arrays]
    dims = [d for e, d in zip(entries, _entry_dims(x_shape, entries), strict=True) if e is ARRAY]
    sizes = [x_shape[d] for d in dims]
    coords = [np.mod(b, n) if n else b
              for b, n in zip(np.broadcast_arrays(*bufs), sizes, strict=True)]
    flat = np.ravel_multi_index([c.ravel() for c in coords], sizes) if coords[0].size else []
    return len(np.unique(flat)) == len(flat)


# --------------------------------------------------------------------------------------
# take, take_along_axis, compress, nonzero
# --------------------------------------------------------------------------------------
def _one_axis(name, axis, nd):
    (ax,) = normalize_axes(name, axis, nd)
    return ax


def take(a, indices, axis=None, mode=None):
    """Elements of ``a`` at ``indices`` along ``axis`` (of the flattened array when None).

    ``mode``: ``None``/``'raise'`` (out-of-bounds indices raise), ``'clip'`` or ``'wrap'``.

    Example:
        >>> import functorch_lite.numpy as fnp
        >>> fnp.take(fnp.array([[1, 2], [3, 4]]), [1, 0, 1], axis=1)
        Array([[2, 1, 2],
               [4, 3, 4]], dtype=int64)
    """
    if axis is None:
        a, axis = ravel(a), 0
    ax = _one_axis("take", axis, ndim(a))
    if isinstance(indices, (list, tuple)):
        indices = np.asarray(indices, dtype=np.intp)
    n = shape(a)[ax]
    if mode == "clip":
        indices = clip(indices, 0, n - 1)
    elif mode == "wrap":
        indices = indices % n
    elif mode not in (None, "raise"):
        raise ValueError(f"fnp.take: mode must be None, 'raise', 'clip' or 'wrap', got "
                         f"{mode!r}")
    return getitem(a, (slice(None),) * ax + (indices,))


def take_along_axis(arr, indices, axis):
    """Pick values along ``axis`` at ``indices`` (shaped like ``arr``), e.g. from argsort.

    Example:
        >>> import functorch_lite.numpy as fnp
        >>> x = fnp.array([[3.0, 1.0, 2.0]])
        >>> fnp.take_along_axis(x, fnp.argsort(x, axis=1), axis=1)
        Array([[1., 2., 3.]], dtype=float32)
    """
    if axis is None:
        arr, axis = ravel(arr), 0
    arr_shape = shape(arr)
    nd = len(arr_shape)
    if ndim(indices) != nd:
        raise ValueError(f"fnp.take_along_axis: indices of shape {shape(indices)} need as "
                         f"many dimensions as arr of shape {arr_shape}")
    ax = _one_axis("take_along_axis", axis, nd)
    # Every other axis is indexed by an arange that broadcasts along the rest: an
    # elementwise (not outer) selection.
    index = tuple(
        indices if d == ax else
        np.arange(arr_shape[d]).reshape((1,) * d + (-1,) + (1,) * (nd - d - 1))
        for d in range(nd))
    return getitem(arr, index)


def nonzero(a):
    """Indices of the nonzero elements, one integer array per axis (eager only).

    The result's shape depends on the values, so inside ``jit``/``vmap`` this raises;
    use ``fnp.where(condition, x, y)`` there.

    Example:
        >>> import functorch_lite.numpy as fnp
        >>> fnp.nonzero(fnp.array([0, 3, 0, 5]))
        (Array([1, 3], dtype=int64),)
    """
    buf = _concrete_buffer(a, "fnp.nonzero", "Use fnp.where(condition, x, y), which keeps "
                           "a fixed shape, or call fnp.nonzero outside the transform.")
    xp = xp_of_buffer(buf)
    if getattr(buf, "ndim", 0) == 0:
        raise ValueError("fnp.nonzero: a 0-d input is not supported (as in NumPy); use "
                         "fnp.atleast_1d(a) first")
    return tuple(Array(i) for i in xp.nonzero(buf))


def flatnonzero(a):
    """Indices of the nonzero elements of the flattened array (eager only).

    Example:
        >>> import functorch_lite.numpy as fnp
        >>> fnp.flatnonzero(fnp.array([[0, 1], [1, 0]]))
        Array([1, 2], dtype=int64)
    """
    return nonzero(ravel(a))[0]


def argwhere(a):
    """Indices of the nonzero elements as an ``(N, a.ndim)`` array (eager only).

    Example:
        >>> import functorch_lite.numpy as fnp
        >>> fnp.argwhere(fnp.array([[0, 1], [1, 0]]))
        Array([[0, 1],
               [1, 0]], dtype=int64)
    """
    buf = _concrete_buffer(a, "fnp.argwhere", "Use fnp.where(condition, x, y), which keeps "
                           "a fixed shape, or call fnp.argwhere outside the transform.")
    return Array(xp_of_buffer(buf).argwhere(buf))


def compress(condition, a, axis=None):
    """The slices of ``a`` along ``axis`` where ``condition`` is true (eager only).

    Example:
        >>> import functorch_lite.numpy as fnp
        >>> fnp.compress([True, False, True], fnp.array([1, 2, 3]))
        Array([1, 3], dtype=int64)
    """
    cond = _concrete_buffer(condition, "fnp.compress", "Use fnp.where(condition, x, y), "
                            "which keeps a fixed shape.")
    (picked,) = xp_of_buffer(cond).nonzero(xp_of_buffer(cond).ravel(cond))
    return take(a, Array(picked), axis=axis)


# --------------------------------------------------------------------------------------
# sort, argsort, searchsorted
# --------------------------------------------------------------------------------------
def sort(a, axis=-1, kind=None, order=None, stable=None):
    """A sorted copy along ``axis`` (``None``: the flattened array). Differentiable: the
    derivative follows each element to where it was moved.

    Example:
        >>> import functorch_lite.numpy as fnp
        >>> fnp.sort(fnp.array([[3.0, 1.0], [0.0, 2.0]]), axis=0)
        Array([[0., 1.],
               [3., 2.]], dtype=float32)
    """
    if order is not None:
        raise NotImplementedError("fnp.sort: order= (structured arrays) is not supported")
    if axis is None:
        a, axis = ravel(a), 0
    return bind(ix.sort_p, a, axis=_one_axis("sort", axis, ndim(a)))


def argsort(a, axis=-1, kind=None, order=None, stable=None):
    """Indices that sort ``a`` along ``axis`` (stable: ties keep their order).

    Example:
        >>> import functorch_lite.numpy as fnp
        >>> fnp.argsort(fnp.array([3.0, 1.0, 2.0, 1.0]))
        Array([1, 3, 2, 0], dtype=int64)
    """
    if order is not None:
        raise NotImplementedError("fnp.argsort: order= (structured arrays) is not supported")
    if axis is None:
        a, axis = ravel(a), 0
    return bind(ix.argsort_p, a, axis=_one_axis("argsort", axis, ndim(a)))


def searchsorted(a, v, side="left", sorter=None):
    """Indices where ``v`` would be inserted into the sorted 1-D ``a`` to keep it sorted.

    Example:
        >>> import functorch_lite.numpy as fnp
        >>> fnp.searchsorted(fnp.array([1.0, 2.0, 3.0]), fnp.array([2.0, 0.5]), side="right")
        Array([2, 0], dtype=int64)
    """
    if side not in ("left", "right"):
        raise ValueError(f"fnp.searchsorted: side must be 'left' or 'right', got {side!r}")
    if ndim(a) != 1:
        raise ValueError(f"fnp.searchsorted: a must be 1-D, got shape {shape(a)}")
    if sorter is not None:
        a = take(a, sorter)
    return bind(ix.searchsorted_p, a, v, side=side)


# --------------------------------------------------------------------------------------
# flip, roll
# --------------------------------------------------------------------------------------
def flip(m, axis=None):
    """Reverse the order of elements along ``axis`` (all axes when None).

    Example:
        >>> import functorch_lite.numpy as fnp
        >>> fnp.flip(fnp.array([[1, 2], [3, 4]]), axis=1)
        Array([[2, 1],
               [4, 3]], dtype=int64)
    """
    nd = ndim(m)
    axes = normalize_axes("flip", axis, nd)
    return getitem(m, tuple(slice(None, None, -1) if d in axes else slice(None)
                            for d in range(nd)))


def fliplr(m):
    """Reverse the order of columns (axis 1).

    Example:
        >>> import functorch_lite.numpy as fnp
        >>> fnp.fliplr(fnp.array([[1, 2]]))
        Array([[2, 1]], dtype=int64)
    """
    return flip(m, 1)


def flipud(m):
    """Reverse the order of rows (axis 0).

    Example:
        >>> import functorch_lite.numpy as fnp
        >>> fnp.flipud(fnp.array([1, 2]))
        Array([2, 1], dtype=int64)
    """
    return flip(m, 0)


def roll(a, shift, axis=None):
    """Shift elements cyclically by ``shift`` along ``axis`` (the flattened array when
    None); ``shift`` and ``axis`` may be tuples.

    Example:
        >>> import functorch_lite.numpy as fnp
        >>> fnp.roll(fnp.arange(5), 2)
        Array([3, 4, 0, 1, 2], dtype=int64)
    """
    if axis is None:
        return reshape(roll(ravel(a), shift, 0), shape(a))
    a_shape = shape(a)
    shifts, axes = np.broadcast_arrays(np.asarray(shift), np.asarray(axis))
    total = {}
    for s, ax in zip(shifts.ravel().tolist(), axes.ravel().tolist(), strict=True):
        ax = _one_axis("roll", ax, len(a_shape))
        total[ax] = total.get(ax, 0) + s
    for ax, s in total.items():
        n = a_shape[ax]
        if n == 0 or s % n == 0:
            continue
        cut = n - s % n
        head = (slice(None),) * ax
        a = concatenate([getitem(a, head + (slice(cut, None),)),
                         getitem(a, head + (slice(0, cut),))], axis=ax)
    return a


# --------------------------------------------------------------------------------------
# Diagonals and triangles
# --------------------------------------------------------------------------------------
def _diagonal_slice(n1, n2, offset):
    """The strided slice of a flattened ``(n1, n2)`` matrix that walks diagonal ``offset``."""
    if offset >= 0:
        k, start = max(0, min(n1, n2 - offset)), offset
    else:
        k, start = max(0, min(n1 + offset, n2)), -offset * n2
    if k == 0:
        return slice(0, 0), 0
    return slice(start, start + (k - 1) * (n2 + 1) + 1, n2 + 1), k


def diagonal(a, offset=0, axis1=0, axis2=1):
    """The ``offset`` diagonal of the ``(axis1, axis2)`` planes, as the last axis.

    Example:
        >>> import functorch_lite.numpy as fnp
        >>> x = fnp.arange(9).reshape(3, 3)
        >>> fnp.diagonal(x), fnp.diagonal(x, offset=-1)
        (Array([0, 4, 8], dtype=int64), Array([3, 7], dtype=int64))
    """
    nd = ndim(a)
    if nd < 2:
        raise ValueError(f"fnp.diagonal: needs an array with at least 2 dimensions, got "
                         f"shape {shape(a)}")
    ax1, ax2 = _one_axis("diagonal", axis1, nd), _one_axis("diagonal", axis2, nd)
    if ax1 == ax2:
        raise ValueError(f"fnp.diagonal: axis1 and axis2 must differ, got {axis1}, {axis2}")
    a = moveaxis(a, (ax1, ax2), (-2, -1))
    *batch, n1, n2 = shape(a)
    flat = reshape(a, (*batch, n1 * n2))
    return getitem(flat, (Ellipsis, _diagonal_slice(n1, n2, int(offset))[0]))


def diag(v, k=0):
    """The ``k``-th diagonal of a 2-D array, or a 2-D array with the 1-D ``v`` on it.

    Example:
        >>> import functorch_lite.numpy as fnp
        >>> fnp.diag(fnp.array([1.0, 2.0]), k=1)
        Array([[0., 1., 0.],
               [0., 0., 2.],
               [0., 0., 0.]], dtype=float32)
    """
    if isinstance(v, (list, tuple)):
        v = asarray(v)
    aval = aval_of(v)
    if aval.ndim == 2:
        return diagonal(v, k)
    if aval.ndim != 1:
        raise ValueError(f"fnp.diag: input must be 1-D or 2-D, got shape {aval.shape}")
    n, k = aval.shape[0], int(k)
    size = n + abs(k)
    flat = zeros_like(v, aval.dtype, size * size)
    if n:
        flat = flat.at[_diagonal_slice(size, size, k)[0]].set(v)
    return reshape(flat, (size, size))


def trace(a, offset=0, axis1=0, axis2=1, dtype=None):
    """Sum along a diagonal (see :func:`diagonal`).

    Example:
        >>> import functorch_lite.numpy as fnp
        >>> fnp.trace(fnp.eye(3))
        Array(3., dtype=float32)
    """
    return sum(diagonal(a, offset, axis1, axis2), axis=-1, dtype=dtype)


def _triangle(name, m, mask):
    aval = aval_of(m)
    if aval.ndim < 1:
        raise ValueError(f"fnp.{name}: needs an array with at least 1 dimension")
    return where(_placed(mask, like=m), m, zeros_like(m, aval.dtype, ()))


def tril(m, k=0):
    """Zero the elements above the ``k``-th diagonal of the last two axes.

    Example:
        >>> import functorch_lite.numpy as fnp
        >>> fnp.tril(fnp.ones((2, 2)))
        Array([[1., 0.],
               [1., 1.]], dtype=float32)
    """
    return _triangle("tril", m, np.tri(*shape(m)[-2:], k=int(k), dtype=bool))


def triu(m, k=0):
    """Zero the elements below the ``k``-th diagonal of the last two axes.

    Example:
        >>> import functorch_lite.numpy as fnp
        >>> fnp.triu(fnp.ones((2, 2)))
        Array([[1., 1.],
               [0., 1.]], dtype=float32)
    """
    return _triangle("triu", m, ~np.tri(*shape(m)[-2:], k=int(k) - 1, dtype=bool))


def select(condlist, choicelist, default=0):
    """``choicelist[i]`` where ``condlist[i]`` is the first true condition, else ``default``.

    Example:
        >>> import functorch_lite.numpy as fnp
        >>> x = fnp.arange(5)
        >>> fnp.select([x < 2, x > 3], [x, x * 10], default=-1)
        Array([ 0,  1, -1, -1, 40], dtype=int64)
    """
    condlist, choicelist = list(condlist), list(choicelist)
    if len(condlist) != len(choicelist):
        raise ValueError(f"fnp.select: condlist ({len(condlist)}) and choicelist "
                         f"({len(choicelist)}) must have the same length")
    if not condlist:
        raise ValueError("fnp.select: condlist must not be empty")
    for i, c in enumerate(condlist):
        if aval_of(c).dtype != np.bool_:
            raise TypeError(f"fnp.select: condlist[{i}] has dtype {aval_of(c).dtype}; "
                            "conditions must be boolean arrays")
    out = default
    for c, choice in zip(reversed(condlist), reversed(choicelist), strict=True):
        out = where(c, choice, out)
    return out


__all__ = ["getitem", "IndexUpdateHelper", "IndexUpdateRef", "take", "take_along_axis",
           "nonzero", "flatnonzero", "argwhere", "compress", "sort", "argsort",
           "searchsorted", "flip", "fliplr", "flipud", "roll", "diagonal", "diag", "trace",
           "tril", "triu", "select"]
