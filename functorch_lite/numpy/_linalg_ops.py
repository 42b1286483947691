"""Products with NumPy names: matmul, einsum, dot, vdot, inner, outer, tensordot, kron,
matrix_transpose.

Two primitives do the work: ``matmul`` and ``einsum``; the rest are composites of them and
of the shape functions. ``fnp.matmul`` handles NumPy's 1-D operands itself (promote with a
reshape, drop the promoted axis afterwards) so the primitive always sees rank >= 2.
"""

from __future__ import annotations

import functools
import string

import numpy as np

from functorch_lite.core import Array, ArrayMethods, bind, ctx
from functorch_lite.core import backends as _backends
from functorch_lite.numpy._elementwise import _NO_PARAMS
from functorch_lite.primitives import linalg as lp


def _fnp():
    import functorch_lite.numpy as fnp

    return fnp


# --------------------------------------------------------------------------------------
# matmul
# --------------------------------------------------------------------------------------
def matmul(x1, x2, /, _ctx=ctx, _Array=Array, _ndarray=np.ndarray, _matmul=np.matmul):
    """Matrix product with NumPy semantics (the ``@`` operator).

    Leading (batch) axes broadcast; a 1-D first operand is a row vector and a 1-D second
    operand a column vector, and that promoted axis is removed from the result.

    Args:
        x1, x2: arrays of rank >= 1, ``x1.shape[-1] == x2.shape[-2]`` (or ``x2.shape[0]``
            for 1-D ``x2``).

    Returns:
        ``x1 @ x2``.

    Raises:
        ValueError: naming both shapes when they do not align or a operand is 0-d.

    Example:
        >>> import functorch_lite.numpy as fnp
        >>> a = fnp.array([[1.0, 2.0], [3.0, 4.0]])
        >>> fnp.matmul(a, fnp.array([1.0, 1.0]))
        Array([3., 7.], dtype=float32)
        >>> fnp.matmul(fnp.ones((5, 2, 3)), fnp.ones((3, 4))).shape
        (5, 2, 4)
    """
    # Eager fast path (no transform, two CPU arrays): NumPy's matmul, which has the same
    # 1-D semantics, and one wrap. A vector . vector product comes back as a NumPy scalar.
    if _ctx.trace is None and type(x1) is _Array and type(x2) is _Array:
        a, b = x1._buf, x2._buf
        if (type(a) is _ndarray and type(b) is _ndarray and a.ndim and b.ndim
                and not _backends.gpu_seen):
            try:
                out = _matmul(a, b)
            except ValueError:
                raise ValueError(lp.matmul_error(a.shape, b.shape)) from None
            return _Array(out if type(out) is _ndarray else np.asarray(out))
    try:
        if x1.ndim >= 2 and x2.ndim >= 2:
            trace = _ctx.trace
            if trace is None:
                return bind(lp.matmul_p, x1, x2)
            return trace.process(lp.matmul_p, (x1, x2), _NO_PARAMS)  # bind, a call less
    except AttributeError:  # lists and scalars
        pass
    return _matmul_vectors(x1, x2)


ArrayMethods.__matmul__ = matmul  # ``x @ y`` is fnp.matmul itself (see _elementwise.py)


def _matmul_vectors(x1, x2):
    """matmul with a 1-D (or list, or invalid 0-d) operand."""
    fnp = _fnp()
    x1, x2 = fnp.asarray(x1), fnp.asarray(x2)
    s1, s2 = tuple(x1.shape), tuple(x2.shape)
    if not s1 or not s2:
        raise ValueError(f"fnp.matmul: operands must have at least one axis, got shapes {s1} "
                         f"and {s2}; multiply by a scalar with fnp.multiply or *")
    k2 = s2[-2] if len(s2) >= 2 else s2[0]
    if s1[-1] != k2:
        raise ValueError(lp.matmul_error(s1, s2))
    try:
        np.broadcast_shapes(s1[:-2], s2[:-2])
    except ValueError:
        raise ValueError(lp.matmul_error(s1, s2)) from None
    a = fnp.reshape(x1, (1,) + s1) if len(s1) == 1 else x1
    b = fnp.reshape(x2, s2 + (1,)) if len(s2) == 1 else x2
    out = bind(lp.matmul_p, a, b)
    shape = tuple(out.shape)
    if len(s1) == 1:
        shape = shape[:-2] + shape[-1:]
    if len(s2) == 1:
        shape = shape[:-1]
    return fnp.reshape(out, shape)


