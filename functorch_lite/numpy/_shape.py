"""Shape manipulation with NumPy names: composites of the shape primitives (reshape,
broadcast_to, transpose, concatenate, pad) and of static indexing (``x[...]``).

NB: ``reshape`` and ``transpose`` run on every eager call of most programs, so on a CPU
``Array`` outside any transform they call the ndarray method directly (the primitive's impl
does the same); anything unusual falls through to the checked path and its error messages.
"""

from __future__ import annotations

import numpy as np

from functorch_lite.core import Array, Tracer, aval_of, bind, ctx
from functorch_lite.numpy._creation import _arange_like, asarray
from functorch_lite.numpy._elementwise import astype, clip, floor_divide, remainder, where
from functorch_lite.primitives import shape as sp


def shape(a):
    """The shape of an array-like, as a tuple (works on tracers, lists and scalars).

    Example:
        >>> import functorch_lite.numpy as fnp
        >>> fnp.shape([[1, 2, 3]])
        (1, 3)
    """
    return aval_of(a).shape


def ndim(a):
    """Number of dimensions of an array-like.

    Example:
        >>> import functorch_lite.numpy as fnp
        >>> fnp.ndim(fnp.zeros((2, 3)))
        2
    """
    return len(aval_of(a).shape)


def size(a, axis=None):
    """Number of elements (along ``axis`` when given).

    Example:
        >>> import functorch_lite.numpy as fnp
        >>> fnp.size(fnp.zeros((2, 3)))
        6
    """
    aval = aval_of(a)
    return aval.size if axis is None else aval.shape[axis]


def _axis(name, axis, ndim_, shape_=None):
    """``axis`` as a non-negative int; the error names ``shape_`` when given."""
    axis = int(axis)
    if not -ndim_ <= axis < ndim_:
        what = f"an array of shape {shape_}" if shape_ is not None else f"a {ndim_}-d array"
        raise ValueError(f"fnp.{name}: axis {axis} is out of range for {what} "
                         f"(valid: {-ndim_}..{ndim_ - 1})")
    return axis % ndim_


def _as_array(a):
    """Arrays and tracers as they are; scalars and lists as arrays (default float dtype)."""
    return a if isinstance(a, (Array, Tracer)) else asarray(a)


