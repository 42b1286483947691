"""Shape manipulation with NumPy names. Composites of the shape primitives."""

from __future__ import annotations

import numpy as np

from functorch_lite.core import aval_of, bind
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


def _axis(name, axis, ndim_):
    if not -ndim_ <= axis < ndim_:
        raise ValueError(f"fnp.{name}: axis {axis} is out of range for a {ndim_}-d array")
    return axis % ndim_


def reshape(a, newshape, order="C"):
    """Give an array a new shape (one dimension may be -1), like ``numpy.reshape``.

    Example:
        >>> import functorch_lite.numpy as fnp
        >>> fnp.reshape(fnp.arange(6), (2, -1))
        Array([[0, 1, 2],
               [3, 4, 5]], dtype=int64)
    """
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
    nd = ndim(a)
    perm = tuple(range(nd))[::-1] if axes is None else tuple(
        _axis("transpose", int(p), nd) for p in axes)
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
    src = [_axis("moveaxis", int(s), nd) for s in src]
    dst = [_axis("moveaxis", int(d), nd) for d in dst]
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
    i, j = _axis("swapaxes", axis1, nd), _axis("swapaxes", axis2, nd)
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
    axes = {_axis("expand_dims", int(ax), out_nd) for ax in axes}
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
        axes = {_axis("squeeze", int(ax), len(old)) for ax in (
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
    """Broadcast arrays against each other; returns a list.

    Example:
        >>> import functorch_lite.numpy as fnp
        >>> [a.shape for a in fnp.broadcast_arrays(fnp.zeros((2, 1)), fnp.zeros(3))]
        [(2, 3), (2, 3)]
    """
    target = np.broadcast_shapes(*(shape(a) for a in args))
    return [broadcast_to(a, target) for a in args]


def atleast_1d(*arys):
    """View inputs as arrays with at least one dimension.

    Example:
        >>> import functorch_lite.numpy as fnp
        >>> fnp.atleast_1d(3.0).shape
        (1,)
    """
    out = [reshape(a, (1,)) if ndim(a) == 0 else a for a in arys]
    return out[0] if len(out) == 1 else out


def atleast_2d(*arys):
    """View inputs as arrays with at least two dimensions.

    Example:
        >>> import functorch_lite.numpy as fnp
        >>> fnp.atleast_2d(fnp.zeros(3)).shape
        (1, 3)
    """
    out = [reshape(a, (1,) * (2 - ndim(a)) + shape(a)) if ndim(a) < 2 else a for a in arys]
    return out[0] if len(out) == 1 else out


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
        return arrays[0]
    return bind(sp.concatenate_p, *arrays, axis=_axis("concatenate", int(axis), nd))


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
    shapes = {shape(a) for a in arrays}
    if len(shapes) > 1:
        raise ValueError(f"fnp.stack: all arrays need the same shape, got {sorted(shapes)}")
    nd = len(next(iter(shapes))) + 1
    ax = _axis("stack", int(axis), nd)
    return concatenate([expand_dims(a, ax) for a in arrays], axis=ax)


__all__ = ["shape", "ndim", "size", "reshape", "ravel", "transpose", "permute_dims",
           "moveaxis", "swapaxes", "expand_dims", "squeeze", "broadcast_to",
           "broadcast_shapes", "broadcast_arrays", "atleast_1d", "atleast_2d",
           "concatenate", "stack"]