def matrix_transpose(x, /):
    """Swap the last two axes (``x.mT``): transposes a matrix or a stack of matrices.

    Example:
        >>> import functorch_lite.numpy as fnp
        >>> fnp.matrix_transpose(fnp.zeros((5, 2, 3))).shape
        (5, 3, 2)
    """
    fnp = _fnp()
    if fnp.ndim(x) < 2:
        raise ValueError(f"fnp.matrix_transpose: expected an array of rank >= 2, got shape "
                         f"{fnp.shape(x)}; use fnp.transpose or reshape a vector first")
    return fnp.swapaxes(x, -1, -2)


# --------------------------------------------------------------------------------------
# einsum
# --------------------------------------------------------------------------------------
def einsum(subscripts, *operands, optimize=True):
    """Einstein summation, ``numpy.einsum`` with string subscripts.

    Supports explicit (``"ij,jk->ik"``) and implicit (``"ij,jk"``: the labels appearing once,
    sorted) output, ``...`` broadcasting, repeated labels (diagonals, traces) and size-1
    broadcasting. The contraction order is always optimized (``optimize`` is accepted for
    NumPy compatibility); the result is differentiable in every operand.

    Args:
        subscripts: the subscripts string.
        *operands: the arrays.
        optimize: ignored: the optimized path is always used.

    Example:
        >>> import functorch_lite.numpy as fnp
        >>> a, b = fnp.ones((2, 3)), fnp.ones((3, 4))
        >>> fnp.einsum("ij,jk->ik", a, b).shape
        (2, 4)
        >>> fnp.einsum("...ij->...ji", fnp.ones((5, 2, 3))).shape
        (5, 3, 2)
        >>> fnp.einsum("ii", fnp.eye(3))
        Array(3., dtype=float32)
    """
    if not isinstance(subscripts, str):
        raise TypeError("fnp.einsum: only the subscripts-string form is supported, e.g. "
                        "fnp.einsum('ij,jk->ik', a, b); the interleaved (operand, sublist) "
                        "form is not")
    fnp = _fnp()
    operands = [x if hasattr(x, "shape") else fnp.asarray(x) for x in operands]
    canonical = _canonical_subscripts(subscripts, tuple(tuple(x.shape) for x in operands))
    return bind(lp.einsum_p, *operands, subscripts=canonical)


def _einsum_error(subscripts, shapes, why):
    shown = ", ".join(str(s) for s in shapes)
    return ValueError(f"fnp.einsum: subscripts {subscripts!r} do not fit operands of shapes "
                      f"{shown}: {why}")