def reshape(a, newshape, order="C"):
    """Give an array a new shape (one dimension may be -1), like ``numpy.reshape``.

    Example:
        >>> import functorch_lite.numpy as fnp
        >>> fnp.reshape(fnp.arange(6), (2, -1))
        Array([[0, 1, 2],
               [3, 4, 5]], dtype=int64)
    """
    if ctx.trace is None and order == "C":
        # eager on the CPU: an Array, or a raw ndarray (a derivative rule run on buffers)
        buf = a._buf if type(a) is Array else a
        if type(buf) is np.ndarray:
            try:
                return Array(buf.reshape(newshape))
            except (ValueError, TypeError):
                pass  # the checked path below raises the error naming fnp.reshape
    if order != "C":
        raise NotImplementedError("fnp.reshape: only order='C' is supported")
    aval = aval_of(a)
    if isinstance(newshape, (int, np.integer)):
        newshape = (newshape,)
    newshape = tuple(int(d) for d in newshape)
    if -1 in newshape:
        known = 1
        for d in newshape:
            if d != -1:
                known *= d
        if newshape.count(-1) > 1 or known == 0 or aval.size % known:
            raise ValueError(f"fnp.reshape: cannot reshape an array of shape {aval.shape} "
                             f"into shape {newshape}")
        newshape = tuple(aval.size // known if d == -1 else d for d in newshape)
    if newshape == aval.shape and not isinstance(a, (int, float, bool, complex, list)):
        return a
    return bind(sp.reshape_p, a, new_sizes=newshape)


def ravel(a, order="C"):
    """Flatten to 1-D.

    Example:
        >>> import functorch_lite.numpy as fnp
        >>> fnp.ravel(fnp.ones((2, 2)))
        Array([1., 1., 1., 1.], dtype=float32)
    """
    return reshape(a, (-1,), order)


def transpose(a, axes=None):
    """Permute axes (reverse them when ``axes`` is None).

    Example:
        >>> import functorch_lite.numpy as fnp
        >>> fnp.transpose(fnp.zeros((2, 3, 4)), (2, 0, 1)).shape
        (4, 2, 3)
    """
    if ctx.trace is None and type(a) is Array and type(a._buf) is np.ndarray:
        try:
            return Array(a._buf.transpose(axes))
        except (ValueError, TypeError):
            pass  # the checked path below raises the error naming fnp.transpose
    nd = ndim(a)
    perm = tuple(range(nd))[::-1] if axes is None else tuple(
        _axis("transpose", p, nd, shape(a)) for p in axes)
    if len(perm) != nd:
        raise ValueError(f"fnp.transpose: axes {tuple(axes)} do not match an array of shape "
                         f"{shape(a)}; give one entry per axis")
    if perm == tuple(range(nd)):
        return a
    return bind(sp.transpose_p, a, perm=perm)


def permute_dims(a, axes):
    """Array-API name of :func:`transpose`.

    Example:
        >>> import functorch_lite.numpy as fnp
        >>> fnp.permute_dims(fnp.zeros((2, 3)), (1, 0)).shape
        (3, 2)
    """
    return transpose(a, axes)


def moveaxis(a, source, destination):
    """Move axes to new positions, the others keeping their order.

    Example:
        >>> import functorch_lite.numpy as fnp
        >>> fnp.moveaxis(fnp.zeros((2, 3, 4)), 0, -1).shape
        (3, 4, 2)
    """
    nd = ndim(a)
    src = [source] if isinstance(source, (int, np.integer)) else list(source)
    dst = [destination] if isinstance(destination, (int, np.integer)) else list(destination)
    if len(src) != len(dst):
        raise ValueError("fnp.moveaxis: source and destination need the same number of axes")
    src = [_axis("moveaxis", s, nd, shape(a)) for s in src]
    dst = [_axis("moveaxis", d, nd, shape(a)) for d in dst]
    if len(set(src)) != len(src) or len(set(dst)) != len(dst):
        raise ValueError(f"fnp.moveaxis: repeated axis in source {source} or destination "
                         f"{destination}")
    order = [i for i in range(nd) if i not in src]
    for d, s in sorted(zip(dst, src)):
        order.insert(d, s)
    return transpose(a, order)


def swapaxes(a, axis1, axis2):
    """Exchange two axes.

    Example:
        >>> import functorch_lite.numpy as fnp
        >>> fnp.swapaxes(fnp.zeros((2, 3, 4)), 0, 2).shape
        (4, 3, 2)
    """
    nd = ndim(a)
    perm = list(range(nd))
    i, j = _axis("swapaxes", axis1, nd, shape(a)), _axis("swapaxes", axis2, nd, shape(a))
    perm[i], perm[j] = perm[j], perm[i]
    return transpose(a, perm)


def expand_dims(a, axis):
    """Insert length-1 axes at the positions ``axis`` (int or tuple) of the result.

    Example:
        >>> import functorch_lite.numpy as fnp
        >>> fnp.expand_dims(fnp.zeros((2, 3)), (0, -1)).shape
        (1, 2, 3, 1)
    """
    old = shape(a)
    axes = (axis,) if isinstance(axis, (int, np.integer)) else tuple(axis)
    out_nd = len(old) + len(axes)
    axes_set = {_axis("expand_dims", ax, out_nd) for ax in axes}
    if len(axes_set) != len(axes):
        raise ValueError(f"fnp.expand_dims: repeated axis in {axis}")
    axes = axes_set
    it = iter(old)
    return reshape(a, tuple(1 if i in axes else next(it) for i in range(out_nd)))


def squeeze(a, axis=None):
    """Remove length-1 axes (all of them, or those in ``axis``).

    Example:
        >>> import functorch_lite.numpy as fnp
        >>> fnp.squeeze(fnp.zeros((1, 2, 1))).shape
        (2,)
    """
    old = shape(a)
    if axis is None:
        axes = {i for i, d in enumerate(old) if d == 1}
    else:
        axes = {_axis("squeeze", ax, len(old), old) for ax in (
            (axis,) if isinstance(axis, (int, np.integer)) else axis)}
        bad = [ax for ax in axes if old[ax] != 1]
        if bad:
            raise ValueError(f"fnp.squeeze: axis {bad[0]} of shape {old} has length "
                             f"{old[bad[0]]}, not 1")
    return reshape(a, tuple(d for i, d in enumerate(old) if i not in axes))


def broadcast_to(array, shape):
    """Broadcast to ``shape`` (a read-only view when eager).

    Example:
        >>> import functorch_lite.numpy as fnp
        >>> fnp.broadcast_to(fnp.array([1, 2]), (2, 2))
        Array([[1, 2],
               [1, 2]], dtype=int64)
    """
    shape_ = (int(shape),) if isinstance(shape, (int, np.integer)) else tuple(
        int(d) for d in shape)
    if aval_of(array).shape == shape_ and not isinstance(array, (int, float, bool, list)):
        return array
    return bind(sp.broadcast_to_p, array, shape=shape_)


def broadcast_shapes(*shapes):
    """The shape that ``shapes`` broadcast to.

    Example:
        >>> import functorch_lite.numpy as fnp
        >>> fnp.broadcast_shapes((2, 1), (3,))
        (2, 3)
    """
    return np.broadcast_shapes(*shapes)


def broadcast_arrays(*args):
    """Broadcast arrays against each other; returns a tuple (as NumPy 2).

    Example:
        >>> import functorch_lite.numpy as fnp
        >>> [a.shape for a in fnp.broadcast_arrays(fnp.zeros((2, 1)), fnp.zeros(3))]
        [(2, 3), (2, 3)]
    """
    target = np.broadcast_shapes(*(shape(a) for a in args))
    return tuple(broadcast_to(_as_array(a), target) for a in args)


def _atleast(arys, make):
    out = tuple(make(_as_array(a)) for a in arys)
    return out[0] if len(out) == 1 else out


def atleast_1d(*arys):
    """Inputs as arrays with at least one dimension (a tuple when given several).

    Example:
        >>> import functorch_lite.numpy as fnp
        >>> fnp.atleast_1d(3.0).shape
        (1,)
    """
    return _atleast(arys, lambda a: reshape(a, (1,)) if ndim(a) == 0 else a)


def atleast_2d(*arys):
    """Inputs as arrays with at least two dimensions; 1-D ``(N,)`` becomes ``(1, N)``.

    Example:
        >>> import functorch_lite.numpy as fnp
        >>> fnp.atleast_2d(fnp.zeros(3)).shape
        (1, 3)
    """
    return _atleast(arys, lambda a: reshape(a, (1,) * (2 - ndim(a)) + shape(a))
                    if ndim(a) < 2 else a)


def atleast_3d(*arys):
    """Inputs as arrays with at least three dimensions: ``(N,)`` becomes ``(1, N, 1)`` and
    ``(M, N)`` becomes ``(M, N, 1)``, as in NumPy.

    Example:
        >>> import functorch_lite.numpy as fnp
        >>> fnp.atleast_3d(fnp.zeros(3)).shape
        (1, 3, 1)
    """
    def make(a):
        nd = ndim(a)
        if nd >= 3:
            return a
        return reshape(a, {0: (1, 1, 1), 1: (1,) + shape(a) + (1,), 2: shape(a) + (1,)}[nd])
    return _atleast(arys, make)


def concatenate(arrays, axis=0):
    """Join arrays along an existing axis (``axis=None`` flattens first).

    Example:
        >>> import functorch_lite.numpy as fnp
        >>> fnp.concatenate([fnp.zeros((1, 2)), fnp.ones((2, 2))]).shape
        (3, 2)
    """
    arrays = list(arrays)
    if not arrays:
        raise ValueError("fnp.concatenate: need at least one array")
    if axis is None:
        arrays, axis = [ravel(a) for a in arrays], 0
    nd = ndim(arrays[0])
    if nd == 0:
        raise ValueError("fnp.concatenate: zero-dimensional arrays cannot be concatenated")
    if len(arrays) == 1:
        return _as_array(arrays[0])
    return bind(sp.concatenate_p, *arrays, axis=_axis("concatenate", axis, nd,
                                                      shape(arrays[0])))


def stack(arrays, axis=0):
    """Join arrays of the same shape along a new axis.

    Example:
        >>> import functorch_lite.numpy as fnp
        >>> fnp.stack([fnp.zeros(3), fnp.ones(3)], axis=1).shape
        (3, 2)
    """
    arrays = list(arrays)
    if not arrays:
        raise ValueError("fnp.stack: need at least one array")
    if ctx.trace is None and all(type(a) is Array and type(a._buf) is np.ndarray
                                 for a in arrays):
        # Eager, on the CPU: one np.stack (what the general path computes through an
        # expand_dims per array and a concatenate; a loop's outputs stack 5x faster)
        bufs = [a._buf for a in arrays]
        first = bufs[0].shape
        if all(b.shape == first for b in bufs):
            return Array(np.stack(bufs, axis=_axis("stack", axis, len(first) + 1)))
    shapes = {shape(a) for a in arrays}
    if len(shapes) > 1:
        raise ValueError(f"fnp.stack: all arrays need the same shape, got {sorted(shapes)}")
    nd = len(next(iter(shapes))) + 1
    ax = _axis("stack", axis, nd)
    return concatenate([expand_dims(a, ax) for a in arrays], axis=ax)


def _sequence(name, tup):
    if isinstance(tup, (Array, Tracer, np.ndarray)):
        raise TypeError(f"fnp.{name}: expects a sequence of arrays (a list or tuple), got a "
                        f"single array of shape {shape(tup)}; wrap it in a list")
    arrays = list(tup)
    if not arrays:
        raise ValueError(f"fnp.{name}: need at least one array")
    return arrays


def hstack(tup):
    """Join arrays horizontally: along axis 1, or axis 0 for 1-D arrays.

    Example:
        >>> import functorch_lite.numpy as fnp
        >>> fnp.hstack([fnp.array([1, 2]), fnp.array([3])])
        Array([1, 2, 3], dtype=int64)
    """
    arrays = [atleast_1d(a) for a in _sequence("hstack", tup)]
    return concatenate(arrays, axis=0 if ndim(arrays[0]) == 1 else 1)


def vstack(tup):
    """Join arrays vertically (along axis 0); 1-D arrays ``(N,)`` become rows ``(1, N)``.

    Example:
        >>> import functorch_lite.numpy as fnp
        >>> fnp.vstack([fnp.array([1, 2]), fnp.array([3, 4])])
        Array([[1, 2],
               [3, 4]], dtype=int64)
    """
    return concatenate([atleast_2d(a) for a in _sequence("vstack", tup)], axis=0)


def dstack(tup):
    """Join arrays depth-wise (along axis 2), after :func:`atleast_3d`.

    Example:
        >>> import functorch_lite.numpy as fnp
        >>> fnp.dstack([fnp.zeros((2, 3)), fnp.ones((2, 3))]).shape
        (2, 3, 2)
    """
    return concatenate([atleast_3d(a) for a in _sequence("dstack", tup)], axis=2)


def column_stack(tup):
    """Join 1-D arrays as the columns of a 2-D array (2-D arrays are joined along axis 1).

    Example:
        >>> import functorch_lite.numpy as fnp
        >>> fnp.column_stack([fnp.array([1, 2]), fnp.array([3, 4])])
        Array([[1, 3],
               [2, 4]], dtype=int64)
    """
    def column(a):
        a = _as_array(a)
        return reshape(a, (size(a), 1)) if ndim(a) < 2 else a
    return concatenate([column(a) for a in _sequence("column_stack", tup)], axis=1)


def _static_ints(name, what, value):
    """A Python int or a tuple of ints from a static argument (never a traced value)."""
    if isinstance(value, Tracer):
        raise TypeError(f"fnp.{name}: {what} must be static (Python ints or a concrete array): "
                        f"the result's shapes depend on it. Pass it as a static argument.")
    if isinstance(value, (int, np.integer)):
        return int(value)
    values = np.asarray(value)
    if values.size and values.dtype.kind not in "iub":
        raise TypeError(f"fnp.{name}: {what} must be integers, got dtype {values.dtype}")
    return int(values) if values.ndim == 0 else tuple(int(v) for v in values.reshape(-1))


def array_split(ary, indices_or_sections, axis=0):
    """Split into sub-arrays along ``axis``; unlike :func:`split`, sections may be unequal.

    ``indices_or_sections`` is a number of sections N (the first ``length % N`` pieces get
    one extra element) or a sorted sequence of split points (Python slicing semantics).

    Example:
        >>> import functorch_lite.numpy as fnp
        >>> [p.tolist() for p in fnp.array_split(fnp.arange(5), 3)]
        [[0, 1], [2, 3], [4]]
    """
    return _split("array_split", ary, indices_or_sections, axis, equal=False)


def _split(name, ary, indices_or_sections, axis, equal):
    """The pieces ``ary[start:stop]`` along ``axis`` between consecutive split points."""
    ary = _as_array(ary)
    shape_ = shape(ary)
    if not shape_:
        raise ValueError(f"fnp.{name}: a 0-d array cannot be split; reshape it to 1-D")
    ax = _axis(name, axis, len(shape_), shape_)
    length = shape_[ax]
    spec = _static_ints(name, "indices_or_sections", indices_or_sections)
    if isinstance(spec, int):
        if spec <= 0:
            raise ValueError(f"fnp.{name}: the number of sections must be positive, got {spec}")
        if equal and length % spec:
            raise ValueError(
                f"fnp.{name}: axis {axis} of an array of shape {shape_} (length {length}) "
                f"cannot be split into {spec} equal sections; use fnp.array_split for "
                "unequal sections")
        each, extra = divmod(length, spec)
        sizes = [each + 1] * extra + [each] * (spec - extra)
        bounds = np.concatenate([[0], np.cumsum(sizes)]).astype(int).tolist()
    else:
        # Python slicing semantics: negative points count from the end, all are clipped.
        bounds = [0] + [slice(p).indices(length)[1] for p in spec] + [length]
    lead = (slice(None),) * ax
    return [ary[lead + (slice(start, stop),)] for start, stop in zip(bounds[:-1], bounds[1:])]


def split(ary, indices_or_sections, axis=0):
    """Split into equal sub-arrays (N sections) or at the given indices along ``axis``.

    Example:
        >>> import functorch_lite.numpy as fnp
        >>> a, b = fnp.split(fnp.arange(6).reshape(2, 3), [1], axis=1)
        >>> a.shape, b.shape
        ((2, 1), (2, 2))
    """
    return _split("split", ary, indices_or_sections, axis, equal=True)


def tile(A, reps):
    """Repeat the whole array ``reps`` times along each axis (as ``numpy.tile``).

    Example:
        >>> import functorch_lite.numpy as fnp
        >>> fnp.tile(fnp.array([1, 2]), (2, 2))
        Array([[1, 2, 1, 2],
               [1, 2, 1, 2]], dtype=int64)
    """
    A = _as_array(A)
    reps = _static_ints("tile", "reps", reps)
    reps = (reps,) if isinstance(reps, int) else reps
    if any(r < 0 for r in reps):
        raise ValueError(f"fnp.tile: reps {reps} must be non-negative")
    nd = max(len(reps), ndim(A))
    old = (1,) * (nd - ndim(A)) + shape(A)
    reps = (1,) * (nd - len(reps)) + reps
    # Interleave a repeat axis before each axis: (r0, d0, r1, d1, ...), then merge pairs.
    interleaved = reshape(A, tuple(d for dim in old for d in (1, dim)))
    tiled = broadcast_to(interleaved, tuple(d for pair in zip(reps, old) for d in pair))
    return reshape(tiled, tuple(r * d for r, d in zip(reps, old)))


def repeat(a, repeats, axis=None):
    """Repeat each element ``repeats`` times along ``axis`` (the flattened array when None).

    ``repeats`` is an int, or one static count per element along ``axis``.

    Example:
        >>> import functorch_lite.numpy as fnp
        >>> fnp.repeat(fnp.array([[1, 2], [3, 4]]), 2, axis=1)
        Array([[1, 1, 2, 2],
               [3, 3, 4, 4]], dtype=int64)
        >>> fnp.repeat(fnp.array([1, 2, 3]), [2, 0, 1])
        Array([1, 1, 3], dtype=int64)
    """
    a = _as_array(a)
    if axis is None:
        a, axis = ravel(a), 0
    shape_ = shape(a)
    ax = _axis("repeat", axis, len(shape_), shape_)
    counts = _static_ints("repeat", "repeats", repeats)
    if isinstance(counts, tuple) and len(counts) == 1:
        counts = counts[0]
    if isinstance(counts, int):
        if counts < 0:
            raise ValueError(f"fnp.repeat: repeats must be non-negative, got {counts}")
        # Each element gets its own repeat axis after it: (..., d, r, ...) -> (..., d*r, ...).
        spread = broadcast_to(expand_dims(a, ax + 1),
                              shape_[:ax + 1] + (counts,) + shape_[ax + 1:])
        return reshape(spread, shape_[:ax] + (shape_[ax] * counts,) + shape_[ax + 1:])
    if len(counts) != shape_[ax] or min(counts, default=0) < 0:
        raise ValueError(
            f"fnp.repeat: {len(counts)} repeat counts {counts} do not fit axis {axis} of an "
            f"array of shape {shape_}: give one non-negative count per element")
    index = np.repeat(np.arange(shape_[ax]), counts)
    return a[(slice(None),) * ax + (index,)]


def _as_pairs(name, what, value, nd):
    """NumPy's ``pad`` argument forms (``n``, ``(before, after)``, one pair per axis) as a
    tuple of ``nd`` (before, after) pairs of Python numbers."""
    values = np.asarray(value)
    try:
        if nd == 0:
            pairs = ()
        elif values.size == 1:
            pairs = ((values.reshape(()).item(),) * 2,) * nd
        elif values.size == 2 and values.shape != (2, 1):
            pairs = (tuple(values.reshape(-1).tolist()),) * nd
        else:
            pairs = tuple(tuple(p) for p in np.broadcast_to(values, (nd, 2)).tolist())
    except ValueError:
        raise ValueError(f"fnp.{name}: {what} of shape {values.shape} does not fit an array with "
                         f"{nd} axes: give n, (before, after), or one (before, after) pair "
                         "per axis") from None
    return pairs


_PAD_INDEX = {
    # Where each padded position along an axis of length n reads from (``i`` counts from the
    # first original element, so the padding before it has negative ``i``).
    "edge": lambda i, n: np.clip(i, 0, n - 1),
    "wrap": lambda i, n: i % n,
    "symmetric": lambda i, n: np.where(i % (2 * n) >= n, 2 * n - 1 - i % (2 * n), i % (2 * n)),
    "reflect": lambda i, n: np.zeros_like(i) if n == 1 else np.where(
        i % (2 * n - 2) >= n, 2 * n - 2 - i % (2 * n - 2), i % (2 * n - 2)),
}


def _pad_constant(array, widths, constant_values):
    aval = aval_of(array)
    if isinstance(constant_values, (Array, Tracer)) and aval_of(constant_values).ndim == 0:
        value = astype(constant_values, aval.dtype)
        values = ((value, value),) * aval.ndim
    else:
        values = tuple(tuple(np.asarray(v).astype(aval.dtype) for v in pair) for pair in
                       _as_pairs("pad", "constant_values", constant_values, aval.ndim))
    out = bind(sp.pad_p, array, widths=widths) if any(map(any, widths)) else array
    # The pad primitive pads with zeros; each axis then writes its own values over its
    # border, later axes over the corners (NumPy's order).
    for ax, ((lo, hi), (v_lo, v_hi)) in enumerate(zip(widths, values)):
        if lo == hi == 0 or all(isinstance(v, np.ndarray) and v == 0 for v in (v_lo, v_hi)):
            continue
        position = reshape(_arange_like(out, aval.shape[ax] + lo + hi),
                           (-1,) + (1,) * (aval.ndim - ax - 1))
        before, after = position < lo, position >= lo + aval.shape[ax]
        if v_lo is v_hi or (isinstance(v_lo, np.ndarray) and v_lo == v_hi):
            out = where(before | after, v_lo, out)
        else:
            out = where(before, v_lo, where(after, v_hi, out))
    return out


def pad(array, pad_width, mode="constant", constant_values=0):
    """Pad an array, like ``numpy.pad``.

    ``pad_width`` is ``n``, ``(before, after)`` or one ``(before, after)`` pair per axis.
    Modes: ``"constant"`` (``constant_values`` in the same forms, or a scalar array, which
    is differentiable), ``"edge"``, ``"reflect"``, ``"symmetric"``, ``"wrap"``, and
    ``"empty"`` (zeros: arrays are never uninitialized).

    Example:
        >>> import functorch_lite.numpy as fnp
        >>> fnp.pad(fnp.array([1, 2, 3]), (1, 2), constant_values=9)
        Array([9, 1, 2, 3, 9, 9], dtype=int64)
        >>> fnp.pad(fnp.array([1, 2, 3]), 2, mode="reflect")
        Array([3, 2, 1, 2, 3, 2, 1], dtype=int64)
    """
    array = _as_array(array)
    shape_ = shape(array)
    if isinstance(pad_width, Tracer):
        raise TypeError("fnp.pad: pad_width must be static (Python ints): the result's shape "
                        "depends on it")
    widths = _as_pairs("pad", "pad_width", pad_width, len(shape_))
    if any(w < 0 or int(w) != w for pair in widths for w in pair):
        raise ValueError(f"fnp.pad: pad_width {pad_width} must hold non-negative integers")
    widths = tuple((int(lo), int(hi)) for lo, hi in widths)
    if mode in ("constant", "empty"):
        return _pad_constant(array, widths, 0 if mode == "empty" else constant_values)
    if mode not in _PAD_INDEX:
        raise NotImplementedError(
            f"fnp.pad: mode {mode!r} is not supported; use one of 'constant', 'edge', "
            "'reflect', 'symmetric', 'wrap'")
    out = array
    for ax, (lo, hi) in enumerate(widths):
        if lo == hi == 0:
            continue
        n = shape_[ax]
        if n == 0:
            raise ValueError(f"fnp.pad: cannot extend the empty axis {ax} of an array of shape "
                             f"{shape_} with mode {mode!r}; use mode='constant'")
        lead = (slice(None),) * ax
        before = _PAD_INDEX[mode](np.arange(-lo, 0), n)
        after = _PAD_INDEX[mode](np.arange(n, n + hi), n)
        out = concatenate(([out[lead + (before,)]] if lo else []) + [out] +
                          ([out[lead + (after,)]] if hi else []), axis=ax)
    return out


def unravel_index(indices, shape):
    """Flat indices into a tuple of coordinate arrays for an array of ``shape``.

    Example:
        >>> import functorch_lite.numpy as fnp
        >>> [c.tolist() for c in fnp.unravel_index(fnp.array([1, 5]), (2, 3))]
        [[0, 1], [1, 2]]
    """
    dims = tuple(int(d) for d in ((shape,) if isinstance(shape, (int, np.integer)) else shape))
    total = int(np.prod(dims))
    indices = _as_array(indices)
    if not isinstance(indices, Tracer):
        flat = np.asarray(indices)
        if flat.dtype.kind not in "iu":
            raise TypeError(f"fnp.unravel_index: indices must be integers, got {flat.dtype}")
        if flat.size and (flat.min() < 0 or flat.max() >= total):
            raise ValueError(f"fnp.unravel_index: an index in {flat.min()}..{flat.max()} is out "
                             f"of bounds for shape {dims} (size {total})")
    indices = astype(indices, np.int64)
    strides = np.cumprod((1,) + dims[::-1])[:-1][::-1]
    return tuple(remainder(floor_divide(indices, int(s)), d) for s, d in zip(strides, dims))


def ravel_multi_index(multi_index, dims, mode="raise"):
    """A tuple of coordinate arrays into flat indices for an array of shape ``dims``.

    ``mode``: ``"raise"`` (out-of-range coordinates are an error; needs concrete values),
    ``"wrap"`` or ``"clip"`` (these also work on traced values).

    Example:
        >>> import functorch_lite.numpy as fnp
        >>> fnp.ravel_multi_index((fnp.array([0, 1]), fnp.array([1, 2])), (2, 3))
        Array([1, 5], dtype=int64)
    """
    dims = tuple(int(d) for d in dims)
    coords = [astype(_as_array(c), np.int64) for c in multi_index]
    if len(coords) != len(dims):
        raise ValueError(f"fnp.ravel_multi_index: {len(coords)} coordinate arrays for the "
                         f"{len(dims)} dimensions of shape {dims}")
    strides = np.cumprod((1,) + dims[::-1])[:-1][::-1]
    flat = 0
    for ax, (c, d, stride) in enumerate(zip(coords, dims, strides)):
        if mode == "wrap":
            c = remainder(c, d)
        elif mode == "clip":
            c = clip(c, 0, d - 1)
        elif mode != "raise":
            raise ValueError(f"fnp.ravel_multi_index: mode must be 'raise', 'wrap' or 'clip', "
                             f"got {mode!r}")
        elif isinstance(c, Tracer):
            raise TypeError("fnp.ravel_multi_index: mode='raise' needs concrete coordinates "
                            "to check them; under a transform use mode='clip' or 'wrap'")
        else:
            values = np.asarray(c)
            if values.size and (values.min() < 0 or values.max() >= d):
                raise ValueError(f"fnp.ravel_multi_index: coordinate {values.min()}.."
                                 f"{values.max()} of axis {ax} is out of bounds for shape "
                                 f"{dims}")
        flat = flat + c * int(stride)
    return _as_array(flat)


__all__ = ["shape", "ndim", "size", "reshape", "ravel", "transpose", "permute_dims",
           "moveaxis", "swapaxes", "expand_dims", "squeeze", "broadcast_to",
           "broadcast_shapes", "broadcast_arrays", "atleast_1d", "atleast_2d", "atleast_3d",
           "concatenate", "stack", "hstack", "vstack", "dstack", "column_stack", "split",
           "array_split", "tile", "repeat", "pad", "unravel_index", "ravel_multi_index"]