@functools.lru_cache(maxsize=512)
def _canonical_subscripts(subscripts, shapes):
    """``subscripts`` with explicit output, ``...`` replaced by fresh labels, no spaces.

    Raises a ValueError naming the subscripts and the shapes when they do not fit.
    """
    spec = subscripts.replace(" ", "")
    inputs, arrow, output = spec.partition("->")
    subs = inputs.split(",")
    if len(subs) != len(shapes):
        raise _einsum_error(subscripts, shapes, f"{len(subs)} operand subscripts for "
                            f"{len(shapes)} operands")
    for s in subs + [output]:
        if s.replace("...", "").strip(string.ascii_letters) or s.count("...") > 1:
            raise _einsum_error(subscripts, shapes, f"{s!r} is not a valid operand subscript "
                                "(letters and at most one '...')")
    # '...' stands for the same broadcast axes in every operand, right-aligned.
    fresh = [c for c in string.ascii_letters if c not in spec]
    ranks = [len(shape) - len(s.replace("...", "")) for s, shape in zip(subs, shapes, strict=True)]
    for s, r, shape in zip(subs, ranks, shapes, strict=True):
        if r < 0 or (r > 0 and "..." not in s):
            raise _einsum_error(subscripts, shapes, f"{s!r} has {len(s.replace('...', ''))} "
                                f"labels for an operand of rank {len(shape)}")
    ellipsis_rank = max([r for s, r in zip(subs, ranks, strict=True) if "..." in s], default=0)
    ellipsis = "".join(fresh[:ellipsis_rank])
    subs = [s.replace("...", ellipsis[ellipsis_rank - r:])
            for s, r in zip(subs, ranks, strict=True)]
    if arrow:
        if ellipsis_rank and "..." not in output:
            raise _einsum_error(subscripts, shapes, "the output needs '...' for the axes "
                                "that '...' covers in the operands")
        output = output.replace("...", ellipsis)
    else:
        letters = "".join(subs)
        output = ellipsis + "".join(sorted(c for c in set(letters) - set(ellipsis)
                                           if letters.count(c) == 1))
    for c in output:
        if c not in "".join(subs) or output.count(c) > 1:
            raise _einsum_error(subscripts, shapes, f"output label {c!r} must appear in an "
                                "operand and only once in the output")
    sizes = {}
    for s, shape in zip(subs, shapes, strict=True):
        for c, d in zip(s, shape, strict=True):
            if sizes.get(c, 1) != 1 and d not in (1, sizes[c]):
                raise _einsum_error(subscripts, shapes, f"label {c!r} has sizes {sizes[c]} "
                                    f"and {d}")
            sizes[c] = d if sizes.get(c, 1) == 1 else sizes[c]
    return ",".join(subs) + "->" + output


# --------------------------------------------------------------------------------------
# Composites
# --------------------------------------------------------------------------------------
def _axes_list(name, axes, ndim):
    axes = [axes] if isinstance(axes, (int, np.integer)) else list(axes)
    out = []
    for ax in axes:
        if not -ndim <= ax < ndim:
            raise ValueError(f"fnp.{name}: axis {ax} is out of range for a {ndim}-d array")
        out.append(int(ax) % ndim)
    return out


def tensordot(a, b, axes=2):
    """Sum products over the given axes, like ``numpy.tensordot``.

    Args:
        a, b: arrays.
        axes: an int ``N`` (the last ``N`` axes of ``a`` with the first ``N`` of ``b``) or
            a pair of axis lists ``(axes_a, axes_b)``.

    Example:
        >>> import functorch_lite.numpy as fnp
        >>> fnp.tensordot(fnp.ones((3, 4, 5)), fnp.ones((4, 5, 2))).shape
        (3, 2)
        >>> fnp.tensordot(fnp.ones((3, 4)), fnp.ones((2, 3)), axes=([0], [1])).shape
        (4, 2)
    """
    return _tensordot("tensordot", a, b, axes)


def _tensordot(name, a, b, axes):
    """``tensordot`` as one 2-D matmul between transposed, reshaped operands."""
    fnp = _fnp()
    a, b = fnp.asarray(a), fnp.asarray(b)
    sa, sb = tuple(a.shape), tuple(b.shape)
    if isinstance(axes, (int, np.integer)):
        if not 0 <= axes <= min(len(sa), len(sb)):
            raise ValueError(f"fnp.{name}: axes={axes} is out of range for shapes {sa} and "
                             f"{sb}")
        axes_a, axes_b = list(range(len(sa) - axes, len(sa))), list(range(axes))
    else:
        axes_a, axes_b = (_axes_list(name, ax, len(s))
                          for ax, s in zip(axes, (sa, sb), strict=True))
    if len(axes_a) != len(axes_b) or any(
            sa[i] != sb[j] for i, j in zip(axes_a, axes_b, strict=True)):
        raise ValueError(f"fnp.{name}: shapes {sa} and {sb} do not match along the summed "
                         f"axes {tuple(axes_a)} and {tuple(axes_b)}")
    free_a = [i for i in range(len(sa)) if i not in axes_a]
    free_b = [i for i in range(len(sb)) if i not in axes_b]
    summed = int(np.prod([sa[i] for i in axes_a]))
    left = fnp.reshape(fnp.transpose(a, free_a + axes_a), (-1, summed))
    right = fnp.reshape(fnp.transpose(b, axes_b + free_b), (summed, -1))
    out = matmul(left, right)
    return fnp.reshape(out, tuple(sa[i] for i in free_a) + tuple(sb[i] for i in free_b))


def dot(a, b):
    """``numpy.dot``: a 0-d operand multiplies; otherwise sum over the last axis of ``a``
    and the second-to-last of ``b`` (its only axis when 1-D).

    Example:
        >>> import functorch_lite.numpy as fnp
        >>> fnp.dot(fnp.array([1.0, 2.0]), fnp.array([3.0, 4.0]))
        Array(11., dtype=float32)
        >>> fnp.dot(fnp.ones((2, 3, 4)), fnp.ones((5, 4, 6))).shape
        (2, 3, 5, 6)
    """
    fnp = _fnp()
    nd_a, nd_b = fnp.ndim(a), fnp.ndim(b)
    if nd_a == 0 or nd_b == 0:
        return fnp.multiply(a, b)
    if nd_b <= 2:
        return matmul(a, b)
    return _tensordot("dot", a, b, ([nd_a - 1], [nd_b - 2]))


def vdot(a, b, /):
    """Dot product of the flattened arrays, conjugating ``a`` (``numpy.vdot``).

    Example:
        >>> import functorch_lite.numpy as fnp
        >>> fnp.vdot(fnp.array([[1.0, 2.0], [3.0, 4.0]]), fnp.ones((2, 2)))
        Array(10., dtype=float32)
    """
    fnp = _fnp()
    a, b = fnp.ravel(a), fnp.ravel(b)
    if a.shape != b.shape:
        raise ValueError(f"fnp.vdot: the arrays have {a.shape[0]} and {b.shape[0]} elements; "
                         "they need the same number")
    if a.dtype.kind == "c":
        a = fnp.conj(a)
    return matmul(a, b)


def inner(a, b, /):
    """Sum products over the last axes (``numpy.inner``); a 0-d operand multiplies.

    Example:
        >>> import functorch_lite.numpy as fnp
        >>> fnp.inner(fnp.ones((2, 3)), fnp.ones((4, 3))).shape
        (2, 4)
    """
    fnp = _fnp()
    if fnp.ndim(a) == 0 or fnp.ndim(b) == 0:
        return fnp.multiply(a, b)
    return _tensordot("inner", a, b, ([-1], [-1]))


def outer(a, b):
    """Outer product of the flattened arrays: ``out[i, j] = a[i] * b[j]``.

    Example:
        >>> import functorch_lite.numpy as fnp
        >>> fnp.outer(fnp.array([1.0, 2.0]), fnp.array([1.0, 10.0, 100.0]))
        Array([[  1.,  10., 100.],
               [  2.,  20., 200.]], dtype=float32)
    """
    fnp = _fnp()
    return fnp.multiply(fnp.reshape(a, (-1, 1)), fnp.ravel(b))


def kron(a, b):
    """Kronecker product (``numpy.kron``): blocks ``a[i, j] * b``.

    Example:
        >>> import functorch_lite.numpy as fnp
        >>> fnp.kron(fnp.eye(2), fnp.ones((2, 2))).shape
        (4, 4)
    """
    fnp = _fnp()
    a, b = fnp.asarray(a), fnp.asarray(b)
    nd = max(a.ndim, b.ndim)
    sa = (1,) * (nd - a.ndim) + tuple(a.shape)
    sb = (1,) * (nd - b.ndim) + tuple(b.shape)
    # Interleave the axes: a on even positions, b on odd ones, then merge each pair.
    left = fnp.reshape(a, tuple(d for s in sa for d in (s, 1)))
    right = fnp.reshape(b, tuple(d for s in sb for d in (1, s)))
    return fnp.reshape(left * right, tuple(x * y for x, y in zip(sa, sb, strict=True)))


__all__ = ["matmul", "matrix_transpose", "einsum", "tensordot", "dot", "vdot", "inner",
           "outer", "kron"]
